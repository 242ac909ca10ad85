"""A simulated hour (or several) of writers on one token's budget: the pacing code itself,
on a clock that only moves when the simulation says so.

Each writer behaves as a ``Log``'s flusher does: it wakes every
``flush_interval`` seconds, and when records are pending it asks the budget
how long before a batch fits (``Budget.delay``), waits that long *before*
cutting the batch, reserves the batch's writes, sends them (``latency``
seconds) and settles them. What it measures is what a user sees: the delay of
every record from ``append`` to committed, the gaps between commits, and the
most writes any sliding window of GitHub's held. ``tests/test_hour.py`` pins
the figures' shape; ``bench/hour.py`` prints them.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from gitjsonl import _pacing
from gitjsonl._budget import Budget, MemoryStore
from gitjsonl._pacing import BudgetState, Pacing

__all__ = [
    "HourResult",
    "Writer",
    "percentile",
    "simulate",
    "steady_arrivals",
    "windows_only",
]


@contextlib.contextmanager
def windows_only() -> Iterator[None]:
    """Pacing as it was before issue 18: GitHub's sliding windows alone, no bucket and no
    sustainability rule (for comparison: it spends the hour in ten minutes)."""
    original = _pacing.wait_for

    def wait_for(
        state: BudgetState, now: float, cost: int, pacing: Pacing, *, keep: int = 0
    ) -> float:
        times = _pacing._times(state, now)
        windows = _pacing.windows_at(state, now, pacing)
        delay = _pacing.delay_for(times, now, cost + keep, windows)
        return max(0.0, state.blocked_until - now, delay)

    _pacing.wait_for = wait_for
    try:
        yield
    finally:
        _pacing.wait_for = original


def steady_arrivals(rate: float, start: float, end: float) -> list[float]:
    """Record times at ``rate`` a second from ``start`` to ``end``."""
    count = math.floor((end - start) * rate)
    return [start + i / rate for i in range(count)]


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Writer:
    """One ``Log`` on the token: when its records are appended, what a batch costs."""

    arrivals: list[float]
    cost: int = 4
    flush_interval: float = 5.0
    pending: list[float] = field(default_factory=list)
    next_arrival: int = 0


@dataclass(frozen=True)
class HourResult:
    """What the writers saw: per record, per commit, per write."""

    delays: tuple[float, ...]  # seconds from append to committed, per record committed
    commits: tuple[float, ...]  # when each batch landed, all writers, in order
    writes: tuple[float, ...]  # when each write reached the server
    uncommitted: int  # records still pending at the end

    def gaps(self) -> list[float]:
        """Seconds between consecutive commits."""
        return [b - a for a, b in zip(self.commits, self.commits[1:], strict=False)]

    def most_in_window(self, length: float) -> int:
        """The most writes any sliding window of ``length`` seconds held."""
        most, start = 0, 0
        for end, time in enumerate(self.writes):
            while self.writes[start] <= time - length:
                start += 1
            most = max(most, end - start + 1)
        return most


def simulate(
    writers: Sequence[Writer],
    *,
    until: float,
    pacing: Pacing | None = None,
    latency: float = 0.5,
    state: BudgetState | None = None,
    seed: int = 0,
    closing_reserve: bool = False,
) -> HourResult:
    """Run ``writers`` on one token's budget from t=0 until ``until`` (no real waiting).

    Writers that wake at the same moment go in a random order (``seed``), as
    threads and processes woken together do. ``closing_reserve``: they leave the
    closing reserve unspent, as a ``Log``'s budget does.
    """
    pacing = pacing or Pacing()
    rng = random.Random(seed)
    now = [0.0]
    store = MemoryStore()
    if state is not None:
        store.update(lambda _: state)
    budgets = [  # one per Log
        Budget(pacing, store, lambda: now[0], closing_reserve=closing_reserve) for _ in writers
    ]
    delays: list[float] = []
    commits: list[float] = []
    writes: list[float] = []
    # (time the writer next acts, its index): the flusher's wake-ups, in time order.
    agenda = [(w.flush_interval, rng.random(), i) for i, w in enumerate(writers)]
    heapq.heapify(agenda)

    def later(when: float, index: int) -> None:
        heapq.heappush(agenda, (when, rng.random(), index))

    while agenda:
        when, _, index = heapq.heappop(agenda)
        if when > until:
            break
        now[0] = when
        writer, budget = writers[index], budgets[index]
        _arrive(writer, when)
        if not writer.pending:
            later(when + writer.flush_interval, index)
            continue
        wait = budget.delay(writer.cost)
        if wait > 0:  # wait before cutting: what arrives meanwhile joins the batch
            later(when + wait, index)
            continue
        token, wait = budget.reserve(writer.cost)
        if token is None:  # another writer took the room since
            later(when + wait, index)
            continue
        batch, writer.pending = writer.pending, []
        landed = when + latency
        writes.extend(when + latency * (k + 1) / writer.cost for k in range(writer.cost))
        now[0] = landed
        budget.settle(token, writer.cost)
        commits.append(landed)
        delays.extend(landed - t for t in batch)
        later(landed + writer.flush_interval, index)
    writes.sort()
    commits.sort()
    left = sum(len(w.pending) + len(w.arrivals) - w.next_arrival for w in writers)
    return HourResult(tuple(delays), tuple(commits), tuple(writes), left)


def _arrive(writer: Writer, now: float) -> None:
    arrivals = writer.arrivals
    while writer.next_arrival < len(arrivals) and arrivals[writer.next_arrival] <= now:
        writer.pending.append(arrivals[writer.next_arrival])
        writer.next_arrival += 1
