"""The transport under PyGithub: every request bounded in time and size, and kept on the API host.

requests' ``timeout=`` bounds each socket operation, not a request: a server
that sends one byte a second holds a request for ever, and one that sends
256 MB has it all read into memory. Here, under PyGithub's own connection
classes (``github.Requester``'s ``HTTPRequestsConnectionClass``, which keeps a
``requests.Session`` per host), a ``BoundedAdapter`` is mounted that

- gives each call of ``GitHubRepo`` one deadline (``deadline()``), which
  connecting, sending and every read of the answer share: before each
  ``recv`` the socket's timeout is set to the time left (``_DeadlineReader``),
  so a dripping server is cut off when the time is spent;
- reads the body itself, at most ``answer_cap`` bytes for the endpoint
  (what GitHub can legitimately send), and refuses a ``Content-Length``
  past the cap without reading anything;
- drops the headers read as numbers or dates (``Retry-After``,
  ``X-RateLimit-*``) whose values are neither (``_answers.unreadable_headers``):
  PyGithub would raise a bare ``ValueError`` or ``OverflowError`` on them;
- sends nothing to a host other than the API's (scheme, host and port), and
  turns every redirect except a same-host 301 on a read (which PyGithub follows:
  GitHub's answer for a renamed repository) into ``RepositoryMoved`` with the
  status it really was.

``install`` hooks a PyGithub ``Requester``: its connection classes and its
``__customConnection`` (where PyGithub checks a URL from an answer, a ``Link``
header's next page, with ``assert``: gone under ``python -O``, after which it
would send the token to any host). These are PyGithub's private names; if a
PyGithub release renames them, ``install`` raises rather than run unguarded.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.exceptions

from ._answers import unreadable_headers
from ._config import MiB, Origin
from ._exceptions import (
    AnswerTooLarge,
    GitHubError,
    MalformedAnswer,
    RepositoryMoved,
    TransientError,
)
from ._redact import server_text

__all__ = [
    "BLOB_ANSWER_CAP",
    "GRAPHQL_ANSWER_CAP",
    "METADATA_ANSWER_CAP",
    "REDIRECTS",
    "TREE_ANSWER_CAP",
    "BoundedAdapter",
    "Origin",
    "answer_cap",
    "deadline",
    "install",
]

#: ``GET git/blobs/{sha}``: blobs up to 100 MB (GitHub's limit), as base64 with a
#: newline every 60 characters (JSON-escaped: two bytes each), plus the JSON around it.
BLOB_ANSWER_CAP = 140 * MiB
#: ``git/trees``: GitHub cuts a listing at 100,000 entries or 7 MB (``truncated``);
#: the JSON of an entry is several times its size in the tree object, hence the slack.
TREE_ANSWER_CAP = 32 * MiB
#: ``POST /graphql`` reading blobs: the query's text budget (``_reader``), JSON-escaped
#: (a quote or a newline in a JSON line is two bytes in the answer; a control byte six).
GRAPHQL_ANSWER_CAP = 16 * MiB
#: Everything else (a ref, a commit, a page of 100 commits, an error): a few kB in practice.
METADATA_ANSWER_CAP = 8 * MiB

#: The statuses that send a client elsewhere (304 Not Modified is an answer, not one of them:
#: a conditional GET's "nothing new").
REDIRECTS = frozenset({300, 301, 302, 303, 305, 307, 308})

#: Same-host 301s PyGithub may follow within one call (a rename, then a transfer).
_MAX_FOLLOWED = 3

_CHUNK = 64 * 1024


def answer_cap(method: str, path: str) -> int:
    """The most GitHub can send in answer to ``method path`` (a successful answer)."""
    if method == "GET" and "/git/blobs/" in path:
        return BLOB_ANSWER_CAP
    if "/git/trees" in path:
        return TREE_ANSWER_CAP
    if method == "POST" and urllib.parse.urlsplit(path).path.endswith("/graphql"):
        return GRAPHQL_ANSWER_CAP
    return METADATA_ANSWER_CAP


def refuse_foreign(url: str, origin: Origin, *, what: str) -> None:
    """``GitHubError`` unless ``url`` (relative, or absolute on the API host) stays with the API."""
    if url.startswith("/") and not url.startswith("//"):
        return
    if not origin.holds(url, within_prefix=True):
        raise GitHubError(
            f"{what} points to {server_text(_without_query(url), 200)}, outside the API "
            f"({origin}{origin.prefix}): not followed, the token is only ever sent to the API"
        )


def _without_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# -- one deadline per call ------------------------------------------------------------------


class _Call(threading.local):
    deadline: float | None = None
    timeout: float = 0.0
    followed: int = 0


_call = _Call()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every request this thread makes inside shares one deadline, ``seconds`` from now."""
    saved = (_call.deadline, _call.timeout, _call.followed)
    _call.deadline, _call.timeout, _call.followed = time.monotonic() + seconds, seconds, 0
    try:
        yield
    finally:
        _call.deadline, _call.timeout, _call.followed = saved


