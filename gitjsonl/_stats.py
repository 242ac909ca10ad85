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
    lost; ``last_error`` the latest error, set as soon as an attempt fails
    (even one that is retried) and cleared by the next success;
    ``budget`` the token's shared write budget (``None`` without pacing).

    For a health check: ``failing_for`` is how many seconds the log has met
    errors without a success in between (``None``: it is not failing), and
    ``oldest_pending_age`` how many seconds ago the oldest record not yet
    committed was appended (``None``: nothing is pending). A log that cannot
    reach GitHub shows both growing, from its first failed request.
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
    failing_for: float | None = None
    oldest_pending_age: float | None = None


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
    failing_since: float | None = None  # the first error since the last success (the clock)

    def failed(self, error: GitJsonlError, now: float) -> None:
        """An attempt failed with ``error`` (given up on, or about to be retried)."""
        self.last_error = error
        if self.failing_since is None:
            self.failing_since = now

    def succeeded(self, sha: str) -> None:
        """A batch landed as commit ``sha``: the log is not failing."""
        self.last_commit = sha
        self.last_error = None
        self.failing_since = None

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
        now: float = 0.0,
        oldest_pending_at: float | None = None,
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
            failing_for=_age(self.failing_since, now),
            oldest_pending_age=_age(oldest_pending_at, now),
        )


def _age(since: float | None, now: float) -> float | None:
    return None if since is None else max(0.0, now - since)
