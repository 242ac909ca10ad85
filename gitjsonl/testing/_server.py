"""The HTTP layer: sockets, authentication, rate limits, faults and the request log.

Handlers in ``_api`` compute answers; this module decides whether a request
reaches them at all, what is done to the answer on the way out (a fault may
replace or swallow it), and records every exchange.
"""

from __future__ import annotations

import contextlib
import http
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._api import WRITE_METHODS, Api, ApiError, ApiRequest, ApiResponse
from ._auth import AuthError, Grant, Tokens, app_endpoint
from ._faults import Fault, FaultPlan
from ._gitstore import GitRepo
from ._graphql import PATHS as GRAPHQL_PATHS
from ._graphql import Graphql, unauthenticated
from ._ratelimit import PrimaryState, RateLimiter, rate_limit_body
from ._shapes import DOCS

log = logging.getLogger(__name__)

# The message as GitHub sends it today (apache/devlake#1322 quotes its first sentence;
# the request-id sentence is recalled, not sourced).
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
SECONDARY_DOC = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
# The limit on content creation (writes), as GitHub words it: an HTTP dump quoted in a
# comment of an Octokit client (hitGHSecondaryRateLimit), and matched verbatim by
# aiogithubapi's MESSAGE_EXCEPTIONS.
CONTENT_CREATION_MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content "
    "creation. Please retry your request again later."
)
CONTENT_CREATION_DOC = (
    "https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"
)
# A 100 MB blob is ~134 MB of base64 inside JSON: the cap leaves room for that.
DEFAULT_MAX_BODY = 200 * 1024 * 1024
#: Connections served at once (a thread each); past it a new one gets 503 and is closed.
DEFAULT_MAX_HANDLERS = 256
_MAX_LINE = 65536
# What an overloaded GitHub front end answers (a 503; the body is recalled, not sourced).
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
)
_BUSY_BODY = b'{"message":"Service Unavailable: too many connections","documentation_url":""}'


@dataclass(frozen=True)
class RequestRecord:
    """One request as localhub saw it; ``status`` is 0 when the connection was dropped."""

    method: str
    path: str
    query: str
    status: int
    bytes_in: int
    bytes_out: int
    token: str | None
    duration: float

    @property
    def write(self) -> bool:
        """Whether the request changes something: a POST, PATCH, PUT or DELETE, but not a
        GraphQL query (a read sent as a POST)."""
        return self.method in WRITE_METHODS and self.path not in ("/graphql", "/api/graphql")


class HubServer(ThreadingHTTPServer):
    """A threading HTTP server holding the shared state of one localhub."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        api: Api,
        limiter: RateLimiter,
        faults: FaultPlan,
        tokens: Tokens,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        idle_timeout: float | None = 30.0,
        max_handlers: int = DEFAULT_MAX_HANDLERS,
    ) -> None:
        super().__init__(address, _Handler)
        self.max_handlers = max_handlers  # read at every connection: a test may lower it
        self._handlers = 0
        self._handlers_lock = threading.Lock()
        self.api = api
        self.limiter = limiter
        self.faults = faults
        self.tokens = tokens
        self.graphql = Graphql()
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.clock_skew = 0.0  # seconds added to the Date header
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else host
        self.base_url = f"http://{host_text}:{port}"
        self.records: list[RequestRecord] = []
        self.records_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, unless ``max_handlers`` are busy."""
        with self._handlers_lock:
            busy = self._handlers >= self.max_handlers
            if not busy:
                self._handlers += 1
        if busy:
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._handler_done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._handler_done()

    def _handler_done(self) -> None:
        with self._handlers_lock:
            self._handlers -= 1

    @property
    def handlers(self) -> int:
        """Connections being served now."""
        with self._handlers_lock:
            return self._handlers

    def track(self, conn: socket.socket, *, add: bool) -> None:
        """Remember open connections so :meth:`close_connections` can end them."""
        with self._conn_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self, timeout: float = 5.0) -> None:
        """Shut down every open keep-alive connection and wait for handlers to finish."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._conn_lock:
                if not self._connections:
                    return
            time.sleep(0.01)

    def record(self, rec: RequestRecord) -> None:
        """Append to the request log."""
        with self.records_lock:
            self.records.append(rec)


class _Dropped(Exception):
    """The connection is to be closed without an answer."""


class _Refused(Exception):
    """The request cannot be read (bad framing, too large): answer, then close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _refuse_busy(conn: socket.socket) -> None:
    """Answer 503 on a connection no thread is left for (from the accepting thread: brief)."""
    with contextlib.suppress(OSError):
        conn.settimeout(1.0)
        conn.sendall(_BUSY % (len(_BUSY_BODY), _BUSY_BODY))
    log.warning("localhub: more than the connections allowed at once; answered 503")


