"""Pacing writes under GitHub's secondary limits: the decision and the history."""

from __future__ import annotations

import pytest

from gitjsonl._pacing import Pacer, Pacing, delay_for

WINDOWS = ((60.0, 80), (3600.0, 500))


class TestDelayFor:
    def test_empty_history_goes_at_once(self) -> None:
        """Nothing sent yet: no wait."""
        assert delay_for([], 0.0, 4, WINDOWS) == 0.0

    def test_full_minute_waits_for_the_oldest_to_age_out(self) -> None:
        """With 80 writes in the last minute, the next 4 wait until 4 have left the window."""
        history = [t / 10 for t in range(80)]  # a burst: t = 0.0 .. 7.9
        assert delay_for(history, 10.0, 4, WINDOWS) == pytest.approx(0.3 + 60.0 - 10.0)

    def test_hour_budget_binds_after_minutes_of_bursts(self) -> None:
        """500 writes spread over the hour block further writes until the oldest is an hour old."""
        history = [i * 7.0 for i in range(500)]  # 0 .. 3493 s
        wait = delay_for(history, 3500.0, 4, WINDOWS)
        assert wait == pytest.approx(3600.0 + 21.0 - 3500.0)

    def test_cost_larger_than_budget_waits_for_an_empty_window(self) -> None:
        """A batch costing more than a whole budget goes once the window is clear."""
        assert delay_for([0.0], 1.0, 100, ((60.0, 80),)) == pytest.approx(59.0)
        assert delay_for([], 1.0, 100, ((60.0, 80),)) == 0.0


class TestPacer:
    def test_batches_of_four_are_spread_to_stay_within_the_minute(self) -> None:
        """Twenty 4-request batches fit in a minute; the twenty-first waits."""
        now = [0.0]
        pacer = Pacer(Pacing(), lambda: now[0])
        for _ in range(20):
            assert pacer.delay(4) == 0.0
            pacer.record(4)
        assert pacer.delay(4) == pytest.approx(60.0)
        now[0] = 60.5
        assert pacer.delay(4) == 0.0
