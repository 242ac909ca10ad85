"""``LogStats`` and the counters that produce it."""

from __future__ import annotations

import dataclasses

import pytest

from gitjsonl import GitJsonlError, LogStats, TransientError
from gitjsonl._stats import Counters

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
        }
        stats = counters.snapshot(**passed_in)
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
