"""When the flusher tries again: a small state machine over clock readings, no I/O.

Two things hold the flusher back, and they differ:

- a **rate limit** is not a failure: GitHub said when to come back (or we
  wait ``RATE_LIMIT_DEFAULT_WAIT``, GitHub's advice when it did not say), and
  nothing is sent before then, not even for ``flush()``; records keep
  arriving and join a bigger batch; a wait is never longer than
  ``_pacing.MAX_SERVER_WAIT`` (an hour), whatever the server asked;
- a **failure** (401, 403, 404, retries exhausted) backs off from
  ``FAILURE_BACKOFF`` doubling to ``FAILURE_BACKOFF_MAX`` for the flusher's own
  attempts, while an explicit ``flush()`` (or ``close()``) tries at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._pacing import clamp_wait

__all__ = [
    "FAILURE_BACKOFF",
    "FAILURE_BACKOFF_MAX",
    "RATE_LIMIT_DEFAULT_WAIT",
    "FlushSchedule",
]

FAILURE_BACKOFF = 30.0
FAILURE_BACKOFF_MAX = 600.0
RATE_LIMIT_DEFAULT_WAIT = 60.0


@dataclass(slots=True)
class FlushSchedule:
    """When the next attempt may start, in the clock's time."""

    blocked_until: float = 0.0  # rate limited: no attempt at all before this
    retry_at: float = 0.0  # after a failure: no unrequested attempt before this
    backoff: float = FAILURE_BACKOFF

    def blocked_for(self, now: float) -> float:
        """Seconds a rate limit still holds every attempt back (0 when none does)."""
        return max(0.0, self.blocked_until - now)

    def may_attempt(self, now: float, *, requested: bool) -> bool:
        """Whether to try now: a request (``flush``/``close``) skips the failure backoff."""
        return requested or self.retry_at <= now

    def rate_limited(self, now: float, retry_after: float | None) -> float:
        """GitHub said to wait; how long we will (``clamp_wait``: never for ever)."""
        wait = clamp_wait(retry_after, RATE_LIMIT_DEFAULT_WAIT)
        self.blocked_until = now + wait
        return wait

    def failed(self, now: float) -> float:
        """An attempt failed for good; the wait before the flusher tries by itself."""
        wait = self.backoff
        self.retry_at = now + wait
        self.backoff = min(self.backoff * 2, FAILURE_BACKOFF_MAX)
        return wait

    def succeeded(self) -> None:
        """A batch landed: the next failure starts its backoff afresh."""
        self.retry_at = 0.0
        self.backoff = FAILURE_BACKOFF
