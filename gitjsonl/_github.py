"""The one seam where gitjsonl talks to GitHub: PyGithub, configured deliberately.

Nothing else in the package imports ``github`` or ``requests`` (but this
module's two helpers: ``_http``, the transport under PyGithub, and
``_answers``, the checks of what GitHub answers). Every method here does
exactly one HTTP request (``iter_commits`` one per page), returns plain
values, and translates everything PyGithub, requests and urllib3 raise into
the exceptions of ``_exceptions`` (``raise ... from exc``).

Every answer is distrusted where it enters: a call's requests share one
deadline (``timeout``) and each answer a size cap (``_http``); no request
leaves the API's host, whatever a redirect or a ``Link`` says (``_http``);
each field used is checked (``_answers``), a bad one is ``MalformedAnswer``;
what a server says is scrubbed of credentials and cut short (``_redact``)
before it is put in an exception.

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
import datetime
import email.utils
import hashlib
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import github
import requests
from github import Auth, Github, GithubException, InputGitAuthor, InputGitTreeElement
from github.GitCommit import GitCommit
from github.GitRef import GitRef
from github.GitTree import GitTree

from . import _answers as answers
from . import _http
from ._answers import MALFORMED as _MALFORMED
from ._answers import malformed_answer
from ._answers import shown_cause as _shown_cause
from ._config import DEFAULT_API_URL, Identity, check_api_url, check_branch, check_repo
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
from ._redact import redact, remember_secret, server_text

logger = logging.getLogger(__name__)

__all__ = [
    "GRAPHQL_BLOBS_PER_QUERY",
    "GRAPHQL_TEXT_LIMIT",
    "CommitInfo",
    "CreatedTree",
    "Credentials",
    "DirEntry",
    "Folder",
    "GitHubRepo",
    "Head",
    "RateBudget",
    "RepoInfo",
    "app_installation_auth",
    "credentials",
    "git_blob_sha",
    "is_secondary_limit",
    "json_text",
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
class Head:
    """A branch's head, and the validators GitHub sent with it (for a conditional re-read)."""

    sha: str
    etag: str | None = None
    last_modified: str | None = None


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
    # The entries of each tree above the folder, root first (``()`` for one that does
    # not exist): what a writer needs to compute the trees its batch makes.
    levels: tuple[tuple[DirEntry, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str
    path: str
    sha: str
    size: int
    type: str  # "file" | "dir" | "symlink" | "submodule"
    mode: str = "100644"  # as the Trees API writes it: "100644", "100755", "040000", ...


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value)
    return None


def _server_time(headers: Any) -> float | None:
    """The server's clock from its ``Date`` header, seconds since the epoch (None: unsaid)."""
    date = _header(headers, "date")
    if date:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            return email.utils.parsedate_to_datetime(date).timestamp()
    return None


def _commit_date(value: Any) -> float | None:
    """A listed commit's committer date (ISO 8601) in seconds since the epoch; None for a
    value that is not one (judged, not obeyed, by the budget)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


#: Commits a page of the commits listing holds (GitHub's most).
COMMITS_PAGE = 100


def _retry_after(headers: Any, now: float) -> float | None:
    """Seconds GitHub asked us to wait: ``retry-after``, else a spent primary limit's reset."""
    value = _header(headers, "retry-after")
    seconds = None if value is None else answers.retry_after_seconds(value, now)
    if seconds is not None:
        return seconds  # an unreadable one (``_http`` drops it) is as if not sent
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        if reset is not None and reset.isascii() and reset.isdigit():
            return max(0.0, int(reset) - now)
    return None


def _message(data: Any) -> str:
    """What GitHub said in an error's body: scrubbed and cut (it may echo the token)."""
    if isinstance(data, dict):
        return server_text(data.get("message") or data)
    return server_text(data or "")


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
        if status in _http.REDIRECTS:
            location = server_text(_header(exc.headers, "location") or "", 200)
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
        # Only the kinds that hold a fixed secret: an App installation's `token` is a
        # property that fetches one (its tokens have the ghs_ shape redact knows).
        if isinstance(auth, Auth.Token):
            remember_secret(auth.token)
        elif isinstance(auth, Auth.Login):
            remember_secret(auth.password)
        return auth
    remember_secret(token)
    return Auth.Token(token) if token else None


@dataclass(frozen=True)
class Credentials:
    """Who gitjsonl sends requests as: the API's URL, the credentials, and their key.

    Made once per ``Log`` (or command) and handed to everything that needs to
    know whose requests these are: ``GitHubRepo`` sends with them, the budget
    and the turns are found by ``key``. ``key`` is a hash of the URL and the
    credentials, never the token: it names the host ledger's files and the
    coordinator's keys. ``portable``: another process names the same
    credentials with the same key. GitHub's secondary limits are per token (per
    installation for a GitHub App, whose tokens change every hour); credentials
    of a kind not recognised here are named by the object, in this process only.

    Checked here, once: ``api_url`` (``check_api_url``: no clear-text token to
    a host that is not loopback, unless ``allow_insecure_http``), and
    ``token=`` or ``auth=``, not both. Two values are equal when their keys are.
    """

    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False, compare=False)
    auth: object | None = field(default=None, repr=False, compare=False)
    allow_insecure_http: bool = field(default=False, repr=False, compare=False)
    key: str = field(init=False)
    portable: bool = field(init=False, repr=False)
    github_auth: Auth.Auth | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        url = check_api_url(self.api_url, allow_insecure_http=self.allow_insecure_http)
        given = credentials(self.token, self.auth)
        portable = True
        if isinstance(given, Auth.AppInstallationAuth):
            who = f"app {given.app_id} installation {given.installation_id}"
        elif isinstance(given, Auth.AppAuth):
            who = f"app {given.app_id}"
        elif isinstance(given, Auth.Token):
            who = f"token {given.token}"
        elif isinstance(given, Auth.Login):
            who = f"login {given.login}"
        elif given is not None:
            who, portable = f"{type(given).__qualname__} {id(given)}", False
        else:
            who = "anonymous"
        key = hashlib.sha256(f"{url}\n{who}".encode()).hexdigest()[:32]
        for name, value in (("api_url", url), ("github_auth", given)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "portable", portable)

    @property
    def installation(self) -> bool:
        """A GitHub App's installation token (``ghs_``), or the App's installation auth."""
        return isinstance(self.github_auth, Auth.AppInstallationAuth) or (
            self.token is not None and self.token.startswith("ghs_")
        )


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

    None when ``content`` is not valid UTF-8 (it then goes up as base64).
    """
    text = json_text(content)
    if text is None:
        return None
    return b'{"encoding":"utf-8","content":' + text + b"}"


def json_text(content: bytes) -> bytes | None:
    """``content`` as a JSON string (quotes included), or None when it is not valid UTF-8.

    Built with a few ``bytes.replace`` passes rather than ``json.dumps``, which
    would decode, escape and encode again: it is the largest piece of work the
    flusher does, and holding the GIL for it delays ``append()`` callers.
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
    return b'"' + text + b'"'


