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

from ._api import Api
from ._auth import Tokens
from ._faults import Fault, FaultPlan
from ._gitstore import DEFAULT_EMAIL, DEFAULT_NAME, MAX_READ_LAG, GitRepo, Person, git_env
from ._graphql import Graphql
from ._names import check_full_name, valid_path
from ._ratelimit import RateLimiter, SecondaryLimits
from ._server import DEFAULT_MAX_BODY, HubServer, RequestRecord
from ._shapes import LICENSES
from ._store import RepoStore
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
        read_lag: float = 0.0,
        contents_listing_cap: int | None = 1000,
        public: Iterable[str] = (),
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
        self._tokens = Tokens(tokens)
        self._store = RepoStore(self.root)
        self._api = Api(self._store)
        self.read_lag = read_lag
        self.contents_listing_cap = contents_listing_cap
        self._faults = FaultPlan(faults, seed)
        self._limiter = RateLimiter(secondary_limits)
        self._stopped = False
        for name in repos:
            self.create_repo(name, initial_commit=initial_commit)
        for name in public:
            self.set_visibility(name, "public")
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
        self._faults.open_gates()  # a held request would keep its handler past the stop
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
        if self._tokens.open:
            return ANY_TOKEN
        token = self._tokens.first_write_token()
        if token is None:
            raise LookupError("no write token configured")
        return token

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
    def tree_truncate_bytes(self) -> int:
        """Bytes of entries a tree listing returns before ``truncated`` (GitHub: 7 MB)."""
        return self._api.tree_truncate_bytes

    @tree_truncate_bytes.setter
    def tree_truncate_bytes(self, value: int) -> None:
        self._api.tree_truncate_bytes = value

    @property
    def read_lag(self) -> float:
        """Seconds a read naming a branch still sees its previous head (0: off); assignable."""
        return self._api.read_lag

    @read_lag.setter
    def read_lag(self, seconds: float) -> None:
        if not 0 <= seconds <= MAX_READ_LAG:
            raise ValueError(f"read_lag must be within [0, {MAX_READ_LAG:g}] seconds")
        self._api.read_lag = float(seconds)

    @property
    def contents_listing_cap(self) -> int | None:
        """Entries a Contents API folder listing shows (GitHub: 1,000; None: all)."""
        return self._api.contents_listing_cap

    @contents_listing_cap.setter
    def contents_listing_cap(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError("contents_listing_cap must be >= 1 or None")
        self._api.contents_listing_cap = value

    @property
    def clock_skew(self) -> float:
        """Seconds the ``Date`` header runs ahead of this machine's clock; assignable."""
        return self._server.clock_skew

    @clock_skew.setter
    def clock_skew(self, seconds: float) -> None:
        self._server.clock_skew = float(seconds)

    # ---- tokens and apps -------------------------------------------------------

    def add_token(
        self,
        token: str,
        *,
        write: bool = True,
        expires_in: float | None = None,
        repos: Iterable[str] | None = None,
    ) -> None:
        """Accept ``token`` (401 "Bad credentials" once ``expires_in`` seconds have passed).

        Adding a token to a hub created without ``tokens`` makes it check tokens
        from then on: unknown ones get 401.
        """
        self._tokens.open = False
        self._tokens.add(
            token, access="write" if write else "read", expires_in=expires_in, repos=repos
        )

    def register_app(
        self,
        app_id: int,
        public_key_pem: str,
        installation_id: int,
        *,
        repos: Iterable[str] | None = None,
        token_lifetime: float = 3600.0,
        write: bool = True,
    ) -> None:
        """Register a GitHub App installation: JWTs signed by the key get installation tokens.

        Tokens issued by ``POST /app/installations/{id}/access_tokens`` see only
        ``repos`` (None: all) and expire after ``token_lifetime`` seconds.
        """
        self._tokens.open = False
        self._tokens.register_app(
            app_id,
            public_key_pem,
            installation_id,
            repos=repos,
            token_lifetime=token_lifetime,
            access="write" if write else "read",
        )

    @property
    def graphql(self) -> Graphql:
        """The GraphQL endpoint (blobs by oid): ``enabled = False`` makes it a 404, as on a
        server without it; ``max_aliases`` and ``max_answer_bytes`` are its caps."""
        return self._server.graphql

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

    def rename_repo(self, old: str, new: str) -> None:
        """Rename or transfer a repository; the old name answers 301/307 to /repositories/{id}."""
        check_full_name(new)
        self._store.rename(old, new)

    def make_organization(self, login: str) -> None:
        """Make the owner ``login`` an organisation: its repositories name it in
        ``organization``, and its ``type`` is Organization (owners are users otherwise)."""
        self._api.organizations.add(login)

    def set_details(
        self,
        full_name: str,
        *,
        description: str | None = None,
        homepage: str | None = None,
        language: str | None = None,
        license_key: str | None = None,
    ) -> None:
        """Set what GitHub keeps of a repository outside git, as its answer names them:
        ``description``, ``homepage``, ``language`` and ``license`` (``license_key``, a
        key of ``LICENSES``: ``bsd-3-clause`` or ``other``). None: null, as on a new
        repository."""
        self._repo(full_name)
        if license_key is not None and license_key not in LICENSES:
            raise ValueError(f"license_key must be one of {sorted(LICENSES)}")
        self._api.details[full_name] = {
            "description": description,
            "homepage": homepage,
            "language": language,
            "license": LICENSES[license_key] if license_key is not None else None,
        }

    def repo_id(self, full_name: str) -> int:
        """The repository's stable numeric id."""
        self._repo(full_name)
        return self._store.id_of(full_name)

    def set_visibility(self, full_name: str, visibility: str) -> None:
        """Make a repository ``public`` or ``private`` (the default)."""
        self._repo(full_name)
        if visibility == "public":
            self._store.public.add(full_name)
        elif visibility == "private":
            self._store.public.discard(full_name)
        else:
            raise ValueError("visibility must be 'public' or 'private'")

    def protect_branch(
        self, full_name: str, branch: str, *, kind: str = "branch_protection"
    ) -> None:
        """Protect a branch: ref updates through the API and Contents PUTs to it are refused.

        ``kind`` is ``branch_protection`` (a classic rule: 422 "Protected branch
        update failed for refs/heads/...") or ``ruleset`` (422/409 "Repository rule
        violations found"; creating the branch is refused too).
        """
        self._repo(full_name)
        self._store.protect(full_name, branch, kind)

    def unprotect_branch(self, full_name: str, branch: str) -> None:
        """Lift a branch's protection."""
        self._store.unprotect(full_name, branch)

    def create_repo(
        self, full_name: str, *, initial_commit: bool = False, default_branch: str = "main"
    ) -> None:
        """Create a repository (empty unless ``initial_commit``) if it does not exist."""
        repo = self._store.create(full_name, default_branch)
        if initial_commit and repo.is_empty():
            name = full_name.split("/")[1]
            self.seed_commit(
                full_name,
                {"README.md": f"# {name}\n".encode()},
                message="Initial commit",
                branch=default_branch,
            )
            # A repository created with a commit existed before the test: its
            # first branch does not lag (later moves, seeded or not, do).
            repo.forget_moves()

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
        *,
        lag: bool = False,
    ) -> str:
        """Commit files straight into ``branch`` (None deletes); return the commit sha.

        A seeded commit is settled at once (it sets the scene), unless ``lag``:
        then reads naming the branch see it only after ``read_lag``, as they
        would a commit another client pushed through the API.
        """
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
        if not lag:
            repo.forget_moves(refname)
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
