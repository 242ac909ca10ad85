"""Configuration: constants, the environment, and ``LogConfig`` (a log's validated settings).

The environment is read here and nowhere else (``GITHUB_TOKEN``,
``GITHUB_API_URL``, the user's cache folder), and so are the names every module shares: ``MiB``, the
default API URL (both kept in ``_defaults``, which imports nothing), where a log's legacy
single file lives.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import platformdirs

from ._defaults import (
    DEFAULT_API_URL,
    DEFAULT_LOG_PATH,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_SEGMENT_BYTES,
    MiB,
)
from ._pacing import Pacing
from ._redact import scrub_url
from ._retry import RetryPolicy

__all__ = [
    "DEFAULT",
    "DEFAULT_API_URL",
    "DEFAULT_LOG_PATH",
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "DEFAULT_SHUTDOWN_GRACE",
    "ON_FULL_POLICIES",
    "Identity",
    "LogConfig",
    "LogOptions",
    "MiB",
    "OnFull",
    "Origin",
    "api_url_from_env",
    "app_from_env",
    "budget_dir_from_env",
    "check_api_url",
    "check_branch",
    "check_path",
    "check_positive",
    "check_repo",
    "close_deadline",
    "is_loopback",
    "legacy_path_for",
    "repo_from_env",
    "shutdown_grace_from",
    "sigterm_handler_wanted",
    "token_from_env",
]


def token_from_env() -> str | None:
    """``$GITHUB_TOKEN``, or None when it is unset or empty."""
    return os.environ.get("GITHUB_TOKEN") or None


def repo_from_env() -> str | None:
    """``$GITHUB_REPOSITORY`` (set in GitHub Actions), or None."""
    return os.environ.get("GITHUB_REPOSITORY") or None


def app_from_env() -> tuple[str, str, int] | None:
    """A GitHub App from ``$GITHUB_APP_ID``, ``$GITHUB_APP_PRIVATE_KEY_FILE`` and
    ``$GITHUB_APP_INSTALLATION_ID``: (app id, key file, installation id), or None.

    ``ValueError`` when only some are set or the installation id is not a number.
    """
    names = ("GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_INSTALLATION_ID")
    values = [os.environ.get(name) or "" for name in names]
    if not any(values):
        return None
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise ValueError(f"a GitHub App needs {', '.join(names)}; missing: {', '.join(missing)}")
    app_id, key_file, installation = values
    if not installation.isdigit():
        raise ValueError("GITHUB_APP_INSTALLATION_ID must be a number")
    return app_id, key_file, int(installation)


def api_url_from_env() -> str:
    """``$GITHUB_API_URL`` (GitHub Enterprise), else GitHub's own API."""
    return os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL


def sigterm_handler_wanted() -> bool:
    """Whether gitjsonl may install its SIGTERM handler: unless ``$GITJSONL_SIGTERM`` is
    ``off`` (or ``0``, ``false``, ``no``)."""
    value = os.environ.get("GITJSONL_SIGTERM", "").strip().lower()
    return value not in ("off", "0", "false", "no")


def budget_dir_from_env() -> Path | None:
    """Where the processes of this host share a token's write budget: the user's cache folder.

    As ``platformdirs`` finds it: ``$XDG_CACHE_HOME/gitjsonl`` where that is
    absolute (as the XDG specification asks), else ``~/.cache/gitjsonl`` on
    Linux, ``~/Library/Caches/gitjsonl`` on macOS, ``%LOCALAPPDATA%\\gitjsonl\\Cache``
    on Windows. None when there is no home folder to find (a bare container),
    never a relative folder that would move with the working directory.
    """
    try:
        found = Path(platformdirs.user_cache_dir("gitjsonl", appauthor=False))
    except RuntimeError:  # no HOME and no password entry
        return None
    return found if found.is_absolute() else None


def legacy_path_for(path: str) -> str:
    """Where the single-file log that predates the segments at ``path`` lives."""
    return f"{path.strip('/')}.jsonl"


