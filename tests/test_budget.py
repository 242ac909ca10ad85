"""One budget per token, turns per branch: stores, ledger files, and the Logs that share them."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import stat
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import github
import pytest

import gitjsonl
from gitjsonl import RateLimited
from gitjsonl._budget import (
    Budget,
    LedgerStore,
    MemoryStore,
    Registry,
    budget_for,
    host_budget,
    ledger_path,
)
from gitjsonl._budget_json import state_from_json, state_to_json
from gitjsonl._chain import Link, catch_up, chain_from_json, chain_to_json
from gitjsonl._config import budget_dir_from_env
from gitjsonl._github import Credentials, GitHubRepo, is_secondary_limit
from gitjsonl._ledger import locked, read_json, write_json
from gitjsonl._pacing import BudgetState, Pacing, Spent
from gitjsonl._turn import BranchTurns, Turn
from gitjsonl.testing import LocalHub, SecondaryLimits

from .helpers import FakeClock, committed_records, history_is_linear, make_log, writes_between

TOKEN = "not-a-real-token-" + "s3cret" * 4
URL = "https://api.github.com"
SMALL = Pacing(per_minute=8, per_hour=100, minute=60.0, hour=3600.0)
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes."


def budget_on(store: Any, clock: FakeClock, pacing: Pacing = SMALL) -> Budget:
    return Budget(pacing, store, clock.time)


def spend_on_host(directory: Path, writes: int) -> None:
    """Send ``writes`` writes on TOKEN through the host's ledger in ``directory``."""
    budget = budget_for(SMALL, Credentials(URL, TOKEN), directory=directory)
    try:
        token, _ = budget.reserve(writes)
        assert token is not None
        budget.settle(token, writes)
    finally:
        budget.release()


def ledger(tmp_path: Path) -> LedgerStore:
    return LedgerStore(ledger_path(tmp_path, "k"), MemoryStore())


class TestRegistry:
    def test_shared_while_held_and_forgotten_after(self) -> None:
        """Holders of one key get one object; once the last lets go, the next gets a new one."""
        registry: Registry[object] = Registry()
        first = registry.acquire("k", object)
        assert registry.acquire("k", object) is first
        registry.release("k", first)
        assert registry.acquire("k", object) is first
        registry.release("k", first)
        registry.release("k", first)
        assert len(registry) == 0
        assert registry.acquire("k", object) is not first

    def test_releasing_a_stale_object_changes_nothing(self) -> None:
        """An object from before a fork (or released twice) cannot release today's holder."""
        registry: Registry[object] = Registry()
        current = registry.acquire("k", object)
        registry.release("k", object())
        assert registry.acquire("k", object) is current


