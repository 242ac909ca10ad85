"""Pacing content-generating requests under GitHub's secondary rate limits (pure).

GitHub allows no more than 80 content-generating requests a minute and 500 an
hour **per token**, and offers no way to ask how much of that budget is left.
A batch costs a few such requests (4 today: 125 batches an hour, one every
29 s; 3 would make it 166, one every 22 s). Pacing waits *before* a batch is
cut, so that GitHub never has to say no; the records appended meanwhile join
the batch, which is how a busy log turns into fewer, larger commits.

The hour is spent evenly, not first come first served: a sliding window of
500 lets a writer spend all of it in ten minutes and then wait fifty. Three
rules decide together (``wait_for``):

- the **windows** (80 a minute, 500 an hour), which GitHub enforces;
- a **token bucket** refilled at the hourly rate (500/3600 writes a second)
  and holding at most a minute's budget less a minute's refill (71.7): in
  steady state a batch every ``cost / rate`` seconds, and a burst of up to a
  minute's writes from budget saved while idle;
- **sustainability**: a burst is paid back smoothly, never by a stall. Writes
  go only if, after them, a rate of ``SUSTAIN`` times the hourly rate can go
  on for the whole hour ahead without the hour's window ever refusing one
  (``sustain_delay``). A writer that waits for this waits at most
  ``cost / (SUSTAIN * rate)`` seconds (36 s for 4 writes) after the last
  writes that kept the rule.

Every writer on one token spends one budget: the writes it has sent are a
``BudgetState`` that ``_budget`` keeps (in this process, or on this host in a
ledger file). The decisions over it are here, over plain values:

- ``wait_for``: how long before ``cost`` more writes keep every window within
  the current allowance (``delay_for`` is the sliding-window core);
- ``reserve`` and ``settle``: writes are counted from the moment they are
  decided on; once sent, they are stamped with the time they were done (GitHub
  counts them on arrival, never earlier than that);
- ``learn_limit``: GitHub said no anyway (another client of the token spent
  part of the budget): pause, halve the allowance, and let it recover slowly;
  unless our own writes explain the answer (``explained``), which is no news
  about anyone else;
- ``repair``: every value read back from a ledger is checked; what no correct
  writer can have written (a pause longer than ``MAX_SERVER_WAIT``, a time far
  ahead of the clock, Infinity, NaN) is repaired, never obeyed;
- ``closing_reserve`` and ``closing_wait``: the room in GitHub's windows that
  normal batches leave unspent (they wait as if it were spent already), so that
  a closing writer's last batch goes at once under any traffic the budget
  allows: a batch for every writer seen spending in the last minute, at least
  ``CLOSING_BATCHES``. A closing batch skips pacing's own smoothing (the
  bucket, the line, the hour ahead), never GitHub's windows or a pause;
- ``restored`` and ``restore``: a writer starting on an empty disk (a host whose
  disk every restart wipes) learns the last hour from the branch: each batch's
  commit says what it cost (``_batch.WRITES_TRAILER``); those spends are merged
  by batch id, so a batch the ledger knows is never counted twice, and what a
  commit claims is clamped to what GitHub's windows could have let through.

A spend's id names its batch and writer (``spend_id``: ``batch/writer/unique``),
so that both can be told from the shared state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ._batch import batch_id_of, writes_of
from ._stats import BudgetStats

__all__ = [
    "CLOSING_BATCHES",
    "CLOSING_SHARE",
    "DATE_SLOP",
    "DEFAULT_BATCH_WRITES",
    "FLIGHT_LIMIT",
    "LANDED_WRITES",
    "MAX_SERVER_WAIT",
    "MIN_ALLOWANCE",
    "RECOVERY_WINDOWS",
    "SUSTAIN",
    "WAITER_GRACE",
    "BudgetState",
    "Pacing",
    "Spent",
    "Waiter",
    "ahead_of",
    "allowance_at",
    "batch_of",
    "bucket_at",
    "budget_stats",
    "clamp_wait",
    "closing_reserve",
    "closing_wait",
    "delay_for",
    "dequeue",
    "describe_budget",
    "describe_pacing",
    "enqueue",
    "explained",
    "inherit",
    "learn_limit",
    "prune",
    "repair",
    "reserve",
    "restore",
    "restored",
    "settle",
    "share_of",
    "spend_id",
    "sustain_delay",
    "wait_for",
    "wait_in_line",
    "windows_at",
]

#: What a batch is expected to cost before the first one says (a ``Log`` then asks
#: the budget for what its last batch sent: 4 with a blob, 3 with the text inline).
DEFAULT_BATCH_WRITES = 4

#: Seconds writes reserved but not yet settled count as "just sent". Past it they
#: are a crashed writer's and age out of the windows like any other.
FLIGHT_LIMIT = 120.0

#: A secondary-limit answer halves the allowance, never below this share of the budget.
MIN_ALLOWANCE = 0.125

#: Minute windows the allowance takes to grow back from nothing to the whole budget
#: (from half of it, 15: a quarter of an hour at GitHub's windows).
RECOVERY_WINDOWS = 30

#: The share of the hourly rate that must stay sustainable for an hour after any
#: writes go: a burst of saved budget slows the next hour by at most this much
#: instead of stalling at its end. It also caps a burst at ``1 - SUSTAIN`` of the
#: hour's budget (100 of 500; the bucket's minute cap, 80, binds first).
SUSTAIN = 0.8

#: The longest wait a server may impose (an hour: GitHub's longest window). A
#: ``Retry-After`` beyond it (or Infinity) is clamped to it; a pause in a ledger
#: that ends further ahead was written by a clock that ran ahead, and is repaired.
MAX_SERVER_WAIT = 3600.0

_EPSILON = 1e-6

_BATCH_ID = re.compile(r"[0-9a-f]{32}")

#: Batches the closing reserve holds at least, whatever the number of writers.
CLOSING_BATCHES = 2

#: The closing reserve never holds more than this share of a minute's allowance (at
#: GitHub's limits 20 writes: a last batch for each of six writers).
CLOSING_SHARE = 0.25

#: Seconds a restored commit counts as younger than its date says: commit dates and
#: the server's ``Date`` are whole seconds, so its writes are never placed too early.
DATE_SLOP = 1.0

#: What a batch counts for when its commit does not say (an older version's): the
#: fewest writes a batch lands with (tree, commit, ref update).
LANDED_WRITES = 3

#: Seconds past its ``until`` a waiter keeps its place in line (a writer that
#: crashed, or closed, while waiting loses it then).
WAITER_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class Pacing:
    """Budgets for content-generating requests (POST, PATCH, PUT, DELETE) per token.

    The defaults are GitHub's documented secondary limits; pass ``pacing=None``
    to a ``Log`` to switch pacing off (a local server).
    """

    per_minute: int = 80
    per_hour: int = 500
    minute: float = 60.0
    hour: float = 3600.0

    def windows(self) -> tuple[tuple[float, int], ...]:
        return ((self.minute, self.per_minute), (self.hour, self.per_hour))


@dataclass(frozen=True, slots=True)
class Spent:
    """``count`` writes decided on (``done`` False) or sent by ``time`` (``done`` True)."""

    time: float
    count: int
    id: str
    done: bool = True


@dataclass(frozen=True, slots=True)
class Waiter:
    """A writer told to wait since ``since``, which comes back by ``until``."""

    id: str
    since: float
    until: float


@dataclass(frozen=True, slots=True)
class BudgetState:
    """What every writer on one token shares: its recent writes and what GitHub taught us.

    ``allowance`` is the share of the budget allowed at ``since`` (1.0 until a
    secondary limit is met); ``blocked_until`` holds every write back after
    one; ``waiting`` are the writers in line for room, first come first
    served; ``tokens`` is the bucket's level at ``tokens_at`` (``None``: full, never
    drawn from); ``limited``, ``waits`` and ``waited`` are counts for ``stats``.
    """

    spent: tuple[Spent, ...] = ()
    allowance: float = 1.0
    since: float = 0.0
    blocked_until: float = 0.0
    limited: int = 0
    waits: int = 0
    waited: float = 0.0
    tokens: float | None = None
    tokens_at: float = 0.0
    waiting: tuple[Waiter, ...] = ()


def delay_for(
    history: Sequence[float], now: float, cost: int, windows: Sequence[tuple[float, int]]
) -> float:
    """Seconds to wait before ``cost`` more requests keep every window within budget.

    ``history`` holds the times of earlier requests, oldest first. A cost larger
    than a whole budget waits for an empty window and then goes (it could never
    fit otherwise).
    """
    wait = 0.0
    for length, budget in windows:
        recent = [t for t in history if t > now - length]
        excess = len(recent) + cost - budget
        if excess <= 0:
            continue
        if not recent:
            continue  # an empty window lets even an oversized batch through
        # The window has room once its `excess` oldest requests have aged out.
        index = min(excess, len(recent)) - 1
        wait = max(wait, recent[index] + length - now)
    return max(0.0, wait)


def allowance_at(state: BudgetState, now: float, pacing: Pacing) -> float:
    """The share of the budget allowed at ``now``: growing back linearly after a limit."""
    if state.allowance >= 1.0:
        return 1.0
    grown = max(0.0, now - state.since) / (RECOVERY_WINDOWS * pacing.minute)
    return min(1.0, state.allowance + grown)


def share_of(pacing: Pacing, share: float) -> Pacing:
    """``pacing`` with its budgets cut to ``share`` of them (at least one write each):
    the part one host may spend while the hosts on a token cannot share a budget."""
    if not share < 1.0:  # NaN included: the whole budget, as before
        return pacing
    share = max(share, 0.0)
    return replace(
        pacing,
        per_minute=max(1, math.floor(pacing.per_minute * share)),
        per_hour=max(1, math.floor(pacing.per_hour * share)),
    )


def inherit(host: BudgetState, shared: BudgetState, share: float, shift: float) -> BudgetState:
    """``host`` taking over ``share`` of what ``shared`` holds: its recent writes (each
    counted at ``share``, rounded up, and once: by id), a pause, a cut allowance, and
    its bucket's level.

    A host's store, when the coordinator fails, takes over its share of the token's
    state in Redis, so that the hosts pacing apart add up to about the one budget they
    shared; Redis, when it answers again, takes back (at a share of 1) what the host
    spent meanwhile. ``shift`` turns ``shared``'s clock into ``host``'s.
    """
    known = {spent.id for spent in host.spent}
    taken = tuple(
        replace(spent, time=spent.time + shift, count=math.ceil(spent.count * share))
        for spent in shared.spent
        if spent.id not in known
    )
    state = replace(
        host,
        spent=tuple(sorted(host.spent + taken, key=lambda spent: spent.time)),
        blocked_until=max(host.blocked_until, shared.blocked_until + shift),
    )
    if shared.allowance < host.allowance:
        state = replace(state, allowance=shared.allowance, since=shared.since + shift)
    if host.tokens is None and shared.tokens is not None:
        state = replace(state, tokens=shared.tokens * share, tokens_at=shared.tokens_at + shift)
    return state


def windows_at(state: BudgetState, now: float, pacing: Pacing) -> tuple[tuple[float, int], ...]:
    """Pacing's windows with their budgets scaled to the current allowance (at least 1)."""
    share = allowance_at(state, now, pacing)
    return tuple((length, max(1, math.floor(n * share))) for length, n in pacing.windows())


