"""Pacing writes under GitHub's secondary limits: the decisions over a token's budget (pure)."""

from __future__ import annotations

import pytest

from gitjsonl._pacing import (
    FLIGHT_LIMIT,
    MIN_ALLOWANCE,
    RECOVERY_WINDOWS,
    BudgetState,
    Pacing,
    Spent,
    allowance_at,
    budget_stats,
    delay_for,
    describe_pacing,
    learn_limit,
    prune,
    reserve,
    settle,
    wait_for,
    windows_at,
)

WINDOWS = ((60.0, 80), (3600.0, 500))
GITHUB = Pacing()


def sent(*times: float, count: int = 1) -> BudgetState:
    """A state with ``count`` writes done at each of ``times``."""
    return BudgetState(spent=tuple(Spent(t, count, f"w{i}") for i, t in enumerate(times)))


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


class TestWaitFor:
    def test_twenty_batches_fit_a_minute_and_the_next_waits(self) -> None:
        """Twenty 4-write batches fit in GitHub's minute; the twenty-first waits for it to pass."""
        state = BudgetState()
        for i in range(20):
            assert wait_for(state, 0.0, 4, GITHUB) == 0.0
            state = settle(reserve(state, 0.0, 4, f"b{i}"), f"b{i}", 0.0, 4)
        assert wait_for(state, 0.0, 4, GITHUB) == pytest.approx(60.0)
        assert wait_for(state, 60.5, 4, GITHUB) == 0.0

    def test_writes_in_flight_count_as_sent_now(self) -> None:
        """A reservation not yet settled keeps its writes in the window however long it takes."""
        state = reserve(BudgetState(), 0.0, 80, "slow")
        assert wait_for(state, 59.0, 4, GITHUB) > 0
        assert wait_for(state, 100.0, 4, GITHUB) == pytest.approx(60.0)

    def test_a_crashed_writers_reservation_ages_out(self) -> None:
        """Past the flight limit an unsettled reservation ages like any write, then leaves."""
        state = reserve(BudgetState(), 0.0, 80, "crashed")
        assert wait_for(state, FLIGHT_LIMIT + 61.0, 4, GITHUB) == 0.0

    def test_a_pause_holds_every_write_back(self) -> None:
        """While GitHub's pause lasts, even an empty window waits for its end."""
        state = BudgetState(blocked_until=30.0)
        assert wait_for(state, 10.0, 1, GITHUB) == pytest.approx(20.0)

    def test_windows_shrink_with_the_allowance(self) -> None:
        """At half the allowance, 40 writes fill the minute instead of 80."""
        state = BudgetState(allowance=0.5, since=0.0)
        assert windows_at(state, 0.0, GITHUB) == ((60.0, 40), (3600.0, 250))
        full = sent(*[0.0] * 40)
        assert wait_for(BudgetState(full.spent, allowance=0.5), 1.0, 1, GITHUB) > 0


class TestReserveAndSettle:
    def test_settling_restamps_with_the_writes_really_sent(self) -> None:
        """A batch reserved at t=0 that sent 5 writes by t=3 counts 5 writes at t=3."""
        state = settle(reserve(BudgetState(), 0.0, 4, "b"), "b", 3.0, 5)
        assert state.spent == (Spent(3.0, 5, "b"),)

    def test_nothing_sent_frees_the_reservation(self) -> None:
        """A batch that failed before its first write gives its reservation back."""
        assert settle(reserve(BudgetState(), 0.0, 4, "b"), "b", 1.0, 0).spent == ()

    def test_prune_drops_what_left_every_window(self) -> None:
        """Writes older than the hour are forgotten; newer ones are kept."""
        state = prune(sent(0.0, 3000.0), 3700.0, GITHUB)
        assert [s.time for s in state.spent] == [3000.0]

    def test_prune_drops_stamps_from_a_clock_that_went_back(self) -> None:
        """A stamp far in the future (before a reboot or a clock step) is not waited for."""
        assert prune(sent(10_000.0), 100.0, GITHUB).spent == ()


class TestLearnLimit:
    def test_halves_the_allowance_and_pauses_as_github_asked(self) -> None:
        """A limit with retry-after 7 pauses 7 s and halves the budget."""
        state, shrunk = learn_limit(BudgetState(), 100.0, 7, GITHUB)
        assert shrunk
        assert state.blocked_until == 107.0
        assert allowance_at(state, 100.0, GITHUB) == 0.5
        assert state.limited == 1

    def test_without_retry_after_pauses_a_minute_window(self) -> None:
        """GitHub's advice without retry-after: wait at least a minute (the window's length)."""
        state, _ = learn_limit(BudgetState(), 0.0, None, Pacing(minute=2.0))
        assert state.blocked_until == 2.0

    def test_answers_during_the_pause_are_one_episode(self) -> None:
        """A second answer while paused extends the pause but does not halve again."""
        first, _ = learn_limit(BudgetState(), 0.0, 10, GITHUB)
        second, shrunk = learn_limit(first, 5.0, 20, GITHUB)
        assert not shrunk
        assert second.allowance == 0.5
        assert second.blocked_until == 25.0
        assert second.limited == 2

    def test_never_below_the_floor(self) -> None:
        """Limit after limit, the allowance stops at its floor."""
        state = BudgetState()
        for i in range(10):
            state, _ = learn_limit(state, i * 100.0, 1, GITHUB)
        assert allowance_at(state, 900.0, GITHUB) == MIN_ALLOWANCE

    def test_recovers_slowly_to_the_whole_budget(self) -> None:
        """From half, the allowance grows back linearly over half the recovery windows."""
        state, _ = learn_limit(BudgetState(), 0.0, 1, GITHUB)
        halfway = RECOVERY_WINDOWS * 60.0 / 4
        assert allowance_at(state, halfway, GITHUB) == pytest.approx(0.75)
        assert allowance_at(state, 2 * halfway, GITHUB) == 1.0
        assert prune(state, 2 * halfway, GITHUB).allowance == 1.0


class TestBudgetStats:
    def test_counts_each_window_and_the_allowance(self) -> None:
        """The figures stats() shows: writes per window, what is allowed now, the pause."""
        state = BudgetState(
            spent=(Spent(0.0, 4, "a"), Spent(100.0, 4, "b")),
            allowance=0.5,
            since=100.0,
            blocked_until=130.0,
            limited=1,
            waits=3,
            waited=12.5,
        )
        stats = budget_stats(state, 110.0, GITHUB, shared="host")
        assert (stats.last_minute, stats.last_hour) == (4, 8)
        assert (stats.allowed_per_minute, stats.allowed_per_hour) < (80, 500)
        assert stats.paused_for == pytest.approx(20.0)
        assert (stats.limited, stats.waits, stats.waited, stats.shared) == (1, 3, 12.5, "host")


class TestDescribePacing:
    def test_says_the_budget_is_per_token_and_where_it_is_shared(self) -> None:
        """doctor's line names the numbers and how far the budget is shared."""
        line = describe_pacing(Pacing())
        assert "80 writes a minute and 500 an hour per token" in line
        assert "on this host" in line
        assert "in this process" in describe_pacing(Pacing(), shared="process")
        assert describe_pacing(None) == "off"