@dataclass(frozen=True, slots=True)
class CreatedTree:
    """GitHub's answer to ``POST git/trees``: the tree's sha and its top-level entries."""

    sha: str
    entries: tuple[DirEntry, ...]
    truncated: bool


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
        if status in _http.REDIRECTS:  # not 304: a conditional GET's answer
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

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is not ours to fix
            return True
        redacted = redact(message)  # the one home of what a secret looks like
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
        mode=str(element.get("mode", "")),
    )


#: GitHub cuts ``Blob.text`` at exactly 512,000 bytes and says so in ``isTruncated``
#: (sveltia/sveltia-cms#950; orbiting/backends#116: "the exact limit is not documented"):
#: a file that size or larger is read through the REST blob API.
GRAPHQL_TEXT_LIMIT = 512_000
#: Blob lookups in one GraphQL query: a client fetched 250 files a request
#: (sveltia-cms#950); fewer here, and a byte budget too (see ``_reader``), because an
#: answer that is too large is an error, at a size GitHub does not document
#: (conwnet/github1s#105).
GRAPHQL_BLOBS_PER_QUERY = 100


def graphql_blobs_query(full_name: str, shas: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The GraphQL query reading blobs ``shas`` of ``full_name``, and its aliases' shas.

    ``object(oid:)`` names a blob exactly (no branch, so no read lag); an inline
    fragment on ``Blob`` asks its text, whether it was cut short, and its size.
    """
    aliases = {f"f{index}": answers.sha(sha, "blob sha") for index, sha in enumerate(shas)}
    owner, name = full_name.split("/", 1)
    lookups = " ".join(
        f'{alias}: object(oid: "{sha}") {{ ... on Blob {{ text isTruncated byteSize }} }}'
        for alias, sha in aliases.items()
    )
    where = f"owner: {json.dumps(owner)}, name: {json.dumps(name)}"
    return f"query {{ repository({where}) {{ {lookups} }} }}", aliases


class GitHubRepo:
    """One repository, through PyGithub: one method, one request."""

    def __init__(
        self,
        full_name: str,
        credentials: Credentials,
        *,
        timeout: float = 30.0,
        user_agent: str = "gitjsonl",
    ) -> None:
        if not isinstance(credentials, Credentials):  # its checks are what let a token go out
            raise TypeError(f"credentials must be Credentials, not {type(credentials).__name__}")
        self.full_name = full_name
        self.credentials = credentials
        self.api_url = credentials.api_url
        self._timeout = float(timeout)
        given = credentials.github_auth
        # What GitHub says of `permissions` is about a user: to a GitHub App's
        # installation token it says nothing, or all false (a github3.py recording of
        # 2021, tests/github3py_cassettes/CheckApp_create_check_run.json), though the
        # installation may push. Such an answer is "did not say", never "may not push".
        self._installation = credentials.installation
        self._gh = Github(
            auth=given,
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
        # Each call's requests within `timeout` in all, each answer within its cap,
        # every request on the API's host (see _http).
        _http.install(self._repo.requester, api_url=self.api_url, timeout=self._timeout)
        # A GitHub App's installation tokens are fetched through a requester of its own.
        integration = getattr(given, "_AppInstallationAuth__integration", None)
        fetcher = getattr(integration, "_GithubIntegration__requester", None)
        if fetcher is not None:
            _http.install(fetcher, api_url=self.api_url, timeout=self._timeout)

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

    def _translated(self, fn: Callable[[], T], *, write: bool) -> T:
        try:
            with _http.deadline(self._timeout):
                return fn()
        except (GithubException, requests.exceptions.RequestException, OSError) as exc:
            raise translate_error(exc, write=write) from _shown_cause(exc)
        except _MALFORMED as exc:
            raise malformed_answer(exc, write=write) from _shown_cause(exc)

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
            _ = repo.default_branch  # fetches it (lazy until now), once
            data = answers.mapping(repo.raw_data, "the repository")
            permissions = data.get("permissions")
            push = None
            if permissions is not None and not self._installation:
                push = answers.flag(answers.mapping(permissions, "permissions").get("push"), "push")
            return RepoInfo(
                full_name=_checked(check_repo, data.get("full_name"), "full_name"),
                default_branch=_checked(check_branch, data.get("default_branch"), "default_branch"),
                private=answers.flag(data.get("private"), "private"),
                can_push=push,
            )

        try:
            self._info = self._call(get)
        except NotFound as exc:
            raise NotFound(
                f"repository {self.full_name} not found at {self.api_url} (GitHub answered "
                f"{exc.status}): check its name for a typo; a private repository also reads "
                "as missing to a token that cannot see it (a fine-grained token must be "
                "granted that repository, a classic one needs the repo scope)",
                status=exc.status,
            ) from exc
        return self._info

    def branch_protected(self, branch: str) -> bool:
        """Whether GitHub reports ``branch`` as protected (``NotFound`` when it does not exist)."""

        def get() -> bool:
            url = f"{self._repo.url}/branches/{urllib.parse.quote(branch)}"
            _headers, data = self._repo.requester.requestJsonAndCheck("GET", url)
            protected = answers.mapping(data, f"branch {branch}").get("protected", False)
            return answers.flag(protected, f"branch {branch}: protected")

        return self._call(get)

    def rate_limit(self) -> RateBudget:
        """The token's primary rate-limit budget, and the server's clock (``GET /rate_limit``)."""

        def get() -> RateBudget:
            url = f"{self.api_url}/rate_limit"
            headers, data = self._repo.requester.requestJsonAndCheck("GET", url)
            resources = answers.mapping(data, "rate_limit").get("resources", {})
            core = answers.mapping(answers.mapping(resources, "resources").get("core", {}), "core")
            return RateBudget(
                remaining=answers.count(core.get("remaining", 0), "core.remaining"),
                limit=answers.count(core.get("limit", 0), "core.limit"),
                server_time=_server_time(headers),
                reset=float(core["reset"]) if isinstance(core.get("reset"), int) else None,
            )

        return self._call(get)

    def get_head(self, branch: str) -> str:
        """The commit sha the branch points at (``NotFound`` when it does not exist)."""

        def get() -> str:
            ref = self._repo.get_git_ref(f"heads/{branch}")
            return answers.sha(answers.pick(ref, "object.sha", f"branch {branch}"), "object.sha")

        return self._call(get)

    def get_commit(self, sha: str) -> CommitInfo:
        def get() -> CommitInfo:
            commit = self._repo.get_git_commit(sha)
            named = answers.pick(commit, "sha", f"commit {sha}")
            return _commit_info(named, commit, commit.parents)

        return self._call(get)

    def list_dir(self, path: str, ref: str) -> list[DirEntry] | None:
        """The entries of a folder at commit (or tree) ``ref``; ``None`` when there is none."""
        return self.read_folder(ref, path).entries

    def folder_at(self, ref: str, path: str) -> list[DirEntry] | None:
        """The entries of folder ``path`` at ``ref`` in one request, or ``None`` when that
        request cannot tell (then ``list_dir`` asks level by level).

        GitHub's Trees API resolves any tree-ish, ``<commit-ish>:<path>``
        included (scripting/Scripting-News#94: ``git/trees/HEAD:blog/days``;
        gogs/docs-api#29), which is undocumented: a 404 or 422 here may mean a
        missing folder or branch, or a server that does not take the form, so
        it is never taken for an answer.
        """
        target = (
            f"{urllib.parse.quote(ref, safe='')}:{urllib.parse.quote(path.strip('/'), safe='/')}"
        )
        try:
            data = self._get_tree(target)
        except (NotFound, ValidationFailed):
            return None
        return [_dir_entry(e, path.strip("/")) for e in data.get("tree", [])]

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
        levels: list[tuple[DirEntry, ...]] = []
        for part in [p for p in path.strip("/").split("/") if p]:
            assert node is not None
            levels.append(tuple(_dir_entry(e, folder) for e in node.get("tree", [])))
            match = next(
                (e for e in node.get("tree", []) if e.get("path") == part),
                None,
            )
            if match is None or match.get("type") != "tree":
                if match is None:
                    levels += [()] * (len([p for p in path.split("/") if p]) - len(levels))
                return Folder(str(root["sha"]), None, tuple(levels))
            folder = f"{folder}/{part}" if folder else part
            node = self._get_tree(str(match["sha"]))
        assert node is not None
        entries = [_dir_entry(e, folder) for e in node.get("tree", [])]
        return Folder(str(root["sha"]), entries, tuple(levels))

    def _get_tree(self, ref: str) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            # A tree-ish "<ref>:<path>" comes quoted by folder_at; anything else is quoted here.
            quoted = ref if ":" in ref else urllib.parse.quote(ref, safe="")
            url = f"{self._repo.url}/git/trees/{quoted}"
            _headers, data = self._repo.requester.requestJsonAndCheck("GET", url)
            # Every field of every entry, and the entries themselves: a listing without
            # them is not an empty folder (issue 19: a writer built on one would start
            # 00000001.jsonl again over the real one).
            data = answers.tree_listing(data, ref)
            if data.get("truncated"):
                # Only a tree of more than 100,000 entries (or 7 MB) is cut.
                raise GitHubError(f"GitHub truncated the listing of tree {ref}")
            return data

        return self._call(get)

    def tree_entries(self, sha: str, folder: str) -> tuple[DirEntry, ...]:
        """The entries of tree ``sha`` (one request), named as inside ``folder``."""
        return tuple(_dir_entry(e, folder) for e in self._get_tree(sha).get("tree", []))

    def get_blob(self, sha: str) -> bytes:
        def get() -> bytes:
            blob = self._repo.get_git_blob(sha)
            data = answers.mapping(blob.raw_data, f"blob {sha}")
            return answers.blob_content(
                data.get("content"), data.get("encoding"), data.get("size"), sha
            )

        return self._call(get)

    @property
    def graphql_possible(self) -> bool:
        """Whether these credentials may ask GraphQL at all (it has no anonymous access)."""
        return self.credentials.github_auth is not None

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Blobs by sha in one GraphQL request: those whose text came back whole and is
        that blob (git's hash of its UTF-8 bytes), by sha.

        Any other (cut short, binary, missing, another blob's bytes) is left out, for
        the caller to read through REST (``get_blob``). A GraphQL failure is an error as
        from any request: GitHub answers a query's errors as ``200 {"errors": [...]}``,
        which PyGithub's ``graphql_query`` raises (a 400, or a 404 for ``NOT_FOUND``).
        GraphQL lives at ``/graphql`` beside the REST API, ``/api/graphql`` beside
        GitHub Enterprise's ``/api/v3`` (PyGithub's ``Requester.graphql_url``), and
        counts against a rate limit of its own (``x-ratelimit-resource: graphql``).
        """
        if not 0 < len(shas) <= GRAPHQL_BLOBS_PER_QUERY:
            raise ValueError(f"read 1 to {GRAPHQL_BLOBS_PER_QUERY} blobs a query, not {len(shas)}")
        query, aliases = graphql_blobs_query(self.full_name, shas)

        def get() -> dict[str, str]:
            _headers, data = self._repo.requester.graphql_query(query, {})
            return answers.graphql_blob_texts(data, aliases, max_chars=GRAPHQL_TEXT_LIMIT)

        blobs: dict[str, bytes] = {}
        for sha, text in self._call(get).items():
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate (an escape in the JSON): not a blob
                continue
            if git_blob_sha(data) == sha:
                blobs[sha] = data
        return blobs

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
            git_commit = answers.pick(commit, "commit", "a page of commits")
            return _commit_info(commit.sha, git_commit, commit.parents)

        while (info := self._call(next_commit)) is not None:
            yield info

    def recent_commits(
        self, branch: str, *, since: float, pages: int = 1
    ) -> tuple[list[tuple[str, float]], float | None]:
        """The commits on ``branch`` committed since ``since`` (seconds since the epoch),
        newest first, as ``(message, committer date)``; and the server's clock (``Date``).

        ``GET commits?sha=&since=&per_page=100``: one request a page, ``pages`` at
        most, the next only when a page is full. A row whose date is not one is left
        out; the rest is the budget's to judge (``_pacing.restored``).
        """
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(0.0, since)))
        found: list[tuple[str, float]] = []
        server_time: float | None = None
        for page in range(1, pages + 1):

            def get(page: int = page) -> tuple[float | None, list[tuple[str, float]], int]:
                parameters = {"sha": branch, "since": stamp, "per_page": COMMITS_PAGE}
                if page > 1:
                    parameters["page"] = page
                url = f"{self._repo.url}/commits"
                headers, data = self._repo.requester.requestJsonAndCheck(
                    "GET", url, parameters=parameters
                )
                rows = answers.items(data, "a page of commits")
                listed: list[tuple[str, float]] = []
                for row in rows:
                    commit = answers.mapping(
                        answers.mapping(row, "a listed commit").get("commit"), "commit"
                    )
                    committer = commit.get("committer")
                    date = _commit_date(
                        committer.get("date") if isinstance(committer, dict) else None
                    )
                    message = commit.get("message")
                    if date is not None and isinstance(message, str):
                        listed.append((message, date))
                return _server_time(headers), listed, len(rows)

            clock, listed, count = self._call(get)
            server_time = clock if server_time is None else server_time
            found.extend(listed)
            if count < COMMITS_PAGE:
                break
        return found, server_time

    def read_head(self, branch: str, known: Head | None = None) -> Head:
        """The branch's head; given ``known``, a conditional request that costs no rate limit
        while the head has not moved.

        PyGithub's own conditional re-read (``GithubObject.update()``) sends
        ``known``'s ETag as ``If-None-Match`` (and its Last-Modified as
        ``If-Modified-Since``); GitHub answers 304, with no body, when the ref
        is as it was, and "making a conditional request does not count against
        your primary rate limit if a 304 response is returned" (GitHub's REST
        docs, best practices for using the REST API). ``known`` comes back
        then; otherwise the new head and its validators (``NotFound`` when the
        branch does not exist).
        """

        def get() -> Head:
            headers: dict[str, str | int] = {}
            if known is not None and known.etag:
                headers["etag"] = known.etag
            if known is not None and known.last_modified:
                headers["last-modified"] = known.last_modified
            url = f"{self._repo.url}/git/ref/heads/{urllib.parse.quote(branch)}"
            ref = GitRef(self._repo.requester, headers, {"url": url}, completed=False)
            try:
                changed = ref.update()
            except (GithubException, GitHubError) as exc:
                # _refuse_redirects makes every 3xx an error, this 304 included.
                if getattr(exc, "status", None) != 304:
                    raise
                changed = False
            if not changed and known is not None:
                return known
            sha = getattr(ref.object, "sha", None) if changed else None
            if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
                raise GitHubError(f"unexpected answer reading the head of branch {branch}")
            return Head(sha, ref.etag, ref.last_modified)

        return self._call(get)

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
            blob = self._repo.create_git_blob(encoded, "base64")
            return answers.sha(answers.pick(blob, "sha", "POST git/blobs"), "blob sha")

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
        del answer_headers  # a redirect never gets here: _http refuses it, with its status
        return answers.sha(answers.mapping(data, "POST git/blobs").get("sha"), "blob sha")

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
            return answers.sha(answers.pick(tree, "sha", "POST git/trees"), "tree sha")

        return self._call(create, write=True)

    def post_tree(
        self,
        base_tree: str,
        *,
        texts: dict[str, bytes],
        blobs: dict[str, str],
        deletes: list[str],
    ) -> CreatedTree:
        """A tree: ``base_tree`` with files set to ``texts`` (written inline, as UTF-8 text:
        GitHub writes each blob itself), to blob shas (``blobs``), and ``deletes`` removed.

        The body is built here: PyGithub would escape every non-ASCII character as
        six bytes, and cannot send the ``"sha": null`` that deletes a path. Every
        path in ``deletes`` must exist in ``base_tree``: GitHub refuses the
        deletion of an absent path (422, see ``testing/_api.py``).
        """
        parts = []
        for path, content in texts.items():
            text = json_text(content)
            if text is None:
                raise ValueError(f"{path}: not UTF-8 text; upload it as a blob")
            parts.append(_tree_entry(path) + b',"content":' + text + b"}")
        parts += [_tree_entry(path) + f',"sha":"{sha}"}}'.encode() for path, sha in blobs.items()]
        parts += [_tree_entry(path) + b',"sha":null}' for path in deletes]
        body = f'{{"base_tree":{json.dumps(base_tree)},"tree":['.encode() + b",".join(parts) + b"]}"

        def create() -> CreatedTree:
            headers = {"Content-Type": "application/json; charset=utf-8"}
            answer_headers, data = self._repo.requester.requestMemoryBlobAndCheck(
                "POST", f"{self._repo.url}/git/trees", None, headers, cast("Any", body)
            )
            created = isinstance(data, dict) and ("sha" in data or "tree" in data)
            if not created and _header(answer_headers, "location"):
                # A redirect this request path does not refuse by itself (see _post_blob);
                # a 201's Location with a body lacking its sha is a malformed answer.
                raise GithubException(307, {"message": "Moved"}, answer_headers)
            return _created_tree(data)

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
            # Counted as committed only if it is the commit we asked for (issue 19).
            said = (commit.raw_data.get("tree"), commit.raw_data.get("parents"))
            got_tree = said[0].get("sha") if isinstance(said[0], dict) else None
            got_parents = (
                [p.get("sha") if isinstance(p, dict) else None for p in said[1]]
                if isinstance(said[1], list)
                else None
            )
            if not (isinstance(sha, str) and _SHA.match(sha)) or (
                got_tree != tree or got_parents != parents
            ):
                raise GitHubError(
                    f"GitHub answered the commit of tree {tree[:12]} on "
                    f"{', '.join(p[:12] for p in parents) or 'no parent'} with commit "
                    f"{str(sha)[:12]} of tree {str(got_tree)[:12]} on {got_parents!r:.100}: "
                    "not the commit asked for"
                )
            return sha

        return self._call(lambda: answers.sha(create(), "POST git/commits: sha"), write=True)

    def update_ref(self, branch: str, sha: str) -> None:
        """Move ``branch`` to ``sha`` if that is a fast-forward (``force`` is never sent true)."""

        def update() -> None:
            url = f"{self._repo.url}/git/refs/heads/{urllib.parse.quote(branch)}"
            _headers, data = self._repo.requester.requestJsonAndCheck(
                "PATCH", url, input={"sha": sha, "force": False}
            )
            obj = data.get("object") if isinstance(data, dict) else None
            moved_to = obj.get("sha") if isinstance(obj, dict) else None
            if moved_to != sha:
                # A 200 naming another commit does not prove ours on the branch (issue 19):
                # settled like a lost answer (the same update again, then the history).
                raise TransientError(
                    f"GitHub answered the update of {branch!r} to {sha[:12]} with "
                    f"{str(moved_to)[:12]}: not proof the branch is where it was asked to go",
                    ambiguous=True,
                )

        self._call(update, write=True)

    def create_ref(self, branch: str, sha: str) -> None:

        def create() -> None:
            ref = self._repo.create_git_ref(f"refs/heads/{branch}", sha)
            answers.sha(answers.pick(ref, "object.sha", "POST git/refs"), "object.sha")

        self._call(create, write=True)

    def put_file(self, path: str, message: str, content: bytes, *, branch: str | None) -> str:
        """Create a file through the Contents API (works on an empty repository); its commit."""

        def put() -> str:
            kwargs: dict[str, Any] = {}
            if branch is not None:
                kwargs["branch"] = branch
            result = self._repo.create_file(path, message, content, **kwargs)
            commit = answers.mapping(result, "PUT contents").get("commit")
            return answers.sha(answers.pick(commit, "sha", "PUT contents"), "commit.sha")

        return self._call(put, write=True)

    # -- lazy references: never a request --------------------------------------

    def _lazy_tree(self, sha: str) -> GitTree:
        return GitTree(
            self._repo.requester,
            url=f"{self._repo.url}/git/trees/{sha}",
            attributes={"sha": sha},
            completed=False,
        )

    def _lazy_commit(self, sha: str) -> GitCommit:
        return GitCommit(
            self._repo.requester,
            url=f"{self._repo.url}/git/commits/{sha}",
            attributes={"sha": sha},
            completed=False,
        )


