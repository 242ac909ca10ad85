"""Every host on a token shares its budget and takes turns on a branch, through Redis.

A coordinator URL (``coordinator=``, ``--coordinator``, ``$GITJSONL_COORDINATOR``)
names a Redis (``redis://`` or ``rediss://``, as redis-py takes them: a
password, a database number, TLS). It is one more store behind the seam
``_budget`` and ``_turn`` already decide through: a store only stores.

- ``RedisStore`` keeps a token's budget state (``_budget_json.state_to_json``) in
  one Redis hash. A decision is ``_pacing``'s pure function run between two
  Lua scripts: ``LOAD`` answers the state, its version and Redis's clock
  (``TIME``), ``SAVE`` writes the new state only if the version is still the
  one loaded (else the decision runs again on the newer state). No
  read-modify-write race between hosts, and every host decides on Redis's
  clock, so clock skew between hosts changes nothing.
- ``RedisTurns`` is a branch's turn: a lease with an expiry (a writer that dies
  holding it costs at most ``TURN_LEASE``), fenced by a counter incremented per
  grant. The turn record (the chain of links ``_turn`` catches up from) is
  written only by the holder of the newest grant: a writer whose lease ran out
  and was granted to another cannot overwrite it.

Keys are named from the same hashes the host ledger names its files with (never
the token), under a settable prefix, and every key has a TTL, so one Redis
serves many logs and tokens and abandoned keys expire.

Redis faults never cost a record: every call is bounded by ``SOCKET_TIMEOUT``;
an error, a timeout or an answer of the wrong shape makes the ``Log`` use the
host's stores instead (one WARNING), and Redis is tried again at most every
``RETRY_EVERY`` seconds (one INFO when it answers). Records are never kept in
Redis: losing it loses only pacing and turns, and the fast-forward check keeps
the branch whole meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import _ledger
from ._budget_json import state_from_json, state_to_json
from ._pacing import BudgetState, inherit
from ._redact import remember_secret, scrub_url, server_text

if TYPE_CHECKING:
    import redis

__all__ = [
    "DEFAULT_PREFIX",
    "Coordinator",
    "CoordinatorDown",
    "CoordinatorInfo",
    "Lease",
    "RedisStore",
    "RedisTurns",
    "check_coordinator_url",
    "coordinator_for",
    "host_share",
    "split_prefix",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PREFIX = "gitjsonl:"

#: Seconds any one Redis call may take (connect, send, answer): never the HTTP timeout.
SOCKET_TIMEOUT = 1.0

#: Seconds between tries of a Redis that failed.
RETRY_EVERY = 3.0

#: Milliseconds a budget's key outlives its last write: past both windows, it says nothing.
BUDGET_TTL_MS = 2 * 3600 * 1000

#: Seconds a turn's lease lasts: one batch's writes; a writer that died costs at most this.
TURN_LEASE = 20.0

#: Milliseconds a turn record outlives its last write.
TURN_TTL_MS = 2 * 3600 * 1000

#: Seconds within which a writer counts as sharing the token (``doctor``).
WRITER_SEEN = 60.0

#: Tries of a decision whose save found a newer state, before it is made off Redis.
_CAS_TRIES = 64


# KEYS: state hash, writers set. ARGV: writer id ('': a reader, not counted), seen window (s),
# the writer's host ("<host>." starts its id), a time (Redis's). Answers [state or false,
# version, seconds, microseconds, writers seen, writers seen on the host, writers seen since
# the time] (a reader: 0, 0 and 0).
_LOAD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local writers, mine, back = 0, 0, 0
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[2], 3600000)
  local seen = redis.call('ZRANGE', KEYS[2], 0, -1)  -- the window bounds it
  writers = redis.call('ZCARD', KEYS[2])
  for _, id in ipairs(seen) do
    if string.sub(id, 1, #ARGV[3]) == ARGV[3] then mine = mine + 1 end
  end
  back = redis.call('ZCOUNT', KEYS[2], ARGV[4], '+inf')
end
local v = redis.call('HMGET', KEYS[1], 'state', 'version')
return {v[1], v[2] or '0', t[1], t[2], writers, mine, back}
"""

