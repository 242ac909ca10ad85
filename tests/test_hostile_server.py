"""A server that stalls, lies, redirects, echoes the token or sends too much (issue 19, items
2, 4, 8 and 9): one table per class of attack, each fixed where it enters (``_github`` and
its transport ``_http``, the answer checks of ``_answers``, the scrubbing of ``_redact``).

The hostile server is real: ``HostileProxy``, a stdlib ``http.server`` on loopback in
front of localhub that forwards every request, except the ones an ``Attack`` matches,
which it answers its own way (dripping, lying, redirecting, huge). A second loopback
server, ``Elsewhere``, stands for another host and records every request that reaches it.
No PyGithub object is mocked.

The next person to find an attack adds a row to the table of its class. Every row also
checks that the token never shows in what a user sees.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import github
import pytest

import gitjsonl
from gitjsonl import (
    AnswerTooLarge,
    GitHubError,
    GithubLog,
    MalformedAnswer,
    RepositoryMoved,
    TransientError,
)
from gitjsonl._cli import main
from gitjsonl._config import check_api_url
from gitjsonl._github import Credentials, GitHubRepo
from gitjsonl._http import (
    BLOB_ANSWER_CAP,
    METADATA_ANSWER_CAP,
    TREE_ANSWER_CAP,
    Origin,
    answer_cap,
)
from gitjsonl._redact import redact, remember_secret, server_text
from gitjsonl.testing import LocalHub

from .helpers import REPO, committed_records, make_log

Factory = Callable[..., LocalHub]

#: Never to be shown: every row looks for SECRET in what a user sees.
SECRET = "HOSTILESECRET"
TOKEN = f"ghp_{SECRET}0123456789abcdef"
#: A token of no recognisable shape (GitHub Enterprise, an old 40-hex one): removed verbatim.
PLAIN_TOKEN = f"plain-{SECRET}-token"


def no_secret_in(*shown: object) -> None:
    """None of ``shown`` (as ``repr`` and ``str``) shows the token."""
    for thing in shown:
        for text in (repr(thing), str(thing)):
            assert SECRET not in text, f"the token shows in {text[:300]!r}"


# -- the hostile server ------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def with_json(self, data: Any) -> Answer:
        return Answer(self.status, self.headers, json.dumps(data).encode())


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.body = self.rfile.read(length) if length else b""
        proxy = self.server.proxy
        proxy.seen.append((self.command, self.path))
        attack = proxy.match(self.command, self.path)
        if attack is None:
            self.answer(self.upstream())
        else:
            attack.act(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

    def upstream(self) -> Answer:
        """What localhub answers to this request, its URLs rewritten to the proxy's."""
        import http.client

        proxy = self.server.proxy
        hub = urllib.parse.urlsplit(proxy.hub_url)
        conn = http.client.HTTPConnection(hub.hostname, hub.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        headers["Accept-Encoding"] = "identity"
        conn.request(self.command, self.path, body=self.body or None, headers=headers)
        response = conn.getresponse()
        body = response.read().replace(proxy.hub_url.encode(), proxy.url.encode())
        kept = [
            (k, v.replace(proxy.hub_url, proxy.url))
            for k, v in response.getheaders()
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        conn.close()
        return Answer(response.status, kept, body)

    def answer(self, answer: Answer, *, close: bool = False) -> None:
        self.send_response(answer.status)
        for key, value in answer.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer.body)

    def send_forever(self, chunk: bytes, limit: int) -> None:
        """Write ``chunk`` until ``limit`` bytes or the client hangs up; count what went out."""
        sent = 0
        try:
            while sent < limit:
                self.wfile.write(chunk)
                sent += len(chunk)
                self.server.proxy.sent += len(chunk)
        except OSError:
            pass
        self.close_connection = True


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    proxy: HostileProxy


@dataclass
class Attack:
    """Requests matching ``method`` and ``path`` (a regular expression) answered by ``act``."""

    method: str
    path: str
    act: Callable[[_Handler], None]
    times: int | None = None  # None: every matching request


@dataclass
class HostileProxy:
    hub_url: str
    attacks: list[Attack] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)
    sent: int = 0  # bytes an attack wrote out
    url: str = ""

    def match(self, method: str, path: str) -> Attack | None:
        for attack in self.attacks:
            if attack.method in (method, "*") and re.search(attack.path, path):
                if attack.times is not None:
                    if attack.times <= 0:
                        continue
                    attack.times -= 1
                return attack
        return None

    def add(self, method: str, path: str, act: Callable[[_Handler], None], **kw: Any) -> None:
        self.attacks.append(Attack(method, path, act, **kw))

    def clear(self) -> None:
        self.attacks.clear()


@pytest.fixture
def hub(localhub_factory: Factory) -> LocalHub:
    """localhub with one commit on main."""
    return localhub_factory(initial_commit=True)


@pytest.fixture
def proxy(hub: LocalHub) -> Iterator[HostileProxy]:
    """A hostile server in front of ``hub``: every request forwarded until an attack is added."""
    front = HostileProxy(hub_url=hub.url)
    server = _ProxyServer(("127.0.0.1", 0), _Handler)
    server.proxy = front
    front.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield front
    server.shutdown()
    server.server_close()


class _ElsewhereHandler(http.server.BaseHTTPRequestHandler):
    server: _ElsewhereServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("authorization")))
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PATCH = do_GET


