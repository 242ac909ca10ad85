"""Request routing and the handlers for GitHub's Git Data and repository endpoints.

Handlers take a parsed :class:`ApiRequest` and return an :class:`ApiResponse`
or raise :class:`ApiError`; they know nothing about sockets, faults or rate
limits (see ``_server``). Every handler validates its whole input before it
writes anything, so a rejected request never changes a repository.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from ._conditional import Validators
from ._gitstore import (
    DEFAULT_EMAIL,
    DEFAULT_NAME,
    MAX_READ_LAG,
    SHA_RE,
    GitRepo,
    Person,
)
from ._names import valid_path
from ._shapes import DOCS, JSON, Urls, b64_lines
from ._store import RepoStore
from ._trees import TreeBuilder, TreeEditError

MAX_BLOB = 100 * 1024 * 1024
CONTENTS_INLINE_MAX = 1024 * 1024
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_MODES = {
    "100644": "blob",
    "100755": "blob",
    "120000": "blob",
    "040000": "tree",
    "160000": "commit",
}


class ApiError(Exception):
    """An error answer: status, GitHub's message, and optional extra fields."""

    def __init__(
        self, status: int, message: str, doc: str = DOCS, extra: JSON | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.doc = doc
        self.extra = extra or {}

    def body(self) -> JSON:
        """The JSON error body."""
        return {
            "message": self.message,
            **self.extra,
            "documentation_url": self.doc,
            "status": str(self.status),
        }


@dataclass
class ApiRequest:
    """A request as the handlers see it."""

    method: str
    segments: tuple[str, ...]  # the URL path's segments, each percent-decoded once
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    access: str = "write"  # "write" | "read" | "anonymous"
    repos: frozenset[str] | None = None  # the token's repositories (None: all)
    raw_query: str = ""
    kind: str = "pat"  # the token's kind: "pat" | "installation" (a GitHub App's)

    @property
    def path(self) -> str:
        """The decoded path (a ``%2F`` inside a segment reads as ``/`` here)."""
        return "/" + "/".join(self.segments)


@dataclass
class ApiResponse:
    """An answer: status, extra headers, body bytes and content type."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> ApiResponse:
        """Serialise ``payload`` as the body."""
        return cls(status, json.dumps(payload).encode(), headers or {})


def _not_found(doc: str = DOCS) -> ApiError:
    return ApiError(404, "Not Found", doc)


def _empty_repo(doc: str) -> ApiError:
    return ApiError(409, "Git Repository is empty.", doc)


def _invalid(detail: str, doc: str) -> ApiError:
    return ApiError(422, f"Invalid request.\n\n{detail}", doc)


#: An object id in a request that is not 40 hex digits, as GitHub words it for the sha
#: of a ref update and a blob read, and for the tree of a new commit (recorded by
#: sourcegraph's VCR tests of its GitHub client, TestV3Client_UpdateRef_failure and
#: TestV3Client_CreateCommit_failure: a ref updated to "fakeshalol..." and a commit
#: of tree "loltotallynotatree").
_NOT_A_SHA = "The {field} parameter must be exactly 40 characters and contain only [0-9a-f]."

#: A write with a token that may only read: GitHub names the kind of token, an App
#: installation's (the GITHUB_TOKEN of Actions among them) as an "integration".
_NOT_ACCESSIBLE = {
    False: "Resource not accessible by personal access token",
    True: "Resource not accessible by integration",
}

_D_REFS = "https://docs.github.com/rest/git/refs"
_D_BLOBS = "https://docs.github.com/rest/git/blobs"
_D_TREES = "https://docs.github.com/rest/git/trees"
_D_COMMITS = "https://docs.github.com/rest/git/commits"
_D_CONTENTS = "https://docs.github.com/rest/repos/contents"
_D_LIST = "https://docs.github.com/rest/commits/commits#list-commits"


# ---- input validation helpers ---------------------------------------------


def parse_json_body(raw: bytes) -> JSON:
    """Decode a JSON object body (empty means ``{}``)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Problems parsing JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "Problems parsing JSON")
    return value


def _req_str(body: JSON, key: str, doc: str) -> str:
    if key not in body or body[key] is None:
        raise _invalid(f'"{key}" wasn\'t supplied.', doc)
    value = body[key]
    if not isinstance(value, str):
        raise _invalid(f"For 'properties/{key}', {json.dumps(value)} is not a string.", doc)
    return value


def _commit_message(body: JSON, doc: str) -> str:
    message = _req_str(body, "message", doc)
    if "\0" in message:
        # git fsck --strict: nulInCommit. GitHub's wording is recalled, not sourced.
        raise _invalid("message must not contain a NUL character.", doc)
    return message


def _opt_str(body: JSON, key: str, doc: str) -> str | None:
    if body.get(key) is None:
        return None
    return _req_str(body, key, doc)


