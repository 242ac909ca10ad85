"""A host whose disk every restart wipes (a free HuggingFace Space), and SIGTERM's last batch.

Against a localhub enforcing GitHub's secondary limits, scaled down in time
with the pacing (as in ``test_many_writers``): a ``Log`` that starts with an
empty ``budget_dir`` learns what the token spent from the branch's commits, so
restarts never make a fresh hour; and a closing ``Log``'s last batch spends the
reserve other batches leave, so a trickle that drains the bucket never makes
``close()`` wait for it.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from gitjsonl import Pacing
from gitjsonl.testing import SecondaryLimits

from .helpers import committed_records, make_log

#: GitHub's 80 a minute and 500 an hour, scaled down (the hub and the pacing agree).
RESTART_LIMITS = SecondaryLimits(per_minute=24, per_hour=48, minute_window=2.0, hour_window=12.0)
RESTART_PACING = Pacing(per_minute=24, per_hour=48, minute=2.0, hour=12.0)
RESTARTS, BATCHES = 6, 3


def restart_on_empty_disks(hub: Any, tmp_path: Path) -> int:
    """``RESTARTS`` processes one after the other, each with a fresh ``budget_dir`` (a wiped
    disk) committing ``BATCHES`` batches and closing; the records committed."""
    counter = itertools.count()
    for restart in range(RESTARTS):
        # A container starts in seconds, GitHub's reads lag the last commit by less: the
        # listing shows the previous process's last batch by then.
        listing_settles(hub)
        with make_log(
            hub,
            pacing=RESTART_PACING,
            sleep=None,
            clock=time.monotonic,
            budget_dir=tmp_path / f"disk-{restart}",
            flush_interval=0.02,
        ) as log:
            for _ in range(BATCHES):
                log.append({"i": next(counter)})
                log.flush(timeout=120)
    return next(counter)


class TestRestartsOnAnEmptyDisk:
    @pytest.mark.slow
    def test_restarts_with_a_wiped_budget_dir_never_meet_a_secondary_limit(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """Six restarts, each on an empty budget folder, spending what a fresh bucket allows:
        the hub never answers a secondary limit, every record lands once."""
        hub = localhub_factory(
            repos=("owner/repo",), initial_commit=True, secondary_limits=RESTART_LIMITS
        )
        appended = restart_on_empty_disks(hub, tmp_path)
        limited = [r for r in hub.requests if r.status in (403, 429)]
        assert limited == []
        assert [r["i"] for r in committed_records(hub)] == list(range(appended))

    def test_each_commit_says_what_its_batch_cost(self, localhub_factory: Any) -> None:
        """A batch's commit carries a Gitjsonl-Writes trailer equal to the writes it sent."""
        hub = localhub_factory(repos=("owner/repo",), initial_commit=True)
        with make_log(hub) as log:
            for i in range(3):
                before = len(hub.requests)
                log.append({"i": i})
                log.flush(timeout=30)
                sent = sum(1 for r in hub.requests[before:] if r.write)
                message = hub.git("owner/repo", "log", "-1", "--format=%B", "main")
                assert f"Gitjsonl-Writes: {sent}" in message


#: GitHub's own limits: nothing ages out of their windows during a test.
GITHUB = Pacing()


def commits_listed(hub: Any) -> int:
    return sum(1 for r in hub.requests if r.method == "GET" and r.path.endswith("/commits"))