class _ElsewhereServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str | None]]


@pytest.fixture
def elsewhere() -> Iterator[_ElsewhereServer]:
    """Another host (another port on loopback: another origin), recording what reaches it."""
    server = _ElsewhereServer(("127.0.0.1", 0), _ElsewhereHandler)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def elsewhere_url(server: _ElsewhereServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def repo_at(proxy: HostileProxy, *, timeout: float = 10, token: str = TOKEN) -> GitHubRepo:
    return GitHubRepo(REPO, Credentials(proxy.url, token), timeout=timeout)


def head_of(hub: LocalHub) -> str:
    return hub.git(REPO, "rev-parse", "refs/heads/main").strip()


# -- attacks: ways of answering ----------------------------------------------------------------


def drip_body(seconds_per_byte: float) -> Callable[[_Handler], None]:
    """The real answer, its body one byte at a time (each read well within a socket timeout)."""

    def act(h: _Handler) -> None:
        answer = h.upstream()
        h.send_response(answer.status)
        h.send_header("Content-Length", str(len(answer.body)))
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.end_headers()
        h.wfile.flush()
        try:
            for byte in answer.body:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                time.sleep(seconds_per_byte)
        except OSError:
            pass
        h.close_connection = True

    return act


def drip_headers(seconds_per_byte: float) -> Callable[[_Handler], None]:
    """A status line and headers that never end, one byte at a time."""

    def act(h: _Handler) -> None:
        try:
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(10_000):
                h.wfile.write(b"X")
                h.wfile.flush()
                time.sleep(seconds_per_byte)
        except OSError:
            pass
        h.close_connection = True

    return act


def huge(size: int, *, declared: bool, status: int = 200) -> Callable[[_Handler], None]:
    """A JSON-looking body of ``size`` bytes (with or without a Content-Length saying so)."""

    def act(h: _Handler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        if declared:
            h.send_header("Content-Length", str(size))
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b'{"message": "')
        h.send_forever(b"x" * 65536, size)

    return act


def gzip_bomb(size: int) -> Callable[[_Handler], None]:
    """A small gzip body that inflates to ``size`` bytes."""
    body = gzip.compress(b'{"a": "' + b"0" * size + b'"}', compresslevel=9)

    def act(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return act


def raw_body(body: bytes, status: int = 200) -> Callable[[_Handler], None]:
    """The answer's status and headers, with ``body`` instead of what localhub said."""

    def act(h: _Handler) -> None:
        answer = h.upstream()
        h.answer(Answer(status or answer.status, answer.headers, body))

    return act


def lie(change: Callable[[Any], Any]) -> Callable[[_Handler], None]:
    """The real answer with its JSON changed by ``change`` (which returns the new JSON)."""

    def act(h: _Handler) -> None:
        answer = h.upstream()
        h.answer(answer.with_json(change(answer.json())))

    return act


def cut_short(h: _Handler) -> None:
    """The real answer's headers, half its body, then the connection closed."""
    answer = h.upstream()
    h.send_response(answer.status)
    h.send_header("Content-Length", str(len(answer.body)))
    h.end_headers()
    h.wfile.write(answer.body[: len(answer.body) // 2])
    h.close_connection = True


def redirect(status: int, location: str) -> Callable[[_Handler], None]:
    def act(h: _Handler) -> None:
        h.answer(Answer(status, [("Location", location)], b'{"message": "Moved"}'))

    return act


def echo_token(status: int, *, padding: int = 0) -> Callable[[_Handler], None]:
    """An error whose body quotes the request's Authorization header (and maybe a page)."""

    def act(h: _Handler) -> None:
        auth = h.headers.get("authorization") or ""
        message = f"bad request, you sent Authorization: {auth} {'x' * padding}"
        h.answer(Answer(status, [("Content-Type", "application/json")], _dumps(message)))

    return act


def _dumps(message: str) -> bytes:
    return json.dumps({"message": message, "documentation_url": "https://docs"}).encode()


def with_link(next_url: str) -> Callable[[_Handler], None]:
    """The real answer, with a Link header naming ``next_url`` as the next page."""

    def act(h: _Handler) -> None:
        answer = h.upstream()
        link = f'<{next_url}>; rel="next", <{next_url}>; rel="last"'
        h.answer(Answer(answer.status, [*answer.headers, ("Link", link)], answer.body))

    return act


def _set(path: str, value: Any) -> Callable[[Any], Any]:
    """Set (or with ``...``, delete) ``path`` (``a.b``, ``tree.0.size``) in an answer's JSON."""

    def change(data: Any) -> Any:
        *parents, last = path.split(".")
        node = data
        for name in parents:
            node = node[int(name)] if isinstance(node, list) else node[name]
        key: Any = int(last) if isinstance(node, list) else last
        if value is ...:
            del node[key]
        else:
            node[key] = value
        return data

    return change


# -- 1. time: the whole request within timeout= ----------------------------------------------

_SLOW = [
    pytest.param(drip_body(0.1), id="body-one-byte-every-0.1s"),
    pytest.param(drip_headers(0.1), id="headers-one-byte-every-0.1s"),
]


@pytest.mark.parametrize("attack", _SLOW)
def test_dripping_server_is_cut_off_at_the_timeout(
    proxy: HostileProxy, attack: Callable[[_Handler], None]
) -> None:
    """A read of the head from a server that drips raises TransientError within timeout=2."""
    repo = repo_at(proxy, timeout=2)
    proxy.add("GET", r"/git/ref/heads/main", attack)
    start = time.monotonic()
    with pytest.raises(TransientError) as raised:
        repo.get_head("main")
    elapsed = time.monotonic() - start
    assert elapsed < 4, f"took {elapsed:.1f} s with timeout=2"
    assert "within timeout=2 s" in str(raised.value)
    assert raised.value.ambiguous is False  # a read
    no_secret_in(raised.value)


def test_tail_from_a_dripping_server_returns_within_its_time(
    hub: LocalHub, proxy: HostileProxy
) -> None:
    """tail() on a Log with timeout=2 raises a GitHubError well before the drip would end."""
    with make_log(hub, api_url=proxy.url, token=TOKEN, timeout=2) as log:
        log.append({"id": 1})
        log.flush(timeout=30)
        proxy.add("GET", r"/git/trees/", drip_body(0.1))
        start = time.monotonic()
        with pytest.raises(GitHubError) as raised:
            log.tail(10)
        elapsed = time.monotonic() - start
        proxy.clear()
        assert elapsed < 10, f"tail() took {elapsed:.1f} s with timeout=2"
        no_secret_in(raised.value, log.stats())


def test_202_to_a_read_is_not_waited_for(proxy: HostileProxy) -> None:
    """A read answered 202 (PyGithub would sleep 5 s and ask again, for ever) is refused."""
    repo = repo_at(proxy, timeout=2)
    proxy.add("GET", r"/git/ref/heads/main", raw_body(b"{}", status=202))
    start = time.monotonic()
    with pytest.raises(MalformedAnswer) as raised:
        repo.get_head("main")
    assert time.monotonic() - start < 2
    assert raised.value.status == 202


def test_dripping_write_is_ambiguous(proxy: HostileProxy) -> None:
    """A write whose answer drips past the timeout may have landed: ambiguous TransientError."""
    repo = repo_at(proxy, timeout=1)
    proxy.add("POST", r"/git/blobs", drip_body(0.1))
    with pytest.raises(TransientError) as raised:
        repo.create_blob(b'{"id": 1}\n')
    assert raised.value.ambiguous is True


def test_app_token_fetch_from_a_dripping_server_is_cut_off(
    hub: LocalHub, proxy: HostileProxy
) -> None:
    """A GitHub App's installation-token request (a requester of its own) is bounded too."""
    from .helpers import rsa_key_pair

    private, public = rsa_key_pair()
    hub.register_app(4242, public, 77)
    auth = github.Auth.AppAuth(4242, private).get_installation_auth(77)
    repo = GitHubRepo(REPO, Credentials(proxy.url, auth=auth), timeout=2)
    proxy.add("POST", r"/app/installations/77/access_tokens", drip_body(0.1))
    start = time.monotonic()
    with pytest.raises(TransientError):
        repo.get_head("main")
    assert time.monotonic() - start < 4
    assert ("POST", "/app/installations/77/access_tokens") in proxy.seen


# -- 2. size: no answer larger than GitHub sends for the endpoint ----------------------------

_HUGE = [
    pytest.param(r"/git/ref/heads/main", huge(256 * 2**20, declared=True), id="ref-256MB-declared"),
    pytest.param(
        r"/git/ref/heads/main", huge(256 * 2**20, declared=False), id="ref-256MB-undeclared"
    ),
    pytest.param(
        r"/git/ref/heads/main",
        huge(256 * 2**20, declared=False, status=500),
        id="error-page-256MB",
    ),
    pytest.param(r"/git/ref/heads/main", gzip_bomb(64 * 2**20), id="gzip-bomb-64MB"),
]


@pytest.mark.parametrize(("path", "attack"), _HUGE)
def test_answer_over_its_cap_is_refused_unread(
    proxy: HostileProxy, path: str, attack: Callable[[_Handler], None]
) -> None:
    """An answer past the endpoint's cap raises AnswerTooLarge; little past the cap is sent."""
    repo = repo_at(proxy, timeout=20)
    proxy.add("GET", path, attack)
    with pytest.raises(AnswerTooLarge) as raised:
        repo.get_head("main")
    assert f"{METADATA_ANSWER_CAP:,}" in str(raised.value)
    # What the server managed to send: the cap, plus what the sockets' buffers held.
    assert proxy.sent < METADATA_ANSWER_CAP + 32 * 2**20, proxy.sent
    no_secret_in(raised.value)


def test_tree_over_its_cap_is_refused(proxy: HostileProxy) -> None:
    """A tree listing past the tree cap (GitHub cuts at 7 MB) raises AnswerTooLarge."""
    repo = repo_at(proxy, timeout=30)
    proxy.add("GET", r"/git/trees/", huge(TREE_ANSWER_CAP + 2**20, declared=True))
    with pytest.raises(AnswerTooLarge):
        repo.read_folder("main", "data")


class TestAnswerCaps:
    def test_each_endpoint_has_the_cap_github_can_fill(self) -> None:
        """Blobs get the blob cap, trees the tree cap, everything else the metadata cap."""
        base = "http://h/repos/o/r"
        assert answer_cap("GET", f"{base}/git/blobs/{'a' * 40}") == BLOB_ANSWER_CAP
        assert answer_cap("GET", f"{base}/git/trees/{'a' * 40}") == TREE_ANSWER_CAP
        assert answer_cap("POST", f"{base}/git/trees") == TREE_ANSWER_CAP
        assert answer_cap("POST", f"{base}/git/blobs") == METADATA_ANSWER_CAP
        assert answer_cap("GET", f"{base}/git/ref/heads/main") == METADATA_ANSWER_CAP

    def test_the_largest_blob_github_serves_fits_the_blob_cap(self) -> None:
        """A 100 MB blob, as GitHub sends it (base64, a newline every 60, JSON-escaped), fits."""
        size = 100 * 1000 * 1000
        encoded = (size + 2) // 3 * 4
        escaped_newlines = 2 * (encoded // 60)
        around = 400  # sha, size, url, node_id, encoding
        assert encoded + escaped_newlines + around < BLOB_ANSWER_CAP


# -- 3. lies: answers GitHub would never send --------------------------------------------------

_SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class Lie:
    method: str
    path: str
    act: Callable[[_Handler], None]
    call: Callable[[GitHubRepo, LocalHub], Any]
    write: bool = False


def _blob_sha(hub: LocalHub) -> str:
    return hub.git(REPO, "rev-parse", "main:README.md").strip()


def _read_head(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.get_head("main")


def _read_blob(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.get_blob(_blob_sha(hub))


def _read_commit(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.get_commit(head_of(hub))


def _read_root(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.read_folder(head_of(hub), "")


def _list_commits(repo: GitHubRepo, hub: LocalHub) -> Any:
    return list(repo.iter_commits(head_of(hub)))


def _recent_commits(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.recent_commits("main", since=time.time() - 3600)


def _create_blob(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.create_blob(b'{"id": 1}\n')


def _make_tree(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.create_tree(None, {"a.jsonl": _blob_sha(hub)})


def _post_tree(repo: GitHubRepo, hub: LocalHub) -> Any:
    """The Log's own tree request: files as inline text on the head's tree."""
    base = hub.git(REPO, "rev-parse", "main^{tree}").strip()
    return repo.post_tree(base, texts={"a.jsonl": b'{"id": 1}\n'}, blobs={}, deletes=[])


def _make_commit(repo: GitHubRepo, hub: LocalHub) -> Any:
    tree = hub.git(REPO, "rev-parse", "main^{tree}").strip()
    return repo.create_commit("m", tree, [head_of(hub)])


def _move_ref(repo: GitHubRepo, hub: LocalHub) -> Any:
    return repo.update_ref("main", head_of(hub))


def _rows(method: str, path: str, call: Any, *cases: tuple[str, Any], write: bool = False) -> Any:
    """Rows of lies on one endpoint, each made to the same call."""
    return [pytest.param(Lie(method, path, act, call, write), id=rid) for rid, act in cases]


_TREES, _BLOBS = r"/git/trees/", r"/git/blobs/"
_LIES = [
    *_rows(
        "GET",
        r"/git/ref/heads/main",
        _read_head,
        ("ref-not-json", raw_body(b"<html>proxy error</html>")),
        ("ref-json-cut-short", raw_body(b'{"ref": "refs/heads/main", "obj')),
        ("ref-is-a-list", lie(lambda d: [d])),
        ("ref-sha-is-a-number", lie(_set("object.sha", 123))),
        ("ref-sha-not-hex", lie(_set("object.sha", "z" * 40))),
        ("ref-sha-too-short", lie(_set("object.sha", "abc"))),
        ("ref-object-missing", lie(_set("object", ...))),
        ("ref-object-is-a-string", lie(_set("object", "x"))),
        ("ref-body-cut-short", cut_short),
    ),
    *_rows(
        "GET",
        _TREES,
        _read_root,
        ("tree-without-tree", lie(_set("tree", ...))),
        ("tree-is-a-dict", lie(_set("tree", {}))),
        ("tree-size-negative", lie(_set("tree.0.size", -1))),
        ("tree-size-string", lie(_set("tree.0.size", "9"))),
        ("tree-entry-sha-null", lie(_set("tree.0.sha", None))),
        ("tree-entry-path-slash", lie(_set("tree.0.path", "a/b"))),
        ("tree-entry-type-odd", lie(_set("tree.0.type", "x"))),
        ("tree-truncated-string", lie(_set("truncated", "no"))),
    ),
    *_rows(
        "GET",
        _BLOBS,
        _read_blob,
        ("blob-not-base64", lie(_set("content", "@@@@"))),
        ("blob-utf8-encoding", lie(_set("encoding", "utf-8"))),
        ("blob-cut-short", lie(_set("content", "YQ=="))),
        ("blob-content-number", lie(_set("content", 5))),
    ),
    *_rows(
        "GET",
        r"/git/commits/",
        _read_commit,
        ("commit-tree-number", lie(_set("tree", 7))),
        ("commit-parents-dict", lie(_set("parents", {}))),
        ("commit-message-null", lie(_set("message", None))),
    ),
    *_rows(
        "GET",
        r"/commits\?",
        _list_commits,
        ("commits-page-not-list", lie(lambda d: {"x": 1})),
        ("commits-page-sha-bad", lie(_set("0.sha", "nope"))),
    ),
    *_rows(
        "GET",
        r"/commits\?.*since=",
        _recent_commits,
        ("recent-commits-page-not-list", lie(lambda d: {"x": 1})),
        ("recent-commits-row-not-object", lie(lambda d: [1])),
        ("recent-commits-commit-a-string", lie(_set("0.commit", "x"))),
        ("recent-commits-html", raw_body(b"<h1>502</h1>")),
    ),
    *_rows(
        "POST",
        r"/git/blobs",
        _create_blob,
        ("blob-create-sha-number", lie(_set("sha", 42))),
        ("blob-create-not-json", raw_body(b"oops")),
        write=True,
    ),
    *_rows(
        "POST",
        r"/git/trees",
        _make_tree,
        ("tree-create-sha-missing", lie(_set("sha", ...))),
        ("tree-create-html", raw_body(b"<h1>502</h1>")),
        write=True,
    ),
    *_rows(
        "POST",
        r"/git/trees",
        _post_tree,
        ("tree-post-sha-missing", lie(_set("sha", ...))),
        ("tree-post-entry-path-nested", lie(_set("tree.0.path", "a/b"))),
        ("tree-post-entry-sha-bad", lie(_set("tree.0.sha", "zz"))),
        ("tree-post-entry-size-negative", lie(_set("tree.0.size", -1))),
        ("tree-post-truncated-string", lie(_set("truncated", "no"))),
        write=True,
    ),
    *_rows("POST", r"/git/commits", _make_commit, ("commit-list", lie(lambda d: [])), write=True),
    *_rows(
        "PATCH",
        r"/git/refs/",
        _move_ref,
        ("ref-update-not-json", raw_body(b"{{{")),
        ("ref-update-cut-short", cut_short),
        write=True,
    ),
]


def test_recent_commits_leave_out_rows_whose_date_or_message_is_no_such_thing(
    hub: LocalHub, proxy: HostileProxy
) -> None:
    """A listed commit whose committer date or message is not one is left out (the budget
    judges the rest); the server's clock comes from its Date header."""
    hub.seed_commit(REPO, {"a": b"1"}, message="one")
    hub.seed_commit(REPO, {"b": b"2"}, message="two")
    proxy.add("GET", r"/commits\?.*since=", lie(_set("0.commit.committer.date", "soon")))
    commits, server_now = repo_at(proxy).recent_commits("main", since=time.time() - 3600)
    assert [message for message, _ in commits] == ["one", "Initial commit"]
    assert server_now is not None
    assert abs(server_now - time.time()) < 60
    proxy.add("GET", r"/commits\?.*since=", lie(_set("0.commit.message", 5)))
    commits, _ = repo_at(proxy).recent_commits("main", since=time.time() - 3600)
    assert [message for message, _ in commits] == ["one", "Initial commit"]


@pytest.mark.parametrize("lie_", _LIES)
def test_lying_answer_is_a_malformed_answer(hub: LocalHub, proxy: HostileProxy, lie_: Lie) -> None:
    """A malformed, mistyped or cut-short answer is a GitHubError naming it, never anything else."""
    repo = repo_at(proxy)
    proxy.add(lie_.method, lie_.path, lie_.act)
    with pytest.raises(GitHubError) as raised:
        lie_.call(repo, hub)
    # A body cut short is the network's failure (TransientError); the rest are lies.
    expected = TransientError if lie_.act is cut_short else MalformedAnswer
    assert isinstance(raised.value, expected), repr(raised.value)
    assert raised.value.ambiguous is lie_.write, repr(raised.value)
    no_secret_in(raised.value)


def test_lying_write_in_the_flusher_keeps_the_records_pending(
    hub: LocalHub, proxy: HostileProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """flush() raises a GitHubError, stats() holds it, nothing 'unexpected'; then all land once."""
    with make_log(hub, api_url=proxy.url, token=TOKEN) as log:
        log.append({"id": 1})
        log.flush(timeout=30)
        proxy.add("POST", r"/git/trees", raw_body(b'{"sha": 12'))
        proxy.add("POST", r"/git/commits", lie(_set("sha", None)))
        log.append({"id": 2})
        with pytest.raises(GitHubError) as raised:
            log.flush(timeout=30)
        stats = log.stats()
        assert isinstance(stats.last_error, GitHubError), repr(stats.last_error)
        assert stats.pending == 1
        proxy.clear()
        log.append({"id": 3})
        log.flush(timeout=30)
    assert [r["id"] for r in committed_records(hub)] == [1, 2, 3]
    assert "unexpected error" not in caplog.text
    no_secret_in(raised.value, stats, caplog.text)


def test_lying_tree_reaches_tail_and_load_recent_as_a_github_error(
    hub: LocalHub, proxy: HostileProxy
) -> None:
    """tail() raises a GitHubError; GithubLog.load_recent() (which never raises) returns []."""
    with make_log(hub, api_url=proxy.url, token=TOKEN) as log:
        log.append({"id": 1})
        log.flush(timeout=30)
        proxy.add("GET", r"/git/trees/", lie(_set("tree", "nope")))
        with pytest.raises(GitHubError):
            log.tail(5)
    recent = GithubLog(
        TOKEN, REPO, path="data/interactions", api_url=proxy.url, pacing=None, flush_interval=0.05
    )
    try:
        assert asyncio.run(recent.load_recent(5)) == []
    finally:
        asyncio.run(recent.aclose())


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(raw_body(b"not json"), id="tree-not-json"),
        pytest.param(lie(_set("tree", 1)), id="tree-wrong-type"),
    ],
)
def test_cli_reports_a_lying_server_in_one_line(
    hub: LocalHub,
    proxy: HostileProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    attack: Callable[[_Handler], None],
) -> None:
    """gitjsonl tail prints one 'error' line naming GitHub's answer, not 'unexpected ...'."""
    with make_log(hub, api_url=proxy.url, token=TOKEN) as log:
        log.append({"id": 1})
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    proxy.add("GET", r"/git/trees/", attack)
    status = main(["--repo", REPO, "--api-url", proxy.url, "tail"])
    err = capsys.readouterr().err
    assert status == 3  # could not run
    assert err.count("\n") == 1, err
    assert err.startswith("gitjsonl: error: "), err
    assert "GitHub's answer" in err, err
    assert "unexpected" not in err, err
    assert SECRET not in err


# -- 4. redirects: reported as what they were, never followed off the API host ---------------

_REDIRECTS = [
    pytest.param("GET", 301, "elsewhere", id="read-301-to-another-host"),
    pytest.param("GET", 302, "same", id="read-302"),
    pytest.param("POST", 302, "same", id="write-302"),
    pytest.param("POST", 303, "same", id="write-303"),
    pytest.param("POST", 307, "elsewhere", id="write-307-to-another-host"),
    pytest.param("POST", 308, "same", id="write-308"),
    pytest.param("POST", 301, "same", id="write-301"),
]


def _create_blob_call(repo: GitHubRepo) -> Callable[[], Any]:
    return lambda: repo.create_blob(b'{"id": 1}\n')


@pytest.mark.parametrize(("method", "status", "where"), _REDIRECTS)
def test_redirect_is_reported_with_its_status(
    proxy: HostileProxy,
    elsewhere: _ElsewhereServer,
    method: str,
    status: int,
    where: str,
) -> None:
    """RepositoryMoved with the status GitHub sent; another host never sees a request."""
    repo = repo_at(proxy)
    base = elsewhere_url(elsewhere) if where == "elsewhere" else proxy.url
    path = r"/git/ref/heads/main" if method == "GET" else r"/git/blobs"
    proxy.add(method, path, redirect(status, f"{base}/repos/{REPO}/git/moved"))
    call = (lambda: repo.get_head("main")) if method == "GET" else _create_blob_call(repo)
    with pytest.raises(RepositoryMoved) as raised:
        call()
    assert raised.value.status == status
    assert f"answered {status}" in str(raised.value)
    assert elsewhere.requests == []
    no_secret_in(raised.value)


def test_same_host_301_on_a_read_is_still_followed(hub: LocalHub, proxy: HostileProxy) -> None:
    """GitHub's 301 for a renamed repository's read is followed on the API host (once)."""
    repo = repo_at(proxy)
    target = f"{proxy.url}/repos/{REPO}/git/ref/heads/main"
    proxy.add("GET", r"/git/ref/heads/renamed$", redirect(301, target))
    assert repo.get_head("renamed") == head_of(hub)


def test_301_to_the_same_path_is_a_repository_moved(proxy: HostileProxy) -> None:
    """A 301 naming the path just asked for is RepositoryMoved (PyGithub: a bare RuntimeError)."""
    repo = repo_at(proxy)
    target = f"{proxy.url}/repos/{REPO}/git/ref/heads/main?again=1"
    proxy.add("GET", r"/git/ref/heads/main", redirect(301, target))
    with pytest.raises(RepositoryMoved) as raised:
        repo.get_head("main")
    assert raised.value.status == 301


def test_304_is_an_answer_not_a_redirect(proxy: HostileProxy) -> None:
    """A 304 Not Modified (a conditional GET's answer) passes the transport untouched."""
    repo = repo_at(proxy)
    proxy.add("GET", r"/rate_limit", raw_body(b"", status=304))
    url = f"{proxy.url}/rate_limit"
    status, _headers, _body = repo._repo.requester.requestJson("GET", url)
    assert status == 304


@pytest.mark.parametrize("base", ["{api}", ""], ids=["absolute", "relative"])
def test_redirect_loop_on_the_api_host_ends(proxy: HostileProxy, base: str) -> None:
    """301s that go round in circles end in RepositoryMoved, not a RecursionError."""
    repo = repo_at(proxy)
    refs = base.format(api=proxy.url) + "/repos/owner/repo/git/ref/heads"
    proxy.add("GET", r"/git/ref/heads/main$", redirect(301, f"{refs}/b"))
    proxy.add("GET", r"/git/ref/heads/b$", redirect(301, f"{refs}/main"))
    with pytest.raises(RepositoryMoved):
        repo.get_head("main")


# -- 5. pagination: a Link to another host -----------------------------------------------------


#: Where a Link sends the next page: {elsewhere} is another port, {port} the API's own.
_FOREIGN_LINKS = [
    pytest.param("{elsewhere}/repos/owner/repo/commits?page=2", id="another-port"),
    pytest.param("http://localhost:{port}/repos/owner/repo/commits?page=2", id="another-name"),
    pytest.param("https://127.0.0.1:{port}/repos/owner/repo/commits?page=2", id="another-scheme"),
    pytest.param("//127.0.0.2:{port}/repos/owner/repo/commits?page=2", id="scheme-relative"),
]


@pytest.mark.parametrize("link", _FOREIGN_LINKS)
def test_link_to_another_host_is_not_followed(
    hub: LocalHub, proxy: HostileProxy, elsewhere: _ElsewhereServer, link: str
) -> None:
    """iter_commits raises a GitHubError naming the Link; nothing goes to the other host."""
    port = urllib.parse.urlsplit(proxy.url).port
    link = link.format(elsewhere=elsewhere_url(elsewhere), port=port)
    proxy.add("GET", r"/commits\?", with_link(link))
    repo = repo_at(proxy)
    with pytest.raises(GitHubError) as raised:
        list(repo.iter_commits(head_of(hub)))
    assert not isinstance(raised.value, TransientError)
    assert "outside the API" in str(raised.value)
    assert elsewhere.requests == []
    no_secret_in(raised.value)


_UNDER_O = """
import sys
if not sys.flags.optimize:
    sys.exit(99)  # asserts still on: this run would prove nothing
from gitjsonl._cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("optimize", [True, False], ids=["python-O", "python"])
def test_cli_never_sends_the_token_to_a_linked_host(
    hub: LocalHub,
    proxy: HostileProxy,
    elsewhere: _ElsewhereServer,
    tmp_path: Any,
    optimize: bool,
) -> None:
    """``gitjsonl verify`` against a Link to another host: one error line, the host sees nothing,
    also under ``python -O`` (where PyGithub's assert is gone)."""
    with make_log(hub, api_url=proxy.url, token=TOKEN) as log:
        log.append({"id": 1})
    proxy.add("GET", r"/commits\?", with_link(f"{elsewhere_url(elsewhere)}/repos/{REPO}/commits"))
    env = {**os.environ, "GITHUB_TOKEN": TOKEN, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    argv = ["--repo", REPO, "--api-url", proxy.url, "verify"]
    if optimize:
        command = [sys.executable, "-O", "-c", _UNDER_O, *argv]
    else:
        command = [sys.executable, "-m", "gitjsonl", *argv]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert elsewhere.requests == []
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("gitjsonl: error: "), done.stderr
    assert "outside the API" in lines[-1], done.stderr
    assert "Traceback" not in done.stderr
    assert "AssertionError" not in done.stderr
    assert SECRET not in done.stdout + done.stderr


# -- 6. secrets in what the server says ----------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN, PLAIN_TOKEN], ids=["ghp-token", "token-of-no-shape"])
@pytest.mark.parametrize("status", [401, 422, 500])
def test_error_echoing_the_token_shows_it_nowhere(
    hub: LocalHub,
    proxy: HostileProxy,
    caplog: pytest.LogCaptureFixture,
    status: int,
    token: str,
) -> None:
    """The exception, the log lines and stats() never hold the token a server echoes."""
    caplog.set_level(logging.DEBUG)
    with make_log(hub, api_url=proxy.url, token=token) as log:
        log.append({"id": 1})
        log.flush(timeout=30)
        proxy.add("*", r"/git/", echo_token(status))
        log.append({"id": 2})
        with pytest.raises(GitHubError) as raised:
            log.flush(timeout=30)
        assert raised.value.status == status
        assert "secret removed" in str(raised.value)
        stats = log.stats()
        proxy.clear()
    no_secret_in(raised.value, stats, stats.last_error, caplog.text)
    cause = raised.value.__cause__
    assert cause is None or SECRET not in str(cause)


def test_huge_error_page_is_a_short_message(proxy: HostileProxy) -> None:
    """A 2 MB error page becomes a message of at most a few hundred characters."""
    repo = repo_at(proxy)
    proxy.add("GET", r"/git/ref/heads/main", echo_token(500, padding=2_000_000))
    with pytest.raises(TransientError) as raised:
        repo.get_head("main")
    assert len(str(raised.value)) < 800
    assert "characters in all" in str(raised.value)
    no_secret_in(raised.value)
    assert raised.value.__cause__ is None  # the page is not kept in the chain either


_SECRETS_IN_TEXT = [
    pytest.param(f"token {TOKEN}", id="ghp"),
    pytest.param(f"github_pat_11AAAA{SECRET}_abcdefghijklmnop", id="fine-grained"),
    pytest.param(f"ghs_{SECRET}abcdefghijkl", id="installation"),
    pytest.param(f"gho_{SECRET}abcdefghijkl", id="oauth"),
    pytest.param(f"ghu_{SECRET}abcdefghijkl", id="user-to-server"),
    pytest.param(f"ghr_{SECRET}abcdefghijkl", id="refresh"),
    pytest.param(f"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOi{SECRET}.c2lnbmF0dXJl", id="jwt"),
    pytest.param(f"Authorization: Bearer {SECRET}0123", id="bearer"),
    pytest.param(f'{{"token": "{SECRET}"}}', id="json-token-field"),
    pytest.param(
        f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n-----END RSA PRIVATE KEY-----", id="key"
    ),
    pytest.param(f"x {PLAIN_TOKEN} y", id="remembered-token"),
]


class TestRedact:
    @pytest.mark.parametrize("text", _SECRETS_IN_TEXT)
    def test_credentials_are_removed(self, text: str) -> None:
        """Every shape of credential, and a token this process was given, is removed."""
        remember_secret(PLAIN_TOKEN)
        assert SECRET not in redact(f"before {text} after")
        assert SECRET not in server_text(f"before {text} after")

    def test_words_are_not_secrets(self) -> None:
        """Ordinary text about tokens is left alone."""
        text = "Bad credentials: the token expired, a new token required"
        assert redact(text) == text

    def test_server_text_is_bounded_and_on_one_line(self) -> None:
        """A long text is cut to the limit and says how long it was; newlines become spaces."""
        shown = server_text("line one\nline two " + "x" * 5000, 100)
        assert "\n" not in shown
        assert shown.startswith("line one line two ")
        assert len(shown) < 140
        assert "5,018 characters in all" in shown

    def test_github_error_messages_are_scrubbed_and_bounded(self) -> None:
        """A GitHubError built from any text holds no credential and at most its limit."""
        error = GitHubError(f"{TOKEN} " + "y" * 10_000, status=500)
        no_secret_in(error)
        assert len(error.message) < GitHubError.MESSAGE_LIMIT + 50


# -- 7. where the token may go: the API URL ------------------------------------------------------

_INSECURE = [
    pytest.param("http://ghe.example.com/api/v3", id="http-host"),
    pytest.param("http://10.0.0.5:8080", id="http-private-address"),
    pytest.param("http://127.0.0.1.example.com", id="http-loopback-look-alike"),
    pytest.param("HTTP://example.com", id="http-upper-case"),
]


@pytest.mark.parametrize("url", _INSECURE)
def test_http_api_url_off_this_machine_is_refused(url: str) -> None:
    """A Log on a non-loopback http:// API URL is a ValueError saying how to allow it."""
    with pytest.raises(ValueError, match="allow_insecure_http") as raised:
        gitjsonl.Log(REPO, path="data/x", token=TOKEN, api_url=url, pacing=None)
    assert "clear text" in str(raised.value)
    no_secret_in(raised.value)


@pytest.mark.parametrize("url", _INSECURE)
def test_the_seam_refuses_insecure_http_whoever_builds_it(url: str) -> None:
    """GitHubRepo itself refuses the URL (the check does not rely on its callers)."""
    with pytest.raises(ValueError, match="clear text"):
        GitHubRepo(REPO, Credentials(url, TOKEN))
    GitHubRepo(REPO, Credentials(url, TOKEN, allow_insecure_http=True)).close()


@pytest.mark.parametrize("url", _INSECURE)
def test_http_api_url_is_accepted_when_asked_for(url: str) -> None:
    """allow_insecure_http=True accepts the URL (and the config says so)."""
    log = gitjsonl.Log(
        REPO, path="data/x", token=TOKEN, api_url=url, pacing=None, allow_insecure_http=True
    )
    log.close(timeout=0)
    assert log.config.allow_insecure_http is True


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "http://127.3.4.5:9"],
)
def test_http_to_loopback_is_accepted(url: str) -> None:
    """http:// to this machine (localhub) needs nothing more."""
    assert check_api_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{SECRET}@ghe.example.com/api/v3",
        f"https://{SECRET}@ghe.example.com",
        f"http://x:{SECRET}@127.0.0.1:9",
    ],
)
def test_credentials_in_the_api_url_are_refused_unshown(url: str) -> None:
    """A user name or password in api_url is a ValueError that does not repeat them."""
    with pytest.raises(ValueError, match="user name or password") as raised:
        gitjsonl.Log(REPO, path="data/x", api_url=url, pacing=None)
    no_secret_in(raised.value)


def test_cli_refuses_insecure_http_unless_flagged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line refuses http:// off this machine; --allow-insecure-http lets it try."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    argv = ["--repo", REPO, "--api-url", "http://ghe.invalid", "tail"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--allow-insecure-http" in err
    assert SECRET not in err
    assert main(["--allow-insecure-http", *argv]) == 3  # it tried: no such host
    err = capsys.readouterr().err
    assert "clear text" not in err
    assert SECRET not in err


def test_graphql_beside_an_enterprise_api_is_let_through_and_nothing_else() -> None:
    """On GitHub Enterprise, GraphQL lives at /api/graphql beside /api/v3: the seam lets
    PyGithub's GraphQL URL through, and still refuses any other URL outside the API."""
    repo = GitHubRepo(REPO, Credentials("https://ghe.example.com/api/v3", TOKEN))
    try:
        requester = repo._repo.requester
        assert requester.graphql_url == "https://ghe.example.com/api/graphql"
        check = requester._Requester__customConnection
        assert check(requester.graphql_url) is None
        with pytest.raises(GitHubError, match="outside the API"):
            check("https://ghe.example.com/graphql")
    finally:
        repo.close()


def test_origin_compares_scheme_host_and_port() -> None:
    """The API's origin holds its own URLs only: another scheme, host or port is foreign."""
    origin = Origin.of("https://ghe.example.com/api/v3")
    assert origin.holds("https://GHE.example.com:443/api/v3/repos/o/r", within_prefix=True)
    assert not origin.holds("https://ghe.example.com/elsewhere", within_prefix=True)
    assert not origin.holds("http://ghe.example.com/api/v3")
    assert not origin.holds("https://ghe.example.com:8443/api/v3")
    assert not origin.holds("https://evil.example.com/api/v3")
    assert not origin.holds("https://ghe.example.com:99999/api/v3")