_SHA = re.compile(r"\A[0-9a-f]{40}\Z")


def _tree_entry(path: str) -> bytes:
    """The start of a ``tree[]`` entry for a plain file at ``path`` (the caller closes it)."""
    return f'{{"path":{json.dumps(path)},"mode":"100644","type":"blob"'.encode()


def _created_tree(data: Any) -> CreatedTree:
    """A ``POST git/trees`` answer, checked as every tree listing is (``_answers``)."""
    listing = answers.tree_listing(data, "just created")
    entries = tuple(_dir_entry(row, "") for row in listing["tree"])
    return CreatedTree(listing["sha"], entries, listing.get("truncated") is True)


def _commit_info(sha: str, commit: Any, parents: Any) -> CommitInfo:
    """A ``CommitInfo`` from a PyGithub git commit (and the parents it lists), fields checked."""
    sha = answers.sha(sha, "commit sha")
    what = f"commit {sha}"
    committer = commit.committer
    date = answers.pick(committer, "date", what).isoformat() if committer is not None else ""
    return CommitInfo(
        sha=sha,
        tree_sha=answers.sha(answers.pick(commit, "tree.sha", what), f"{what}: tree.sha"),
        message=answers.text(commit.message, f"{what}: message"),
        parents=tuple(
            answers.sha(answers.pick(parent, "sha", what), f"{what}: parents[].sha")
            for parent in answers.items(parents, f"{what}: parents")
        ),
        date=date,
    )


def _checked(check: Callable[[Any], str], value: Any, what: str) -> str:
    """``value`` as ``check`` (a _config validator) accepts it, or an ``AnswerShapeError``."""
    try:
        return check(value)
    except (TypeError, ValueError) as exc:
        raise answers.AnswerShapeError(f"GitHub's answer gave {what} = {value!r:.100}") from exc


def _input_author(identity: Identity) -> InputGitAuthor:
    if identity.date is None:
        return InputGitAuthor(identity.name, identity.email)
    return InputGitAuthor(identity.name, identity.email, identity.date)
