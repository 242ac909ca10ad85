"""How a failed write is tried again: the policy, the pure decisions, one tenacity builder.

tenacity runs the loop; what it asks is answered here, over plain values:

- ``is_retryable``: is this failure worth another attempt right away?
- ``retry_wait``: how long to sleep first. Lost races (``NotFastForward``)
  back off from a few tens of milliseconds, server and network errors from
  half a second; each kind keeps its own streak (``KindBackoff``), so ten lost
  races do not make the first 502 after them wait as if it were the tenth.

``RetryPolicy.retrying`` builds the ``tenacity.Retrying`` that the committer
and ``migrate`` both use; nothing else builds one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import tenacity

from ._exceptions import ContentsConflict, NotFastForward, StaleRead, TransientError

__all__ = [
    "KindBackoff",
    "RetryPolicy",
    "StopAfterTotalWait",
    "failure_kind",
    "is_retryable",
    "retry_wait",
]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a batch (or a migration) is retried before its failure is reported.

    Conflicts (another writer got there first) are retried quickly, with
    jitter so that racing writers spread out; server and network errors back
    off exponentially from ``initial_wait`` up to ``max_wait``. A batch is
    given up on (its last error raised to ``flush()``, its records kept
    pending for the flusher's next try) once the waits between its attempts
    add up to ``max_total_wait`` seconds, or after ``max_attempts`` attempts,
    whichever comes first: a bounded *time*, so that a burst of lost races
    is outlasted rather than counted.
    """

    max_attempts: int = 200
    max_total_wait: float = 90.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    conflict_wait: float = 0.05
    max_conflict_wait: float = 1.0

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"max_attempts must be a whole number, not {attempts!r}")
        if attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {attempts}")
        waits = ("initial_wait", "max_wait", "conflict_wait", "max_conflict_wait", "max_total_wait")
        for name in waits:
            wait = getattr(self, name)
            if isinstance(wait, bool) or not isinstance(wait, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, not {wait!r}")
            if not math.isfinite(wait) or wait < 0:
                raise ValueError(f"{name} must be 0 or more seconds, not {wait!r}")

    def retrying(
        self,
        *,
        sleep: Callable[[float], None],
        rng: random.Random | None = None,
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    ) -> tenacity.Retrying:
        """A fresh ``tenacity.Retrying`` for one batch: per-kind backoff, last error re-raised."""
        backoff = KindBackoff(self, rng or random.Random())
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts)
            | StopAfterTotalWait(backoff, self.max_total_wait),
            wait=backoff,
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


def is_retryable(exc: BaseException) -> bool:
    """Whether a write that failed with ``exc`` is tried again at once (within the policy)."""
    return isinstance(exc, (NotFastForward, TransientError, ContentsConflict))


def failure_kind(exc: BaseException | None) -> str:
    """``"conflict"`` for a lost race or a read that lags behind it, ``"error"`` otherwise."""
    return "conflict" if isinstance(exc, (NotFastForward, StaleRead)) else "error"


def retry_wait(
    exc: BaseException | None, attempt: int, policy: RetryPolicy, rng: random.Random
) -> float:
    """Seconds to sleep before trying again after the ``attempt``-th failure of this kind.

    Exponential with *equal* jitter: half the ceiling is always waited, the
    other half is random. The fixed half keeps a writer that just lost a race
    from coming straight back; the random half spreads racing writers apart.
    """
    if failure_kind(exc) == "conflict":
        base, cap = policy.conflict_wait, policy.max_conflict_wait
    else:
        base, cap = policy.initial_wait, policy.max_wait
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(slots=True)
class KindBackoff:
    """A tenacity wait strategy: ``retry_wait`` with one streak per kind of failure."""

    policy: RetryPolicy
    rng: random.Random
    streaks: dict[str, int] = field(default_factory=dict)
    total: float = 0.0  # seconds of waiting handed out so far

    def __call__(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        kind = failure_kind(exc)
        self.streaks[kind] = self.streaks.get(kind, 0) + 1
        wait = retry_wait(exc, self.streaks[kind], self.policy, self.rng)
        self.total += wait
        return wait


class StopAfterTotalWait(tenacity.stop.stop_base):
    """A tenacity stop: once the waits a ``KindBackoff`` handed out add up to ``limit``."""

    def __init__(self, backoff: KindBackoff, limit: float) -> None:
        self.backoff = backoff
        self.limit = limit

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.backoff.total >= self.limit
