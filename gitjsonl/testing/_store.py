"""The hub's repositories and what GitHub keeps about them besides git data.

Each repository is a bare git repository under ``root/owner/name.git``. Around
it: a stable numeric id (GitHub's ``/repositories/{id}`` routes and redirects
rely on it), the names it used to have, its visibility and its protected
branches.
"""

from __future__ import annotations

import shutil
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from ._gitstore import GitRepo, init_bare
from ._names import check_full_name

PROTECTION_KINDS = frozenset({"branch_protection", "ruleset"})


@dataclass(frozen=True)
class Moved:
    """Where an old name now leads: the repository's id and current name."""

    repo_id: int
    full_name: str


class RepoStore:
    """The bare repositories under ``root/owner/name.git``, with ids, old names and settings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._repos: dict[str, GitRepo] = {}
        self._lock = threading.Lock()
        self.created: dict[str, float] = {}
        self._ids: dict[str, int] = {}
        self._old_names: dict[str, int] = {}
        self.public: set[str] = set()
        self._protected: dict[str, dict[str, str]] = {}

    def path_of(self, full_name: str) -> Path:
        """Where a repository lives on disk (ValueError for a name GitHub would refuse)."""
        owner, name = check_full_name(full_name)
        return self.root / owner / f"{name}.git"

    def get(self, full_name: str) -> GitRepo | None:
        """The repository, or None when it does not exist (or cannot: a bad name)."""
        try:
            path = self.path_of(full_name)
        except ValueError:
            return None
        with self._lock:
            repo = self._repos.get(full_name)
            if repo is None:
                if not (path / "HEAD").is_file():
                    return None
                repo = self._repos[full_name] = GitRepo(path)
                self._assign_id(full_name)
            return repo

    def create(self, full_name: str, default_branch: str) -> GitRepo:
        """Create the repository (empty) unless it exists; return it."""
        path = self.path_of(full_name)
        if not (path / "HEAD").is_file():
            init_bare(path, default_branch)
        self.created.setdefault(full_name, time.time())
        repo = self.get(full_name)
        assert repo is not None
        return repo

    def _assign_id(self, full_name: str) -> int:
        if full_name not in self._ids:
            # Stable across restarts over the same root, unique within this hub.
            taken = set(self._ids.values()) | set(self._old_names.values())
            candidate = zlib.crc32(full_name.encode()) & 0x7FFFFFFF or 1
            while candidate in taken:
                candidate += 1
            self._ids[full_name] = candidate
        return self._ids[full_name]

    def id_of(self, full_name: str) -> int:
        """The repository's numeric id (KeyError when unknown)."""
        with self._lock:
            return self._ids[full_name]

    def name_of(self, repo_id: int) -> str | None:
        """The current name of the repository with this id."""
        with self._lock:
            return next((name for name, i in self._ids.items() if i == repo_id), None)

    def moved(self, full_name: str) -> Moved | None:
        """Where a renamed or transferred repository went, or None."""
        with self._lock:
            repo_id = self._old_names.get(full_name)
        if repo_id is None:
            return None
        current = self.name_of(repo_id)
        return None if current is None else Moved(repo_id, current)

    def rename(self, old: str, new: str) -> None:
        """Move a repository to a new owner and/or name; the old name redirects."""
        new_path = self.path_of(new)
        if self.get(old) is None:
            raise KeyError(f"no repository {old!r}")
        if self.get(new) is not None:
            raise ValueError(f"repository {new!r} already exists")
        with self._lock:
            repo = self._repos.pop(old)
            repo.close()
            new_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(repo.path), str(new_path))
            self._repos[new] = GitRepo(new_path)
            repo_id = self._ids.pop(old)
            self._ids[new] = repo_id
            self._old_names[old] = repo_id
            self._old_names.pop(new, None)
            for table in (self.created, self._protected):
                if old in table:
                    table[new] = table.pop(old)  # type: ignore[assignment]
            if old in self.public:
                self.public.discard(old)
                self.public.add(new)

    def protect(self, full_name: str, branch: str, kind: str) -> None:
        """Protect a branch: ``branch_protection`` (classic rule) or ``ruleset``."""
        if kind not in PROTECTION_KINDS:
            raise ValueError(f"protection kind must be one of {sorted(PROTECTION_KINDS)}")
        with self._lock:
            self._protected.setdefault(full_name, {})[branch] = kind

    def unprotect(self, full_name: str, branch: str) -> None:
        """Lift a branch's protection."""
        with self._lock:
            self._protected.get(full_name, {}).pop(branch, None)

    def protection(self, full_name: str, branch: str) -> str | None:
        """How a branch is protected, or None."""
        with self._lock:
            return self._protected.get(full_name, {}).get(branch)

    def close(self) -> None:
        """Stop every git helper process."""
        with self._lock:
            repos = list(self._repos.values())
        for repo in repos:
            repo.close()
