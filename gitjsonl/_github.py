"""The one seam where gitjsonl talks to GitHub: PyGithub, configured deliberately.

Nothing else in the package imports ``github`` or ``requests``. Every method
here does exactly one HTTP request (``iter_commits`` one per page), returns
plain values, and translates everything PyGithub, requests and urllib3 raise
into the exceptions of ``_exceptions`` (``raise ... from exc``).

PyGithub is configured so that our retry policy is the only one:
``retry=0`` (its ``GithubRetry`` would sleep 60 s on a secondary limit and
raise ``requests.exceptions.RetryError``), no ``seconds_between_requests`` and
no ``seconds_between_writes`` (its fixed 1 s write throttle would cost >= 3 s
per commit; pacing is ours, in ``_pacing``), and ``lazy=True`` so that no
object we only need as a reference costs a request.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import github
import requests
from github import Auth, Github, GithubException, InputGitAuthor, InputGitTreeElement
from github.GitCommit import GitCommit
from github.GitRef import GitRef
from github.GitTree import GitTree

from ._config import DEFAULT_API_URL, Identity
from ._exceptions import (
    AuthenticationError,
    ContentsConflict,
    EmptyRepository,
    GitHubError,
    NotFastForward,
    NotFound,
    PermissionDenied,
    ProtectedBranch,
    RateLimited,
    RepositoryMoved,
    TransientError,
    ValidationFailed,
)

logger = logging.getLogger("gitjsonl")

__all__ = [
    "CommitInfo",
    "DirEntry",
    "Folder",
    "GitHubRepo",
    "RateBudget",
    "RepoInfo",
    "app_installation_auth",
    "credentials",
    "credentials_key",
    "git_blob_sha",
    "is_secondary_limit",
    "translate_error",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    tree_sha: str
    message: str
    parents: tuple[str, ...]
    date: str = ""  # the committer date, ISO 8601


@dataclass(frozen=True, slots=True)
class RepoInfo:
    """The repository as GitHub describes it to this token."""

    full_name: str
    default_branch: str
    private: bool
    can_push: bool | None  # None: GitHub did not say (an App installation token)


@dataclass(frozen=True, slots=True)
class RateBudget:
    """The primary rate limit left to a token, and the server's clock when it said so."""

    remaining: int
    limit: int
    server_time: float | None  # from the Date header, seconds since the epoch
    reset: float | None = None  # when the budget is full again, seconds since the epoch


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder read at one commit: that commit's root tree, and the folder's entries."""

    root_tree: str
    entries: list[DirEntry] | None  # None: no such folder


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str
    path: str
    sha: str
    size: int
    type: str  # "file" | "dir" | "symlink" | "submodule"


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value)
    return None


def _retry_after(headers: Any, now: float) -> float | None:
    """Seconds GitHub asked us to wait: ``retry-after``, else a spent primary limit's reset."""
    value = _header(headers, "retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - now)
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        if reset is not None and reset.isdigit():
            return max(0.0, int(reset) - now)
    return None


def _message(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or data)
    return str(data or "")


def translate_error(exc: BaseException, *, write: bool) -> GitHubError:
    """Map a PyGithub / requests exception to gitjsonl's class tree.

    ``write`` marks a request that changes something: a timeout or 5xx on one
    is *ambiguous* (it may have been carried out).
    """
    if isinstance(exc, GitHubError):
        return exc
    if isinstance(exc, GithubException):
        status, message = exc.status, _message(exc.data)
        lowered = message.lower()
        if status in (301, 302, 307, 308):
            location = _header(exc.headers, "location") or ""
            return RepositoryMoved(
                f"the repository has moved (GitHub answered {status}, see {location or 'no'} "
                "Location)",
                status=status,
                location=location,
            )
        if status == 401:
            return AuthenticationError(message or "Bad credentials", status=status)
        if status == 429 or (
            status == 403
            and (
                "rate limit" in lowered
                or "abuse" in lowered
                or isinstance(exc, github.RateLimitExceededException)
            )
        ):
            wait = _retry_after(exc.headers, time.time())
            return RateLimited(message or "rate limited", status=status, retry_after=wait)
        if any(text in lowered for text in PROTECTED):
            return ProtectedBranch(message, status=status)
        if status == 403:
            return PermissionDenied(message or "Forbidden", status=status)
        if status == 404:
            return NotFound(message or "Not Found", status=status)
        if status == 409:
            if "empty" in lowered:
                return EmptyRepository(message, status=status)
            return ContentsConflict(message, status=status)
        if status == 422:
            if "fast forward" in lowered:
                return NotFastForward(message, status=status)
            if any(text in lowered for text in TRANSIENT_422):
                # GitHub's own hiccups, reported as 422 (see TRANSIENT_422):
                # retried, and a ref update among them may have landed.
                return TransientError(message, status=status, ambiguous=write)
            return ValidationFailed(message, status=status)
        if status >= 500:
            return TransientError(message or "server error", status=status, ambiguous=write)
        return GitHubError(message or f"unexpected status {status}", status=status)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransientError(f"could not connect: {exc}", ambiguous=False)
    if isinstance(exc, (requests.exceptions.RequestException, ConnectionError, TimeoutError)):
        # Connection dropped, read timed out, broken chunked body: the request
        # may have been carried out before the answer was lost.
        return TransientError(f"no answer from GitHub: {exc}", ambiguous=write)
    return GitHubError(f"unexpected error talking to GitHub: {exc!r}")


#: 422 answers that are GitHub failing, not refusing: retried as transient errors.
#: "Reference cannot be updated" on a ref PATCH recurs for one Octokit user
#: (osunyorg/admin#104, #119, #1978, #2192: the same push succeeding later);
#: "Reference update failed", "Sorry, your request timed out" (tree creation)
#: and "base_tree is not a valid tree oid" (for a tree just made) are as
#: reported in gitjsonl's issue 10; recalled, not found in the issue corpus.
TRANSIENT_422 = (
    "reference update failed",
    "reference cannot be updated",
    "your request timed out",
    "is not a valid tree oid",
)


def credentials(token: str | None, auth: object | None) -> Auth.Auth | None:
    """PyGithub's credentials from ``token=`` or ``auth=`` (never both)."""
    if auth is not None:
        if token is not None:
            raise ValueError("give a Log token= or auth=, not both")
        if not isinstance(auth, Auth.Auth):
            raise TypeError(
                "auth must be a PyGithub credentials object, such as "
                f"github.Auth.AppAuth(...).get_installation_auth(...), not {type(auth).__name__}"
            )
        return auth
    return Auth.Token(token) if token else None


def credentials_key(api_url: str, token: str | None, auth: object | None) -> tuple[str, bool]:
    """A hash naming whose write budget a request spends, and whether other processes can
    name it the same way.

    GitHub's secondary limits are per token (per installation for a GitHub App,
    whose tokens change every hour). The key is a hash: the token itself is
    never kept. Credentials of a kind not recognised here are named by the
    object, so they are shared in this process only.
    """
    portable = True
    if isinstance(auth, Auth.AppInstallationAuth):
        who = f"app {auth.app_id} installation {auth.installation_id}"
    elif isinstance(auth, Auth.AppAuth):
        who = f"app {auth.app_id}"
    elif isinstance(auth, Auth.Token):
        who = f"token {auth.token}"
    elif isinstance(auth, Auth.Login):
        who = f"login {auth.login}"
    elif auth is not None:
        who, portable = f"{type(auth).__qualname__} {id(auth)}", False
    elif token:
        who = f"token {token}"
    else:
        who = "anonymous"
    digest = hashlib.sha256(f"{api_url.rstrip('/')}\n{who}".encode()).hexdigest()[:32]
    return digest, portable


def is_secondary_limit(error: RateLimited) -> bool:
    """Whether GitHub's rate-limit answer is a secondary limit (not the primary hourly one)."""
    lowered = error.message.lower()
    if "secondary" in lowered or "abuse" in lowered:
        return True
    return error.status == 429 and "api rate limit exceeded" not in lowered


def git_blob_sha(content: bytes) -> str:
    """The object id git (and so GitHub) gives a blob with ``content``."""
    digest = hashlib.sha1(b"blob %d\0" % len(content), usedforsecurity=False)
    digest.update(content)  # no copy of the content (hashlib releases the GIL on large data)
    return digest.hexdigest()


#: JSON's escapes for the bytes a JSON line may hold that a JSON string may not.
_JSON_ESCAPES = {b: f"\\u{b:04x}".encode() for b in range(0x20)}
_JSON_ESCAPES.update({0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r"})
_CONTROL_BYTES = re.compile(rb"[\x00-\x09\x0b-\x1f]")
_CONTROL_SET = bytes(b for b in range(0x20) if b != 0x0A)


def utf8_blob_body(content: bytes) -> bytes | None:
    """The JSON body of ``POST git/blobs`` carrying ``content`` as UTF-8 text.

    None when ``content`` is not valid UTF-8 (it then goes up as base64). The
    body is built with a few ``bytes.replace`` passes rather than ``json.dumps``,
    which would decode, escape and encode again: it is the largest piece of work
    the flusher does, and holding the GIL for it delays ``append()`` callers.
    """
    if not content.isascii():
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None
    text = content.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    # Never in a line gitjsonl wrote; possible in one it read. (translate is ten times
    # quicker than a regular expression's search over a megabyte.)
    if len(text.translate(None, _CONTROL_SET)) != len(text):
        text = _CONTROL_BYTES.sub(lambda m: _JSON_ESCAPES[m.group()[0]], text)
    return b'{"encoding":"utf-8","content":"' + text + b'"}'


def app_installation_auth(app_id: str, private_key: str, installation_id: int) -> Auth.Auth:
    """Credentials of a GitHub App's installation: tokens fetched and refreshed by PyGithub."""
    return Auth.AppAuth(app_id, private_key).get_installation_auth(installation_id)


def _refuse_redirects(requester: Any) -> None:
    """Make a redirect PyGithub does not follow an error, not an answer.

    PyGithub follows a 301 (GitHub's answer to a read of a moved repository)
    but hands a 307 (its answer to a write) back as if it were the result:
    a blob "created" with no sha, a ref "updated" that never moved. Every
    answer is checked here, the one place that sees its status.
    """
    send = requester.requestJson

    def checked(verb: str, url: str, *args: Any, **kwargs: Any) -> Any:
        status, headers, output = send(verb, url, *args, **kwargs)
        if 300 <= status < 400:
            raise GithubException(status, {"message": "Moved"}, headers)
        return status, headers, output

    requester.requestJson = checked


#: How GitHub refuses a write to a protected branch: classic branch protection
#: on the refs API (422 "Protected branch update failed for refs/heads/main.",
#: recalled: git push says "GH006: Protected branch update failed"), a ruleset
#: (422 "Repository rule violations found", satisfactory-factories/application#67;
#: "Cannot create ref due to creations being restricted."), and the Contents
#: API (409 "Could not create file: Changes must be made through a pull
#: request.", akhilmhdh/contributors-readme-action#28).
PROTECTED = (
    "protected branch update failed",
    "repository rule violations found",
    "creations being restricted",
    "changes must be made through a pull request",
)


class RedactSecrets(logging.Filter):
    """Blank out tokens, JWTs and private keys in PyGithub's log records.

    PyGithub masks the ``Authorization`` header it logs at DEBUG, but not the
    bodies: the answer to ``POST /app/installations/{id}/access_tokens``
    carries a fresh installation token. Installed on PyGithub's request
    logger when this module is imported; it only ever removes secrets.
    """

    _PATTERNS = (
        re.compile(r'("token"\s*:\s*")[^"]+(")'),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,})"),
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is not ours to fix
            return True
        redacted = message
        for pattern in self._PATTERNS:
            redacted = pattern.sub(
                lambda m: (
                    f"{m.group(1)}(secret removed){m.group(2)}"
                    if m.re.groups == 2
                    else "(secret removed)"
                ),
                redacted,
            )
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT = RedactSecrets()
for _name in ("github", "github.Requester", "github.GithubIntegration", "urllib3"):
    logging.getLogger(_name).addFilter(_REDACT)


_TREE_TYPES = {"blob": "file", "tree": "dir", "commit": "submodule"}


def _dir_entry(element: dict[str, Any], folder: str) -> DirEntry:
    name = str(element.get("path", ""))
    kind = _TREE_TYPES.get(str(element.get("type")), "file")
    if element.get("mode") == "120000":
        kind = "symlink"
    return DirEntry(
        name=name,
        path=f"{folder}/{name}" if folder else name,
        sha=str(element.get("sha", "")),
        size=int(element.get("size") or 0),
        type=kind,
    )


class GitHubRepo:
    """One repository, through PyGithub: one method, one request."""

    def __init__(
        self,
        full_name: str,
        *,
        token: str | None,
        auth: object | None = None,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        user_agent: str = "gitjsonl",
    ) -> None:
        self.full_name = full_name
        self.api_url = api_url.rstrip("/")
        self._gh = Github(
            auth=credentials(token, auth),
            base_url=self.api_url,
            timeout=int(timeout) or 1,
            user_agent=user_agent,
            retry=0,
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,
            per_page=100,
        )
        self._repo = self._gh.get_repo(full_name)
        self._info: RepoInfo | None = None
        self.writes = 0  # write requests sent (or tried), for the budget to count
        _refuse_redirects(self._repo.requester)

    def close(self) -> None:
        self._gh.close()

    def _call(self, fn: Callable[[], T], *, write: bool = False) -> T:
        try:
            return self._send(fn, write=write)
        except RepositoryMoved:
            # A 307 means the request was not carried out: follow and send it again once.
            if not self._follow_move():
                raise
            return self._send(fn, write=write)

    def _send(self, fn: Callable[[], T], *, write: bool) -> T:
        if write:
            self.writes += 1
        return self._translated(fn, write=write)

    @staticmethod
    def _translated(fn: Callable[[], T], *, write: bool) -> T:
        try:
            return fn()
        except (GithubException, requests.exceptions.RequestException, OSError) as exc:
            raise translate_error(exc, write=write) from exc

    def _follow_move(self) -> bool:
        """After a 307: find the repository's new name (GitHub redirects reads) and use it."""

        def get() -> str:
            repo = self._gh.get_repo(self.full_name)
            _ = repo.default_branch  # fetches it (GitHub redirects the old name to the new)
            name: str = repo.full_name
            return name

        new_name = self._translated(get, write=False)
        if not new_name or new_name == self.full_name:
            return False
        logger.warning(
            "gitjsonl: repository %s has moved to %s; following it (update repo= to stop "
            "this warning)",
            self.full_name,
            new_name,
        )
        self.full_name = new_name
        self._repo = self._gh.get_repo(new_name)
        self._info = None
        return True

    # -- reads ---------------------------------------------------------------

    def default_branch(self) -> str:
        return self.repository().default_branch

    def repository(self, *, fresh: bool = False) -> RepoInfo:
        """What GitHub says of the repository: one request, remembered unless ``fresh``."""
        if self._info is not None and not fresh:
            return self._info

        def get() -> RepoInfo:
            repo = self._gh.get_repo(self.full_name)
            default_branch = repo.default_branch  # fetches it (lazy until now), once
            permissions = repo.permissions
            return RepoInfo(
                full_name=repo.full_name,
                default_branch=default_branch,
                private=bool(repo.private),
                can_push=None if permissions is None else bool(permissions.push),
            )

        self._info = self._call(get)
        return self._info

    def branch_protected(self, branch: str) -> bool:
        """Whether GitHub reports ``branch`` as protected (``NotFound`` when it does not exist)."""

        def get() -> bool:
            url = f"{self._repo.url}/branches/{urllib.parse.quote(branch)}"
            _headers, data = self._repo.requester.requestJsonAndCheck("GET", url)
            return bool(isinstance(data, dict) and data.get("protected"))

        return self._call(get)

    def rate_limit(self) -> RateBudget:
        """The token's primary rate-limit budget, and the server's clock (``GET /rate_limit``)."""

        def get() -> RateBudget:
            url = f"{self.api_url}/rate_limit"
            headers, data = self._repo.requester.requestJsonAndCheck("GET", url)
            core = data.get("resources", {}).get("core", {}) if isinstance(data, dict) else {}
            date = _header(headers, "date")
            server_time = None
            if date:
                with contextlib.suppress(TypeError, ValueError):
                    server_time = email.utils.parsedate_to_datetime(date).timestamp()
            return RateBudget(
                remaining=int(core.get("remaining", 0)),
                limit=int(core.get("limit", 0)),
                server_time=server_time,
                reset=float(core["reset"]) if isinstance(core.get("reset"), int) else None,
            )

        return self._call(get)

    def get_head(self, branch: str) -> str:
        """The commit sha the branch points at (``NotFound`` when it does not exist)."""

        def get() -> str:
            sha: str = self._repo.get_git_ref(f"heads/{branch}").object.sha
            return sha

        return self._call(get)

    def get_commit(self, sha: str) -> CommitInfo:
        def get() -> CommitInfo:
            commit = self._repo.get_git_commit(sha)
            return _commit_info(commit.sha, commit, commit.parents)

        return self._call(get)

    def list_dir(self, path: str, ref: str) -> list[DirEntry] | None:
        """The entries of a folder at commit (or tree) ``ref``; ``None`` when there is none."""
        return self.read_folder(ref, path).entries

    def read_folder(self, ref: str, path: str) -> Folder:
        """The root tree of commit ``ref`` and the entries of folder ``path`` in it.

        Through the Git Trees API, one request per folder level: it lists every
        entry of a folder, where the Contents API stops at 1,000 entries,
        silently ("Get repository content" in GitHub's REST docs: "use the Git
        Trees API" beyond that). Reads by sha are never stale.
        """
        root = self._get_tree(ref)
        node: dict[str, Any] | None = root
        folder = ""
        for part in [p for p in path.strip("/").split("/") if p]:
            assert node is not None
            match = next(
                (e for e in node.get("tree", []) if e.get("path") == part),
                None,
            )
            if match is None or match.get("type") != "tree":
                return Folder(str(root["sha"]), None)
            folder = f"{folder}/{part}" if folder else part
            node = self._get_tree(str(match["sha"]))
        assert node is not None
        entries = [_dir_entry(e, folder) for e in node.get("tree", [])]
        return Folder(str(root["sha"]), entries)

    def _get_tree(self, ref: str) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            url = f"{self._repo.url}/git/trees/{urllib.parse.quote(ref, safe='')}"
            _headers, data = self._repo.requester.requestJsonAndCheck("GET", url)
            if not isinstance(data, dict) or not isinstance(data.get("sha"), str):
                raise GitHubError(f"unexpected answer listing tree {ref}")
            if data.get("truncated"):
                # Only a tree of more than 100,000 entries (or 7 MB) is cut.
                raise GitHubError(f"GitHub truncated the listing of tree {ref}")
            return data

        return self._call(get)

    def get_blob(self, sha: str) -> bytes:
        def get() -> bytes:
            blob = self._repo.get_git_blob(sha)
            return base64.b64decode(blob.content)

        return self._call(get)

    def iter_commits(self, sha: str, path: str | None = None) -> Iterator[CommitInfo]:
        """Commits reachable from ``sha``, newest first, one page per request."""
        kwargs: dict[str, Any] = {"sha": sha}
        if path is not None:
            kwargs["path"] = path
        pages = self._call(lambda: iter(self._repo.get_commits(**kwargs)))

        def next_commit() -> CommitInfo | None:
            commit = next(pages, None)
            if commit is None:
                return None
            # Attributes the list response carries; `raw_data` would fetch each commit again.
            return _commit_info(commit.sha, commit.commit, commit.parents)

        while (info := self._call(next_commit)) is not None:
            yield info

    # -- writes --------------------------------------------------------------

    def create_blob(self, content: bytes) -> str:
        """Upload a blob; the sha GitHub names it by (the caller checks it against git's).

        JSON lines go up as UTF-8 text, about the size of the segment; base64
        (a third larger) only for content that is not valid UTF-8, or when
        GitHub's sha for the text differs from git's for the bytes.
        """
        body = utf8_blob_body(content)
        if body is not None:
            sha = self._call(lambda: self._post_blob(body), write=True)
            if sha == git_blob_sha(content):
                return sha
            logger.info("gitjsonl: blob uploaded as UTF-8 was named %s; sending it as base64", sha)

        def create() -> str:
            encoded = base64.b64encode(content).decode("ascii")
            sha: str = self._repo.create_git_blob(encoded, "base64").sha
            return sha

        return self._call(create, write=True)

    def _post_blob(self, body: bytes) -> str:
        """``POST git/blobs`` with a body built by ``utf8_blob_body`` (PyGithub would
        escape every non-ASCII character as six bytes)."""
        headers = {"Content-Type": "application/json; charset=utf-8"}
        # The body goes to requests as it is: bytes (a file object would be streamed,
        # and could not be sent again after a redirect).
        answer_headers, data = self._repo.requester.requestMemoryBlobAndCheck(
            "POST", f"{self._repo.url}/git/blobs", None, headers, cast("Any", body)
        )
        if isinstance(data, dict) and isinstance(data.get("sha"), str):
            return str(data["sha"])
        if _header(answer_headers, "location"):
            # A redirect this request path does not refuse by itself (see _refuse_redirects).
            raise GithubException(307, {"message": "Moved"}, answer_headers)
        raise GitHubError(f"unexpected answer creating a blob: {str(data)[:200]}")

    def create_tree(self, base_tree: str | None, files: dict[str, str | None]) -> str:
        """A tree: ``base_tree`` with each path set to a blob sha (``None`` deletes it)."""

        def create() -> str:
            elements = [
                InputGitTreeElement(path, "100644", "blob", sha=sha) for path, sha in files.items()
            ]
            if base_tree is None:
                tree = self._repo.create_git_tree(elements)
            else:
                tree = self._repo.create_git_tree(elements, base_tree=self._lazy_tree(base_tree))
            sha: str = tree.sha
            return sha

        return self._call(create, write=True)

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
            kwargs: dict[str, Any] = {}
            if author is not None:
                kwargs["author"] = _input_author(author)
            if committer is not None:
                kwargs["committer"] = _input_author(committer)
            commit = self._repo.create_git_commit(
                message,
                self._lazy_tree(tree),
                [self._lazy_commit(p) for p in parents],
                **kwargs,
            )
            sha: str = commit.sha
            return sha

        return self._call(create, write=True)

    def update_ref(self, branch: str, sha: str) -> None:
        """Move ``branch`` to ``sha`` if that is a fast-forward (``force`` is never sent true)."""
        self._call(lambda: self._lazy_ref(branch).edit(sha, force=False), write=True)

    def create_ref(self, branch: str, sha: str) -> None:
        self._call(lambda: self._repo.create_git_ref(f"refs/heads/{branch}", sha), write=True)

    def put_file(self, path: str, message: str, content: bytes, *, branch: str | None) -> str:
        """Create a file through the Contents API (works on an empty repository); its commit."""

        def put() -> str:
            kwargs: dict[str, Any] = {}
            if branch is not None:
                kwargs["branch"] = branch
            result = self._repo.create_file(path, message, content, **kwargs)
            commit = result["commit"]
            sha: str = commit.sha
            return sha

        return self._call(put, write=True)

    # -- lazy references: never a request --------------------------------------

    def _lazy_tree(self, sha: str) -> GitTree:
        return GitTree(
            self._repo.requester,
            url=f"{self._repo.url}/git/trees/{sha}",
            attributes={"sha": sha},
            completed=False,
        )

    def _lazy_ref(self, branch: str) -> GitRef:
        # Repository.get_git_ref() builds the URL of the GET endpoint (git/ref/...);
        # PATCH lives at git/refs/... (what a fetched ref's own `url` says).
        return GitRef(
            self._repo.requester,
            # Encoded once, like every user value in a URL: "main#x" is not "main".
            url=f"{self._repo.url}/git/refs/heads/{urllib.parse.quote(branch)}",
            attributes={"ref": f"refs/heads/{branch}"},
            completed=False,
        )

    def _lazy_commit(self, sha: str) -> GitCommit:
        return GitCommit(
            self._repo.requester,
            url=f"{self._repo.url}/git/commits/{sha}",
            attributes={"sha": sha},
            completed=False,
        )


def _commit_info(sha: str, commit: Any, parents: Any) -> CommitInfo:
    """A ``CommitInfo`` from a PyGithub git commit (and the parents it lists)."""
    return CommitInfo(
        sha=sha,
        tree_sha=commit.tree.sha,
        message=commit.message,
        parents=tuple(parent.sha for parent in parents),
        date=commit.committer.date.isoformat() if commit.committer else "",
    )


def _input_author(identity: Identity) -> InputGitAuthor:
    if identity.date is None:
        return InputGitAuthor(identity.name, identity.email)
    return InputGitAuthor(identity.name, identity.email, identity.date)