def _time_left() -> float | None:
    if _call.deadline is None:
        return None
    return _call.deadline - time.monotonic()


class _DeadlineReader(io.RawIOBase):
    """A socket's reader that gives each ``recv`` only the time left to the request."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = _time_left()
        if left is not None:
            if left <= 0:
                raise TimeoutError("the request's time ran out")
            self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading the status line, headers and body under the deadline."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        # Nothing has been read yet: the buffered reader can be swapped for one over ours.
        self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock))


class _DeadlineConnection:
    """Connecting and sending under the deadline too (a mixin for urllib3's connections)."""

    timeout: Any
    sock: socket.socket | None

    def _bound_timeout(self) -> None:
        left = _time_left()
        if left is not None:
            left = max(left, 0.001)
            current = self.timeout
            self.timeout = left if not isinstance(current, (int, float)) else min(current, left)

    def connect(self) -> None:
        self._bound_timeout()
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._bound_timeout()
        super().request(*args, **kwargs)  # type: ignore[misc]


_WITH_DEADLINE: dict[type, type] = {}
_WITH_DEADLINE_LOCK = threading.Lock()


def _with_deadline(base: type) -> type:
    """``base`` (urllib3's connection class) connecting, sending and reading under the deadline."""
    with _WITH_DEADLINE_LOCK:
        made = _WITH_DEADLINE.get(base)
        if made is None:
            attributes = {"response_class": _DeadlineResponse}
            made = type(f"Deadline{base.__name__}", (_DeadlineConnection, base), attributes)
            _WITH_DEADLINE[base] = made
        return made


class _HTTPPool(urllib3.HTTPConnectionPool):
    # Looked up when a connection is made, not at import: whoever replaced urllib3's
    # class since (vcrpy, recording cassettes) still sees its requests.
    @property
    def ConnectionCls(self) -> Any:  # type: ignore[override]
        return _with_deadline(urllib3.HTTPConnectionPool.ConnectionCls)


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    @property
    def ConnectionCls(self) -> Any:  # type: ignore[override]
        return _with_deadline(urllib3.HTTPSConnectionPool.ConnectionCls)


_POOLS: dict[str, Any] = {"http": _HTTPPool, "https": _HTTPSPool}


# -- the adapter ----------------------------------------------------------------------------


class BoundedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with a deadline, a cap on each answer, and the API host only."""

    def __init__(self, origin: Origin, timeout: float, **kwargs: Any) -> None:
        self.origin = origin
        self.timeout = timeout
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are classes of their own
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        method, url = str(request.method or "GET").upper(), str(request.url or "")
        where = f"{method} {urllib.parse.urlsplit(url).path}"
        write = method not in ("GET", "HEAD")
        if not self.origin.holds(url):
            raise GitHubError(
                f"refused to send {where} to {server_text(_without_query(url), 200)}: "
                f"the token is only ever sent to the API ({self.origin})"
            )
        own = _call.deadline is None
        if own:  # a request outside a GitHubRepo call: a deadline of its own
            _call.deadline, _call.timeout = time.monotonic() + self.timeout, self.timeout
        timeout = _call.timeout
        try:
            left = max(_time_left() or 0.0, 0.001)
            kwargs["timeout"] = (left, left)
            try:
                response = super().send(request, stream=True, **kwargs)
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                if (_time_left() or 0.0) > 0:
                    raise  # not the deadline: translate_error says what it was
                sent = not isinstance(exc, requests.exceptions.ConnectTimeout)
                raise _late(where, timeout, ambiguous=write and sent) from exc
            self._refuse_redirect(response, method, where)
            for name in unreadable_headers(response.headers):
                del response.headers[name]  # as if GitHub had not sent it
            if response.status_code == 202 and not write:
                # PyGithub sleeps 5 s and asks again, for ever: GitHub sends 202 to a read only
                # while it computes statistics, which gitjsonl never asks for.
                response.close()
                raise MalformedAnswer(f"GitHub answered 202 Accepted to {where}", status=202)
            self._read_body(response, answer_cap(method, url), where, timeout, write=write)
            return response
        finally:
            if own:
                _call.deadline = None

    def _refuse_redirect(self, response: requests.Response, method: str, where: str) -> None:
        status = response.status_code
        if status not in REDIRECTS:
            return
        location = response.headers.get("location", "")
        asked = str(response.request.url or "")
        target = urllib.parse.urljoin(asked, location)
        follow = (
            status == 301
            and method in ("GET", "HEAD")
            and bool(location)
            and self.origin.holds(target, within_prefix=True)
            # PyGithub follows an absolute Location's path alone, and raises a bare
            # RuntimeError on a relative one or one naming the path it asked for.
            and bool(urllib.parse.urlsplit(location).scheme)
            and urllib.parse.urlsplit(target).path != urllib.parse.urlsplit(asked).path
            and _call.followed < _MAX_FOLLOWED
        )
        if follow:
            _call.followed += 1
            return
        response.close()
        shown = server_text(location, 200)
        if location and not self.origin.holds(target):
            why = "another host: not followed, the token is only ever sent to the API"
        elif _call.followed >= _MAX_FOLLOWED:
            why = "too many redirects"
        else:
            why = "not followed" if location else "no Location"
        raise RepositoryMoved(
            f"the repository has moved (GitHub answered {status} to {where}, "
            f"see {shown or 'no'} Location: {why})",
            status=status,
            location=shown,
        )

    @staticmethod
    def _read_body(
        response: requests.Response, cap: int, where: str, timeout: float, *, write: bool
    ) -> None:
        """Read the answer into ``response`` (at most ``cap`` bytes), or raise."""
        status = response.status_code
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > cap:
            response.close()
            raise _too_large(where, cap, status, write=write, declared=int(declared))
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.raw.read(_CHUNK, decode_content=True):
                size += len(chunk)
                if size > cap:
                    response.close()
                    raise _too_large(where, cap, status, write=write)
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            response.close()
            if (_time_left() or 0.0) <= 0:
                raise _late(where, timeout, ambiguous=write) from exc
            raise TransientError(
                f"GitHub's answer to {where} was cut short ({status}): {exc}",
                status=status,
                ambiguous=write,
            ) from exc
        response._content = b"".join(chunks)
        response._content_consumed = True
        # The connection goes back to the pool. A stand-in response (vcrpy's before 9) has no
        # pool to give it back to, and no release_conn.
        release = getattr(response.raw, "release_conn", None)
        if release is not None:
            release()
        if response.encoding is None:
            response.encoding = "utf-8"  # JSON is UTF-8 (RFC 8259): no guessing over 100 MB


def _late(where: str, timeout: float, *, ambiguous: bool) -> TransientError:
    return TransientError(
        f"GitHub did not answer {where} within timeout={timeout:g} s "
        "(connecting, sending and the whole answer)",
        ambiguous=ambiguous,
    )


def _too_large(
    where: str, cap: int, status: int, *, write: bool, declared: int | None = None
) -> AnswerTooLarge:
    said = f"announced {declared:,} bytes" if declared is not None else f"went past {cap:,} bytes"
    return AnswerTooLarge(
        f"GitHub's answer to {where} {said}, more than GitHub sends for it "
        f"({cap:,}); not read further",
        status=status,
        ambiguous=write,
    )


# -- hooking PyGithub -----------------------------------------------------------------------

_CONNECTION_CLASSES = (
    "_Requester__connectionClass",
    "_Requester__httpConnectionClass",
    "_Requester__httpsConnectionClass",
)
_CUSTOM_CONNECTION = "_Requester__customConnection"


def install(requester: Any, *, api_url: str, timeout: float) -> None:
    """Route every request of a PyGithub ``Requester`` through a ``BoundedAdapter``."""
    origin = Origin.of(api_url)
    missing = [n for n in (*_CONNECTION_CLASSES, _CUSTOM_CONNECTION) if not hasattr(requester, n)]
    if missing:
        raise RuntimeError(
            "gitjsonl cannot bound this PyGithub's requests (it has no "
            f"{', '.join(missing)}); install a PyGithub version gitjsonl supports"
        )
    requester.close()  # a connection made before now would have no adapter (none is, lazily)
    for name in _CONNECTION_CLASSES:
        setattr(requester, name, _bounded(getattr(requester, name), origin, timeout))

    # GraphQL's URL, which PyGithub makes itself: beside the API's prefix on its host
    # (/api/graphql beside GitHub Enterprise's /api/v3).
    graphql = getattr(requester, "graphql_url", None)

    def custom_connection(url: str) -> None:
        if url == graphql:
            return
        # PyGithub's own check is an assert (gone under -O) and lets any *.github.com host in.
        refuse_foreign(url, origin, what="a URL in GitHub's answer (a Link header's next page)")

    setattr(requester, _CUSTOM_CONNECTION, custom_connection)


def _bounded(make: Callable[..., Any], origin: Origin, timeout: float) -> Callable[..., Any]:
    def connection(*args: Any, **kwargs: Any) -> Any:
        cnx = make(*args, **kwargs)
        adapter = BoundedAdapter(
            origin,
            timeout,
            max_retries=0,  # retries are ours (PyGithub is built with retry=0 too)
            pool_connections=cnx.pool_size,
            pool_maxsize=cnx.pool_size,
        )
        cnx.adapter = adapter
        for prefix in ("http://", "https://"):
            cnx.session.mount(prefix, adapter)
        return cnx

    return connection