def _times(state: BudgetState, now: float) -> list[float]:
    """One time per write, oldest first; writes in flight count as sent ``now``."""
    times: list[float] = []
    for spent in state.spent:
        when = spent.time if spent.done else min(now, spent.time + FLIGHT_LIMIT)
        times.extend([when] * spent.count)
    times.sort()
    return times


def clamp_wait(seconds: float | None, default: float) -> float:
    """A wait a server asked for, made safe to obey.

    ``None`` or NaN is ``default``; a negative wait is none; Infinity or anything
    past ``MAX_SERVER_WAIT`` is ``MAX_SERVER_WAIT``.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return min(MAX_SERVER_WAIT, max(0.0, default))
    return min(MAX_SERVER_WAIT, max(0.0, float(seconds)))


def _hourly(state: BudgetState, now: float, pacing: Pacing) -> tuple[float, float]:
    """(the hourly rate in writes a second, the bucket's capacity), at the current allowance.

    The capacity is a minute's budget less what the bucket refills in a minute
    (80 - 8.3): a full bucket spent at once and refilled meanwhile never fills
    the minute's window, so a burst is never followed by the minute's wait.
    """
    (minute, per_minute), (hour, per_hour) = windows_at(state, now, pacing)
    rate = per_hour / hour
    return rate, max(1.0, per_minute - rate * minute)


def bucket_at(state: BudgetState, now: float, pacing: Pacing) -> float:
    """The bucket's level at ``now``: refilled at the hourly rate, holding a minute's budget."""
    rate, capacity = _hourly(state, now, pacing)
    if state.tokens is None:
        return capacity
    return min(capacity, state.tokens + rate * max(0.0, now - state.tokens_at))


def _bucket_delay(state: BudgetState, now: float, cost: int, pacing: Pacing) -> float:
    rate, capacity = _hourly(state, now, pacing)
    need = min(float(cost), capacity)  # a batch larger than the bucket waits for a full one
    level = bucket_at(state, now, pacing)
    return 0.0 if level >= need else (need - level) / rate


def sustain_delay(
    history: Sequence[float], now: float, cost: int, window: float, budget: int
) -> float:
    """Seconds before ``cost`` writes may go and still leave room, for the whole window
    ahead, for a batch of ``cost`` every ``cost / target`` seconds (``target``: ``SUSTAIN``
    times the window's rate, ``budget / window``).

    The k-th batch of that stream needs ``(k + 1) * cost`` writes of room by then:
    the room left now and the writes of the window that have aged out by then.
    So the writes that go never leave the hour ahead a stall: whatever the
    window held, the next batch fits ``cost / target`` seconds after this one.
    Writes the window cannot take even now are ``delay_for``'s concern.
    """
    target = SUSTAIN * budget / window
    step = cost / target
    recent = sorted(t for t in history if t > now - window)
    room = budget - len(recent)
    wait = 0.0
    k = 1
    while k * step <= window:
        need = (k + 1) * cost - room  # writes that must have aged out by the k-th batch
        if need > len(recent):
            break  # a batch too large for the stream (more than 1 - SUSTAIN of the budget)
        if need > 0:
            wait = max(wait, recent[need - 1] + window - now - k * step)
        k += 1
    return wait


def wait_for(state: BudgetState, now: float, cost: int, pacing: Pacing, *, keep: int = 0) -> float:
    """Seconds before ``cost`` more writes may go, leaving ``keep`` more of GitHub's windows
    unspent (the closing reserve): a pause GitHub imposed, the windows, the bucket, or
    the rate the hour ahead must keep."""
    blocked = max(0.0, state.blocked_until - now)
    windows = windows_at(state, now, pacing)
    times = _times(state, now)
    (_, _), (hour, per_hour) = windows
    wait = max(
        blocked,
        delay_for(times, now, cost + keep, windows),
        _bucket_delay(state, now, cost, pacing),
        # The hour ahead is sustained within what the reserve leaves of the window.
        sustain_delay(times, now, cost, hour, per_hour - keep),
    )
    return _no_rounding_error(wait)


def closing_wait(state: BudgetState, now: float, cost: int, pacing: Pacing) -> float:
    """Seconds before a closing writer's ``cost`` writes may go: a pause GitHub imposed, or
    GitHub's windows (at the current allowance), where every other writer left the
    closing reserve; never the bucket, the line or the hour ahead, which are pacing's
    own smoothing, not GitHub's limits (a last batch owes the hour ahead nothing)."""
    blocked = max(0.0, state.blocked_until - now)
    windows = windows_at(state, now, pacing)
    return _no_rounding_error(max(blocked, delay_for(_times(state, now), now, cost, windows)))


def _no_rounding_error(wait: float) -> float:
    # A wait computed to end at a moment is, re-computed at that moment, a rounding
    # error's worth above zero: that is no wait (else a waiter would step for ever).
    return wait if wait > _EPSILON else 0.0


def ahead_of(state: BudgetState, now: float, id: str) -> int:
    """How many writers are in line before the writer ``id`` (all of them, if it is not)."""
    mine = next((w for w in state.waiting if w.id == id), None)
    return sum(
        1
        for w in state.waiting
        if w.id != id and (mine is None or (w.since, w.id) < (mine.since, mine.id))
    )


def wait_in_line(
    state: BudgetState, now: float, cost: int, pacing: Pacing, id: str, *, keep: int = 0
) -> float:
    """``wait_for``, first come first served: a writer with others in line before it
    waits until the room fits their batches too (each counted at its ``cost``).

    Without a line, writers woken by the same room race for it, and the same
    ones can lose for minutes on end.
    """
    return wait_for(state, now, cost * (ahead_of(state, now, id) + 1), pacing, keep=keep)


def spend_id(batch: str | None, writer: str, unique: str) -> str:
    """The id of a spend: the batch it pays for (``-``: none), the writer, a unique part."""
    return f"{batch or '-'}/{writer}/{unique}"


def batch_of(id: str) -> str:
    """The batch a spend's id names (an id of an older version: the id itself)."""
    return id.split("/", 1)[0]


def _writer_of(id: str) -> str:
    parts = id.split("/")
    return parts[1] if len(parts) == 3 else ""


def closing_reserve(state: BudgetState, now: float, cost: int, pacing: Pacing, writer: str) -> int:
    """The writes normal batches of ``cost`` leave unspent for closing writers.

    A last batch for every writer seen spending in the last minute or waiting
    in line (``writer``, asking, included), at least ``CLOSING_BATCHES``, at
    most ``CLOSING_SHARE`` of the minute's allowance. Normal batches leave it
    in GitHub's windows (``wait_for``'s ``keep``); a closing writer's batch may
    spend it (``closing_wait``).
    """
    (minute, per_minute), _ = windows_at(state, now, pacing)
    writers = {_writer_of(s.id) for s in state.spent if s.time > now - minute}
    writers |= {w.id for w in state.waiting}
    writers.discard("")
    writers.add(writer)
    keep = max(CLOSING_BATCHES, len(writers)) * cost
    return min(keep, math.floor(per_minute * CLOSING_SHARE))


def enqueue(state: BudgetState, now: float, id: str, wait: float) -> BudgetState:
    """``state`` with the writer ``id`` in line (keeping its place), back in ``wait`` s."""
    mine = next((w for w in state.waiting if w.id == id), None)
    since = now if mine is None else mine.since
    others = tuple(w for w in state.waiting if w.id != id)
    return replace(state, waiting=(*others, Waiter(id, since, now + wait)))


def dequeue(state: BudgetState, id: str) -> BudgetState:
    """``state`` without the writer ``id`` in line."""
    kept = tuple(w for w in state.waiting if w.id != id)
    return state if kept == state.waiting else replace(state, waiting=kept)


def _finite(value: float, default: float) -> float:
    return value if math.isfinite(value) else default


def repair(state: BudgetState, now: float, pacing: Pacing) -> BudgetState:
    """``state`` with every value no correct writer can have left replaced by a safe one.

    A ledger is a file anyone with this user's rights can write, and clocks
    jump: Infinity, NaN and negative numbers are dropped; a pause ending more
    than ``MAX_SERVER_WAIT`` ahead (written by a clock that ran ahead) becomes
    the minute GitHub advises when it does not say; times ahead of the clock
    are brought back to it.
    """
    blocked = _finite(state.blocked_until, 0.0)
    if blocked > now + MAX_SERVER_WAIT:
        blocked = now + min(pacing.minute, MAX_SERVER_WAIT)
    allowance = min(1.0, max(MIN_ALLOWANCE, _finite(state.allowance, 1.0)))
    since = min(now, _finite(state.since, now))
    tokens = state.tokens
    if tokens is not None:
        tokens = max(-float(pacing.per_hour), _finite(tokens, 0.0))
    tokens_at = min(now, _finite(state.tokens_at, now))
    spent = tuple(
        s for s in state.spent if math.isfinite(s.time) and 0 <= s.count <= pacing.per_hour
    )
    waiting = tuple(
        w
        for w in state.waiting
        if math.isfinite(w.since)
        and math.isfinite(w.until)
        and w.since <= now + pacing.minute
        and now - WAITER_GRACE <= w.until <= now + MAX_SERVER_WAIT + WAITER_GRACE
    )
    repaired = replace(
        state,
        spent=spent,
        waiting=waiting,
        blocked_until=max(0.0, blocked),
        allowance=allowance,
        since=since,
        tokens=tokens,
        tokens_at=tokens_at,
        limited=max(0, state.limited),
        waits=max(0, state.waits),
        waited=max(0.0, _finite(state.waited, 0.0)),
    )
    return state if repaired == state else repaired


def prune(state: BudgetState, now: float, pacing: Pacing) -> BudgetState:
    """``state`` repaired, without the writes that have left every window."""
    state = repair(state, now, pacing)
    horizon = now - max(length for length, _ in pacing.windows())
    # Stamps far ahead of the clock come from before it went back (or a reboot).
    future = now + pacing.minute
    kept = tuple(
        s
        for s in state.spent
        if (s.time if s.done else s.time + FLIGHT_LIMIT) > horizon and s.time <= future
    )
    if allowance_at(state, now, pacing) >= 1.0 and state.allowance < 1.0:
        state = replace(state, allowance=1.0)
    return state if kept == state.spent else replace(state, spent=kept)


def reserve(
    state: BudgetState, now: float, cost: int, id: str, pacing: Pacing | None = None
) -> BudgetState:
    """``state`` with ``cost`` writes decided on at ``now``, under ``id`` (drawn from the
    bucket when ``pacing`` is given)."""
    if pacing is not None:
        state = replace(state, tokens=bucket_at(state, now, pacing) - cost, tokens_at=now)
    return replace(state, spent=(*state.spent, Spent(now, cost, id, done=False)))


def settle(
    state: BudgetState, id: str, now: float, used: int, pacing: Pacing | None = None
) -> BudgetState:
    """The writes reserved under ``id`` as sent: ``used`` of them, done by ``now``.

    With ``pacing``, the bucket gets back what was reserved and not sent (or
    gives what was sent beyond the reservation).
    """
    if pacing is not None:
        reserved = sum(s.count for s in state.spent if s.id == id and not s.done)
        level = bucket_at(state, now, pacing) + reserved - used
        state = replace(state, tokens=level, tokens_at=now)
    kept = tuple(s for s in state.spent if s.id != id)
    if used > 0:
        kept = (*kept, Spent(now, used, id))
    return replace(state, spent=kept)


def explained(state: BudgetState, now: float, pacing: Pacing) -> bool:
    """Whether this budget's own writes overfill one of GitHub's windows (at its full limits).

    Then a secondary-limit answer is the one the budget could have predicted
    (writes that went without room), not news of another client.
    """
    times = _times(state, now)
    return any(sum(1 for t in times if t > now - length) > n for length, n in pacing.windows())


def learn_limit(
    state: BudgetState, now: float, retry_after: float | None, pacing: Pacing
) -> tuple[BudgetState, bool]:
    """After a secondary-limit answer: pause every writer and halve the allowance.

    GitHub asks for ``retry_after`` seconds (clamped: ``clamp_wait``), or at
    least a minute when it does not say. Answers met during the pause that the
    first one started are the same episode (several writers were in flight):
    the pause is extended, the allowance is not halved again. An answer our
    own writes explain (``explained``) pauses without halving. The second
    value tells whether the allowance was halved.
    """
    pause = clamp_wait(retry_after, pacing.minute)
    blocked_until = max(state.blocked_until, now + pause)
    limited = state.limited + 1
    if now < state.blocked_until or explained(state, now, pacing):
        return replace(state, blocked_until=blocked_until, limited=limited), False
    share = max(MIN_ALLOWANCE, allowance_at(state, now, pacing) * 0.5)
    shrunk = replace(
        state,
        allowance=share,
        since=now,
        blocked_until=blocked_until,
        limited=limited,
        tokens=0.0,
        tokens_at=now,
    )
    return shrunk, True


def restored(
    commits: Iterable[tuple[str, float]], *, server_now: float, now: float, pacing: Pacing
) -> tuple[Spent, ...]:
    """What gitjsonl's commits of the last hour spent, as ``Spent`` on the clock of ``now``.

    ``commits`` are ``(message, committer date)`` pairs as the server lists them
    (seconds since the epoch on its clock, ``server_now`` its clock when it
    answered): each commit's age is measured on the server's clock alone, so a
    local clock that is off changes nothing. Hostile values are judged, never
    obeyed: a commit without a batch trailer (another committer's) or seen twice
    counts nothing; one without a writes trailer counts ``LANDED_WRITES``; a date
    ahead of the server's clock counts as now; and walking oldest first, each
    commit counts no more than GitHub's windows could still have let through
    (a trailer claiming 10**9 writes fills what is left of a minute, once).
    """
    found: dict[str, tuple[float, int]] = {}
    for message, date in commits:
        batch = batch_id_of(message)
        if batch is None or not _BATCH_ID.fullmatch(batch) or batch in found:
            continue
        # Dates and the server's clock are whole seconds: the commit is at least this old.
        age = server_now - date - DATE_SLOP
        if not math.isfinite(age) or age > pacing.hour:
            continue
        age = max(0.0, age)
        writes = writes_of(message)
        found[batch] = (now - age, LANDED_WRITES if writes is None else max(1, writes))
    kept: list[Spent] = []
    times: list[float] = []
    for batch, (when, claimed) in sorted(found.items(), key=lambda item: item[1][0]):
        # Only writes surely in one window with these (a second apart in their dates may
        # be two apart in fact) show a claim GitHub could not have let through.
        room = min(
            n - sum(1 for t in times if t > when - (length - DATE_SLOP))
            for length, n in pacing.windows()
        )
        count = min(claimed, room)
        if count > 0:
            kept.append(Spent(when, count, spend_id(batch, "", "landed")))
            times.extend([when] * count)
    return tuple(kept)


def restore(state: BudgetState, now: float, spends: Sequence[Spent], pacing: Pacing) -> BudgetState:
    """``state`` with the ``spends`` of batches it does not know yet (by batch id), and its
    bucket no fuller than those writes, replayed over the hour, would have left it."""
    known = {batch_of(s.id) for s in state.spent}
    new = tuple(s for s in spends if batch_of(s.id) not in known)
    if not new:
        return state
    merged = replace(state, spent=tuple(sorted(state.spent + new, key=lambda s: s.time)))
    rate, capacity = _hourly(state, now, pacing)
    level, last = capacity, now - pacing.hour
    for when in _times(merged, now):
        level = min(capacity, level + rate * max(0.0, when - last)) - 1
        last = max(last, when)
    level = min(capacity, level + rate * max(0.0, now - last))
    return replace(merged, tokens=min(bucket_at(state, now, pacing), level), tokens_at=now)


def budget_stats(state: BudgetState, now: float, pacing: Pacing, *, shared: str) -> BudgetStats:
    """What ``stats()`` shows of a token's budget at ``now``."""
    times = _times(state, now)
    (minute, per_minute), (hour, per_hour) = windows_at(state, now, pacing)
    return BudgetStats(
        shared=shared,
        last_minute=sum(1 for t in times if t > now - minute),
        last_hour=sum(1 for t in times if t > now - hour),
        allowed_per_minute=per_minute,
        allowed_per_hour=per_hour,
        allowance=allowance_at(state, now, pacing),
        paused_for=max(0.0, state.blocked_until - now),
        limited=state.limited,
        waits=state.waits,
        waited=state.waited,
    )


def describe_pacing(pacing: Pacing | None, *, shared: str = "host") -> str:
    """How a Log paces its writes, in a sentence (for ``doctor``)."""
    if pacing is None:
        return "off"
    where = {"hosts": "on every host (a coordinator)", "host": "on this host"}.get(
        shared, "in this process"
    )
    return (
        f"{pacing.per_minute} writes a minute and {pacing.per_hour} an hour per token, "
        f"shared by every Log on it {where}; halved for a while if GitHub still says no"
    )


def describe_budget(stats: BudgetStats | None) -> str:
    """A token's budget on this host, in a line (for ``gitjsonl stats``)."""
    if stats is None:
        return "no write by gitjsonl on this host with this token yet"
    line = (
        f"{stats.last_minute} of {stats.allowed_per_minute} writes in the last minute, "
        f"{stats.last_hour} of {stats.allowed_per_hour} in the last hour "
        f"({'every host' if stats.shared == 'hosts' else 'this host'})"
    )
    if stats.allowance < 1.0:
        line += f"; allowance {stats.allowance:.0%} after a secondary-limit answer"
    if stats.paused_for > 0:
        line += f"; paused {stats.paused_for:.0f} s more"
    waits = "1 wait" if stats.waits == 1 else f"{stats.waits:,} waits"
    return f"{line}; {waits} ({stats.waited:,.0f} s), {stats.limited:,} secondary-limit answers"