class TestLedgerStore:
    def test_two_stores_on_one_file_share_the_budget(self, tmp_path: Path) -> None:
        """Writes reserved through one handle make another, on the same file, wait."""
        clock = FakeClock()
        one, two = budget_on(ledger(tmp_path), clock), budget_on(ledger(tmp_path), clock)
        reservation, wait = one.reserve(8)
        assert reservation is not None
        assert wait == 0.0
        # The bucket (8 a minute less 100/60 refilled in it) is 1.67 writes in debt.
        assert two.reserve(1) == (None, pytest.approx((1 + 8 - (8 - 100 / 60)) * 36.0, abs=0.1))
        assert two.stats().last_minute == 8
        assert two.stats().waits == 1

    def test_file_holds_no_token_and_is_private(self, tmp_path: Path) -> None:
        """The ledger is named by a hash, holds times and counts only; only its owner reads it."""
        spend_on_host(tmp_path / "cache", 4)
        path, lock = sorted((tmp_path / "cache").iterdir())
        assert lock.name == path.name.replace(".json", ".lock")
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert TOKEN not in path.name
        assert TOKEN not in path.read_text()
        assert "s3cret" not in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    def test_torn_or_foreign_file_starts_afresh(self, tmp_path: Path) -> None:
        """A torn ledger file reads as an empty budget; it is rewritten."""
        path = ledger_path(tmp_path, "k")
        path.write_bytes(b'{"format": 1, "spent": [[1.0, 4')
        clock = FakeClock()
        budget = budget_on(LedgerStore(path, MemoryStore()), clock)
        assert budget.stats().last_minute == 0
        assert budget.reserve(4)[0] is not None
        assert json.loads(path.read_text())["format"] == 1

    def test_unwritable_folder_falls_back_to_this_process_with_one_warning(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A ledger that cannot be written paces this process alone, and says so once."""
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        clock = FakeClock()
        budget = budget_on(LedgerStore(ledger_path(blocker, "k"), MemoryStore()), clock)
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            assert budget.reserve(8)[0] is not None
            assert budget.reserve(1)[0] is None
            assert budget.stats().last_minute == 8
        assert len(caplog.records) == 1
        assert "budget_dir" in caplog.records[0].getMessage()

    def test_state_round_trips_through_json(self) -> None:
        """What a ledger file holds reads back as the same state."""
        state = BudgetState(
            spent=(Spent(1.5, 4, "a"), Spent(2.0, 3, "b", done=False)),
            allowance=0.5,
            since=1.0,
            blocked_until=9.0,
            limited=2,
            waits=3,
            waited=4.5,
        )
        assert state_from_json(json.loads(json.dumps(state_to_json(state)))) == state
        assert state_from_json({"format": 99}) == BudgetState()
        assert state_from_json({"format": 1, "spent": [["x"]]}) == BudgetState()


class TestBudgetFor:
    def test_logs_on_one_token_share_one_budget_in_a_process(self) -> None:
        """Two budgets for the same token and URL are one; another token is another budget."""
        clock = FakeClock()
        one = budget_for(SMALL, Credentials(URL, TOKEN), directory=None, clock=clock.time)
        two = budget_for(SMALL, Credentials(URL, TOKEN), directory=None, clock=clock.time)
        other = budget_for(SMALL, Credentials(URL, "x"), directory=None, clock=clock.time)
        try:
            assert one.reserve(8)[0] is not None
            assert two.reserve(1)[0] is None
            assert other.reserve(8)[0] is not None
            assert one.stats().shared == "process"
        finally:
            for budget in (one, two, other):
                budget.release()

    def test_a_fake_clock_keeps_the_budget_in_the_process(self, tmp_path: Path) -> None:
        """A test's clock means nothing to other processes: no ledger file is written."""
        clock = FakeClock()
        budget = budget_for(SMALL, Credentials(URL, TOKEN), directory=tmp_path, clock=clock.time)
        try:
            budget.reserve(4)
            assert budget.stats().shared == "process"
        finally:
            budget.release()
        assert list(tmp_path.iterdir()) == []

    def test_host_budget_reads_what_writers_left(self, tmp_path: Path) -> None:
        """gitjsonl stats' view: the host's ledger for these credentials, or None before any."""
        assert host_budget(SMALL, Credentials(URL, TOKEN), directory=tmp_path) is None
        spend_on_host(tmp_path, 4)
        seen = host_budget(SMALL, Credentials(URL, TOKEN), directory=tmp_path)
        assert seen is not None
        assert (seen.last_minute, seen.shared) == (4, "host")

    def test_credentials_key_is_a_hash_of_url_and_token(self) -> None:
        """The key differs by token and by URL, and never contains the token."""
        who = Credentials(URL, TOKEN)
        assert who.portable
        assert TOKEN not in who.key
        assert TOKEN not in repr(who)
        assert who.key != Credentials(URL, "other").key
        assert who.key != Credentials("https://ghe.example/api/v3", TOKEN).key
        assert who == Credentials(URL + "/", TOKEN)  # one URL, however it is spelled
        assert who.key == Credentials(URL, auth=github.Auth.Token(TOKEN)).key

    def test_credentials_are_checked_where_they_are_made(self) -> None:
        """A clear-text token to a host that is not loopback is refused by the value itself,
        so nothing built from one can send it."""
        with pytest.raises(ValueError, match="clear text"):
            Credentials("http://ghe.example/api/v3", TOKEN)
        assert Credentials("http://ghe.example/api/v3", TOKEN, allow_insecure_http=True).portable
        with pytest.raises(TypeError, match="credentials must be Credentials"):
            GitHubRepo("o/r", "https://api.github.com")  # type: ignore[arg-type]


class TestAcquire:
    def test_waits_on_the_clock_then_reserves(self) -> None:
        """With the bucket drawn empty, acquire sleeps until it refills at the hourly rate
        (100 an hour: 36 s a write, for the 4 and the 1.67 of debt), then reserves."""
        clock = FakeClock()
        budget = budget_on(MemoryStore(), clock)
        budget.settle(budget.acquire(8, clock.sleep), 8)
        budget.acquire(4, clock.sleep)
        assert clock.sleeps == [pytest.approx((4 + 100 / 60) * 36.0)]
        assert budget.stats().waits == 1

    def test_a_sleep_cut_short_lets_the_writes_go(self) -> None:
        """When the sleep returns at once (the Log is closing), the writes go without waiting."""
        clock = FakeClock()
        budget = budget_on(MemoryStore(), clock)
        budget.acquire(8, clock.sleep)
        token = budget.acquire(4, lambda seconds: None)
        assert token is not None
        assert budget.stats().last_minute == 12


def _limit(status: int = 403, retry_after: float | None = 30) -> RateLimited:
    return RateLimited(SECONDARY, status=status, retry_after=retry_after)


class TestLearn:
    def test_secondary_limit_pauses_and_halves_with_one_warning(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One WARNING says what was done: a pause, then half the budget, growing back."""
        clock = FakeClock()
        budget = budget_on(MemoryStore(), clock, Pacing())
        with caplog.at_level(logging.INFO, logger="gitjsonl"):
            budget.learn(_limit())
            budget.learn(_limit())  # a second writer's answer in the same episode
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        message = warnings[0].getMessage()
        assert "pauses 30 s" in message
        assert "at most 40 a minute and 250 an hour" in message
        assert budget.reserve(1) == (None, pytest.approx(30.0))
        stats = budget.stats()
        assert (stats.limited, stats.allowance) == (2, 0.5)

    def test_primary_limit_is_not_learned(self) -> None:
        """GitHub's hourly primary limit says nothing about the write budget."""
        clock = FakeClock()
        budget = budget_on(MemoryStore(), clock, Pacing())
        budget.learn(RateLimited("API rate limit exceeded for user ID 1.", status=403))
        assert budget.stats().limited == 0

    def test_is_secondary_limit_reads_the_answer(self) -> None:
        """403 or 429 with GitHub's secondary-limit message, or any 429 not the primary one."""
        assert is_secondary_limit(_limit(403))
        assert is_secondary_limit(RateLimited("Too Many Requests", status=429))
        assert is_secondary_limit(RateLimited("abuse detection mechanism", status=403))
        assert not is_secondary_limit(RateLimited("API rate limit exceeded", status=429))


def link(commit: str, base: str, path: str = "log", segment: int = 1) -> Link:
    return Link(commit, base, f"tree-{commit}", path, segment, f"blob-{commit}")


class TestCatchUp:
    def test_at_the_tip_or_unknown_nothing_to_do(self) -> None:
        """A head that is the chain's tip, or not in it at all, learns nothing."""
        chain = [link("b", "a"), link("c", "b")]
        assert catch_up(chain, "c", "log") is None
        assert catch_up(chain, "z", "log") is None
        assert catch_up([], "a", "log") is None

    def test_follows_links_to_the_tip_with_the_newest_segment_of_its_path(self) -> None:
        """From a head two commits behind, the tip, its tree, and the last segment of our path."""
        chain = [link("b", "a"), link("c", "b", segment=2), link("d", "c", path="other")]
        found = catch_up(chain, "b", "log")
        assert found is not None
        assert (found.commit, found.tree, found.exact) == ("d", "tree-d", True)
        assert found.segment == chain[1]

    def test_a_head_that_is_a_links_base_starts_there(self) -> None:
        """A head read from the branch, that the first link was built on, catches up exactly."""
        found = catch_up([link("b", "a", path="other")], "a", "log")
        assert found is not None
        assert (found.commit, found.segment, found.exact) == ("b", None, True)

    def test_a_foreign_commit_in_between_is_not_exact(self) -> None:
        """A commit no writer here made sits between links: read the folder at the tip."""
        chain = [link("b", "a"), link("d", "c")]
        found = catch_up(chain, "b", "log")
        assert found is not None
        assert (found.commit, found.exact) == ("d", False)

    def test_chain_round_trips_through_json(self) -> None:
        """A turn file's chain reads back the same; a torn one reads as empty."""
        chain = (link("b", "a"), link("c", "b", segment=7))
        assert chain_from_json(json.loads(json.dumps(chain_to_json(chain)))) == chain
        assert chain_from_json({"format": 1, "chain": [["x"]]}) == ()
        assert chain_from_json(None) == ()


class TestTurn:
    def test_links_pass_between_turn_objects_through_the_file(self, tmp_path: Path) -> None:
        """A link left by one process's turn is read by another's, without the segment's bytes."""
        first, second = Turn(tmp_path / "turn.json"), Turn(tmp_path / "turn.json")
        with first.take() as taken:
            taken.add(link("b", "a"), b"content")
        with first.take() as taken:
            assert taken.chain == (link("b", "a"),)
            assert taken.content(link("b", "a")) == b"content"
        with second.take() as taken:
            assert taken.chain == (link("b", "a"),)
            assert taken.content(link("b", "a")) is None

    def test_one_writer_at_a_time(self, tmp_path: Path) -> None:
        """Two threads holding turns on one branch never overlap."""
        turn = Turn(tmp_path / "turn.json")
        inside, overlaps = [0], [0]

        def work() -> None:
            for _ in range(50):
                with turn.take():
                    inside[0] += 1
                    overlaps[0] += inside[0] > 1
                    time.sleep(0.0005)
                    inside[0] -= 1

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert overlaps[0] == 0

    def test_a_turn_held_too_long_is_gone_around_without_leaving_a_link(
        self, tmp_path: Path
    ) -> None:
        """Past the wait, a writer goes anyway (the fast-forward check still guards the branch)."""
        path = tmp_path / "turn.json"
        with locked(path) as held:
            assert held is not None
            write_json(held, chain_to_json((link("b", "a"),)))
            with Turn(path).take(wait=0.05) as taken:
                assert taken.chain == ()
                taken.add(link("c", "b"), b"")
            assert read_json(held) == chain_to_json((link("b", "a"),))

    def test_branch_turns_share_one_turn_per_branch(self, tmp_path: Path) -> None:
        """Writers on one token, repository and branch get one turn; another branch another."""
        a = BranchTurns(Credentials(URL, TOKEN), repo="o/r", directory=tmp_path)
        b = BranchTurns(Credentials(URL, TOKEN), repo="o/r", directory=tmp_path)
        try:
            assert a.get("main") is b.get("main")
            assert a.get("dev") is not b.get("main")
        finally:
            a.release()
            b.release()
        with a.get("main").take() as taken:
            taken.add(link("b", "a"), b"")
        a.release()
        path, lock = sorted(tmp_path.iterdir())
        assert path.name.startswith("turn-")
        assert lock.name == path.name.replace(".json", ".lock")
        assert "o/r" not in path.read_text()


class TestForkedChild:
    def test_child_does_not_hold_a_lock_its_parent_held_at_fork(self, tmp_path: Path) -> None:
        """A lock a parent thread holds when another forks is the parent's alone."""
        path = tmp_path / "turn.json"
        with locked(path) as held:
            assert held is not None
            pid = fork()
            if pid == 0:  # the child: its copy of the descriptor is closed at once
                os._exit(0 if _closed(held.fd) else 1)
            _, status = os.waitpid(pid, 0)
        assert status == 0
        with locked(path, wait=1.0) as fd:
            assert fd is not None

    def test_child_gets_turns_and_budgets_of_its_own(self) -> None:
        """A turn a parent thread holds at fork time does not block the child's writers."""
        turns = BranchTurns(Credentials(URL, TOKEN), repo="o/r", directory=None)
        with turns.get("main").take():
            pid = fork()
            if pid == 0:
                mine = BranchTurns(Credentials(URL, TOKEN), repo="o/r", directory=None)
                started = time.monotonic()
                with mine.get("main").take(wait=5.0):
                    pass
                os._exit(0 if time.monotonic() - started < 1.0 else 1)
            _, status = os.waitpid(pid, 0)
        turns.release()
        assert status == 0


def fork() -> int:
    """``os.fork``, without Python 3.12's warning about forking a process with threads."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _closed(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return True
    return False


class TestBudgetDir:
    @pytest.mark.skipif(sys.platform != "linux", reason="the XDG folders are Linux's")
    def test_defaults_to_the_users_cache_folder(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """$XDG_CACHE_HOME/gitjsonl when absolute, else ~/.cache/gitjsonl (Linux)."""
        monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/me")
        assert budget_dir_from_env() == Path("/var/cache/me/gitjsonl")
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
        monkeypatch.setenv("HOME", str(tmp_path))
        assert budget_dir_from_env() == tmp_path / ".cache" / "gitjsonl"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert budget_dir_from_env() == tmp_path / ".cache" / "gitjsonl"

    def test_log_takes_a_folder_or_none(self, tmp_path: Path) -> None:
        """budget_dir= accepts a path or None, and refuses anything else, naming itself."""
        options: dict[str, Any] = {"path": "x", "api_url": "http://127.0.0.1:9", "pacing": None}
        with gitjsonl.Log("o/r", budget_dir=tmp_path, **options) as log:
            assert log.config.budget_dir == tmp_path
        with gitjsonl.Log("o/r", budget_dir=None, **options) as log:
            assert log.config.budget_dir is None
        with pytest.raises(TypeError, match="budget_dir"):
            gitjsonl.Log("o/r", budget_dir=3, **options)  # type: ignore[arg-type]


# -- Logs sharing a budget and a turn --------------------------------------------------------


class TestLogsOnOneToken:
    def test_two_logs_on_one_log_never_race(self, localhub: LocalHub, tmp_path: Path) -> None:
        """Two Logs on one token and path take turns: no lost race, 4 writes a batch."""
        with (
            make_log(localhub, segment_bytes=1500, budget_dir=tmp_path) as a,
            make_log(localhub, segment_bytes=1500, budget_dir=tmp_path) as b,
        ):
            a.append({"w": "a", "i": -1})
            a.flush(timeout=30)
            start = len(localhub.requests)
            for i in range(60):
                a.append({"w": "a", "i": i})
                b.append({"w": "b", "i": i})
                if i % 10 == 9:
                    a.flush(timeout=30)
                    b.flush(timeout=30)
            batches = a.stats().batches + b.stats().batches - 1
            assert a.stats().conflicts_retried + b.stats().conflicts_retried == 0
        writes = writes_between(localhub, start)
        assert len(writes) <= 4 * batches + batches  # a rotation adds one blob
        records = committed_records(localhub)
        for writer in "ab":
            assert [r["i"] for r in records if r["w"] == writer] == list(range(-1, 60))[
                writer == "b" :
            ]
        assert history_is_linear(localhub)

    def test_writers_of_two_paths_catch_up_without_reading(
        self, localhub: LocalHub, tmp_path: Path
    ) -> None:
        """Logs of two paths on one branch build on each other's commits: writes only, no reads."""
        with (
            make_log(localhub, path="data/a", budget_dir=tmp_path) as a,
            make_log(localhub, path="data/b", budget_dir=tmp_path) as b,
        ):
            for log in (a, b):
                log.append({"first": True})
                log.flush(timeout=30)
            start = len(localhub.requests)
            for i in range(5):
                a.append({"i": i})
                a.flush(timeout=30)
                b.append({"i": i})
                b.flush(timeout=30)
            assert [r.method for r in localhub.requests[start:] if r.method == "GET"] == []
            assert a.stats().conflicts_retried + b.stats().conflicts_retried == 0

    def test_stats_show_the_shared_budget(self, localhub: LocalHub, tmp_path: Path) -> None:
        """Both Logs on a token see the same writes in the window, and the allowance."""
        pacing = Pacing(per_minute=1000, per_hour=10000)
        with (
            make_log(
                localhub, pacing=pacing, sleep=time.sleep, clock=time.monotonic, budget_dir=tmp_path
            ) as a,
            make_log(
                localhub,
                pacing=pacing,
                sleep=time.sleep,
                clock=time.monotonic,
                budget_dir=tmp_path,
                path="data/other",
            ) as b,
        ):
            a.append({"id": 1})
            a.flush(timeout=30)
            seen_by_b = b.stats().budget
            assert seen_by_b is not None
            writes = len(writes_between(localhub, 0))
            assert (seen_by_b.shared, seen_by_b.last_minute) == ("host", writes)
            assert (seen_by_b.allowed_per_minute, seen_by_b.allowance) == (1000, 1.0)
        assert make_log(localhub).stats().budget is None  # pacing off: no budget


class TestForeignClient:
    @pytest.mark.slow
    def test_limited_once_or_twice_then_stays_under(
        self, localhub_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Another client spending two fifths of the token's budget costs gitjsonl one or two
        secondary-limit answers, each told once at WARNING; then it stays under."""
        import requests

        # 15: five batches of three writes fill the window, as gitjsonl paces itself.
        limits = SecondaryLimits(per_minute=15, per_hour=10_000, minute_window=2.0)
        hub = localhub_factory(repos=("owner/repo",), initial_commit=True, secondary_limits=limits)
        # An hourly rate (10/s) above the minute's (7.5/s): the minute window is what binds.
        pacing = Pacing(per_minute=15, per_hour=10_000, minute=2.0, hour=1000.0)
        stop = threading.Event()

        # A CI job on the same token: 6 blobs every 2 s (more than the 3 writes a Log
        # leaves unspent for closing writers, which would absorb a smaller one). Kept to
        # that rate by the clock, not by sleeping between posts: on a busy machine each
        # post is slow, and a client that sleeps after each spends less than the test says.
        def foreign() -> None:
            with requests.Session() as session:
                due = time.monotonic()
                while not stop.wait(max(0.0, due - time.monotonic())):
                    for _ in range(2):
                        session.post(
                            f"{hub.url}/repos/owner/repo/git/blobs",
                            json={"content": "ci", "encoding": "utf-8"},
                            headers={"Authorization": f"token {hub.token}"},
                            timeout=10,
                        )
                    due += 2 / 3

        other = threading.Thread(target=foreign)
        other.start()
        try:
            with (
                caplog.at_level(logging.WARNING, logger="gitjsonl"),
                make_log(
                    hub,
                    pacing=pacing,
                    sleep=None,
                    clock=time.monotonic,
                    flush_interval=0.05,
                    budget_dir=tmp_path,
                ) as log,
            ):
                started = time.monotonic()
                i = 0
                while time.monotonic() - started < 24:
                    log.append({"i": i})
                    i += 1
                    time.sleep(0.01)
                stats = log.stats()
        finally:
            stop.set()
            other.join()
        # The limit answers the Log met (the foreign client posts blobs; the Log, text only,
        # trees, commits and ref updates); its committer may meet two in one batch.
        answers = [
            r for r in hub.requests if r.status in (403, 429) and not r.path.endswith("/blobs")
        ]
        assert 1 <= len(answers) <= 2, stats
        assert stats.rate_limited >= 1, stats
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == len(answers), "\n".join(warnings)
        assert all("secondary rate limit" in w for w in warnings)
        assert [r["i"] for r in committed_records(hub)] == list(range(i))


class TestCommandLine:
    def test_stats_prints_the_hosts_budget_for_the_token(
        self,
        localhub: LocalHub,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """After an append, gitjsonl stats shows the writes it spent from this host's ledger."""
        from gitjsonl._cli import main

        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.setattr("sys.platform", "linux")
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        localhub.seed_commit("owner/repo", {"README.md": b"hi\n"})
        run = ["--repo", "owner/repo", "--api-url", localhub.url]
        assert main([*run, "stats", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["budget"] is None
        assert main([*run, "append", '{"id": 1}']) == 0
        assert main([*run, "stats"]) == 0
        budget_line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("budget")]
        assert budget_line == [
            "budget       3 of 80 writes in the last minute, 3 of 500 in the last hour "
            "(this host); 0 waits (0 s), 0 secondary-limit answers"
        ]
        assert list((tmp_path / "gitjsonl").glob("budget-*.json"))

    def test_migrate_spends_from_the_same_budget(
        self, localhub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A migration's writes are counted in the ledger every Log on the token reads."""
        from gitjsonl._cli import main

        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.setattr("sys.platform", "linux")
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        legacy = b"".join(b'{"n": %d}\n' % n for n in range(50))
        localhub.seed_commit("owner/repo", {"data/interactions.jsonl": legacy})
        assert main(["--repo", "owner/repo", "--api-url", localhub.url, "migrate"]) == 0
        seen = host_budget(
            Pacing(), Credentials(localhub.url, localhub.token), directory=tmp_path / "gitjsonl"
        )
        writes = [r for r in localhub.requests if r.method in ("POST", "PATCH", "PUT")]
        assert seen is not None
        assert seen.last_minute == len(writes) > 0