# -- validating what a user hands us -------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OWNER_RE = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\Z")
_REPO_NAME_RE = re.compile(r"\A[A-Za-z0-9._-]{1,100}\Z")
#: Characters git refuses anywhere in a ref name (``git check-ref-format``).
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def check_repo(repo: object) -> str:
    """``owner/name`` exactly, as GitHub spells them; ``ValueError`` otherwise."""
    if not isinstance(repo, str):
        raise TypeError(f"repo must be a string 'owner/name', not {type(repo).__name__}")
    owner, slash, name = repo.partition("/")
    if (
        not slash
        or not _OWNER_RE.match(owner)
        or not _REPO_NAME_RE.match(name)
        or name in (".", "..")
    ):
        raise ValueError(
            f"repo must be 'owner/name' with GitHub's characters "
            f"(owner: letters, digits, '-'; name: letters, digits, '.', '_', '-'), not {repo!r}"
        )
    return repo


#: Code points HFS+ ignores in names, so that ".g\u200cit" is ".git" there (git's fsck list).
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def _looks_like_git(segment: str) -> bool:
    """``.git`` as git's fsck sees it: any case, NTFS's trailing dots and spaces and 8.3
    short name ``GIT~1``, HFS+'s ignored code points."""
    name = segment.translate(_HFS_IGNORED).lower().rstrip(". ")
    return name == ".git" or name.startswith("git~")


def check_path(path: object, *, what: str = "path") -> str:
    """A folder or file path inside a repository, without leading or trailing ``/``.

    Refused: control characters (a newline in a path would end up in a commit
    message and a tree), empty, ``.`` and ``..`` segments, and a ``.git``
    segment in any case (GitHub refuses those trees).
    """
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a string, not {type(path).__name__}")
    stripped = path.strip("/")
    problem = None
    if not stripped:
        problem = "it is empty"
    elif _CONTROL.search(stripped):
        problem = "it holds a control character"
    else:
        for segment in stripped.split("/"):
            if segment in ("", ".", ".."):
                problem = "it has an empty, '.' or '..' segment"
            elif _looks_like_git(segment):
                problem = "it has a '.git' segment (or a look-alike GitHub refuses)"
    if problem is not None:
        raise ValueError(f"{what} must be a path inside the repository, {problem}: {path!r}")
    return stripped


def check_branch(branch: object) -> str:
    """A branch name git accepts (``git check-ref-format --branch``); ``ValueError`` otherwise."""
    if not isinstance(branch, str):
        raise TypeError(f"branch must be a string, not {type(branch).__name__}")
    problem = None
    if not branch or branch in ("@", "HEAD"):
        problem = "it is empty, '@' or 'HEAD'"
    elif _REF_FORBIDDEN.search(branch):
        problem = "it holds a space, a control character or one of ~ ^ : ? * [ \\"
    elif ".." in branch or "@{" in branch or "//" in branch:
        problem = "it holds '..', '@{' or '//'"
    elif branch.startswith(("/", "-")) or branch.endswith(("/", ".")):
        problem = "it starts with '/' or '-', or ends with '/' or '.'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in branch.split("/")):
        problem = "a component starts with '.' or ends with '.lock'"
    if problem is not None:
        raise ValueError(f"branch {branch!r} is not a valid git branch name: {problem}")
    return branch


def check_positive(name: str, value: object, *, integer: bool = False) -> None:
    """``value`` is a finite number above zero (an int where ``integer``)."""
    wrong_kind = isinstance(value, bool) or not isinstance(value, (int, float))
    if wrong_kind or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    assert isinstance(value, (int, float))
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive, not {value!r}")


