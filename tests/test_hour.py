"""A simulated hour on the pacing code itself: the hour's budget spent evenly, never a stall."""

from __future__ import annotations

import pytest

from gitjsonl._pacing import BudgetState
from gitjsonl.testing._hour import Writer, percentile, simulate, steady_arrivals, windows_only

HOUR = 3600.0


def one_writer(cost: int, hours: int = 2, rate: float = 1.0) -> tuple[Writer, float]:
    return Writer(steady_arrivals(rate, 0.0, hours * HOUR), cost=cost), hours * HOUR


class TestOneLogAtOneRecordASecond:
    @pytest.mark.parametrize(("cost", "interval"), [(4, 28.8), (3, 21.6)])
    def test_batches_spread_over_every_hour(self, cost: int, interval: float) -> None:
        """At 4 writes a batch, 125 batches in every hour (166 at 3), never more than the
        windows allow, and no gap between commits longer than 2x the batch interval."""
        writer, until = one_writer(cost)
        result = simulate([writer], until=until)
        per_hour = [
            sum(1 for t in result.commits if h * HOUR <= t < (h + 1) * HOUR) for h in (0, 1)
        ]
        assert per_hour == [500 // cost] * 2
        assert max(result.gaps()) <= 2 * interval
        assert result.most_in_window(60.0) <= 80
        assert result.most_in_window(HOUR) <= 500

    @pytest.mark.parametrize(("cost", "interval"), [(4, 28.8), (3, 21.6)])
    def test_a_log_keeps_the_closing_reserve_and_still_spreads_every_hour(
        self, cost: int, interval: float
    ) -> None:
        """Leaving two batches of the hour's window for a closing batch costs two batches an
        hour (123 at 4 writes, 164 at 3), still spread with no gap over 2x the interval."""
        writer, until = one_writer(cost)
        result = simulate([writer], until=until, closing_reserve=True)
        per_hour = [
            sum(1 for t in result.commits if h * HOUR <= t < (h + 1) * HOUR) for h in (0, 1)
        ]
        assert per_hour == [(500 - 2 * cost) // cost] * 2
        assert max(result.gaps()) <= 2 * interval
        assert result.most_in_window(60.0) <= 80 - 2 * cost
        assert result.most_in_window(HOUR) <= 500 - 2 * cost

    def test_delay_from_append_to_committed_stays_near_the_interval(self) -> None:
        """No record waits longer than 36 s (4 writes / (SUSTAIN x the hourly rate)), all hour."""
        writer, until = one_writer(4)
        result = simulate([writer], until=until)
        assert percentile(result.delays, 0.5) < 20.0
        assert max(result.delays) <= 36.5
        assert result.uncommitted < 40  # only what arrived in the last interval

    def test_main_spent_the_hour_in_ten_minutes(self) -> None:
        """Without the bucket and the sustainability rule (windows only, as on main), the
        same Log spends its 500 writes early and then stalls: what this change fixes."""
        writer, until = one_writer(4, hours=2)
        with windows_only():
            result = simulate([writer], until=until)
        assert len([t for t in result.commits if t < 700.0]) == 125
        assert max(result.gaps()) > 2000
        assert max(result.delays) > 2000


class TestBursts:
    def test_budget_saved_while_idle_goes_in_a_burst_without_a_later_stall(self) -> None:
        """After half an hour idle, a flood commits at the flush interval for a while (the
        bucket), then settles to the batch interval, with no gap beyond 36 s while records wait."""
        arrivals = steady_arrivals(1.0, 0.0, 600.0) + steady_arrivals(5.0, 2400.0, 3 * HOUR)
        result = simulate([Writer(arrivals)], until=3 * HOUR)
        busy = [
            b - a
            for a, b in zip(result.commits, result.commits[1:], strict=False)
            if a >= 2400.0 or b <= 600.0
        ]
        assert max(busy) <= 36.5
        burst = [t for t in result.commits if 2400.0 <= t < 2460.0]
        assert len(burst) >= 8  # ~ every 5.5 s: far faster than one every 29 s
        assert result.most_in_window(60.0) <= 80
        assert result.most_in_window(HOUR) <= 500
        assert max(result.delays) <= 36.5

    def test_a_fresh_budget_bursts_then_pays_back_smoothly(self) -> None:
        """A fresh budget's full bucket is spent at once, and the hour after it is slower,
        not stalled at its end."""
        writer, until = one_writer(4, hours=3)
        result = simulate([writer], until=until)
        first_minutes = [t for t in result.commits if t < 120.0]
        assert len(first_minutes) >= 15
        assert max(result.gaps()) <= 36.5


class TestWritersSharingAToken:
    def test_four_logs_share_the_hour_and_none_starves(self) -> None:
        """Four Logs on one token share 125 batches an hour; first come first served, so
        no Log's record waits for more than about two rounds of the other three."""
        writers = [Writer(steady_arrivals(0.25, float(i), 2 * HOUR)) for i in range(4)]
        result = simulate(writers, until=2 * HOUR)
        assert len([t for t in result.commits if HOUR <= t < 2 * HOUR]) in (124, 125)
        assert result.most_in_window(HOUR) <= 500
        assert max(result.delays) < 4 * 4 * 28.8

    def test_a_halved_allowance_is_spent_evenly_too(self) -> None:
        """After a foreign secondary limit halves the allowance, the smaller budget is also
        spread: no gap longer than twice the (longer) interval."""
        state = BudgetState(allowance=0.5, since=0.0)
        writer, _ = one_writer(4, hours=1)
        result = simulate([writer], until=600.0, state=state)
        assert result.most_in_window(60.0) <= 40
        assert max(result.gaps()) <= 2 * 4 / (0.8 * 250 / HOUR) + 1