# KEYS: state hash. ARGV: version loaded, new state, ttl (ms). Answers 1 (saved) or 0.
_SAVE = """
local v = redis.call('HGET', KEYS[1], 'version') or '0'
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'version', tostring(tonumber(v) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: lease, fence counter, record. ARGV: lease (ms), ttl (ms).
# Answers [fence, record or false], or [0, ms the lease still runs]. A lease that would run
# longer than a lease lasts (planted, or left without an expiry) was never granted by this
# script: it is taken over, so a dead holder costs at most one lease however the key was set.
_TAKE = """
local held = redis.call('PTTL', KEYS[1])
if held > 0 and held <= tonumber(ARGV[1]) then return {0, held} end
local fence = redis.call('INCR', KEYS[2])
if fence == 1 then
  -- A new counter (first use, expired, or Redis restarted empty) starts at Redis's clock in
  -- microseconds, past every fence granted before: a holder from before never matches.
  local t = redis.call('TIME')
  fence = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('SET', KEYS[2], fence)
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
return {fence, redis.call('GET', KEYS[3])}
"""

# KEYS: lease. ARGV: fence. The lease released if this grant still holds it (the record
# is written by PUT, at once).
_GIVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


# KEYS: lease, fence counter, record. ARGV: fence, record, ttl (ms).
# Answers 1 when this grant was still the newest and the record is saved, else 0.
_PUT = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 1
"""


_SCRIPTS = {"load": _LOAD, "save": _SAVE, "take": _TAKE, "give": _GIVE, "put": _PUT}


class CoordinatorDown(Exception):
    """Redis did not answer, or not sensibly: use the host's stores for now."""