def _check_date(date: object) -> None:
    """An ISO 8601 date with a time zone, not before 1970 (git and GitHub refuse earlier)."""
    if not isinstance(date, str):
        raise TypeError(f"Identity date must be an ISO 8601 string, not {type(date).__name__}")
    try:
        parsed = datetime.datetime.fromisoformat(date.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"Identity date must be ISO 8601, such as 2026-01-31T12:00:00Z: {date!r}"
        ) from exc
    if parsed.tzinfo is None:
        raise ValueError(f"Identity date needs a time zone (Z or +01:00): {date!r}")
    if parsed.timestamp() < 0:
        raise ValueError(f"Identity date is before 1970, which git cannot store: {date!r}")


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: object, *, allow_insecure_http: bool = False) -> str:
    """An ``http(s)://`` base URL without query, fragment or credentials, trailing ``/`` removed.

    ``http://`` only to a loopback address (localhub, a test server) unless
    ``allow_insecure_http``: the token would cross the network in clear text.
    A user name or password in the URL is refused (it would show in a
    ``repr`` and a log line, and a token belongs in ``token=``).
    """
    if not isinstance(url, str):
        raise TypeError(f"api_url must be a string, not {type(url).__name__}")
    shown = scrub_url(url)  # a password holding "/#?" makes any URL parse as another
    if "@" in url:
        raise ValueError(
            f"api_url must not hold a user name or password (give the token as token= or "
            f"$GITHUB_TOKEN): {shown!r} with its credentials hidden"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, or over 65535; an unclosed "["
        raise ValueError(
            f"api_url must be an http(s) URL such as {DEFAULT_API_URL}, not {shown!r}"
        ) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or "?" in url
        or "#" in url
        or _CONTROL.search(url)
        or url != url.strip()
    ):
        raise ValueError(f"api_url must be an http(s) URL such as {DEFAULT_API_URL}, not {shown!r}")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ValueError(
            f"api_url {shown!r} is http://: the token would cross the network in clear text. "
            "Use https://, or pass allow_insecure_http=True (command line: "
            "--allow-insecure-http) if the network on the way is yours"
        )
    return url.rstrip("/")