def _parse_date(value: Any, where: str, doc: str) -> tuple[int, str]:
    if not isinstance(value, str):
        raise _invalid(f"For '{where}', {json.dumps(value)} is not a string.", doc)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"For '{where}', {json.dumps(value)} is not a date-time.", doc) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    if when.timestamp() < 0:
        # git fsck --strict calls a negative timestamp badDate; refuse it like an
        # unparsable one (the message is recalled, not sourced).
        raise _invalid(f"For '{where}', {json.dumps(value)} is not a date-time.", doc)
    offset = when.utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return int(when.timestamp()), f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _person(value: Any, key: str, doc: str, now: int) -> Person | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(f"For 'properties/{key}', {json.dumps(value)} is not an object.", doc)
    name = value.get("name")
    email = value.get("email")
    for part, got in (("name", name), ("email", email)):
        if not isinstance(got, str):
            raise _invalid(f'"{part}" wasn\'t supplied.', doc)
    assert isinstance(name, str)
    assert isinstance(email, str)
    if any(c in name + email for c in "<>\n\0"):
        raise _invalid(f"For 'properties/{key}', {json.dumps(value)} is not a valid person.", doc)
    if value.get("date") is None:
        return Person(name.strip(), email.strip(), now)
    stamp, offset = _parse_date(value["date"], f"properties/{key}/date", doc)
    return Person(name.strip(), email.strip(), stamp, offset)


def _default_person(now: int) -> Person:
    return Person(DEFAULT_NAME, DEFAULT_EMAIL, now)


# ---- the API ----------------------------------------------------------------

Handler = Callable[["Api", ApiRequest, GitRepo, Urls, "re.Match[str]"], ApiResponse]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def _route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, re.compile(rf"\A{pattern}\Z"), fn))
        return fn

    return register


