"""Pacing content-generating requests under GitHub's secondary rate limits (pure).

GitHub allows no more than 80 content-generating requests a minute and 500 an
hour **per token**, and offers no way to ask how much of that budget is left.
A batch costs 4 such requests, so a token that flushes faster than about one
batch every 29 s (sustained) would be throttled. Pacing waits *before* a batch
so that GitHub never has to say no; the records appended meanwhile join the
batch, which is how a busy log turns into fewer, larger commits.

Every writer on one token spends one budget: the writes it has sent are a
``BudgetState`` that ``_budget`` keeps (in this process, or on this host in a
ledger file). The decisions over it are here, over plain values:

- ``wait_for``: how long before ``cost`` more writes keep every window within
  the current allowance (``delay_for`` is the sliding-window core);
- ``reserve`` and ``settle``: writes are counted from the moment they are
  decided on; once sent, they are stamped with the time they were done (GitHub
  counts them on arrival, never earlier than that);
- ``learn_limit``: GitHub said no anyway (another client of the token spent
  part of the budget): pause, halve the allowance, and let it recover slowly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ._stats import BudgetStats

__all__ = [
    "FLIGHT_LIMIT",
    "MIN_ALLOWANCE",
    "RECOVERY_WINDOWS",
    "BudgetState",
    "Pacing",
    "Spent",
    "allowance_at",
    "budget_stats",
    "delay_for",
    "describe_budget",
    "describe_pacing",
    "learn_limit",
    "prune",
    "reserve",
    "settle",
    "wait_for",
    "windows_at",
]

#: Seconds writes reserved but not yet settled count as "just sent". Past it they
#: are a crashed writer's and age out of the windows like any other.
FLIGHT_LIMIT = 120.0

#: A secondary-limit answer halves the allowance, never below this share of the budget.
MIN_ALLOWANCE = 0.125

#: Minute windows the allowance takes to grow back from nothing to the whole budget
#: (from half of it, 15: a quarter of an hour at GitHub's windows).
RECOVERY_WINDOWS = 30


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
class BudgetState:
    """What every writer on one token shares: its recent writes and what GitHub taught us.

    ``allowance`` is the share of the budget allowed at ``since`` (1.0 until a
    secondary limit is met); ``blocked_until`` holds every write back after
    one; ``limited``, ``waits`` and ``waited`` are counts for ``stats``.
    """

    spent: tuple[Spent, ...] = ()
    allowance: float = 1.0
    since: float = 0.0
    blocked_until: float = 0.0
    limited: int = 0
    waits: int = 0
    waited: float = 0.0


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


def wait_for(state: BudgetState, now: float, cost: int, pacing: Pacing) -> float:
    """Seconds before ``cost`` more writes may go: a pause GitHub imposed, or the windows."""
    blocked = max(0.0, state.blocked_until - now)
    return max(blocked, delay_for(_times(state, now), now, cost, windows_at(state, now, pacing)))


def prune(state: BudgetState, now: float, pacing: Pacing) -> BudgetState:
    """``state`` without the writes that have left every window."""
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


def reserve(state: BudgetState, now: float, cost: int, id: str) -> BudgetState:
    """``state`` with ``cost`` writes decided on at ``now``, under ``id``."""
    return replace(state, spent=(*state.spent, Spent(now, cost, id, done=False)))


def settle(state: BudgetState, id: str, now: float, used: int) -> BudgetState:
    """The writes reserved under ``id`` as sent: ``used`` of them, done by ``now``."""
    kept = tuple(s for s in state.spent if s.id != id)
    if used > 0:
        kept = (*kept, Spent(now, used, id))
    return replace(state, spent=kept)


def learn_limit(
    state: BudgetState, now: float, retry_after: float | None, pacing: Pacing
) -> tuple[BudgetState, bool]:
    """After a secondary-limit answer: pause every writer and halve the allowance.

    GitHub asks for ``retry_after`` seconds, or at least a minute when it does
    not say. Answers met during the pause that the first one started are the
    same episode (several writers were in flight): the pause is extended, the
    allowance is not halved again. The second value tells whether it was.
    """
    pause = pacing.minute if retry_after is None else max(0.0, retry_after)
    blocked_until = max(state.blocked_until, now + pause)
    limited = state.limited + 1
    if now < state.blocked_until:
        return replace(state, blocked_until=blocked_until, limited=limited), False
    share = max(MIN_ALLOWANCE, allowance_at(state, now, pacing) * 0.5)
    shrunk = replace(
        state, allowance=share, since=now, blocked_until=blocked_until, limited=limited
    )
    return shrunk, True


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
    where = "on this host" if shared == "host" else "in this process"
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
        f"{stats.last_hour} of {stats.allowed_per_hour} in the last hour (this host)"
    )
    if stats.allowance < 1.0:
        line += f"; allowance {stats.allowance:.0%} after a secondary-limit answer"
    if stats.paused_for > 0:
        line += f"; paused {stats.paused_for:.0f} s more"
    waits = "1 wait" if stats.waits == 1 else f"{stats.waits:,} waits"
    return f"{line}; {waits} ({stats.waited:,.0f} s), {stats.limited:,} secondary-limit answers"
