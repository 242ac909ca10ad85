"""When the flusher tries next: rate-limit blocks and failure backoff, over clock readings."""

from __future__ import annotations

import pytest

from gitjsonl._schedule import (
    FAILURE_BACKOFF,
    FAILURE_BACKOFF_MAX,
    RATE_LIMIT_DEFAULT_WAIT,
    FlushSchedule,
)


class TestRateLimit:
    def test_fresh_schedule_holds_nothing_back(self) -> None:
        """Before anything went wrong, every attempt may start at once."""
        schedule = FlushSchedule()
        assert schedule.blocked_for(0.0) == 0.0
        assert schedule.may_attempt(0.0, requested=False)

    def test_blocks_for_retry_after(self) -> None:
        """GitHub's ``retry_after`` blocks every attempt until it has passed."""
        schedule = FlushSchedule()
        assert schedule.rate_limited(100.0, 7.0) == 7.0
        assert schedule.blocked_for(100.0) == 7.0
        assert schedule.blocked_for(105.0) == 2.0
        assert schedule.blocked_for(107.0) == 0.0
        assert schedule.blocked_for(500.0) == 0.0

    def test_blocks_for_the_default_without_retry_after(self) -> None:
        """When GitHub does not say how long, the block lasts 60 s."""
        schedule = FlushSchedule()
        assert RATE_LIMIT_DEFAULT_WAIT == 60.0
        assert schedule.rate_limited(10.0, None) == 60.0
        assert schedule.blocked_for(10.0) == 60.0

    def test_negative_retry_after_does_not_block(self) -> None:
        """A ``retry_after`` in the past (clock skew) blocks nothing."""
        schedule = FlushSchedule()
        assert schedule.rate_limited(10.0, -5.0) == 0.0
        assert schedule.blocked_for(10.0) == 0.0

    def test_rate_limit_is_not_a_failure(self) -> None:
        """A rate limit neither starts nor grows the failure backoff."""
        schedule = FlushSchedule()
        schedule.rate_limited(0.0, 5.0)
        assert schedule.may_attempt(0.0, requested=False)
        assert schedule.failed(0.0) == FAILURE_BACKOFF


class TestFailureBackoff:
    def test_backoff_doubles_up_to_the_cap(self) -> None:
        """Each failure waits twice as long as the last, from 30 s up to 600 s."""
        schedule = FlushSchedule()
        waits = [schedule.failed(0.0) for _ in range(8)]
        assert waits == [30.0, 60.0, 120.0, 240.0, 480.0, 600.0, 600.0, 600.0]
        assert (FAILURE_BACKOFF, FAILURE_BACKOFF_MAX) == (30.0, 600.0)

    @pytest.mark.parametrize(
        ("now", "requested", "expected"),
        [
            (1000.0, False, False),
            (1029.9, False, False),
            (1030.0, False, True),
            (1000.0, True, True),  # flush() or close() tries at once
        ],
    )
    def test_may_attempt_during_backoff(self, now: float, requested: bool, expected: bool) -> None:
        """The flusher waits out the backoff by itself; a request skips it."""
        schedule = FlushSchedule()
        schedule.failed(1000.0)
        assert schedule.may_attempt(now, requested=requested) is expected

    def test_success_resets_the_backoff(self) -> None:
        """After a success the flusher may try at once and the next failure waits 30 s again."""
        schedule = FlushSchedule()
        for _ in range(4):
            schedule.failed(0.0)
        schedule.succeeded()
        assert schedule.may_attempt(0.0, requested=False)
        assert schedule.failed(0.0) == FAILURE_BACKOFF

    def test_failure_does_not_block_requests(self) -> None:
        """A failure backoff is no rate limit: ``blocked_for`` stays zero."""
        schedule = FlushSchedule()
        schedule.failed(0.0)
        assert schedule.blocked_for(0.0) == 0.0
