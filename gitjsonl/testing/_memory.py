"""``MemoryGitHub``: an in-memory GitHub with localhub's rules, for unit tests.

What ``httpx.MockTransport`` is to httpx users: the commit path's seam
(``gitjsonl._seam.GitHubSeam``) without a server, a socket or a thread.

- Objects are hashed as git hashes them (``_gittree.tree_sha``,
  ``git_blob_sha``, commits from their canonical text), so shas agree with
  localhub's and GitHub's for the same trees and blobs.
- A ref update is a compare-and-swap: a commit that does not descend from the
  branch's head is refused (``NotFastForward``), unless ``cas=False`` (a
  broken GitHub: the simulator's control run uses it to prove its checker).
- Reads naming a branch lag: they see the head the branch had ``read_lag``
  seconds ago on the injected ``clock``; reads by sha are exact.
- Faults, injected per call by ``faults(op)`` (a seeded chooser) or queued
  with ``fail_next(op, fault)``, raise gitjsonl's own exceptions exactly as
  the HTTP seam translates GitHub's answers: ``"lost"`` (the write landed, its
  answer did not: ambiguous ``TransientError``), ``"dropped"`` (no answer, not
  carried out), ``"5xx"``, ``"422"`` (GitHub's transient 422), ``"429"`` and
  ``"secondary"`` (``RateLimited``), ``"refused"`` (a spurious
  ``NotFastForward`` on a ref update).
- An operator: ``force_ref`` (a reset or force-push) and ``foreign_commit``
  (a commit of someone else's on the branch).

Several clients share one repository: ``hub.client()`` is another view of the
same objects and refs, with its own write count and fault chooser.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from gitjsonl._actions import WRITE_CALLS
from gitjsonl._config import Identity
from gitjsonl._exceptions import (
    EmptyRepository,
    GitHubError,
    NotFastForward,
    NotFound,
    RateLimited,
    TransientError,
    ValidationFailed,
)
from gitjsonl._github import CommitInfo, CreatedTree, DirEntry, Folder, RepoInfo, git_blob_sha
from gitjsonl._gittree import TREE_MODE, is_folder, tree_sha

__all__ = ["FAULTS", "WRITES", "MemoryGitHub"]

#: The faults ``faults(op)`` / ``fail_next`` may name.
FAULTS = ("lost", "dropped", "5xx", "422", "429", "secondary", "refused")

#: The calls that write (each counts in ``writes``; a 5xx on one is ambiguous).
WRITES = WRITE_CALLS

T = TypeVar("T")

_SHA_CHARS = frozenset("0123456789abcdef")
_DEFAULT_IDENTITY = Identity("gitjsonl", "gitjsonl@users.noreply.github.com")


@dataclass(slots=True)
class _Commit:
    tree: str
    parents: tuple[str, ...]
    message: str
    date: float


@dataclass(slots=True)
class _Store:
    """The repository every client of one ``MemoryGitHub`` shares."""

    full_name: str
    default_branch: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, tuple[DirEntry, ...]] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    # Each branch's heads over time, oldest first: (when it moved, the commit).
    refs: dict[str, list[tuple[float, str]]] = field(default_factory=dict)


def _is_sha(value: str) -> bool:
    return len(value) == 40 and set(value) <= _SHA_CHARS


class MemoryGitHub:
    """One repository in memory, behind the same calls as ``GitHubRepo``."""

    def __init__(
        self,
        full_name: str = "owner/repo",
        *,
        default_branch: str = "main",
        initial_commit: bool = True,
        clock: Callable[[], float] = time.time,
        read_lag: float = 0.0,
        cas: bool = True,
        faults: Callable[[str], str | None] | None = None,
    ) -> None:
        self._store = _Store(full_name, default_branch)
        self.clock = clock
        self.read_lag = read_lag
        self.cas = cas
        self.faults = faults
        self.writes = 0
        self._queued: dict[str, list[str]] = {}
        if initial_commit:
            tree = self._put_tree(())
            first = self._put_commit(tree, (), "Initial commit")
            self._move(default_branch, first)

    @property
    def full_name(self) -> str:
        return self._store.full_name

    def client(self, *, faults: Callable[[str], str | None] | None = None) -> MemoryGitHub:
        """Another client of the same repository: its own write count and faults."""
        other = MemoryGitHub.__new__(MemoryGitHub)
        other._store = self._store
        other.clock, other.read_lag, other.cas = self.clock, self.read_lag, self.cas
        other.faults, other.writes, other._queued = faults, 0, {}
        return other

    def fail_next(self, op: str, fault: str) -> None:
        """Answer the next ``op`` call (e.g. ``"update_ref"``) with ``fault`` (see ``FAULTS``)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._queued.setdefault(op, []).append(fault)

    # -- the operator's hand: no faults, no lag ---------------------------------------

    def head(self, branch: str) -> str | None:
        """The branch's head as it is now (never lagging), or None."""
        history = self._store.refs.get(branch)
        return history[-1][1] if history else None

    def force_ref(self, branch: str, sha: str) -> None:
        """An operator's reset or force-push: the branch points at ``sha``, whatever it held."""
        if sha not in self._store.commits:
            raise ValueError(f"no commit {sha}")
        self._move(branch, sha)

    def foreign_commit(self, branch: str, path: str, content: bytes, message: str) -> str:
        """Someone else's commit on the branch: ``path`` set to ``content``; its sha."""
        parent = self.head(branch)
        if parent is None:
            raise ValueError(f"no branch {branch}")
        tree = self._edit(self._store.commits[parent].tree, {path: self._put_blob(content)}, ())
        sha = self._put_commit(tree, (parent,), message)
        self._move(branch, sha)
        return sha

    def ancestors(self, sha: str) -> list[str]:
        """``sha`` and every commit it descends from, newest first."""
        return [info.sha for info in self._walk(sha)]

    def file_at(self, commit: str, path: str) -> bytes | None:
        """The bytes of the file at ``path`` in ``commit``, or None."""
        entries = self._store.trees[self._store.commits[commit].tree]
        parts = [p for p in path.split("/") if p]
        for index, part in enumerate(parts):
            entry = next((e for e in entries if e.name == part), None)
            if entry is None:
                return None
            if index == len(parts) - 1:
                return self._store.blobs.get(entry.sha) if not is_folder(entry) else None
            if not is_folder(entry):
                return None
            entries = self._store.trees[entry.sha]
        return None

    # -- the seam: reads ----------------------------------------------------------------

    def repository(self, *, fresh: bool = False) -> RepoInfo:
        self._enter("repository")
        return RepoInfo(self.full_name, self._store.default_branch, True, True)

    def default_branch(self) -> str:
        return self.repository().default_branch

    def get_head(self, branch: str) -> str:
        self._enter("get_head")
        return self._read_branch(branch)

    def get_commit(self, sha: str) -> CommitInfo:
        self._enter("get_commit")
        return self._info(self._commit_sha(sha))

    def iter_commits(self, sha: str, path: str | None = None) -> Iterator[CommitInfo]:
        self._enter("iter_commits")
        start = self._resolve(sha)
        for info in self._walk(start):
            if path is None or self._touches(info, path):
                yield info

    def recent_commits(
        self, branch: str, *, since: float, pages: int = 1
    ) -> tuple[list[tuple[str, float]], float | None]:
        self._enter("recent_commits")
        found: list[tuple[str, float]] = []
        for info in self._walk(self._read_branch(branch)):
            date = self._store.commits[info.sha].date
            if date < since or len(found) >= 100 * pages:
                break
            found.append((info.message, date))
        return found, self.clock()

    def read_folder(self, ref: str, path: str) -> Folder:
        self._enter("read_folder")
        root = self._store.commits[self._resolve(ref)].tree
        entries, folder, levels = self._store.trees[root], "", []
        parts = [p for p in path.strip("/").split("/") if p]
        for index, part in enumerate(parts):
            levels.append(self._named(entries, folder))
            match = next((e for e in entries if e.name == part), None)
            if match is None or not is_folder(match):
                if match is None:
                    levels += [()] * (len(parts) - index - 1)
                return Folder(root, None, tuple(levels))
            folder = f"{folder}/{part}" if folder else part
            entries = self._store.trees[match.sha]
        return Folder(root, list(self._named(entries, folder)), tuple(levels))

    def tree_entries(self, sha: str, folder: str) -> tuple[DirEntry, ...]:
        self._enter("tree_entries")
        entries = self._store.trees.get(sha)
        if entries is None:
            raise NotFound("Not Found", status=404)
        return self._named(entries, folder)

    def get_blob(self, sha: str) -> bytes:
        self._enter("get_blob")
        data = self._store.blobs.get(sha)
        if data is None:
            raise NotFound("Not Found", status=404)
        return data

    # -- the seam: writes -----------------------------------------------------------------

    def create_blob(self, content: bytes) -> str:
        return self._write("create_blob", lambda: self._put_blob(content))

    def post_tree(
        self,
        base_tree: str,
        *,
        texts: dict[str, bytes],
        blobs: dict[str, str],
        deletes: list[str],
    ) -> CreatedTree:
        def create() -> CreatedTree:
            if base_tree not in self._store.trees:
                raise ValidationFailed("base_tree is not a valid tree oid", status=422)
            files: dict[str, str | None] = {p: self._put_blob(t) for p, t in texts.items()}
            for path, sha in blobs.items():
                if sha not in self._store.blobs:
                    raise ValidationFailed("Object does not exist", status=422)
                files[path] = sha
            sha = self._edit(base_tree, files, deletes)
            return CreatedTree(sha, self._named(self._store.trees[sha], ""), False)

        return self._write("post_tree", create)

    def create_tree(self, base_tree: str | None, files: dict[str, str | None]) -> str:
        """``base_tree`` (or an empty tree) with each path set to a blob sha (None: deleted)."""

        def create() -> str:
            base = base_tree if base_tree is not None else self._put_tree(())
            if base not in self._store.trees:
                raise ValidationFailed("base_tree is not a valid tree oid", status=422)
            if any(sha is not None and sha not in self._store.blobs for sha in files.values()):
                raise ValidationFailed("Object does not exist", status=422)
            return self._edit(base, dict(files), [])

        return self._write("create_tree", create)

    def create_commit(
        self,
        message: str,
        tree: str,
        parents: list[str],
        *,
        author: Identity | None = None,
        committer: Identity | None = None,
    ) -> str:
        def create() -> str:
            if tree not in self._store.trees:
                raise ValidationFailed("Tree SHA does not exist", status=422)
            if any(p not in self._store.commits for p in parents):
                raise ValidationFailed("Parent SHA does not exist or is not a commit", status=422)
            return self._put_commit(tree, tuple(parents), message, author, committer)

        return self._write("create_commit", create)

    def update_ref(self, branch: str, sha: str) -> None:
        def update() -> None:
            head = self.head(branch)
            if head is None:
                raise ValidationFailed("Reference does not exist", status=422)
            if sha not in self._store.commits:
                raise ValidationFailed("Object does not exist", status=422)
            if self.cas and head not in self.ancestors(sha):
                raise NotFastForward("Update is not a fast forward", status=422)
            if head != sha:
                self._move(branch, sha)

        self._write("update_ref", update)

    def create_ref(self, branch: str, sha: str) -> None:
        def create() -> None:
            if sha not in self._store.commits:
                raise ValidationFailed("Object does not exist", status=422)
            if self.head(branch) is not None:
                raise ValidationFailed("Reference already exists", status=422)
            self._move(branch, sha)

        self._write("create_ref", create)

    def put_file(self, path: str, message: str, content: bytes, *, branch: str | None) -> str:
        def put() -> str:
            name = branch or self._store.default_branch
            parent = self.head(name)
            base = self._store.commits[parent].tree if parent else self._put_tree(())
            if parent is not None and self.file_at(parent, path) is not None:
                raise ValidationFailed('"sha" wasn\'t supplied.', status=422)
            tree = self._edit(base, {path: self._put_blob(content)}, ())
            sha = self._put_commit(tree, (parent,) if parent else (), message)
            self._move(name, sha)
            return sha

        return self._write("put_file", put)

    # -- rules ------------------------------------------------------------------------------

    def _fault(self, op: str) -> str | None:
        queued = self._queued.get(op)
        if queued:
            return queued.pop(0)
        return self.faults(op) if self.faults is not None else None

    def _enter(self, op: str) -> None:
        """A read: its fault, if one is due (a read is never ambiguous)."""
        fault = self._fault(op)
        if fault is not None:
            raise _error(fault, op, write=False)

    def _write(self, op: str, carry_out: Callable[[], T]) -> T:
        self.writes += 1
        fault = self._fault(op)
        if fault == "refused" and op == "update_ref":
            raise NotFastForward("Update is not a fast forward", status=422)
        if fault is not None and fault != "lost":
            raise _error(fault, op, write=True)
        result = carry_out()
        if fault == "lost":
            raise TransientError("502: Server Error (the answer was lost)", status=502)
        return result

    def _move(self, branch: str, sha: str) -> None:
        self._store.refs.setdefault(branch, []).append((self.clock(), sha))

    def _read_branch(self, branch: str) -> str:
        """The head a read naming ``branch`` sees: as it was ``read_lag`` seconds ago."""
        history = self._store.refs.get(branch)
        if not history:
            if not self._store.refs:
                raise EmptyRepository("Git Repository is empty.", status=409)
            raise NotFound("Not Found", status=404)
        seen = self.clock() - self.read_lag
        for moved, sha in reversed(history):
            if moved <= seen:
                return sha
        # Moved within the lag: the previous head (localhub's rule), else the first one.
        return history[-2][1] if len(history) > 1 else history[0][1]

    def _resolve(self, ref: str) -> str:
        if _is_sha(ref) and ref in self._store.commits:
            return ref
        return self._read_branch(ref)

    def _commit_sha(self, sha: str) -> str:
        if sha not in self._store.commits:
            raise NotFound("Not Found", status=404)
        return sha

    def _info(self, sha: str) -> CommitInfo:
        commit = self._store.commits[sha]
        date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(commit.date))
        return CommitInfo(sha, commit.tree, commit.message, commit.parents, date)

    def _walk(self, start: str) -> Iterator[CommitInfo]:
        """Commits reachable from ``start``, newest first (by date, then as reached)."""
        seen, order = {start}, 0
        queue = [(-self._store.commits[start].date, order, start)]
        while queue:
            _, _, sha = heapq.heappop(queue)
            yield self._info(sha)
            for parent in self._store.commits[sha].parents:
                if parent not in seen:
                    seen.add(parent)
                    order += 1
                    heapq.heappush(queue, (-self._store.commits[parent].date, order, parent))

    def _touches(self, info: CommitInfo, path: str) -> bool:
        mine = self.file_at(info.sha, path)
        parents = [self.file_at(p, path) for p in info.parents] or [None]
        return any(theirs != mine for theirs in parents)

    @staticmethod
    def _named(entries: tuple[DirEntry, ...], folder: str) -> tuple[DirEntry, ...]:
        return tuple(
            DirEntry(
                e.name, f"{folder}/{e.name}" if folder else e.name, e.sha, e.size, e.type, e.mode
            )
            for e in entries
        )

    def _put_blob(self, content: bytes) -> str:
        sha = git_blob_sha(content)
        self._store.blobs[sha] = bytes(content)
        return sha

    def _put_tree(self, entries: tuple[DirEntry, ...]) -> str:
        sha = tree_sha(entries)
        self._store.trees[sha] = tuple(sorted(entries, key=lambda e: e.name))
        return sha

    def _edit(
        self, base: str, files: dict[str, str | None], deletes: tuple[str, ...] | list[str]
    ) -> str:
        """Tree ``base`` with each path set to a blob (None: removed); its sha."""
        changes: dict[str, str | None] = dict(files)
        for path in deletes:
            if self._lookup(base, path) is None:
                # GitHub refuses to delete an absent path (localhub's rule too).
                raise ValidationFailed(f"tree.path {path!r} does not exist", status=422)
            changes[path] = None
        return self._edit_level(base, changes) or self._put_tree(())

    def _lookup(self, tree: str, path: str) -> DirEntry | None:
        entries = self._store.trees[tree]
        parts = [p for p in path.split("/") if p]
        for index, part in enumerate(parts):
            entry = next((e for e in entries if e.name == part), None)
            if entry is None or index == len(parts) - 1:
                return entry
            if not is_folder(entry):
                return None
            entries = self._store.trees[entry.sha]
        return None

    def _edit_level(self, tree: str | None, changes: dict[str, str | None]) -> str | None:
        """One level of ``_edit``; None when the level ends up empty (git drops it)."""
        entries = {e.name: e for e in (self._store.trees[tree] if tree else ())}
        below: dict[str, dict[str, str | None]] = {}
        for path, sha in changes.items():
            name, _, rest = path.strip("/").partition("/")
            if rest:
                below.setdefault(name, {})[rest] = sha
            elif sha is None:
                entries.pop(name, None)
            else:
                size = len(self._store.blobs[sha])
                entries[name] = DirEntry(name, name, sha, size, "file", "100644")
        for name, nested in below.items():
            current = entries.get(name)
            sub = current.sha if current is not None and is_folder(current) else None
            made = self._edit_level(sub, nested)
            if made is None:
                entries.pop(name, None)
            else:
                entries[name] = DirEntry(name, name, made, 0, "dir", TREE_MODE)
        if not entries:
            return None
        return self._put_tree(tuple(entries.values()))

    def _put_commit(
        self,
        tree: str,
        parents: tuple[str, ...],
        message: str,
        author: Identity | None = None,
        committer: Identity | None = None,
    ) -> str:
        now = self.clock()
        lines = [f"tree {tree}", *(f"parent {p}" for p in parents)]
        for role, given in (("author", author), ("committer", committer)):
            who = given or _DEFAULT_IDENTITY
            lines.append(f"{role} {who.name} <{who.email}> {int(now)} +0000")
        body = ("\n".join(lines) + "\n\n" + message).encode()
        digest = hashlib.sha1(b"commit %d\0" % len(body), usedforsecurity=False)
        digest.update(body)
        sha = digest.hexdigest()
        self._store.commits.setdefault(sha, _Commit(tree, parents, message, now))
        return sha


def _error(fault: str, op: str, *, write: bool) -> GitHubError:
    """``fault`` as the HTTP seam translates GitHub's answer (``_github.translate_error``)."""
    if fault == "dropped":
        return TransientError(f"no answer from GitHub ({op}): connection dropped", ambiguous=write)
    if fault == "5xx":
        return TransientError("Server Error", status=502, ambiguous=write)
    if fault == "422":
        return TransientError("Reference update failed", status=422, ambiguous=write)
    if fault == "429":
        return RateLimited("rate limited", status=429, retry_after=60.0)
    if fault == "secondary":
        return RateLimited("You have exceeded a secondary rate limit", status=403, retry_after=60.0)
    if fault in ("refused", "lost"):
        return TransientError("Server Error", status=502, ambiguous=write)
    raise ValueError(f"unknown fault {fault!r}")


if TYPE_CHECKING:
    from gitjsonl._seam import GitHubSeam

    def _satisfied(hub: MemoryGitHub) -> GitHubSeam:
        return hub  # mypy proves the in-memory seam implements the protocol