def paced_log(hub: Any, folder: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("pacing", GITHUB)
    return make_log(hub, sleep=None, clock=time.monotonic, budget_dir=folder, **kwargs)


def listing_settles(hub: Any) -> int:
    """Poll the commits listing (bounded) until it shows the branch's head, as it does once
    GitHub's read lag has passed; the listings read so far."""
    head = hub.git("owner/repo", "rev-parse", "main").strip()
    deadline = time.monotonic() + 30
    with requests.Session() as session:
        while time.monotonic() < deadline:
            listed = session.get(
                f"{hub.url}/repos/owner/repo/commits",
                params={"sha": "main", "per_page": 1},
                headers={"Authorization": f"token {hub.token}"},
                timeout=10,
            ).json()
            if listed and listed[0]["sha"] == head:
                break
            time.sleep(0.05)
    return commits_listed(hub)


class TestRestore:
    def test_a_restart_reads_the_hour_once_and_knows_it(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """A Log on an empty budget folder counts the last process's writes from the branch,
        for one read request (the commits listing), before its first batch."""
        hub = localhub_factory(repos=("owner/repo",), initial_commit=True)
        with paced_log(hub, tmp_path / "first") as log:
            for i in range(3):
                log.append({"i": i})
                log.flush(timeout=30)
        # A restart takes longer than GitHub's reads lag behind the last commit.
        listed = listing_settles(hub)
        with paced_log(hub, tmp_path / "second") as log:
            log.append({"i": 3})
            log.flush(timeout=30)
            budget = log.stats().budget
        assert budget is not None
        assert budget.last_hour == 4 * 3  # three batches restored, and its own
        assert commits_listed(hub) == listed + 1

    def test_a_surviving_ledger_is_not_counted_twice(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """A Log whose budget folder survived reads the branch too, and counts each batch once."""
        hub = localhub_factory(repos=("owner/repo",), initial_commit=True)
        for i in range(2):
            listing_settles(hub)
            with paced_log(hub, tmp_path / "kept") as log:
                log.append({"i": i})
                log.flush(timeout=30)
                budget = log.stats().budget
        assert budget is not None
        assert budget.last_hour == 2 * 3

    def test_without_pacing_nothing_is_read(self, localhub_factory: Any) -> None:
        """With pacing off there is no budget to teach: no commits listing is read."""
        hub = localhub_factory(repos=("owner/repo",), initial_commit=True)
        with make_log(hub) as log:
            log.append({"i": 0})
            log.flush(timeout=30)
        assert commits_listed(hub) == 0

    def test_hostile_commits_on_the_branch_are_clamped_or_ignored(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """A commit claiming 999,999,999 writes counts what GitHub's minute could take (the
        writer waits for that minute, not for ever); a foreign committer's counts nothing."""
        hub = localhub_factory(repos=("owner/repo",), initial_commit=True)
        claims = "x\n\nGitjsonl-Batch: " + "a" * 32 + "\nGitjsonl-Writes: 999999999\n"
        hub.seed_commit("owner/repo", {"other/a": b"1"}, message=claims)
        hub.seed_commit("owner/repo", {"other/b": b"2"}, message="fix typo")
        pacing = Pacing(per_minute=24, per_hour=240, minute=2.0, hour=60.0)
        with paced_log(hub, tmp_path / "budget", pacing=pacing) as log:
            log.append({"i": 0})
            log.flush(timeout=60)
            budget = log.stats().budget
        assert budget is not None
        assert budget.last_hour == pacing.per_minute + 3


#: Limits under which a trickle drains the bucket: 3.6 writes a second refill it, a batch
#: of 3 every 0.83 s; the trickle asks for one every 0.05 s.
TRICKLE_LIMITS = SecondaryLimits(per_minute=24, per_hour=72, minute_window=2.0, hour_window=20.0)
TRICKLE_PACING = Pacing(per_minute=24, per_hour=72, minute=2.0, hour=20.0)


class TestClosingReserve:
    @pytest.mark.slow
    def test_close_after_a_draining_trickle_does_not_wait_for_the_bucket(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """After a trickle that keeps its batches waiting for the bucket, close()'s last batch
        is never told to wait: it spends the reserve the trickle's batches left."""
        hub = localhub_factory(
            repos=("owner/repo",), initial_commit=True, secondary_limits=TRICKLE_LIMITS
        )
        log = make_log(
            hub,
            pacing=TRICKLE_PACING,
            sleep=None,
            clock=time.monotonic,
            budget_dir=tmp_path / "budget",
            flush_interval=0.05,
        )
        budget = log._budget
        assert budget is not None
        told: list[tuple[bool, float]] = []  # (closing, the wait the budget said), every ask
        ask = budget._wait

        def recorded(*args: Any) -> float:
            wait = ask(*args)
            told.append((budget.closing, wait))
            return wait

        budget._wait = recorded  # type: ignore[method-assign]
        i = 0
        try:
            deadline = time.monotonic() + 60
            # Until the bucket has made the trickle's batches wait a few times.
            while sum(1 for _, w in told if w > 0) < 5 and time.monotonic() < deadline:
                log.append({"i": i})
                i += 1
                time.sleep(0.05)
            log.append({"i": i})
            i += 1
        finally:
            log.close(timeout=60)
        normal = [wait for closing, wait in told if not closing]
        closing = [wait for closing, wait in told if closing]
        assert sum(1 for w in normal if w > 0) >= 5
        assert closing
        assert max(closing) == 0.0
        assert [r["i"] for r in committed_records(hub)] == list(range(i))
        assert [r for r in hub.requests if r.status in (403, 429)] == []
