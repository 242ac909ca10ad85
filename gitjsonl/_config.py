"""Configuration: constants, the environment, and ``LogConfig`` (a log's validated settings).

The environment is read here and nowhere else (``GITHUB_TOKEN``,
``GITHUB_API_URL``), and so are the names every module shares: ``MiB``, the
default API URL, where a log's legacy single file lives.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_LOG_PATH",
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "MiB",
    "api_url_from_env",
    "check_api_url",
    "check_branch",
    "check_path",
    "check_positive",
    "check_repo",
    "legacy_path_for",
    "token_from_env",
]

MiB = 1024 * 1024

DEFAULT_API_URL = "https://api.github.com"

#: Where the service gitjsonl replaces kept its log (as ``data/interactions.jsonl``).
DEFAULT_LOG_PATH = "data/interactions"

#: 1 MiB: every segment stays readable through the Contents API.
DEFAULT_SEGMENT_BYTES = MiB

#: The largest record ``append`` accepts by default (uploaded base64, a third larger).
DEFAULT_MAX_RECORD_BYTES = 4 * MiB


def token_from_env() -> str | None:
    """``$GITHUB_TOKEN``, or None when it is unset or empty."""
    return os.environ.get("GITHUB_TOKEN") or None


def api_url_from_env() -> str:
    """``$GITHUB_API_URL`` (GitHub Enterprise), else GitHub's own API."""
    return os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL


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
            elif segment.lower().rstrip(". ") == ".git":
                problem = "it has a '.git' segment"
    if problem is not None:
        raise ValueError(f"{what} must be a path inside the repository, {problem}: {path!r}")
    return stripped


def check_branch(branch: object) -> str:
    """A branch name git accepts (``git check-ref-format --branch``); ``ValueError`` otherwise."""
    if not isinstance(branch, str):
        raise TypeError(f"branch must be a string, not {type(branch).__name__}")
    problem = None
    if not branch or branch == "@":
        problem = "it is empty or '@'"
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
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive, not {value!r}")


def check_api_url(url: object) -> str:
    """An ``http(s)://`` base URL without query or fragment, trailing ``/`` removed."""
    if not isinstance(url, str):
        raise TypeError(f"api_url must be a string, not {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"api_url must be an http(s) URL such as {DEFAULT_API_URL}, not {url!r}")
    if _CONTROL.search(url):
        raise ValueError("api_url holds a control character")
    return url.rstrip("/")