class Api:
    """Dispatches requests to handlers over a :class:`RepoStore`."""

    def __init__(self, store: RepoStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        # GitHub stops listing recursive trees at 100,000 entries or 7 MB; tests lower it.
        self.tree_truncate_limit = 100_000
        self.tree_truncate_bytes = 7 * 1024 * 1024
        # Contents API folder listings stop at 1,000 entries (documented on "Get
        # repository content"; github/developer.github.com#726). None: no cap.
        self.contents_listing_cap: int | None = 1000
        # Seconds a read naming a branch keeps seeing its previous head (0: off).
        self.read_lag = 0.0
        # ETag, Last-Modified, Cache-Control and Vary, and the 304s they allow.
        self.validators = Validators(clock)
        # Owners that are organisations (the rest are users).
        self.organizations: set[str] = set()
        # Repository settings GitHub keeps outside git (description, homepage,
        # language, license), by full name: LocalHub.set_details.
        self.details: dict[str, JSON] = {}

    def branch_head(self, repo: GitRepo, refname: str) -> str | None:
        """What a read naming ``refname`` sees, given :attr:`read_lag`."""
        return repo.lagged_ref(refname, min(self.read_lag, MAX_READ_LAG))

    def commitish(self, repo: GitRepo, name: str) -> str | None:
        """A commit sha (exact) or a branch/tag name (lagging) as a commit sha."""
        if SHA_RE.match(name):
            return name if repo.object_type(name) == "commit" else None
        if name == "HEAD":  # the default branch (scripting/Scripting-News#94: trees/HEAD:path)
            name = f"refs/heads/{repo.default_branch()}"
        candidates = (
            [name] if name.startswith("refs/") else [f"refs/heads/{name}", f"refs/tags/{name}"]
        )
        for refname in candidates:
            if not _valid_refname(repo, refname):
                continue
            sha = self.branch_head(repo, refname)
            if sha is not None:
                commit = repo.resolve_ref(sha + "^{commit}")
                if commit is not None:
                    return commit
        return None

    def now(self) -> int:
        """Current time in whole seconds."""
        return int(self.clock())

    def handle(self, req: ApiRequest) -> ApiResponse:
        """Answer one request or raise :class:`ApiError`."""
        segments = req.segments
        full_name: str | None = None
        if len(segments) >= 2 and segments[0] == "repositories" and segments[1].isdigit():
            full_name = self.store.name_of(int(segments[1]))
            tail = segments[2:]
        elif len(segments) >= 3 and segments[0] == "repos":
            full_name = f"{segments[1]}/{segments[2]}"
            tail = segments[3:]
        if full_name is None:
            raise _not_found()
        # Segments after owner/name are joined decoded, as GitHub reads them:
        # git/refs/heads/feat%2Fy names the branch feat/y.
        rest = "".join("/" + part for part in tail)
        repo = self.store.get(full_name)
        if repo is None or not self._visible(req, full_name):
            moved = self.store.moved(full_name) if repo is None else None
            if moved is not None and self._visible(req, moved.full_name):
                return _moved(req, moved.repo_id, tail)
            raise _not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
        urls = Urls(req.base_url, full_name)
        wanted = "GET" if req.method == "HEAD" else req.method
        for method, pattern, handler in _ROUTES:
            found = pattern.match(rest)
            if found is None or method != wanted:
                continue
            if req.method in WRITE_METHODS and req.access == "anonymous":
                raise ApiError(401, "Requires authentication")
            if req.method in WRITE_METHODS and req.access != "write":
                raise ApiError(403, _NOT_ACCESSIBLE[req.kind == "installation"])
            return self._validated(req, rest, handler(self, req, repo, urls, found))
        raise _not_found()

    def _validated(self, req: ApiRequest, rest: str, response: ApiResponse) -> ApiResponse:
        """``response`` with GitHub's cache headers, or the 304 a conditional request earns."""
        url = f"{req.path}?{req.raw_query}"
        answer = (response.status, response.content_type, response.body)
        headers, not_modified = self.validators.headers(req.method, url, rest, req.headers, answer)
        if not_modified:
            return ApiResponse(304, b"", headers, content_type="")
        response.headers = {**headers, **response.headers}
        return response

    def _visible(self, req: ApiRequest, full_name: str) -> bool:
        """Private repositories answer 404, not 403, to whoever may not see them."""
        if req.repos is not None and full_name not in req.repos:
            return False
        return req.access != "anonymous" or full_name in self.store.public

    def _refuse_protected(self, full_name: str, refname: str, *, creating: bool = False) -> None:
        """422 when a ref update through the Git Data API would touch a protected branch."""
        if not refname.startswith("refs/heads/"):
            return
        kind = self.store.protection(full_name, refname.removeprefix("refs/heads/"))
        doc = f"{_D_REFS}#update-a-reference"
        if kind == "ruleset":
            # satisfactory-factories/application#67 quotes this answer to a ref update.
            rule = (
                "Cannot create ref due to creations being restricted."
                if creating
                else "Changes must be made through a pull request."
            )
            raise ApiError(422, f"Repository rule violations found\n\n{rule}\n\n", doc)
        if kind == "branch_protection" and not creating:
            # git push shows "GH006: Protected branch update failed for refs/heads/main.";
            # the REST answer's wording is recalled, not sourced.
            raise ApiError(422, f"Protected branch update failed for {refname}.", doc)

    # ---- repository -----------------------------------------------------

    @_route("GET", "")
    def get_repo(self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]) -> ApiResponse:
        """GET /repos/{o}/{r}: private unless made public; permissions follow the token.

        GitHub says nothing of permissions to a request without credentials
        (PyGithub's ``permissions`` is then None): the key is left out. To a
        GitHub App's installation token it answered every permission false, pull
        included, though the installation could push (github3.py's recording of
        2021, ``tests/github3py_cassettes/CheckApp_create_check_run.json``): so
        does localhub, the harsher of the two for a client that trusts the key.
        """
        created = self.store.created.get(urls.full_name, repo.path.stat().st_mtime)
        stamp = dt.datetime.fromtimestamp(created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        write = req.access == "write"
        owner = urls.full_name.split("/")[0]
        body = urls.repository(
            repo.default_branch(),
            stamp,
            stamp,
            0,
            organization=owner in self.organizations,
            writer=write and "authorization" in req.headers,
        )
        public = urls.full_name in self.store.public
        body.update(
            id=self.store.id_of(urls.full_name),
            private=not public,
            visibility="public" if public else "private",
            permissions={
                "admin": write,
                "maintain": write,
                "push": write,
                "triage": write,
                "pull": True,
            },
        )
        if req.kind == "installation":
            body["permissions"] = dict.fromkeys(body["permissions"], False)
        if "authorization" not in req.headers:
            del body["permissions"]
        if "authorization" not in req.headers:
            # Anonymous answers carry a null temp_clone_token (github3.py's
            # recordings of 2021 and 2023); tokens that cannot push get none.
            body["temp_clone_token"] = None
        body.update(self.details.get(urls.full_name, {}))
        return ApiResponse.json(200, body)

    @_route("GET", "/branches/(.+)")
    def get_branch(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """GET branches/{branch}: its head (lagging like every read naming a branch)."""
        doc = "https://docs.github.com/rest/branches/branches#get-a-branch"
        refname = f"refs/heads/{m[1]}"
        sha = self.branch_head(repo, refname) if _valid_refname(repo, refname) else None
        commit = repo.read_commit(sha) if sha else None
        if commit is None:
            raise ApiError(404, "Branch not found", doc)
        protected = self.store.protection(urls.full_name, m[1]) is not None
        html = f"{urls.html}/tree/{quote(m[1])}"
        return ApiResponse.json(
            200,
            {
                "name": m[1],
                "commit": urls.listed_commit(commit),
                "_links": {"self": f"{urls.api}/branches/{quote(m[1])}", "html": html},
                "protected": protected,
                # What GitHub sends for a branch without required status checks
                # (github3.py's recording of October 2021, Repository.branch).
                "protection": {
                    "enabled": protected,
                    "required_status_checks": {"enforcement_level": "off", "contexts": []},
                },
                "protection_url": f"{urls.api}/branches/{quote(m[1])}/protection",
            },
        )

    # ---- refs -------------------------------------------------------------

    def _lagged(self, repo: GitRepo, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.read_lag <= 0:
            return pairs
        lagged = [(name, self.branch_head(repo, name)) for name, _ in pairs]
        return [(name, sha) for name, sha in lagged if sha is not None]

    def _ref_json(self, repo: GitRepo, urls: Urls, refname: str, sha: str) -> JSON:
        kind = repo.object_type(sha) or "commit"
        return urls.ref(refname, sha, kind)

    @_route("GET", "/git/ref/(.+)")
    def get_ref(self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]) -> ApiResponse:
        """GET git/ref/{ref}: exactly one ref."""
        doc = f"{_D_REFS}#get-a-reference"
        if repo.is_empty():
            raise _empty_repo(doc)
        refname = "refs/" + m[1]
        sha = self.branch_head(repo, refname) if _valid_refname(repo, refname) else None
        if sha is None:
            raise _not_found(doc)
        return ApiResponse.json(200, self._ref_json(repo, urls, refname, sha))

    @_route("GET", "/git/refs(?:/(.+))?")
    def list_refs(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """GET git/refs[/{prefix}]: the legacy form; one object on exact match, else a list."""
        doc = f"{_D_REFS}#get-a-reference"
        if repo.is_empty():
            raise _empty_repo(doc)
        refname = "refs/" + (m[1] or "")
        pairs = self._lagged(repo, repo.list_refs(refname.rstrip("/") + "/" if m[1] else "refs/"))
        exact = None
        if m[1] and _valid_refname(repo, refname):
            exact = self.branch_head(repo, refname)
        if exact is not None:
            return ApiResponse.json(200, self._ref_json(repo, urls, refname, exact))
        if not pairs:
            raise _not_found(doc)
        return ApiResponse.json(200, [self._ref_json(repo, urls, n, s) for n, s in pairs])

    @_route("GET", "/git/matching-refs/(.*)")
    def matching_refs(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """GET git/matching-refs/{ref}: every ref starting with refs/{ref}."""
        if repo.is_empty():
            raise _empty_repo(f"{_D_REFS}#list-matching-references")
        prefix = "refs/" + m[1]
        pairs = [(n, s) for n, s in self._lagged(repo, repo.list_refs()) if n.startswith(prefix)]
        return ApiResponse.json(200, [self._ref_json(repo, urls, n, s) for n, s in pairs])

    @_route("POST", "/git/refs")
    def create_ref(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """POST git/refs {ref, sha}."""
        doc = f"{_D_REFS}#create-a-reference"
        body = parse_json_body(req.body)
        if repo.is_empty():
            raise _empty_repo(doc)
        refname = _req_str(body, "ref", doc)
        sha = _req_str(body, "sha", doc)
        if not _valid_refname(repo, refname):
            raise ApiError(422, "Reference name is invalid", doc)
        if repo.object_type(sha) is None:
            raise ApiError(422, "Object does not exist", doc)
        self._refuse_protected(urls.full_name, refname, creating=True)
        with repo.ref_lock:
            if repo.resolve_ref(refname) is not None or not repo.update_ref(refname, sha, None):
                raise ApiError(422, "Reference already exists", doc)
        payload = self._ref_json(repo, urls, refname, sha)
        return ApiResponse.json(201, payload, {"Location": payload["url"]})

    @_route("PATCH", "/git/refs/(.+)")
    def update_ref(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """PATCH git/refs/{ref} {sha, force}: fast-forward only unless forced, atomically."""
        doc = f"{_D_REFS}#update-a-reference"
        body = parse_json_body(req.body)
        if repo.is_empty():
            raise _empty_repo(doc)
        sha = _req_str(body, "sha", doc)
        force = body.get("force", False)
        if force is None:
            force = False
        if not isinstance(force, bool):
            raise _invalid(f"For 'properties/force', {json.dumps(force)} is not a boolean.", doc)
        refname = "refs/" + m[1]
        if not _valid_refname(repo, refname):
            raise ApiError(422, "Reference does not exist", doc)
        if not SHA_RE.match(sha):
            raise ApiError(422, _NOT_A_SHA.format(field="sha"), doc)
        if repo.object_type(sha) is None:
            raise ApiError(422, "Object does not exist", doc)
        self._refuse_protected(urls.full_name, refname)
        with repo.ref_lock:
            current = dict(repo.list_refs(refname)).get(refname)
            if current is None:
                raise ApiError(422, "Reference does not exist", doc)
            if not force and current != sha and not repo.is_ancestor(current, sha):
                raise ApiError(422, "Update is not a fast forward", doc)
            if not repo.update_ref(refname, sha, current):
                raise ApiError(422, "Update is not a fast forward", doc)
        return ApiResponse.json(200, self._ref_json(repo, urls, refname, sha))

    @_route("DELETE", "/git/refs/(.+)")
    def delete_ref(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """DELETE git/refs/{ref}: 204, or 422 when it does not exist."""
        doc = f"{_D_REFS}#delete-a-reference"
        if repo.is_empty():
            raise _empty_repo(doc)
        refname = "refs/" + m[1]
        self._refuse_protected(urls.full_name, refname)
        with repo.ref_lock:
            current = dict(repo.list_refs(refname)).get(refname)
            if current is None or not repo.delete_ref(refname, current):
                raise ApiError(422, "Reference does not exist", doc)
        return ApiResponse(204, b"", content_type="")

    # ---- blobs ------------------------------------------------------------

    @_route("POST", "/git/blobs")
    def create_blob(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """POST git/blobs {content, encoding}."""
        doc = f"{_D_BLOBS}#create-a-blob"
        body = parse_json_body(req.body)
        if repo.is_empty():
            raise _empty_repo(doc)
        content = _req_str(body, "content", doc)
        encoding = body.get("encoding", "utf-8")
        if encoding in ("utf-8", "utf8", None):
            data = content.encode("utf-8", errors="surrogatepass")
        elif encoding == "base64":
            data = _b64decode(content, doc)
        else:
            raise _invalid(
                f"For 'properties/encoding', {json.dumps(encoding)} is not one of "
                '["utf-8", "base64"].',
                doc,
            )
        if len(data) > MAX_BLOB:
            raise ApiError(
                422,
                "Validation Failed",
                doc,
                {"errors": [{"resource": "Blob", "field": "content", "code": "too_large"}]},
            )
        sha = repo.write_blob(data)
        url = f"{urls.api}/git/blobs/{sha}"
        return ApiResponse.json(201, {"url": url, "sha": sha}, {"Location": url})

    @_route("GET", "/git/blobs/([^/]+)")
    def get_blob(self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]) -> ApiResponse:
        """GET git/blobs/{sha}: base64 with a newline every 60 characters."""
        doc = f"{_D_BLOBS}#get-a-blob"
        if repo.is_empty():
            raise _empty_repo(doc)
        sha = m[1]
        if not SHA_RE.match(sha):
            raise ApiError(422, _NOT_A_SHA.format(field="sha"), doc)
        found = repo.read_object(sha)
        if found is None or found[0] != "blob":
            raise _not_found(doc)
        data = found[1]
        return ApiResponse.json(
            200,
            {
                "sha": sha,
                "node_id": f"B_{sha}",
                "size": len(data),
                "url": f"{urls.api}/git/blobs/{sha}",
                "content": b64_lines(data),
                "encoding": "base64",
            },
        )

    # ---- trees ------------------------------------------------------------

    @_route("POST", "/git/trees")
    def create_tree(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """POST git/trees {tree: [...], base_tree?}."""
        doc = f"{_D_TREES}#create-a-tree"
        body = parse_json_body(req.body)
        if repo.is_empty():
            raise _empty_repo(doc)
        entries = body.get("tree")
        if entries is None:
            raise _invalid('"tree" wasn\'t supplied.', doc)
        if not isinstance(entries, list):
            raise _invalid(f"For 'properties/tree', {json.dumps(entries)} is not an array.", doc)
        base = _opt_str(body, "base_tree", doc)
        base_tree = None
        if base is not None:
            base_tree = repo.tree_of(base) if SHA_RE.match(base) else None
            if base_tree is None:
                raise ApiError(422, f"base_tree {base} is not a valid tree oid", doc)
        builder = TreeBuilder(repo, base_tree)
        for index, entry in enumerate(entries):
            _apply_tree_entry(repo, builder, entry, index, doc)
        sha = builder.write()
        payload = _tree_json(repo, urls, sha, recursive=False, limit=None)
        url = f"{urls.api}/git/trees/{sha}"
        return ApiResponse.json(201, payload, {"Location": url})

    @_route("GET", "/git/trees/(.+)")
    def get_tree(self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]) -> ApiResponse:
        """GET git/trees/{sha}[?recursive=1]; a commit sha or branch name is accepted."""
        doc = f"{_D_TREES}#get-a-tree"
        if repo.is_empty():
            raise _empty_repo(doc)
        # GitHub resolves any tree-ish here: a tree or commit sha, a branch or tag
        # name, and "<commit-ish>:<path>" for a sub-tree (scripting/Scripting-News#94).
        name, colon, subpath = m[1].partition(":")
        tree = repo.tree_of(name) if SHA_RE.match(name) else None
        if tree is None and not SHA_RE.match(name):
            commit_sha = self.commitish(repo, name)
            tree = repo.tree_of(commit_sha) if commit_sha else None
        if tree is not None and colon and subpath.strip("/"):
            subpath = subpath.strip("/")
            entry = _lookup(repo, tree, subpath) if valid_path(subpath) else None
            tree = entry[2] if entry is not None and entry[1] == "tree" else None
        if tree is None:
            raise _not_found(doc)
        recursive = req.query.get("recursive", "") not in ("", "0", "false")
        payload = _tree_json(
            repo,
            urls,
            tree,
            recursive=recursive,
            limit=self.tree_truncate_limit,
            max_bytes=self.tree_truncate_bytes,
        )
        return ApiResponse.json(200, payload)

    # ---- commits ------------------------------------------------------------

    @_route("POST", "/git/commits")
    def create_commit(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """POST git/commits {message, tree, parents, author?, committer?}."""
        doc = f"{_D_COMMITS}#create-a-commit"
        body = parse_json_body(req.body)
        if repo.is_empty():
            raise _empty_repo(doc)
        message = _commit_message(body, doc)
        tree = _req_str(body, "tree", doc)
        parents = body.get("parents", [])
        if parents is None:
            parents = []
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise _invalid(
                f"For 'properties/parents', {json.dumps(parents)} is not an array of strings.",
                doc,
            )
        if not SHA_RE.match(tree):
            raise ApiError(422, _NOT_A_SHA.format(field="tree"), doc)
        if repo.object_type(tree) != "tree":
            raise ApiError(422, "Tree SHA does not exist", doc)
        for parent in parents:
            if repo.object_type(parent) != "commit":
                raise ApiError(422, "Parent SHA does not exist or is not a commit object", doc)
        now = self.now()
        author = _person(body.get("author"), "author", doc, now)
        committer = _person(body.get("committer"), "committer", doc, now)
        author = author or committer or _default_person(now)
        committer = committer or author
        sha = repo.write_commit(tree, parents, author, committer, message)
        commit = repo.read_commit(sha)
        assert commit is not None
        payload = urls.git_commit(commit)
        return ApiResponse.json(201, payload, {"Location": payload["url"]})

    @_route("GET", "/git/commits/([^/]+)")
    def get_commit(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """GET git/commits/{sha}."""
        doc = f"{_D_COMMITS}#get-a-commit-object"
        if repo.is_empty():
            raise _empty_repo(doc)
        commit = repo.read_commit(m[1])
        if commit is None:
            raise _not_found(doc)
        return ApiResponse.json(200, urls.git_commit(commit))

    @_route("GET", "/commits")
    def list_commits(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """GET commits?sha=&path=&since=&per_page=&page= with Link pagination (``since``:
        committed at that ISO 8601 time or later, as git's ``--since`` reads it)."""
        if repo.is_empty():
            raise ApiError(409, "Git Repository is empty.", _D_LIST)
        start_name = req.query.get("sha") or repo.default_branch()
        start = self.commitish(repo, start_name)
        if start is None:
            raise ApiError(404, f"No commit found for SHA: {start_name}", _D_LIST)
        path = req.query.get("path") or None
        if path is not None:
            path = path.strip("/")
            if not valid_path(path):
                return ApiResponse.json(200, [])
        since = _since(req.query.get("since"))
        per_page = min(100, max(1, _int(req.query.get("per_page"), 30)))
        page = max(1, _int(req.query.get("page"), 1))
        shas = repo.rev_list(start, path, (page - 1) * per_page, per_page, since)
        items = []
        for sha in shas:
            commit = repo.read_commit(sha)
            assert commit is not None
            items.append(urls.listed_commit(commit))
        total = repo.count_commits(start, path, since)
        last = max(1, -(-total // per_page))
        headers = {}
        link = _link_header(f"{urls.api}/commits", req.query, page, last)
        if link:
            headers["Link"] = link
        return ApiResponse.json(200, items, headers)

    # ---- contents -------------------------------------------------------------

    @_route("GET", "/contents(?:/(.*))?")
    def get_contents(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """GET contents/{path}?ref=: file, directory listing or raw bytes."""
        doc = f"{_D_CONTENTS}#get-repository-content"
        path = (m[1] or "").strip("/")
        if path and not valid_path(path):
            raise _not_found(doc)
        if repo.is_empty():
            raise ApiError(404, "This repository is empty.", doc)
        ref = req.query.get("ref") or repo.default_branch()
        commit_sha = self.commitish(repo, ref)
        if commit_sha is None:
            raise ApiError(404, f"No commit found for the ref {ref}", doc)
        commit = repo.read_commit(commit_sha)
        assert commit is not None
        entry = _lookup(repo, commit.tree, path)
        if entry is None:
            raise _not_found(doc)
        mode, kind, sha = entry
        accept = req.headers.get("accept", "").lower()
        if kind == "tree":
            listing = []
            children = repo.ls_tree(sha)
            if self.contents_listing_cap is not None:
                # Silently cut, as GitHub does: beyond it, use the Git Trees API.
                children = children[: self.contents_listing_cap]
            for child in children:
                child_path = f"{path}/{child.path}" if path else child.path
                child_kind = {"tree": "dir", "commit": "submodule"}.get(child.type, "file")
                if child.mode == "120000":
                    child_kind = "symlink"
                listing.append(
                    urls.content_entry(child_path, child_kind, child.sha, child.size or 0, ref)
                )
            return ApiResponse.json(200, listing)
        if kind != "blob":
            raise _not_found(doc)
        found = repo.read_object(sha)
        assert found is not None
        data = found[1]
        if "raw" in accept:
            return ApiResponse(200, data, content_type="application/vnd.github.raw")
        if len(data) > MAX_BLOB:
            raise ApiError(
                403,
                "This API returns blobs up to 1 MB in size. The requested blob is too large to "
                "fetch via the API, but you can use the Git Data API to request blobs up to "
                "100 MB in size.",
                doc,
                {"errors": [{"resource": "Blob", "field": "data", "code": "too_large"}]},
            )
        if mode == "120000":
            payload = urls.content_entry(path, "symlink", sha, len(data), ref)
            payload["target"] = data.decode(errors="replace")
            return ApiResponse.json(200, payload)
        payload = urls.content_entry(path, "file", sha, len(data), ref)
        if len(data) <= CONTENTS_INLINE_MAX:
            payload["content"] = b64_lines(data)
            payload["encoding"] = "base64"
        else:
            # GitHub's documented behaviour between 1 and 100 MB: no content at all.
            payload["content"] = ""
            payload["encoding"] = "none"
        return ApiResponse.json(200, payload)

    @_route("PUT", "/contents/(.+)")
    def put_contents(
        self, req: ApiRequest, repo: GitRepo, urls: Urls, m: re.Match[str]
    ) -> ApiResponse:
        """PUT contents/{path}: create (201) or update (200) one file in one commit."""
        doc = f"{_D_CONTENTS}#create-or-update-file-contents"
        body = parse_json_body(req.body)
        path = m[1]
        if not valid_path(path):
            # GitHub's words, as API clients quote them (e.g. for a path with "//").
            raise ApiError(422, "path contains a malformed path component", doc)
        message = _commit_message(body, doc)
        content = _req_str(body, "content", doc)
        data = _b64decode(content, doc, "content is not valid Base64")
        given_sha = _opt_str(body, "sha", doc)
        branch = _opt_str(body, "branch", doc) or repo.default_branch()
        now = self.now()
        committer = _person(body.get("committer"), "committer", doc, now)
        author = _person(body.get("author"), "author", doc, now)
        committer = committer or _default_person(now)
        author = author or committer
        refname = f"refs/heads/{branch}"
        if not _valid_refname(repo, refname):
            raise ApiError(404, f"Branch {branch} not found", doc)
        protection = self.store.protection(urls.full_name, branch)
        if protection == "ruleset":
            # A live answer recorded in public code: 409, rule text between blank lines.
            raise ApiError(
                409,
                "Repository rule violations found\n\n"
                "Changes must be made through a pull request.\n\n",
                doc,
            )
        if protection == "branch_protection":
            # One public report: 409 "Could not create file: Changes must be made through
            # a pull request." (akhilmhdh/contributors-readme-action#28 has "update").
            verb = "update" if given_sha else "create"
            raise ApiError(
                409,
                f"Could not {verb} file: Changes must be made through a pull request.",
                "https://docs.github.com/articles/about-protected-branches",
            )
        with repo.ref_lock:
            tip = repo.resolve_ref(refname)
            if tip is None and not repo.is_empty():
                raise ApiError(404, f"Branch {branch} not found", doc)
            base_tree = None
            existing = None
            if tip is not None:
                tip_commit = repo.read_commit(tip)
                assert tip_commit is not None
                base_tree = tip_commit.tree
                existing = _lookup(repo, base_tree, path)
            if existing is not None and existing[1] == "tree":
                raise ApiError(422, f"{path} is a directory", doc)
            if existing is not None:
                if given_sha is None:
                    raise _invalid('"sha" wasn\'t supplied.', doc)
                if given_sha != existing[2]:
                    raise ApiError(409, f"{path} does not match {given_sha}", doc)
            builder = TreeBuilder(repo, base_tree)
            builder.set(path, "100644", "blob", data=data)
            tree = builder.write()
            parents = [tip] if tip is not None else []
            sha = repo.write_commit(tree, parents, author, committer, message)
            if not repo.update_ref(refname, sha, tip):
                raise ApiError(409, f"{path} does not match {given_sha}", doc)
        commit = repo.read_commit(sha)
        assert commit is not None
        blob_sha = _lookup(repo, tree, path)
        assert blob_sha is not None
        payload = {
            "content": urls.content_entry(path, "file", blob_sha[2], len(data), branch),
            "commit": urls.git_commit(commit),
        }
        return ApiResponse.json(200 if existing is not None else 201, payload)


# ---- helpers ------------------------------------------------------------------


def _moved(req: ApiRequest, repo_id: int, tail: tuple[str, ...]) -> ApiResponse:
    """GitHub's answer for a renamed or transferred repository's old name.

    301 to reads and 307 to writes (octokit/octokit.rb#591 lists 301, 302 and 307
    as the codes the API uses), Location on /repositories/{id}/..., and a body
    naming it (a real 307 to a Contents PUT, quoted in public code:
    {"message":"Moved Permanently","url":".../repositories/503268809/contents/...",
    "documentation_url": ".../best-practices-for-using-the-rest-api#follow-redirects"}).
    """
    rest = "".join("/" + quote(part, safe="") for part in tail)
    location = f"{req.base_url}/repositories/{repo_id}{rest}"
    if req.raw_query:
        location += "?" + req.raw_query
    status = 301 if req.method in ("GET", "HEAD") else 307
    body = {
        "message": "Moved Permanently",
        "url": location,
        "documentation_url": (
            "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api"
            "#follow-redirects"
        ),
    }
    return ApiResponse.json(status, body, {"Location": location})


def _valid_refname(repo: GitRepo, refname: str) -> bool:
    if not refname.startswith("refs/") or refname.count("/") < 2:
        return False
    return repo.returncode("check-ref-format", refname) == 0


def _b64decode(
    text: str, doc: str, message: str = "Invalid request.\n\ncontent is not valid Base64"
) -> bytes:
    cleaned = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, message, doc) from None


def _since(value: str | None) -> int | None:
    """A ``since`` query value as seconds since the epoch; GitHub answers 422 for one that is
    not an ISO 8601 time."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"Invalid value for since: {value[:40]}", _D_LIST) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return max(0, int(parsed.timestamp()))


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _lookup(repo: GitRepo, tree: str, path: str) -> tuple[str, str, str] | None:
    """``(mode, type, sha)`` of ``path`` inside ``tree`` ("" is the tree itself)."""
    if not path:
        return "040000", "tree", tree
    current = tree
    parts = path.split("/")
    for index, part in enumerate(parts):
        entry = next((e for e in repo.ls_tree(current) if e.path == part), None)
        if entry is None:
            return None
        if index == len(parts) - 1:
            return entry.mode, entry.type, entry.sha
        if entry.type != "tree":
            return None
        current = entry.sha
    return None


def _tree_json(
    repo: GitRepo,
    urls: Urls,
    sha: str,
    *,
    recursive: bool,
    limit: int | None,
    max_bytes: int | None = None,
) -> JSON:
    """A tree listing, cut (``truncated: true``) past ``limit`` entries or ``max_bytes``."""
    listed: list[JSON] = []
    size = 0
    truncated = False
    for e in repo.ls_tree(sha, recursive=recursive):
        entry = urls.tree_entry(e.path, e.mode, e.type, e.sha, e.size)
        size += len(json.dumps(entry)) + 2
        if (limit is not None and len(listed) >= limit) or (
            max_bytes is not None and size > max_bytes
        ):
            truncated = True
            break
        listed.append(entry)
    return {
        "sha": sha,
        "url": f"{urls.api}/git/trees/{sha}",
        "tree": listed,
        "truncated": truncated,
    }


def _apply_tree_entry(
    repo: GitRepo, builder: TreeBuilder, entry: Any, index: int, doc: str
) -> None:
    where = f"items/{index}"
    if not isinstance(entry, dict):
        raise _invalid(f"For '{where}', {json.dumps(entry)} is not an object.", doc)
    path = entry.get("path")
    if not isinstance(path, str):
        raise _invalid(f'"path" wasn\'t supplied. (tree.{index})', doc)
    if not valid_path(path):
        # GitHub's words, as API clients quote them for ".git" or empty components.
        raise ApiError(422, "tree.path contains a malformed path component", doc)
    mode = entry.get("mode")
    kind = entry.get("type")
    if mode not in _MODES:
        raise _invalid(f"For '{where}/mode', {json.dumps(mode)} is not a valid mode.", doc)
    if kind not in ("blob", "tree", "commit"):
        raise _invalid(f"For '{where}/type', {json.dumps(kind)} is not a valid type.", doc)
    if _MODES[mode] != kind:
        raise ApiError(422, f"tree.{index}.mode {mode} does not match type {kind}", doc)
    if not valid_path(path, mode):  # .gitmodules as a symbolic link (gitmodulesSymlink)
        raise ApiError(422, "tree.path contains a malformed path component", doc)
    has_sha = "sha" in entry
    has_content = entry.get("content") is not None
    if has_sha and has_content:
        raise ApiError(
            422,
            "Must supply either tree.sha or tree.content. Request will be rejected if both "
            "are present.",
            doc,
        )
    if has_content:
        content = entry["content"]
        if not isinstance(content, str) or kind != "blob":
            raise _invalid(f"For '{where}/content', {json.dumps(content)} is not a string.", doc)
        builder.set(path, mode, "blob", data=content.encode("utf-8", errors="surrogatepass"))
        return
    if not has_sha:
        raise ApiError(
            422,
            "Must supply either tree.sha or tree.content. Request will be rejected if both "
            "are present.",
            doc,
        )
    sha = entry["sha"]
    if sha is None:
        try:
            builder.delete(path)
        except TreeEditError:
            # "Returns an error if you try to delete a file that does not exist" (Create a
            # tree); what users saw is 422 GitRPC::BadObjectState (google/go-github#2418,
            # mckaywrigley/buildware-ai#29). gitjsonl only deletes paths of its base tree.
            raise ApiError(422, "GitRPC::BadObjectState", doc) from None
        return
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        raise ApiError(422, f"tree.sha {sha} is not a valid {kind}", doc)
    if kind != "commit" and repo.object_type(sha) != kind:
        raise ApiError(422, f"tree.sha {sha} is not a valid {kind}", doc)
    builder.set(path, mode, kind, sha=sha)


def _link_header(url: str, query: dict[str, str], page: int, last: int) -> str:
    def at(number: int) -> str:
        params = dict(query)
        params["page"] = str(number)
        return f"<{url}?{urlencode(params)}>"

    links = []
    if page > 1:
        links.append(f'{at(page - 1)}; rel="prev"')
    if page < last:
        links.append(f'{at(page + 1)}; rel="next"')
        links.append(f'{at(last)}; rel="last"')
    if page > 1:
        links.append(f'{at(1)}; rel="first"')
    return ", ".join(links)