def check_coordinator_url(url: object) -> str:
    """``url`` if it names a Redis (``redis://`` or ``rediss://`` with a host); else ValueError."""
    if not isinstance(url, str):
        raise TypeError(f"coordinator must be a redis:// URL or None, not {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise ValueError(f"coordinator is not a URL: {scrub_url(url)}") from exc
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(
            f"coordinator must be a redis:// or rediss:// URL with a host, not {scrub_url(url)}"
        )
    if any(ord(c) < 0x20 for c in url):
        raise ValueError("coordinator must not hold control characters")
    return url


def split_prefix(url: str) -> tuple[str, str]:
    """``url`` without its ``prefix=`` query parameter (gitjsonl's, not redis-py's), and the
    prefix of the keys (``DEFAULT_PREFIX`` when none is given)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    rest = urllib.parse.urlencode([(name, value) for name, value in query if name != "prefix"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), (
        prefixes[-1] if prefixes else DEFAULT_PREFIX
    )


class Coordinator:
    """One Redis, as the ``Log``s of this process reach it: a client, and whether it answers.

    ``url`` may end in ``?prefix=...``: the keys' prefix (``gitjsonl:`` by default).
    """

    def __init__(self, url: str) -> None:
        self.url, self.prefix = split_prefix(check_coordinator_url(url))
        _remember_password(self.url)
        # redis-py is imported now, not at the first connection: that may come at
        # interpreter exit (the last flush), when its thread pool's import would fail.
        with contextlib.suppress(ImportError):
            import redis  # noqa: F401

        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._retry_at = 0.0  # monotonic: when a failed Redis is tried again
        self._down = False
        self.pid = os.getpid()
        # The limit answers each budget key showed last, to tell one another host learned.
        self.limited: dict[str, int] = {}

    @property
    def down(self) -> bool:
        return self._down

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _connect(self) -> redis.Redis:
        if self._client is None:
            try:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry
            except ImportError as exc:
                raise CoordinatorDown(
                    "redis-py is not installed (pip install 'gitjsonl[redis]')"
                ) from exc
            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                retry_on_timeout=False,
                # A dropped connection (Redis closed it while idle) is tried once more, at
                # once; a timeout never: each call stays bounded by about SOCKET_TIMEOUT.
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                health_check_interval=0,
            )
            self._scripts = {
                name: self._client.register_script(text) for name, text in _SCRIPTS.items()
            }
        return self._client

    def script(self, name: str, keys: list[str], args: list[object]) -> Any:
        """Run one of the Lua scripts (EVALSHA, loaded again after a restart)."""
        self._connect()
        return self._scripts[name](keys=keys, args=args)

    def call(self, what: Callable[[Coordinator], T]) -> T:
        """``what(self)``, or ``CoordinatorDown`` (Redis failed, now or a moment ago)."""
        if self._down and time.monotonic() < self._retry_at:
            raise CoordinatorDown("redis failed a moment ago")
        try:
            answer = what(self)
        except CoordinatorDown:
            self._failed("it cannot be used")
            raise
        except Exception as exc:  # redis.RedisError, OSError, a malformed answer
            self._failed(_describe(exc))
            raise CoordinatorDown(_describe(exc)) from exc
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    logger.info(
                        "gitjsonl: the coordinator %s answers again; budget and turns are "
                        "shared through it again",
                        scrub_url(self.url),
                    )
        return answer

    def _failed(self, why: str) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + RETRY_EVERY
            if self._down:
                return
            self._down = True
        logger.warning(
            "gitjsonl: the coordinator %s failed (%s); the budget and turns are shared on "
            "this host only until it answers again (tried every %.0f s; no record is lost)",
            scrub_url(self.url),
            why,
            RETRY_EVERY,
        )

    def info(self, key: str) -> CoordinatorInfo:
        """What ``doctor`` says of it: reachable, version, round trip, writers on ``key``."""
        started = time.monotonic()
        try:
            client = self._connect()
            client.ping()
            rtt = time.monotonic() - started
            server = client.info("server")
            version = str(server.get("redis_version", "?")) if isinstance(server, dict) else "?"
            now = client.time()
            writers = int(
                client.zcount(self.key("writers", key), float(now[0]) - WRITER_SEEN, "+inf")
            )
        except Exception as exc:
            return CoordinatorInfo(scrub_url(self.url), False, _describe(exc), None, 0)
        return CoordinatorInfo(scrub_url(self.url), True, version, rtt, writers)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


def _describe(exc: BaseException) -> str:
    """An error of redis-py's, as it may be shown (its text may quote the URL or password)."""
    return server_text(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _remember_password(url: str) -> None:
    """Have every message drop this URL's password verbatim, wherever it ends up quoted."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    for secret in [parts.password, *(v for k, v in query if k.lower() == "password")]:
        remember_secret(secret)


@dataclass(frozen=True, slots=True)
class CoordinatorInfo:
    """``doctor``'s coordinator line: ``detail`` is the server's version, or the error."""

    url: str
    reachable: bool
    detail: str
    round_trip: float | None
    writers: int


_coordinators: dict[str, Coordinator] = {}
_coordinators_lock = threading.Lock()


def coordinator_for(url: str) -> Coordinator:
    """This process's ``Coordinator`` for ``url``: one client and one warning, for every Log.

    A forked child makes its own (a parent's connections are not the child's to use).
    """
    with _coordinators_lock:
        found = _coordinators.get(url)
        if found is None or found.pid != os.getpid():
            found = _coordinators[url] = Coordinator(url)
        return found


def host_share(writers: object, mine: object) -> float:
    """A host's part of a token's writers: ``mine`` of ``writers`` (one, when the
    counts say nothing sensible: pacing alone is what a host did before)."""
    if isinstance(writers, bool) or isinstance(mine, bool):
        return 1.0
    if not isinstance(writers, int) or not isinstance(mine, int):
        raise ValueError("redis answered the writers' count with nonsense")
    if writers <= 0 or mine <= 0 or mine >= writers:
        return 1.0
    return mine / writers


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"redis answered {type(value).__name__} where text was expected")


# -- the budget ------------------------------------------------------------------------------


class RedisStore:
    """A token's budget state in Redis, shared by every host; the host's store while it fails.

    ``clock`` is Redis's (``TIME``, as last seen, moved on by this host's
    clock) while Redis answers, else the wall clock the host ledger uses.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        key: str,
        fallback: Any,
        *,
        writer: bool = True,
        host: str = "",
    ) -> None:
        self.coordinator = coordinator
        self._state = coordinator.key("budget", key)
        self._writers = coordinator.key("writers", key)
        self._fallback = fallback
        # Counted among the writers sharing the token (``doctor``), unless only a reader;
        # ``host`` names those that share ``fallback`` (one host's ledger, or one process).
        self._host = f"{host or uuid.uuid4().hex[:12]}."
        self._writer = self._host + uuid.uuid4().hex[:12] if writer else ""
        self._offset = 0.0  # Redis's clock minus ours, at the last load
        # The same from when the load was sent: never less than the true offset, however
        # late a starved host reads the answer (``_offset`` never more), so that writes
        # the host stamped reach Redis's clock no earlier than they were done.
        self._offset_from_sent = 0.0
        self._share = 1.0  # the host's writers among the token's, at the last load
        self._writers_seen = 0  # the token's writers, at the last load
        # Since Redis failed: (when, on its clock; the token's writers it counted then), until
        # every one of them is back on it. Meanwhile those back spend their part of the budget:
        # the others still pace on their hosts' shares, with writes not yet handed back.
        self._returning: tuple[float, int] | None = None
        self._back_share = 1.0
        # The state at the last load, until the host's store inherits it (Redis failed).
        self._seen: BudgetState | None = None
        self._fell_back = False  # decided on the host's store since the last save to Redis
        self._deciding = threading.local()  # on_redis: this thread decides on Redis's state

    @property
    def shared(self) -> str:
        """ "hosts" while Redis answers, else who shares the host's store."""
        return str(self._fallback.shared) if self.coordinator.down else "hosts"

    def clock(self) -> float:
        return time.time() + (0.0 if self._on_host() else self._offset)

    @property
    def share(self) -> float:
        """The part of the token's budget this store's writers may spend: all of it while
        Redis answers (it is the token's); while it fails, the host's part of the writers
        Redis last saw (``_pacing.share_of``), so that hosts pacing apart still add up to
        about one budget."""
        return self._share if self._on_host() else self._back_share

    def _on_host(self) -> bool:
        """Whether this thread's decision is made on the host's store: Redis failed, and
        this is not a decision on Redis's state (the first after it answers again runs
        while the coordinator still counts as down)."""
        return self.coordinator.down and not getattr(self._deciding, "on_redis", False)

    def _load(self, redis: Coordinator) -> tuple[BudgetState, str]:
        since, before = self._returning or (0.0, 0)
        sent = time.time()
        answer = redis.script(
            "load",
            [self._state, self._writers],
            [self._writer, WRITER_SEEN, self._host, repr(since)],
        )
        if not isinstance(answer, list) or len(answer) != 7:
            raise ValueError("redis answered the budget's load with the wrong shape")
        raw, version, seconds, micros, writers, mine, back = answer
        now = int(_text(seconds)) + int(_text(micros)) / 1e6
        if self._writer and self._returning is None:
            self._share, self._writers_seen = host_share(writers, mine), int(writers)
        elif self._writer:
            self._back_share = host_share(before, back)
            if self._back_share >= 1.0 or now > since + WRITER_SEEN:
                self._returning, self._back_share = None, 1.0
        self._offset, self._offset_from_sent = now - time.time(), now - sent
        try:
            data = json.loads(_text(raw)) if raw is not None else None
        except ValueError:
            data = None  # a torn or foreign value: a fresh budget, as for a torn ledger
        state = state_from_json(data if isinstance(data, dict) else None)
        self._notice(state)
        self._seen = state if self._writer else None
        return state, _text(version)

    def _notice(self, state: BudgetState) -> None:
        """One WARNING when the budget shows a limit answer another host learned."""
        seen = self.coordinator.limited.get(self._state)
        self.coordinator.limited[self._state] = state.limited
        if seen is None or state.limited <= seen:
            return
        logger.warning(
            "gitjsonl: another host on this token got a secondary-limit answer from GitHub; "
            "every Log on the token pauses %.0f s and writes at half its budget for a while",
            max(0.0, state.blocked_until - (time.time() + self._offset)),
        )

    def load_only(self, redis: Coordinator) -> BudgetState:
        """The state as Redis holds it (for ``Coordinator.call``), without a fallback."""
        return self._load(redis)[0]

    def update(self, change: Callable[[BudgetState], BudgetState]) -> BudgetState:
        def attempt(redis: Coordinator) -> BudgetState:
            deadline = time.monotonic() + 2 * SOCKET_TIMEOUT  # a decision, however contended
            # Back from the host's store: what its writers spent meanwhile is handed to Redis
            # (by id, so once however many of them hand it), lest the hosts' next minute
            # spend again what the outage's minute already did.
            back = self._fallback.peek() if self._fell_back else None
            for _ in range(_CAS_TRIES):
                if time.monotonic() > deadline:
                    break
                state, version = self._load(redis)
                if back is not None:
                    state = inherit(state, back, 1.0, self._offset_from_sent)
                new = change(state)
                payload = json.dumps(state_to_json(new), separators=(",", ":"))
                saved = redis.script("save", [self._state], [version, payload, BUDGET_TTL_MS])
                if saved not in (0, 1):
                    raise ValueError("redis answered the budget's save with nonsense")
                if saved == 1:
                    self.coordinator.limited[self._state] = new.limited  # ours: no warning
                    self._fell_back = False
                    return new
            raise CoordinatorDown("the budget changed under every try for 2 s")

        def on_redis(redis: Coordinator) -> BudgetState:
            self._deciding.on_redis = True
            try:
                return attempt(redis)
            finally:
                self._deciding.on_redis = False

        try:
            return self.coordinator.call(on_redis)
        except CoordinatorDown:
            self._fell_back = True
            if self._returning is None and self._writers_seen > 0:
                self._returning = (time.time() + self._offset, self._writers_seen)
            return self._fallback.update(self._inheriting(change))  # type: ignore[no-any-return]

    def _inheriting(
        self, change: Callable[[BudgetState], BudgetState]
    ) -> Callable[[BudgetState], BudgetState]:
        """``change``, made on the host's state after it took over its share of the state
        Redis held last (the first decision after Redis failed; ``_pacing.inherit``)."""
        seen, self._seen = self._seen, None
        if seen is None:
            return change
        share, shift = self._share, -self._offset
        return lambda host: change(inherit(host, seen, share, shift))

    def read(self) -> BudgetState:
        try:
            return self.coordinator.call(self.load_only)
        except CoordinatorDown:
            return self._fallback.read()  # type: ignore[no-any-return]

    def peek(self) -> BudgetState:
        if self.coordinator.down:
            return self._fallback.peek()  # type: ignore[no-any-return]
        return self.read()


