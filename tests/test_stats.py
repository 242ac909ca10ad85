"""``LogStats`` and the counters that produce it."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from gitjsonl import GitJsonlError, LogStats, TransientError
from gitjsonl._stats import Counters
from gitjsonl.testing import Fault, LocalHub

from .helpers import make_log

#: What the log passes to ``snapshot`` from its queue, committer and reader: nothing yet.
NOTHING_PASSED_IN = dict.fromkeys(
    (
        "pending",
        "pending_bytes",
        "conflicts_retried",
        "retries",
        "corrupt_lines",
        "landed_after_error",
    ),
    0,
)
#: Where the budget would be passed in: a log without pacing has none.
NO_BUDGET = {"budget": None}
#: A log that is not failing and has nothing pending.
HEALTHY = {"failing_for": None, "oldest_pending_age": None}


class TestCounters:
    def test_start_at_zero(self) -> None:
        """A fresh log has counted nothing, committed nothing and met no error."""
        stats = Counters().snapshot(**NOTHING_PASSED_IN)
        values = {f.name: getattr(stats, f.name) for f in dataclasses.fields(LogStats)}
        assert values == {
            **dict.fromkeys(values, 0),
            "last_commit": None,
            "last_error": None,
            **NO_BUDGET,
            **HEALTHY,
        }

    def test_snapshot_carries_every_field(self) -> None:
        """Every ``LogStats`` field comes from the counters or from what the log passes in."""
        error: GitJsonlError = TransientError("502", status=502)
        counters = Counters(
            appended=1,
            committed=2,
            batches=3,
            failures=4,
            rate_limited=5,
            dropped=6,
            attempts_started=100,
            last_failed_attempt=101,
            last_commit="c0ffee",
            last_error=error,
            failing_since=90.0,
        )
        passed_in = {
            "pending": 7,
            "pending_bytes": 8,
            "conflicts_retried": 9,
            "retries": 10,
            "corrupt_lines": 11,
            "landed_after_error": 12,
        }
        expected = {
            "appended": 1,
            "committed": 2,
            "batches": 3,
            "failures": 4,
            "rate_limited": 5,
            "dropped": 6,
            "last_commit": "c0ffee",
            "last_error": error,
            **passed_in,
            **NO_BUDGET,
            "failing_for": 10.0,
            "oldest_pending_age": 25.0,
        }
        stats = counters.snapshot(**passed_in, now=100.0, oldest_pending_at=75.0)
        assert {f.name for f in dataclasses.fields(LogStats)} == set(expected)
        for name, value in expected.items():
            assert getattr(stats, name) == value, name

    def test_snapshot_does_not_follow_later_counts(self) -> None:
        """A snapshot keeps its values when the counters move on."""
        counters = Counters(appended=1)
        stats = counters.snapshot(**NOTHING_PASSED_IN)
        counters.appended += 5
        assert stats.appended == 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.appended = 6  # type: ignore[misc]


class TestHealth:
    def test_a_failure_starts_the_failing_time_and_a_success_ends_it(self) -> None:
        """failing_for counts from the first error since the last success, which clears it."""
        counters = Counters()
        counters.failed(TransientError("no answer"), now=10.0)
        counters.failed(TransientError("no answer again"), now=15.0)
        stats = counters.snapshot(**NOTHING_PASSED_IN, now=40.0)
        assert stats.failing_for == 30.0
        assert str(stats.last_error) == "no answer again"
        counters.succeeded("c0ffee")
        stats = counters.snapshot(**NOTHING_PASSED_IN, now=50.0)
        assert (stats.failing_for, stats.last_error, stats.last_commit) == (None, None, "c0ffee")

    def test_an_age_is_never_negative(self) -> None:
        """A clock read before the event it measures from gives an age of 0, not less."""
        stats = Counters().snapshot(**NOTHING_PASSED_IN, now=5.0, oldest_pending_at=6.0)
        assert stats.oldest_pending_age == 0.0


class _GatedSleep:
    """The Log's sleep: the first call (a retry's wait) holds until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.entered.set()
        self.release.wait(30)


class TestUnreachable:
    def test_stats_show_the_failure_within_one_attempt_and_clear_when_back(
        self, localhub: LocalHub
    ) -> None:
        """While GitHub does not answer, the first failed request (not yet given up on) shows
        in stats as last_error, failing_for and oldest_pending_age; a landed batch clears them."""
        now = [100.0]
        sleep = _GatedSleep()
        localhub.add_fault(Fault(action="drop", times=None))  # no answer to anything
        with make_log(localhub, clock=lambda: now[0], sleep=sleep) as log:
            log.append({"id": 1})  # at 100; the flusher tries it by itself
            assert sleep.entered.wait(30), "the batch was never retried"
            now[0] = 107.0
            stats = log.stats()
            assert isinstance(stats.last_error, TransientError)
            assert stats.failures == 0  # the attempt is still being retried
            assert stats.pending == 1
            assert stats.failing_for == 7.0
            assert stats.oldest_pending_age == 7.0
            localhub.clear_faults()
            sleep.release.set()
            log.flush(timeout=30)
            stats = log.stats()
        assert (stats.last_error, stats.failing_for, stats.oldest_pending_age) == (None, None, None)
        assert stats.pending == 0
