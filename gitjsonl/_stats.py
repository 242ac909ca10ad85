"""``LogStats``, ``BudgetStats``, and the counters a ``Log`` keeps to produce them."""

from __future__ import annotations

from dataclasses import dataclass

from ._exceptions import GitJsonlError

__all__ = ["BudgetStats", "Counters", "LogStats"]


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """The state of the write budget a ``Log`` shares with every writer on its token.

    ``shared`` is where the budget lives: ``"hosts"`` (every host shares it
    through the coordinator, Redis), ``"host"`` (processes on this host share
    it through a ledger file) or ``"process"``. ``last_minute``/``last_hour`` count the writes in
    each window, ``allowed_per_minute``/``allowed_per_hour`` what the windows
    allow now: GitHub's budget times ``allowance``, which drops to half after
    a secondary-limit answer and grows back slowly. ``paused_for`` is what is
    left of the pause GitHub asked for; ``limited`` counts secondary-limit
    answers learned from, ``waits`` the times a write waited for the budget
    and ``waited`` their seconds (on this host, since the ledger began).
    """

    shared: str
    last_minute: int
    last_hour: int
    allowed_per_minute: int
    allowed_per_hour: int
    allowance: float
    paused_for: float
    limited: int
    waits: int
    waited: float


@dataclass(frozen=True, slots=True)
class LogStats:
    """A consistent snapshot of a ``Log``'s counters.

    ``appended``/``committed``/``pending`` count records (``pending_bytes``
    their encoded size); ``batches`` commits made; ``conflicts_retried`` lost
    races rebuilt on a newer head; ``retries`` retried attempts of any kind;
    ``failures`` attempts that failed for good (their records kept);
    ``rate_limited`` rate-limit answers waited out; ``dropped`` records refused
    under ``on_full="drop"``; ``corrupt_lines`` lines readers skipped;
    ``landed_after_error`` batches found on the branch after their answer was
    lost; ``last_error`` the latest error, cleared by the next success;
    ``budget`` the token's shared write budget (``None`` without pacing).
    """

    appended: int
    committed: int
    pending: int
    pending_bytes: int
    batches: int
    conflicts_retried: int
    retries: int
    failures: int
    rate_limited: int
    dropped: int
    corrupt_lines: int
    landed_after_error: int
    last_commit: str | None
    last_error: GitJsonlError | None
    budget: BudgetStats | None = None


@dataclass(slots=True)
class Counters:
    """What the ``Log`` itself counts (the committer and reader count the rest)."""

    appended: int = 0
    committed: int = 0
    batches: int = 0
    failures: int = 0
    rate_limited: int = 0
    dropped: int = 0
    attempts_started: int = 0
    last_failed_attempt: int = 0  # the attempt number that last failed for good
    last_commit: str | None = None
    last_error: GitJsonlError | None = None

    def snapshot(
        self,
        *,
        pending: int,
        pending_bytes: int,
        conflicts_retried: int,
        retries: int,
        corrupt_lines: int,
        landed_after_error: int,
        budget: BudgetStats | None = None,
    ) -> LogStats:
        return LogStats(
            appended=self.appended,
            committed=self.committed,
            pending=pending,
            pending_bytes=pending_bytes,
            batches=self.batches,
            conflicts_retried=conflicts_retried,
            retries=retries,
            failures=self.failures,
            rate_limited=self.rate_limited,
            dropped=self.dropped,
            corrupt_lines=corrupt_lines,
            landed_after_error=landed_after_error,
            last_commit=self.last_commit,
            last_error=self.last_error,
            budget=budget,
        )
