"""Pacing writes under GitHub's secondary limits: the decisions over a token's budget (pure)."""

from __future__ import annotations

import math
import random

import pytest

from gitjsonl._pacing import (
    CLOSING_BATCHES,
    DATE_SLOP,
    FLIGHT_LIMIT,
    LANDED_WRITES,
    MAX_SERVER_WAIT,
    MIN_ALLOWANCE,
    RECOVERY_WINDOWS,
    BudgetState,
    Pacing,
    Spent,
    allowance_at,
    bucket_at,
    budget_stats,
    clamp_wait,
    closing_reserve,
    closing_wait,
    delay_for,
    dequeue,
    describe_pacing,
    enqueue,
    explained,
    inherit,
    learn_limit,
    prune,
    reserve,
    restore,
    restored,
    settle,
    spend_id,
    sustain_delay,
    wait_for,
    wait_in_line,
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
    def test_a_full_bucket_of_batches_goes_and_the_next_waits_for_the_refill(self) -> None:
        """Seventeen 4-write batches fit the bucket (71.7 writes) at once; the next waits
        until the bucket has refilled to 4 writes at 500 an hour, never for the minute."""
        state = BudgetState()
        for i in range(17):
            assert wait_for(state, 0.0, 4, GITHUB) == 0.0
            state = settle(reserve(state, 0.0, 4, f"b{i}", GITHUB), f"b{i}", 0.0, 4, GITHUB)
        level = 80 - 500 / 60 - 68
        assert wait_for(state, 0.0, 4, GITHUB) == pytest.approx((4 - level) * 7.2)
        assert wait_for(state, 28.8, 4, GITHUB) == 0.0

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


class TestBucket:
    def test_a_fresh_bucket_holds_a_minutes_budget(self) -> None:
        """Never drawn from, the bucket is full: 80 writes less a minute's refill."""
        assert bucket_at(BudgetState(), 0.0, GITHUB) == pytest.approx(80 - 500 / 60)

    def test_refills_at_the_hourly_rate_up_to_its_cap(self) -> None:
        """Drawn empty, it refills 500 writes an hour, and never past 80."""
        state = reserve(BudgetState(tokens=0.0), 0.0, 0, "b", GITHUB)
        assert bucket_at(state, 72.0, GITHUB) == pytest.approx(10.0)
        assert bucket_at(state, 10_000.0, GITHUB) == pytest.approx(80 - 500 / 60)

    @pytest.mark.parametrize(("cost", "interval"), [(4, 28.8), (3, 21.6)])
    def test_steady_state_is_one_batch_per_interval(self, cost: int, interval: float) -> None:
        """With the bucket empty, the next batch of 4 waits 28.8 s (of 3: 21.6 s)."""
        state = BudgetState(tokens=0.0, tokens_at=0.0)
        assert wait_for(state, 0.0, cost, GITHUB) == pytest.approx(interval)
        assert wait_for(state, 10.0, cost, GITHUB) == pytest.approx(interval - 10.0)

    def test_settling_fewer_writes_gives_the_rest_back(self) -> None:
        """A batch reserved at 4 that sent 1 write returns 3 to the bucket."""
        state = settle(reserve(BudgetState(tokens=10.0), 0.0, 4, "b", GITHUB), "b", 0.0, 1, GITHUB)
        assert bucket_at(state, 0.0, GITHUB) == 9.0


class TestSustain:
    def test_an_empty_hour_asks_for_nothing(self) -> None:
        """Nothing sent: any batch that fits the windows may go."""
        assert sustain_delay([], 0.0, 4, 3600.0, 500) == 0.0

    def test_steady_writes_at_the_hourly_rate_keep_going(self) -> None:
        """An hour of batches every 28.8 s leaves room for the next one as the oldest ages."""
        history = [i * 28.8 for i in range(125) for _ in range(4)]
        now = 124 * 28.8 + 28.8 + 0.01  # the oldest batch has just left the window
        assert sustain_delay(history, now, 4, 3600.0, 500) == 0.0

    def test_a_burst_late_in_a_busy_hour_is_held_back(self) -> None:
        """With 480 writes sent at the hour's start, 16 more now would leave the next
        batches no room for the rest of the hour: they wait."""
        history = [0.0] * 480
        assert sustain_delay(history, 60.0, 16, 3600.0, 500) > 0
        assert delay_for(history, 60.0, 16, ((3600.0, 500),)) == 0.0  # the window alone lets it

    def test_the_next_batch_always_fits_one_stream_step_later(self) -> None:
        """Whatever was sent under the rule, the next batch waits at most cost/(0.8 x rate)."""
        state = BudgetState()
        now, longest = 0.0, 0.0
        for i in range(400):
            wait = wait_for(state, now, 4, GITHUB)
            longest = max(longest, wait)
            now += wait
            state = settle(reserve(state, now, 4, f"b{i}", GITHUB), f"b{i}", now, 4, GITHUB)
            state = prune(state, now, GITHUB)
        assert longest <= 4 / (0.8 * 500 / 3600) + 1e-6


class TestLine:
    def test_a_writer_behind_another_waits_for_both_batches(self) -> None:
        """With one writer in line, a newcomer waits until two batches fit; the first goes."""
        state = enqueue(BudgetState(tokens=5.0, tokens_at=0.0), 0.0, "first", 1.0)
        assert wait_in_line(state, 0.0, 4, GITHUB, "first") == 0.0
        assert wait_in_line(state, 0.0, 4, GITHUB, "second") == pytest.approx(3 * 7.2)
        assert wait_in_line(dequeue(state, "first"), 0.0, 4, GITHUB, "second") == 0.0

    def test_a_waiter_that_never_came_back_loses_its_place(self) -> None:
        """A place in line lapses WAITER_GRACE after the writer said it would be back."""
        state = enqueue(BudgetState(), 0.0, "gone", 5.0)
        assert prune(state, 100.0, GITHUB).waiting == ()


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


class TestServerWaits:
    @pytest.mark.parametrize(
        ("asked", "obeyed"),
        [
            (7.0, 7.0),
            (None, 60.0),
            (float("nan"), 60.0),
            (-5.0, 0.0),
            (float("inf"), MAX_SERVER_WAIT),
            (1e12, MAX_SERVER_WAIT),
        ],
    )
    def test_every_wait_a_server_asks_for_is_clamped(
        self, asked: float | None, obeyed: float
    ) -> None:
        """Retry-After is obeyed up to an hour; Infinity, NaN and negatives never are."""
        assert clamp_wait(asked, 60.0) == obeyed


class TestExplained:
    def test_our_own_overfull_minute_explains_a_limit(self) -> None:
        """81 writes of ours in the last minute: GitHub's no was predictable, not foreign."""
        state = BudgetState(spent=(Spent(0.0, 81, "forced"),))
        assert explained(state, 1.0, GITHUB)
        assert not explained(BudgetState(spent=(Spent(0.0, 80, "b"),)), 1.0, GITHUB)

    def test_an_explained_limit_pauses_without_halving(self) -> None:
        """Our own writes past the limit: pause as asked, keep the allowance."""
        state, shrunk = learn_limit(BudgetState(spent=(Spent(0.0, 81, "f"),)), 1.0, 30, GITHUB)
        assert not shrunk
        assert state.allowance == 1.0
        assert state.blocked_until == 31.0


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


class TestInherit:
    """What a host takes over of the shared state when the coordinator fails."""

    SHARED = BudgetState(
        spent=(Spent(100.0, 3, "a"), Spent(101.0, 4, "b", done=False)),
        allowance=0.5,
        since=90.0,
        blocked_until=130.0,
        tokens=20.0,
        tokens_at=101.0,
        limited=1,
    )

    def test_the_hosts_share_of_recent_writes_and_what_github_taught(self) -> None:
        """Each write counted at the share (rounded up), on the host's clock; the pause, the
        cut allowance and the bucket's level come along."""
        got = inherit(BudgetState(), self.SHARED, 0.25, shift=-10.0)
        assert got.spent == (Spent(90.0, 1, "a"), Spent(91.0, 1, "b", done=False))
        assert (got.blocked_until, got.allowance, got.since) == (120.0, 0.5, 80.0)
        assert (got.tokens, got.tokens_at) == (5.0, 91.0)

    def test_taken_once_per_host_however_many_processes_take_it(self) -> None:
        """A second process of the host inheriting the same state changes nothing."""
        once = inherit(BudgetState(), self.SHARED, 0.5, shift=0.0)
        assert inherit(once, self.SHARED, 0.5, shift=0.0) == once

    def test_what_the_host_knows_is_kept(self) -> None:
        """A host's own longer pause, lower allowance and drawn bucket are not relaxed."""
        host = BudgetState(
            spent=(Spent(102.0, 2, "c"),),
            allowance=0.25,
            since=95.0,
            blocked_until=200.0,
            tokens=1.0,
            tokens_at=102.0,
        )
        got = inherit(host, self.SHARED, 0.5, shift=0.0)
        assert [s.id for s in got.spent] == ["a", "b", "c"]
        assert (got.blocked_until, got.allowance, got.since) == (200.0, 0.25, 95.0)
        assert (got.tokens, got.tokens_at) == (1.0, 102.0)


# -- a restart on an empty disk: the hour read back from the branch --------------------------

B1, B2, B3 = "a" * 32, "b" * 32, "c" * 32
SERVER_NOW = 1_800_000_000.0  # the server's clock (its Date header)
LOCAL_NOW = 500.0  # the budget's clock: a monotonic one, unrelated to the server's


def landed(batch: str | None, writes: str | None = "3", extra: str = "") -> str:
    """A commit message with a batch trailer (unless None) and a writes trailer (unless None)."""
    lines = [f"Gitjsonl-Batch: {batch}"] if batch is not None else []
    lines += [f"Gitjsonl-Writes: {writes}"] if writes is not None else []
    return "gitjsonl: append 1 record to data/x\n\n" + "\n".join(lines) + "\n" + extra


def restored_table(commits: list[tuple[str, float]]) -> list[tuple[float, int]]:
    spends = restored(commits, server_now=SERVER_NOW, now=LOCAL_NOW, pacing=GITHUB)
    return [(round(s.time, 6), s.count) for s in spends]


class TestRestored:
    @pytest.mark.parametrize(
        ("commits", "expected"),
        [
            # 100 s old on the server's clock: 99 s old on ours (dates are whole seconds).
            ([(landed(B1), SERVER_NOW - 100)], [(LOCAL_NOW - 100 + DATE_SLOP, 3)]),
            ([(landed(B1, "7"), SERVER_NOW - 10)], [(LOCAL_NOW - 10 + DATE_SLOP, 7)]),
            # An older version's commit, without a writes trailer: the fewest a batch costs.
            ([(landed(B1, None), SERVER_NOW - 10)], [(LOCAL_NOW - 10 + DATE_SLOP, LANDED_WRITES)]),
            # A foreign committer's commit, or one naming no batch of ours: nothing.
            ([("fix typo\n\nSigned-off-by: someone", SERVER_NOW - 10)], []),
            ([(landed(None, "40"), SERVER_NOW - 10)], []),
            ([(landed("b1", "40"), SERVER_NOW - 10)], []),
            ([(landed("A" * 32, "40"), SERVER_NOW - 10)], []),
            # A trailer claiming 10**9 - 1 writes: no more than GitHub's minute could take.
            ([(landed(B1, "999999999"), SERVER_NOW - 10)], [(LOCAL_NOW - 10 + DATE_SLOP, 80)]),
            # 10**9 is no count a writer of ours writes: the fewest a batch costs.
            ([(landed(B1, "1000000000"), SERVER_NOW - 10)], [(LOCAL_NOW - 10 + DATE_SLOP, 3)]),
            ([(landed(B1, "0"), SERVER_NOW - 10)], [(LOCAL_NOW - 10 + DATE_SLOP, 1)]),
            # A date ahead of the server's clock counts as now, never later.
            ([(landed(B1), SERVER_NOW + 86_400)], [(LOCAL_NOW, 3)]),
            # Older than the hour for sure, or no date at all: nothing; 3,601 s by whole
            # seconds may be 3,600 in fact, and counts.
            ([(landed(B1), SERVER_NOW - 3602)], []),
            ([(landed(B1), SERVER_NOW - 3601)], [(LOCAL_NOW - 3600, 3)]),
            ([(landed(B1), math.nan)], []),
            ([(landed(B1), -math.inf)], []),
            ([(landed(B1), math.inf)], []),
            # The same batch listed twice (a page boundary, a replay): once.
            (
                [(landed(B1), SERVER_NOW - 10), (landed(B1, "9"), SERVER_NOW - 20)],
                [(LOCAL_NOW - 10 + DATE_SLOP, 3)],
            ),
        ],
    )
    def test_commits_become_spends_judged_not_obeyed(
        self, commits: list[tuple[str, float]], expected: list[tuple[float, int]]
    ) -> None:
        """Each commit of ours in the last hour is a spend on our clock; hostile values are
        clamped or ignored."""
        assert restored_table(commits) == expected

    def test_claims_never_exceed_what_github_could_have_let_through(self) -> None:
        """A hundred commits claiming 80 writes each add up to GitHub's hour, and no minute
        holds more than its 80."""
        commits = [(landed(f"{n:032x}", "80"), SERVER_NOW - 3500 + 30 * n) for n in range(100)]
        spends = restored(commits, server_now=SERVER_NOW, now=LOCAL_NOW, pacing=GITHUB)
        assert sum(s.count for s in spends) == 500
        for s in spends:
            assert sum(o.count for o in spends if s.time - 60 < o.time <= s.time) <= 80

    def test_the_local_clock_changes_nothing(self) -> None:
        """Ages are measured on the server's clock alone: a local clock off by a day gives the
        same spends, shifted to it."""
        commits = [(landed(B1), SERVER_NOW - 100), (landed(B2, "4"), SERVER_NOW - 50)]
        here = restored(commits, server_now=SERVER_NOW, now=LOCAL_NOW, pacing=GITHUB)
        there = restored(commits, server_now=SERVER_NOW, now=LOCAL_NOW + 86_400, pacing=GITHUB)
        assert [(s.time + 86_400, s.count) for s in here] == [(s.time, s.count) for s in there]


class TestRestore:
    def test_a_batch_the_state_knows_is_not_counted_again(self) -> None:
        """A batch whose writes the ledger holds (by its spend's id) adds nothing; the others do."""
        known = Spent(LOCAL_NOW - 20, 3, spend_id(B1, "writer", "u1"))
        state = BudgetState(spent=(known,))
        spends = restored(
            [(landed(B1), SERVER_NOW - 20), (landed(B2), SERVER_NOW - 10)],
            server_now=SERVER_NOW,
            now=LOCAL_NOW,
            pacing=GITHUB,
        )
        merged = restore(state, LOCAL_NOW, spends, GITHUB)
        assert sum(s.count for s in merged.spent) == 6
        assert restore(merged, LOCAL_NOW, spends, GITHUB) == merged  # twice: the same

    def test_nothing_new_leaves_the_state_as_it_was(self) -> None:
        """With nothing to add, the state (a full bucket included) is unchanged."""
        state = BudgetState()
        assert restore(state, LOCAL_NOW, (), GITHUB) is state

    def test_a_restart_after_a_burst_waits_instead_of_bursting_again(self) -> None:
        """Restored from 60 writes of the last minute, a fresh budget no longer lets a burst
        go at once: the bucket is as low as those writes left it."""
        commits = [(landed(f"{n:032x}", "3"), SERVER_NOW - 40 + 2 * n) for n in range(20)]
        spends = restored(commits, server_now=SERVER_NOW, now=LOCAL_NOW, pacing=GITHUB)
        fresh = BudgetState()
        assert wait_for(fresh, LOCAL_NOW, 30, GITHUB) == 0.0
        state = restore(fresh, LOCAL_NOW, spends, GITHUB)
        assert bucket_at(state, LOCAL_NOW, GITHUB) < 30
        assert wait_for(state, LOCAL_NOW, 30, GITHUB) > 0


# -- the closing reserve ---------------------------------------------------------------------


def paid(state: BudgetState, now: float, cost: int, token: str) -> BudgetState:
    """``state`` after ``cost`` writes reserved and sent at ``now`` (a batch that went)."""
    return prune(
        settle(reserve(state, now, cost, token, GITHUB), token, now, cost, GITHUB), now, GITHUB
    )


def spent_by(writer: str, *times: float, count: int = 3) -> tuple[Spent, ...]:
    return tuple(Spent(t, count, spend_id("-", writer, f"u{n}")) for n, t in enumerate(times))


class TestClosingReserve:
    @pytest.mark.parametrize(
        ("spent", "cost", "keep"),
        [
            ((), 3, CLOSING_BATCHES * 3),  # alone: the floor of two batches
            ((), 4, CLOSING_BATCHES * 4),
            (spent_by("other", 990.0), 3, 6),  # two writers: one batch each, the floor
            (spent_by("a", 990.0) + spent_by("b", 995.0), 3, 9),  # three writers
            (spent_by("a", 900.0) + spent_by("b", 930.0), 3, 6),  # seen over a minute ago
            # Twelve writers would need 36: a quarter of the minute's 80 at most.
            (sum((spent_by(f"w{n}", 990.0) for n in range(12)), ()), 3, 20),
        ],
    )
    def test_a_last_batch_for_every_writer_seen_at_least_two(
        self, spent: tuple[Spent, ...], cost: int, keep: int
    ) -> None:
        """The reserve holds a batch for each writer seen in the last minute (the asking one
        included), at least two, at most a quarter of the minute's allowance."""
        state = BudgetState(spent=spent)
        assert closing_reserve(state, 1000.0, cost, GITHUB, "me") == keep

    def test_writers_in_line_are_counted(self) -> None:
        """A writer waiting in line, not yet spending, has its last batch kept too."""
        state = enqueue(enqueue(BudgetState(), 1000.0, "a", 5.0), 1000.0, "b", 5.0)
        assert closing_reserve(state, 1000.0, 3, GITHUB, "me") == 9

    @pytest.mark.parametrize("seed", range(4))
    @pytest.mark.parametrize("busy", [True, False])
    def test_two_closing_batches_always_go_at_once(self, seed: int, busy: bool) -> None:
        """Under any traffic that keeps the reserve (a writer always pending, which fills the
        hour, or a random trickle with bursts), at every moment two closing batches fit at
        once, and GitHub's windows hold the reserve free."""
        rng = random.Random(seed)
        cost, now, state = 3, 0.0, BudgetState()
        for step in range(1200 if busy else 600):
            keep = closing_reserve(state, now, cost, GITHUB, "normal")
            assert keep == CLOSING_BATCHES * cost
            wait = wait_for(state, now, cost, GITHUB, keep=keep)
            if wait > 0:
                # A moment while the normal writer waits: two closers may go now.
                moment = now + rng.uniform(0.0, wait)
                check = prune(state, moment, GITHUB)
                for closer in ("-/c1/u", "-/c2/u"):
                    assert closing_wait(check, moment, cost, GITHUB) == 0.0, (step, moment)
                    check = reserve(check, moment, cost, closer, GITHUB)
                assert not explained(check, moment, GITHUB)  # GitHub's windows: not exceeded
                now += wait
                continue
            state = paid(state, now, cost, spend_id("-", "normal", str(step)))
            if not busy:
                now += rng.choice([0.0, 0.0, 1.0, 5.0, 30.0, 300.0])
        assert now > 3600  # past the hour: its window filled and aged

    def test_without_the_reserve_a_busy_writer_leaves_a_closer_waiting(self) -> None:
        """The same busy writer leaving no reserve: a closer must wait for GitHub's windows."""
        cost, now, state = 3, 0.0, BudgetState()
        waited = 0
        for step in range(1200):
            wait = wait_for(state, now, cost, GITHUB)
            if wait > 0:
                waited += closing_wait(prune(state, now, GITHUB), now, cost, GITHUB) > 0
                now += wait
                continue
            state = paid(state, now, cost, spend_id("-", "normal", str(step)))
        assert waited > 0
