"""Retrying a failed write: the policy, the per-kind waits, and the one tenacity builder."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import pytest
import tenacity

from gitjsonl import (
    AuthenticationError,
    ContentsConflict,
    GitJsonlError,
    NotFastForward,
    NotFound,
    RetryPolicy,
    TransientError,
)
from gitjsonl._retry import retry_wait

POLICY = RetryPolicy()  # conflicts 0.05 s up to 1 s, errors 0.5 s up to 30 s


class Highest(random.Random):
    """Jitter always at its top: the wait is the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Lowest(random.Random):
    """Jitter always at its bottom: the wait is half the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return a


def conflict() -> NotFastForward:
    return NotFastForward("Update is not a fast forward", status=422)


def server_error(n: int = 0) -> TransientError:
    return TransientError(f"502 number {n}", status=502)


def script(outcomes: Iterable[Exception | str]) -> tuple[Callable[[], str], list[int]]:
    """An attempt that raises or returns the outcomes in turn, and the list of its calls."""
    pending = iter(outcomes)
    calls: list[int] = []

    def attempt() -> str:
        calls.append(len(calls) + 1)
        outcome = next(pending)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempt, calls


class TestRetryPolicy:
    def test_defaults(self) -> None:
        """90 s of waiting (200 attempts at most); errors from 0.5 s to 30 s, conflicts 0.05-1 s."""
        assert (POLICY.max_total_wait, POLICY.max_attempts) == (90.0, 200)
        assert (POLICY.initial_wait, POLICY.max_wait) == (0.5, 30.0)
        assert (POLICY.conflict_wait, POLICY.max_conflict_wait) == (0.05, 1.0)

    @pytest.mark.parametrize(
        "options",
        [
            {"max_attempts": 0},
            {"max_attempts": -3},
            {"initial_wait": -0.1},
            {"max_wait": -1.0},
            {"conflict_wait": -0.01},
            {"max_conflict_wait": -1.0},
        ],
    )
    def test_refuses_impossible_values(self, options: dict[str, float]) -> None:
        """No attempt at all, or a negative wait, is a ``ValueError``."""
        with pytest.raises(ValueError, match=r"max_attempts|wait"):
            RetryPolicy(**options)  # type: ignore[arg-type]

    def test_refuses_a_string_attempt_count(self) -> None:
        """A count of attempts given as a string is a ``TypeError``."""
        with pytest.raises(TypeError):
            RetryPolicy(max_attempts="3")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "options",
        [
            {"initial_wait": float("nan")},
            {"max_conflict_wait": float("nan")},
            {"max_attempts": 2.5},
            {"max_attempts": True},
        ],
    )
    def test_refuses_non_numbers_in_disguise(self, options: dict[str, object]) -> None:
        """NaN waits and attempt counts that are not integers are refused."""
        with pytest.raises((TypeError, ValueError)):
            RetryPolicy(**options)  # type: ignore[arg-type]

    def test_is_frozen(self) -> None:
        """A policy cannot be changed once built (it is shared between logs)."""
        with pytest.raises(AttributeError):
            POLICY.max_attempts = 1  # type: ignore[misc]


class TestRetryWait:
    @pytest.mark.parametrize(
        ("exc", "attempt", "ceiling"),
        [
            (conflict(), 1, 0.05),
            (conflict(), 2, 0.1),
            (conflict(), 5, 0.8),
            (conflict(), 6, 1.0),  # capped at max_conflict_wait
            (conflict(), 30, 1.0),
            (server_error(), 1, 0.5),
            (server_error(), 2, 1.0),
            (server_error(), 6, 16.0),
            (server_error(), 7, 30.0),  # capped at max_wait
            (server_error(), 60, 30.0),
            (NotFound("gone", status=404), 1, 0.5),  # anything else waits like an error
            (None, 3, 2.0),
        ],
    )
    def test_equal_jitter_between_half_the_ceiling_and_the_ceiling(
        self, exc: Exception | None, attempt: int, ceiling: float
    ) -> None:
        """The wait is at least half the exponential ceiling of its kind and at most all of it."""
        assert retry_wait(exc, attempt, POLICY, Lowest()) == pytest.approx(ceiling / 2)
        assert retry_wait(exc, attempt, POLICY, Highest()) == pytest.approx(ceiling)
        rng = random.Random(attempt)
        for _ in range(200):
            assert ceiling / 2 <= retry_wait(exc, attempt, POLICY, rng) <= ceiling

    def test_jitter_spreads_racing_writers(self) -> None:
        """Two writers seeded differently wait different times after the same conflict."""
        waits = {retry_wait(conflict(), 3, POLICY, random.Random(seed)) for seed in range(20)}
        assert len(waits) == 20


class TestRetrying:
    @pytest.mark.parametrize(
        "error",
        [conflict(), server_error(), ContentsConflict("sha does not match", status=409)],
        ids=["NotFastForward", "TransientError", "ContentsConflict"],
    )
    def test_retries_retryable_errors_until_success(self, error: Exception) -> None:
        """A lost race, a server error or a contents conflict is tried again, sleeping between."""
        sleeps: list[float] = []
        attempt, calls = script([error, error, "sha"])
        retrying = POLICY.retrying(sleep=sleeps.append, rng=random.Random(1))
        assert retrying(attempt) == "sha"
        assert len(calls) == 3
        assert len(sleeps) == 2

    def test_stops_after_max_attempts_and_reraises_the_last_error(self) -> None:
        """After ``max_attempts`` the last error itself is raised, never ``tenacity.RetryError``."""
        sleeps: list[float] = []
        policy = RetryPolicy(max_attempts=4)
        attempt, calls = script([server_error(n) for n in range(1, 10)])
        with pytest.raises(TransientError, match="502 number 4") as raised:
            policy.retrying(sleep=sleeps.append)(attempt)
        assert isinstance(raised.value, GitJsonlError)
        assert not isinstance(raised.value, tenacity.RetryError)
        assert len(calls) == 4
        assert len(sleeps) == 3

    def test_lost_races_go_on_for_a_bounded_time_not_a_dozen_attempts(self) -> None:
        """A writer losing every race keeps trying for ~max_total_wait of waiting, then reports."""
        sleeps: list[float] = []
        attempt, calls = script([conflict() for _ in range(1000)])
        with pytest.raises(NotFastForward):
            POLICY.retrying(sleep=sleeps.append, rng=random.Random(3))(attempt)
        assert len(calls) > 60  # far more than the old fixed dozen
        # The wait that would pass the budget is not slept: the batch is reported instead.
        assert POLICY.max_total_wait - 1.0 <= sum(sleeps) < POLICY.max_total_wait

    def test_errors_stop_after_the_same_time_budget(self) -> None:
        """Server errors back off to 30 s and give up once 90 s of waiting is spent."""
        sleeps: list[float] = []
        attempt, _calls = script([server_error(n) for n in range(1, 100)])
        with pytest.raises(TransientError):
            POLICY.retrying(sleep=sleeps.append, rng=random.Random(4))(attempt)
        assert 90.0 - 30.0 <= sum(sleeps) < 90.0
        assert max(sleeps) <= 30.0

    @pytest.mark.parametrize(
        "error",
        [NotFound("no such repository", status=404), AuthenticationError("bad", status=401)],
        ids=["NotFound", "AuthenticationError"],
    )
    def test_does_not_retry_final_errors(self, error: Exception) -> None:
        """A 404 or 401 is raised after one attempt, without sleeping."""
        sleeps: list[float] = []
        attempt, calls = script([error, "sha"])
        with pytest.raises(type(error)):
            POLICY.retrying(sleep=sleeps.append)(attempt)
        assert (calls, sleeps) == ([1], [])

    def test_sleeps_only_through_the_injected_sleep(self) -> None:
        """Every wait goes to the given ``sleep``, in the bounds of its kind and attempt."""
        sleeps: list[float] = []
        attempt, _calls = script([server_error(), server_error(), server_error(), "sha"])
        POLICY.retrying(sleep=sleeps.append, rng=random.Random(7))(attempt)
        for slept, ceiling in zip(sleeps, [0.5, 1.0, 2.0], strict=True):
            assert ceiling / 2 <= slept <= ceiling

    def test_before_sleep_sees_each_retry(self) -> None:
        """``before_sleep`` is called once per retry with the failed attempt's error."""
        seen: list[BaseException | None] = []

        def before_sleep(state: tenacity.RetryCallState) -> None:
            seen.append(state.outcome.exception() if state.outcome else None)

        first, second = conflict(), server_error()
        attempt, _calls = script([first, second, "sha"])
        POLICY.retrying(sleep=lambda _s: None, before_sleep=before_sleep)(attempt)
        assert seen == [first, second]

    def test_each_call_gets_fresh_streaks(self) -> None:
        """Two retrying loops built from one policy do not share their backoff streaks."""
        for _ in range(2):
            sleeps: list[float] = []
            attempt, _calls = script([server_error(), "sha"])
            POLICY.retrying(sleep=sleeps.append, rng=Highest())(attempt)
            assert sleeps == [0.5]


class TestKindBackoff:
    def test_an_error_after_ten_conflicts_waits_like_a_first_error(self) -> None:
        """Ten lost races do not make the first server error after them wait like the tenth."""
        sleeps: list[float] = []
        attempt, _calls = script([conflict()] * 10 + [server_error(), "sha"])
        POLICY.retrying(sleep=sleeps.append, rng=Highest())(attempt)
        conflict_ceilings = [min(1.0, 0.05 * 2**n) for n in range(10)]
        assert sleeps == pytest.approx([*conflict_ceilings, 0.5])

    def test_each_kind_keeps_its_own_streak(self) -> None:
        """Interleaved conflicts and errors each go on from their own last wait."""
        sleeps: list[float] = []
        outcomes = [conflict(), server_error(), conflict(), server_error(), "sha"]
        attempt, _calls = script(outcomes)
        POLICY.retrying(sleep=sleeps.append, rng=Highest())(attempt)
        assert sleeps == pytest.approx([0.05, 0.5, 0.1, 1.0])