def decode_segments(raw_path: str) -> tuple[str, ...] | None:
    """Percent-decode each path segment exactly once; None for undecodable or control bytes.

    Decoding per segment keeps ``/repos/a%2Fb/c`` from reading as owner ``a``.
    A trailing slash is ignored, as GitHub does.
    """
    parts = raw_path.split("/")[1:]
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    try:
        segments = tuple(unquote(part, errors="strict") for part in parts)
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for part in segments for c in part):
        return None
    return () if segments == ("",) else segments


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "localhub"
    sys_version = ""
    # Headers and body go out in separate writes; with Nagle's algorithm the
    # body waits for the client's delayed ACK (~40 ms a request on loopback).
    disable_nagle_algorithm = True
    server: HubServer

    def setup(self) -> None:
        super().setup()
        # An idle keep-alive connection (or a stalled body) times out and is closed
        # instead of holding a handler thread forever.
        self.connection.settimeout(self.server.idle_timeout)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def date_time_string(self, timestamp: float | None = None) -> str:
        # Every answer carries Date; a skewed hub lets clients measure clock skew.
        when = time.time() if timestamp is None else timestamp
        return super().date_time_string(when + self.server.clock_skew)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    # ---- the request cycle --------------------------------------------------

    def _read_body(self) -> bytes:
        """The body, never more than ``max_body`` bytes of it (413 past that, 400 if malformed)."""
        cap = self.server.max_body
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if codings:
            # RFC 9112 6.1 and 6.3: both headers are a message that may be smuggled;
            # a coding we cannot decode (anything but one "chunked") cannot be framed.
            # Either is 400 and the connection closed (``_Refused`` closes it).
            if lengths:
                raise _Refused(400, "A request with both Content-Length and Transfer-Encoding")
            names = [name.strip().lower() for text in codings for name in text.split(",")]
            if names != ["chunked"]:
                raise _Refused(400, "Problems parsing the Transfer-Encoding header")
            return self._read_chunked(cap)
        if not lengths:
            return b""
        if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
            raise _Refused(400, "Problems parsing the Content-Length header")  # recalled
        length = int(lengths[0])
        if length > cap:
            raise _Refused(413, "Payload Too Large")  # recalled, not sourced
        return _read_exact(self.rfile, length)

    def _read_chunked(self, cap: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if not line.endswith(b"\n"):
                raise _Refused(400, "Problems parsing the chunked body")  # recalled
            size_text = line.split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Refused(400, "Problems parsing the chunked body") from None
            if size < 0 or not size_text.isalnum():
                raise _Refused(400, "Problems parsing the chunked body")
            if size == 0:
                while self.rfile.readline(_MAX_LINE + 1).strip():
                    pass
                return b"".join(chunks)
            total += size
            if total > cap:
                raise _Refused(413, "Payload Too Large")  # recalled, not sourced
            chunks.append(_read_exact(self.rfile, size))
            self.rfile.readline(_MAX_LINE + 1)

    def _token(self) -> str | None:
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
        return header.strip()

    def _serve(self) -> None:
        started = time.monotonic()
        server = self.server
        split = urlsplit(self.path)
        segments = decode_segments(split.path)
        path = split.path if segments is None else "/" + "/".join(segments)
        token = None
        body = b""
        status = 0
        sent = 0
        recorded = False

        def record(status: int, sent: int) -> None:
            # Before the answer goes out: a client that has its answer finds it logged.
            nonlocal recorded
            if recorded:
                return
            recorded = True
            server.record(
                RequestRecord(
                    method=self.command,
                    path=path,
                    query=split.query,
                    status=status,
                    bytes_in=len(body),
                    bytes_out=sent,
                    token=token,
                    duration=time.monotonic() - started,
                )
            )

        try:
            body = self._read_body()
            token = self._token()
            fault = server.faults.pick(self.command, path)
            if fault is not None and fault.action == "drop":
                raise _Dropped
            if fault is not None and fault.action == "latency":
                time.sleep(fault.delay)
            if fault is not None and fault.gate is not None:
                fault.gate.hold(fault.delay)
            state: PrimaryState | None = None
            extra: dict[str, str] = {}
            if fault is not None and fault.action == "error":
                response = _fault_response(fault)
            elif fault is not None and fault.action == "secondary_limit":
                response = _secondary_response(
                    fault.retry_after,
                    fault.answer_status,
                    content_creation=self.command in WRITE_METHODS,
                )
            elif segments is None:
                response = _json_error(ApiError(404, "Not Found"))
            else:
                response, state = self._process(segments, split.query, token, body)
            if fault is not None and fault.action == "error_after":
                response = _fault_response(fault)
            if fault is not None and fault.action == "drop_after":
                raise _Dropped
            if state is None:
                state, _ = server.limiter.primary(token, count=False)
            extra.update(_rate_headers(state))
            status, sent = self._send(response, extra, record)
        except _Dropped:
            self.close_connection = True
            status = 0
        except _Refused as refused:
            # The rest of the body is never read: answer and close the connection.
            self.close_connection = True
            answer = ApiResponse.json(
                refused.status, {"message": refused.message, "documentation_url": DOCS}
            )
            try:
                status, sent = self._send(answer, {"Connection": "close"}, record)
            except OSError:
                status = 0
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            log.exception("localhub: unexpected error answering %s %s", self.command, self.path)
            try:
                status, sent = self._send(
                    ApiResponse.json(500, {"message": "Server Error", "documentation_url": ""}),
                    {},
                    record,
                )
            except OSError:
                self.close_connection = True
        finally:
            record(status, sent)

    def _process(
        self, segments: tuple[str, ...], query: str, token: str | None, body: bytes
    ) -> tuple[ApiResponse, PrimaryState | None]:
        server = self.server
        answered = app_endpoint(server.tokens, self.command, segments, token, server.base_url)
        if answered is not None:
            return ApiResponse.json(*answered), None
        try:
            grant = server.tokens.resolve(token)
        except AuthError as exc:
            # Unknown and expired tokens alike (GitHub gives no hint which).
            return _json_error(ApiError(401, str(exc))), None
        access = grant.access if grant is not None else "anonymous"
        if segments == ("rate_limit",):
            state, _ = server.limiter.primary(token, count=False)
            return ApiResponse.json(200, _rate_limit_body(state)), state
        if segments in GRAPHQL_PATHS and server.graphql.enabled and self.command == "POST":
            return self._graphql(body, grant if token is not None else None), None
        state, allowed = server.limiter.primary(token, count=True)
        if not allowed:
            error = ApiError(
                403,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support "
                "for help, please include the request ID "
                f"{uuid.uuid4().hex[:16].upper()}.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
            return _json_error(error), state
        if self.command in WRITE_METHODS and access == "write":
            wait = server.limiter.secondary_check(token)
            if wait is not None:
                limits = server.limiter.secondary
                status = limits.status if limits else 403
                return _secondary_response(wait, status, content_creation=True), state
        request = ApiRequest(
            method=self.command,
            raw_query=query,
            segments=segments,
            query=dict(parse_qsl(query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=server.base_url,
            access=access,
            repos=grant.repos if grant is not None else None,
            kind=grant.kind if grant is not None else "anonymous",
        )
        try:
            response = server.api.handle(request)
        except ApiError as error:
            return _json_error(error), state
        if response.status == 304 and token is not None:
            # GitHub does not count a 304 to an authorized request (see _conditional).
            state = server.limiter.refund(token, state)
        return response, state

    def _graphql(self, body: bytes, grant: Grant | None) -> ApiResponse:
        """GraphQL: a token required, even by an open hub; not counted against the REST
        API's rate limit (GitHub counts it apart, ``x-ratelimit-resource: graphql``)."""
        server = self.server
        if grant is None:
            return ApiResponse.json(*unauthenticated())

        def repo_for(full_name: str) -> GitRepo | None:
            if grant.repos is not None and full_name not in grant.repos:
                return None
            return server.api.store.get(full_name)

        status, payload = server.graphql.answer(body, repo_for)
        return ApiResponse.json(status, payload, {"X-RateLimit-Resource": "graphql"})

    def _send(
        self,
        response: ApiResponse,
        extra: dict[str, str],
        before: Callable[[int, int], None],
    ) -> tuple[int, int]:
        before(response.status, len(response.body))
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if response.status != 304:  # GitHub's 304 carries none (as issue 24 reports it)
            self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        self.send_header("X-GitHub-Request-Id", uuid.uuid4().hex[:20].upper())
        for key, value in {**extra, **response.headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()
        return response.status, len(response.body)


def _read_exact(stream: Any, size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise ConnectionError("the client closed the connection mid-body")
    return bytes(data)


def _json_error(error: ApiError) -> ApiResponse:
    return ApiResponse.json(error.status, error.body())


def _fault_response(fault: Fault) -> ApiResponse:
    status = fault.answer_status
    message = fault.message
    if message is None:
        try:
            message = http.HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
    body = {"message": message, "documentation_url": fault.documentation_url}
    if fault.message is not None:
        body["status"] = str(status)
    return ApiResponse.json(status, body)


def _secondary_response(
    retry_after: int | None, status: int = 403, *, content_creation: bool = False
) -> ApiResponse:
    if content_creation:
        message, doc = CONTENT_CREATION_MESSAGE, CONTENT_CREATION_DOC
    else:
        message = SECONDARY_MESSAGE.format(request_id=uuid.uuid4().hex[:16].upper())
        doc = SECONDARY_DOC
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    body = {"message": message, "documentation_url": doc}
    return ApiResponse(status, json.dumps(body).encode(), headers)


def _rate_headers(state: PrimaryState) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(state.limit),
        "X-RateLimit-Remaining": str(state.remaining),
        "X-RateLimit-Used": str(state.used),
        "X-RateLimit-Reset": str(state.reset),
        "X-RateLimit-Resource": "core",
    }


def _rate_limit_body(state: PrimaryState) -> dict[str, Any]:
    return rate_limit_body(state)


__all__ = ["Fault", "HubServer", "RequestRecord"]
