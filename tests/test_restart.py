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

from gitjsonl import Pacing
from gitjsonl.testing import SecondaryLimits

from .helpers import WRITES, committed_records, make_log

#: GitHub's 80 a minute and 500 an hour, scaled down (the hub and the pacing agree).
RESTART_LIMITS = SecondaryLimits(per_minute=24, per_hour=48, minute_window=2.0, hour_window=12.0)
RESTART_PACING = Pacing(per_minute=24, per_hour=48, minute=2.0, hour=12.0)
RESTARTS, BATCHES = 6, 3


def restart_on_empty_disks(hub: Any, tmp_path: Path) -> int:
    """``RESTARTS`` processes one after the other, each with a fresh ``budget_dir`` (a wiped
    disk) committing ``BATCHES`` batches and closing; the records committed."""
    counter = itertools.count()
    for restart in range(RESTARTS):
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
                sent = sum(1 for r in hub.requests[before:] if r.method in WRITES)
                message = hub.git("owner/repo", "log", "-1", "--format=%B", "main")
                assert f"Gitjsonl-Writes: {sent}" in message


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
