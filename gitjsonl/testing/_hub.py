"""``LocalHub``: the in-process server with helpers to set up and inspect repositories."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from ._api import Api, RepoStore
from ._faults import Fault, FaultPlan
from ._gitstore import DEFAULT_EMAIL, DEFAULT_NAME, GitRepo, Person, git_env
from ._names import check_full_name, valid_path
from ._ratelimit import RateLimiter, SecondaryLimits
from ._server import DEFAULT_MAX_BODY, HubServer, RequestRecord
from ._trees import TreeBuilder

ANY_TOKEN = "localhub-token"


class LocalHub:
    """A GitHub REST API emulator over bare git repositories, served on loopback.

    Use it as a context manager; ``url`` is what a client passes as its API
    base URL and ``token`` a token with write access.
    """

    def __init__(
        self,
        *,
        root: str | Path | None = None,
        repos: Iterable[str] = ("owner/repo",),
        tokens: Mapping[str, str] | None = None,
        initial_commit: bool = False,
        secondary_limits: SecondaryLimits | None = None,
        faults: Iterable[Fault] = (),
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        idle_timeout: float | None = 30.0,
    ) -> None:
        repos = tuple(repos)
        for name in repos:
            check_full_name(name)  # before anything touches the filesystem
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0 seconds (or None: never)")
        self._tmp: str | None = None
        if root is None:
            self._tmp = tempfile.mkdtemp(prefix="localhub-")
            root = self._tmp
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if tokens is not None:
            bad = {t: a for t, a in tokens.items() if a not in ("read", "write")}
            if bad:
                raise ValueError(f"token access must be 'read' or 'write': {bad}")
        self._tokens = dict(tokens) if tokens is not None else None
        self._store = RepoStore(self.root)
        self._api = Api(self._store)
        self._faults = FaultPlan(faults, seed)
        self._limiter = RateLimiter(secondary_limits)
        self._stopped = False
        for name in repos:
            self.create_repo(name, initial_commit=initial_commit)
        self._server = HubServer(
            (host, port),
            self._api,
            self._limiter,
            self._faults,
            self._tokens,
            max_body=max_body_bytes,
            idle_timeout=idle_timeout,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="localhub",
            daemon=True,
        )
        self._thread.start()

    # ---- lifecycle -----------------------------------------------------------

    def __enter__(self) -> LocalHub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, end open connections and git helpers; remove a temporary root."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._store.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # ---- server facts --------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:PORT``."""
        return self._server.base_url

    @property
    def token(self) -> str:
        """A token with write access on this server."""
        if self._tokens is None:
            return ANY_TOKEN
        for token, access in self._tokens.items():
            if access == "write":
                return token
        raise LookupError("no write token configured")

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, in arrival order."""
        with self._server.records_lock:
            return list(self._server.records)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._server.records_lock:
            self._server.records.clear()

    @property
    def tree_truncate_limit(self) -> int:
        """Entries a recursive tree listing returns before ``truncated`` (GitHub: 100,000)."""
        return self._api.tree_truncate_limit

    @tree_truncate_limit.setter
    def tree_truncate_limit(self, value: int) -> None:
        self._api.tree_truncate_limit = value

    @property
    def secondary_limits(self) -> SecondaryLimits | None:
        """The secondary limits in force (None = off); assignable."""
        return self._limiter.secondary

    @secondary_limits.setter
    def secondary_limits(self, value: SecondaryLimits | None) -> None:
        self._limiter.secondary = value

    def add_fault(self, fault: Fault) -> None:
        """Inject a fault; earlier faults take precedence."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    # ---- repositories ----------------------------------------------------------

    def _repo(self, full_name: str) -> GitRepo:
        repo = self._store.get(full_name)
        if repo is None:
            raise KeyError(f"no repository {full_name!r}")
        return repo

    def create_repo(
        self, full_name: str, *, initial_commit: bool = False, default_branch: str = "main"
    ) -> None:
        """Create a repository (empty unless ``initial_commit``) if it does not exist."""
        repo = self._store.create(full_name, default_branch)
        self._store.created.setdefault(full_name, time.time())
        if initial_commit and repo.is_empty():
            name = full_name.split("/")[1]
            self.seed_commit(
                full_name,
                {"README.md": f"# {name}\n".encode()},
                message="Initial commit",
                branch=default_branch,
            )

    def git_dir(self, full_name: str) -> Path:
        """The bare repository's directory."""
        return self._repo(full_name).path

    def git(self, full_name: str, *args: str) -> str:
        """Run git in the bare repository and return its stdout."""
        return self._repo(full_name).run(*args).decode()

    def seed_commit(
        self,
        full_name: str,
        files: Mapping[str, bytes | None],
        message: str = "seed",
        branch: str = "main",
    ) -> str:
        """Commit files straight into ``branch`` (None deletes); return the commit sha."""
        repo = self._repo(full_name)
        refname = f"refs/heads/{branch}"
        with repo.ref_lock:
            tip = repo.resolve_ref(refname)
            base = None
            if tip is not None:
                commit = repo.read_commit(tip)
                assert commit is not None
                base = commit.tree
            builder = TreeBuilder(repo, base)
            for path, data in files.items():
                if not valid_path(path):
                    raise ValueError(f"invalid path {path!r}")
                if data is None:
                    builder.delete(path)
                else:
                    builder.set(path, "100644", "blob", data=data)
            tree = builder.write()
            who = Person(DEFAULT_NAME, DEFAULT_EMAIL, int(time.time()))
            sha = repo.write_commit(tree, [tip] if tip else [], who, who, message)
            if not repo.update_ref(refname, sha, tip):
                raise RuntimeError(f"{refname} moved while seeding")
        return sha

    def read_file(self, full_name: str, path: str, ref: str = "main") -> bytes | None:
        """A file's bytes at ``ref``, or None when it does not exist."""
        repo = self._repo(full_name)
        out = subprocess.run(
            ["git", "--git-dir", str(repo.path), "cat-file", "blob", f"{ref}:{path}"],
            capture_output=True,
            env=git_env(),
            check=False,
        )
        return out.stdout if out.returncode == 0 else None

    def fsck(self, full_name: str) -> None:
        """Run ``git fsck --strict``; raise AssertionError with its output on failure."""
        repo = self._repo(full_name)
        out = subprocess.run(
            ["git", "--git-dir", str(repo.path), "fsck", "--strict", "--no-dangling"],
            capture_output=True,
            env=git_env(),
            check=False,
        )
        if out.returncode != 0:
            raise AssertionError(
                f"git fsck --strict failed for {full_name}:\n"
                + out.stdout.decode(errors="replace")
                + out.stderr.decode(errors="replace")
            )