# -- turns --------------------------------------------------------------------------------


@dataclass(slots=True)
class Lease:
    """A grant of a branch's turn: its fence, and the record as the last holder left it.

    ``save`` writes the record this holder leaves at once (fenced: a holder whose
    lease was granted to another since writes nothing): a ref update's pending
    link is in Redis before the update is sent, so a holder that dies right
    after leaves it to the next host, as the host's turn file does.
    """

    fence: int
    record: dict[str, Any] | None
    _turns: RedisTurns = field(repr=False)

    def save(self, record: dict[str, Any]) -> None:
        self._turns.put(self.fence, record)


class RedisTurns:
    """A branch's turn for every host: a fenced lease, and the record its holders leave."""

    def __init__(self, coordinator: Coordinator, name: str) -> None:
        self.coordinator = coordinator
        self._keys = [
            coordinator.key("turn", name, "lease"),
            coordinator.key("turn", name, "fence"),
            coordinator.key("turn", name),
        ]

    def _take(self, redis: Coordinator) -> tuple[int, dict[str, Any] | None] | float:
        answer = redis.script("take", self._keys, [int(TURN_LEASE * 1000), TURN_TTL_MS])
        if not isinstance(answer, list) or len(answer) != 2:
            raise ValueError("redis answered a turn's take with the wrong shape")
        fence, other = answer
        if not isinstance(fence, int) or fence < 0:
            raise ValueError("redis answered a turn's take with nonsense")
        if fence == 0:
            if not isinstance(other, int):
                raise ValueError("redis answered a turn's wait with nonsense")
            return max(0.001, other / 1000)
        try:
            data = json.loads(_text(other)) if other is not None else None
        except ValueError:
            data = None
        return fence, data if isinstance(data, dict) else None

    @contextlib.contextmanager
    def held(self, wait: float) -> Iterator[Lease | None]:
        """The turn for as long as the context lasts; None when it was not had within
        ``wait`` s or the wait was interrupted (``_ledger.poll``). ``CoordinatorDown`` on
        entry when Redis fails (the caller takes the host's turn instead)."""
        granted: list[tuple[int, dict[str, Any] | None]] = []

        def take() -> float | None:
            got = self.coordinator.call(self._take)
            if isinstance(got, float):
                return got  # the lease still runs this long
            granted.append(got)
            return None

        if not _ledger.poll(take, wait):
            yield None
            return
        lease = Lease(*granted[-1], self)
        try:
            yield lease
        finally:
            self._run("give", [lease.fence])

    def put(self, fence: int, record: dict[str, Any]) -> None:
        """The turn record, written by the holder of grant ``fence`` if it is still the newest."""
        payload = json.dumps(record, separators=(",", ":"))
        if self._run("put", [fence, payload, TURN_TTL_MS]) == 0:
            logger.info(
                "gitjsonl: a turn's lease ran out before its batch ended; its record was left "
                "to the newer holder"
            )

    def _run(self, script: str, args: list[object]) -> object:
        """A turn script's answer; None when Redis fails (the coordinator warned, and a
        lease expires by itself)."""
        try:
            return self.coordinator.call(lambda redis: redis.script(script, self._keys, args))
        except CoordinatorDown:
            return None
