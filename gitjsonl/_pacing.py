"""Pacing content-generating requests under GitHub's secondary rate limits.

GitHub allows no more than 80 content-generating requests a minute and 500 an
hour per token, and offers no way to ask how much of that budget is left. A
batch costs 4 such requests, so a log that flushes faster than about one batch
every 29 s (sustained) would be throttled. Pacing waits *before* a batch so
that GitHub never has to say no; the records appended meanwhile join the batch,
which is how a busy log turns into fewer, larger commits.

``delay_for`` is the decision, over plain values; ``Pacer`` keeps the history.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Pacer", "Pacing", "delay_for", "describe_pacing"]


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


def describe_pacing(pacing: Pacing | None) -> str:
    """How a Log paces its writes, in a sentence (for ``doctor``)."""
    if pacing is None:
        return "off"
    return (
        f"{pacing.per_minute} writes a minute and {pacing.per_hour} an hour, per Log "
        "(not shared with other Logs or processes on the same token)"
    )


class Pacer:
    """Thread-safe history of our writes, and the wait each next batch owes."""

    def __init__(self, pacing: Pacing, clock: Callable[[], float]) -> None:
        self._pacing = pacing
        self._clock = clock
        self._lock = threading.Lock()
        longest = max(length for length, _ in pacing.windows())
        self._longest = longest
        self._history: deque[float] = deque()

    def delay(self, cost: int) -> float:
        with self._lock:
            now = self._clock()
            while self._history and self._history[0] <= now - self._longest:
                self._history.popleft()
            return delay_for(self._history, now, cost, self._pacing.windows())

    def record(self, count: int = 1) -> None:
        with self._lock:
            now = self._clock()
            self._history.extend([now] * count)