# -- a log's settings ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the API lives: the only place a request (and so the token) may go."""

    scheme: str
    host: str
    port: int
    prefix: str  # the API's path ("" for api.github.com, "/api/v3" for GitHub Enterprise)

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urllib.parse.urlsplit(url)
        return cls(
            scheme=parts.scheme.lower(),
            host=(parts.hostname or "").lower(),
            port=_port(parts),
            prefix=parts.path.rstrip("/"),
        )

    def holds(self, url: str, *, within_prefix: bool = False) -> bool:
        """Whether ``url`` (absolute) is on this scheme, host and port (and under the prefix)."""
        try:
            parts = urllib.parse.urlsplit(url)
            port = _port(parts)
        except ValueError:
            return False
        same = (
            parts.scheme.lower() == self.scheme
            and (parts.hostname or "").lower() == self.host
            and port == self.port
        )
        if not same or not within_prefix:
            return same
        return parts.path == self.prefix or parts.path.startswith(f"{self.prefix}/")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _port(parts: urllib.parse.SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


@dataclass(frozen=True, slots=True)
class Identity:
    """A commit author or committer. ``date`` is ISO 8601; GitHub fills it when ``None``."""

    name: str
    email: str
    date: str | None = None

    def __post_init__(self) -> None:
        # Hostile values would corrupt the commit's header lines.
        for name, value in (("name", self.name), ("email", self.email)):
            if not isinstance(value, str) or not value.strip() or _CONTROL.search(value):
                raise ValueError(f"Identity {name} must be non-empty text on one line")
            if "<" in value or ">" in value:
                raise ValueError(f"Identity {name} must not contain '<' or '>'")
        if self.date is not None:
            _check_date(self.date)


OnFull = Literal["raise", "block", "drop"]
ON_FULL_POLICIES: tuple[OnFull, ...] = ("raise", "block", "drop")


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: Marks "use the default" where ``None`` means "off" (``legacy_path``).
DEFAULT: Any = _Default()

#: Seconds the host gives a process between SIGTERM and SIGKILL (Docker's default, and a
#: HuggingFace Space's): ``$GITJSONL_SHUTDOWN_GRACE`` or ``shutdown_grace=`` say otherwise.
DEFAULT_SHUTDOWN_GRACE = 10.0

#: The most of the grace kept for the process to exit once the logs are closed
#: (threads joined, the interpreter finalised, the server's supervisor told).
EXIT_MARGIN = 2.0


def close_deadline(grace: float) -> float:
    """Seconds a close may take within a host's shutdown ``grace``: shorter, leaving a margin
    (a quarter of the grace, at most ``EXIT_MARGIN``) for the process to exit."""
    return grace - min(EXIT_MARGIN, grace / 4)


def shutdown_grace_from(shutdown_grace: object, exit_grace: object = None) -> float:
    """The host's shutdown grace: ``shutdown_grace``, or its older name ``exit_grace``, else
    ``$GITJSONL_SHUTDOWN_GRACE``, else ``DEFAULT_SHUTDOWN_GRACE``; seconds, 0 or more."""
    if shutdown_grace is not None and exit_grace is not None:
        raise ValueError("give shutdown_grace= or its older name exit_grace=, not both")
    name, value = "shutdown_grace", shutdown_grace
    if value is None and exit_grace is not None:
        name, value = "exit_grace", exit_grace
    if value is None:
        text = os.environ.get("GITJSONL_SHUTDOWN_GRACE") or ""
        if not text:
            return DEFAULT_SHUTDOWN_GRACE
        name = "$GITJSONL_SHUTDOWN_GRACE"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds, not {text[:20]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number of seconds, 0 or more, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Everything a ``Log`` is configured with, validated once, then frozen.

    Built by ``LogConfig.create`` from ``Log``'s keyword arguments (the
    defaults live in ``Log``'s signature; the environment fills in the token
    and the API URL); see ``Log`` for what each setting means. The token never
    appears in ``repr``.
    """

    repo: str
    path: str
    token: str | None = field(repr=False)
    auth: object | None = field(repr=False)
    branch: str | None
    api_url: str
    segment_bytes: int
    flush_interval: float
    batch_bytes: int
    max_batch_bytes: int
    max_record_bytes: int
    max_pending_bytes: int
    on_full: OnFull
    pacing: Pacing | None
    retry: RetryPolicy
    author: Identity | None
    committer: Identity | None
    skip_ci: bool
    legacy_path: str | None
    timeout: float
    spool_dir: str | os.PathLike[str] | None
    spool_fsync: bool
    shutdown_grace: float
    allow_public: bool
    budget_dir: Path | None
    allow_insecure_http: bool = False
    coordinator: str | None = field(default=None, repr=False)  # its password stays out of repr
    default: Callable[[Any], Any] | None = None

    @classmethod
    def create(
        cls,
        repo: str,
        *,
        path: str,
        token: str | None,
        auth: object | None,
        branch: str | None,
        api_url: str | None,
        segment_bytes: int,
        flush_interval: float,
        batch_bytes: int,
        max_batch_bytes: int,
        max_record_bytes: int,
        max_pending_bytes: int,
        on_full: OnFull,
        pacing: Pacing | None,
        retry: RetryPolicy,
        author: Identity | None,
        committer: Identity | None,
        skip_ci: bool,
        legacy_path: str | None,
        timeout: float,
        spool_dir: str | os.PathLike[str] | None,
        spool_fsync: bool,
        shutdown_grace: float | None,
        allow_public: bool,
        budget_dir: str | os.PathLike[str] | None = DEFAULT,
        allow_insecure_http: bool = False,
        coordinator: str | None = DEFAULT,
        exit_grace: float | None = None,
        default: Callable[[Any], Any] | None = None,
    ) -> LogConfig:
        """Validate ``Log``'s arguments; ``ValueError``/``TypeError`` name the bad one."""
        path = check_path(path)
        for name, size in (
            ("segment_bytes", segment_bytes),
            ("batch_bytes", batch_bytes),
            ("max_batch_bytes", max_batch_bytes),
            ("max_record_bytes", max_record_bytes),
            ("max_pending_bytes", max_pending_bytes),
        ):
            check_positive(name, size, integer=True)
        check_positive("flush_interval", flush_interval)
        check_positive("timeout", timeout)
        grace = shutdown_grace_from(shutdown_grace, exit_grace)
        if default is not None and not callable(default):
            raise TypeError(f"default must be a function (as json.dumps takes), not {default!r}")
        if on_full not in ON_FULL_POLICIES:
            raise ValueError(f"on_full must be 'raise', 'block' or 'drop', not {on_full!r}")
        if pacing is not None and not isinstance(pacing, Pacing):
            raise TypeError(f"pacing must be a gitjsonl.Pacing or None, not {pacing!r}")
        if not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a gitjsonl.RetryPolicy, not {retry!r}")
        for name, identity in (("author", author), ("committer", committer)):
            if identity is not None and not isinstance(identity, Identity):
                raise TypeError(f"{name} must be a gitjsonl.Identity or None")
        if token is not None and (not isinstance(token, str) or _CONTROL.search(token)):
            raise ValueError("token must be a string without control characters")
        if token is not None and auth is not None:
            raise ValueError("give a Log token= or auth=, not both")
        legacy: str | None
        if legacy_path is DEFAULT:
            legacy = legacy_path_for(path)
        else:
            legacy = None if legacy_path is None else check_path(legacy_path, what="legacy_path")
        if budget_dir is DEFAULT:
            shared_dir = budget_dir_from_env()
        elif budget_dir is None:
            shared_dir = None
        elif isinstance(budget_dir, (str, os.PathLike)):
            shared_dir = Path(budget_dir).expanduser()
            if not str(budget_dir) or _CONTROL.search(str(budget_dir)):
                raise ValueError("budget_dir must be a folder's path, or None")
        else:
            raise TypeError(f"budget_dir must be a path or None, not {type(budget_dir).__name__}")
        return cls(
            repo=check_repo(repo),
            path=path,
            # auth= (a GitHub App, say) stands instead of a token, even one in the environment.
            token=token if token is not None or auth is not None else token_from_env(),
            auth=auth,
            branch=None if branch is None else check_branch(branch),
            api_url=check_api_url(
                api_url if api_url is not None else api_url_from_env(),
                allow_insecure_http=bool(allow_insecure_http),
            ),
            segment_bytes=segment_bytes,
            flush_interval=float(flush_interval),
            batch_bytes=batch_bytes,
            max_batch_bytes=max_batch_bytes,
            max_record_bytes=max_record_bytes,
            max_pending_bytes=max_pending_bytes,
            on_full=on_full,
            pacing=pacing,
            retry=retry,
            author=author,
            committer=committer,
            skip_ci=bool(skip_ci),
            legacy_path=legacy,
            timeout=float(timeout),
            spool_dir=spool_dir,
            spool_fsync=bool(spool_fsync),
            shutdown_grace=grace,
            allow_public=bool(allow_public),
            budget_dir=shared_dir,
            allow_insecure_http=bool(allow_insecure_http),
            coordinator=coordinator_from(coordinator),
            default=default,
        )


def coordinator_from(coordinator: str | None) -> str | None:
    """The coordinator's URL: ``coordinator`` (None: none), else ``$GITJSONL_COORDINATOR``."""
    if coordinator is DEFAULT:
        coordinator = os.environ.get("GITJSONL_COORDINATOR") or None
    if coordinator is None:
        return None
    # Imported here: _redis imports redis-py, which `gitjsonl --help` must not pay for.
    from ._redis import check_coordinator_url

    return check_coordinator_url(coordinator)


class LogOptions(TypedDict, total=False):
    """``Log``'s keyword arguments, for wrappers that pass them on (``AsyncLog``, ``GithubLog``).

    A test checks that these are exactly ``Log``'s keyword-only parameters.
    """

    path: str
    token: str | None
    auth: object | None
    branch: str | None
    api_url: str | None
    segment_bytes: int
    flush_interval: float
    batch_bytes: int
    max_batch_bytes: int
    max_record_bytes: int
    default: Callable[[Any], Any] | None
    max_pending_bytes: int
    on_full: OnFull
    pacing: Pacing | None
    retry: RetryPolicy
    author: Identity | None
    committer: Identity | None
    skip_ci: bool
    legacy_path: str | None
    timeout: float
    clock: Callable[[], float]
    sleep: Callable[[float], None] | None
    spool_dir: str | os.PathLike[str] | None
    spool_fsync: bool
    shutdown_grace: float | None
    exit_grace: float | None
    allow_public: bool
    budget_dir: str | os.PathLike[str] | None
    allow_insecure_http: bool
    coordinator: str | None
