"""Fresh writer processes on one host never race each other, even at their first flush.

Issue 19 item 12: under gunicorn, fresh workers on one host lost 4-5 ref-update
races to each other within a second of their first flush. Here several fresh
processes (one token, one branch, one ``budget_dir``) start appending at the
same moment (a barrier) against a hub whose reads of a branch lag as GitHub's
do, into a log that gitjsonl writers of this host wrote a moment before, into a
branch that does not exist yet, and into an empty repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import Pacing
from gitjsonl.testing import Fault
from gitjsonl.testing._writers import run_writers

from .helpers import REPO, committed_records, history_is_linear, make_log

#: A budget that never makes a writer wait: the turn, not pacing, is under test.
PACING = Pacing(per_minute=100_000, per_hour=1_000_000)
PROCESSES = 4
#: Seconds for the writer processes to start (import, construct) before the barrier.
STARTUP = 2.5
#: Reads of a branch lag by this much: within GitHub's observed 0.3-1 s.
READ_LAG = 0.6


def refused_updates(hub: Any, since: int = 0) -> int:
    """Ref updates the hub refused as not a fast-forward (lost races)."""
    return sum(
        1
        for r in hub.requests[since:]
        if r.method == "PATCH" and "/git/refs/" in r.path and r.status == 422
    )


def fresh_writers(
    hub: Any, budget_dir: Path, *, processes: int, seconds: float, branch: str | None
) -> list[dict[str, Any]]:
    return run_writers(
        api_url=hub.url,
        token=hub.token,
        repo=REPO,
        processes=processes,
        logs=1,
        seconds=seconds,
        pacing=PACING,
        budget_dir=budget_dir,
        timeout=120,
        branch=branch,
        start_at=time.time() + STARTUP,
    )


def assert_each_record_once_in_order(
    hub: Any, results: list[dict[str, Any]], ref: str, earlier: int = 0
) -> None:
    records = committed_records(hub, ref=ref)
    assert len(records) == earlier + sum(sum(r["counts"]) for r in results)
    for n, result in enumerate(results):
        mine = [r["i"] for r in records[earlier:] if r["w"] == f"p{n}-0"]
        assert mine == list(range(result["counts"][0]))
    assert history_is_linear(hub, ref=ref)


class TestACommitTheChainMissed:
    def test_a_landed_update_whose_answer_was_lost_is_built_on_by_the_next_writer(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """A ref update that landed but whose answer was lost leaves no link; the next writer
        of this host builds on it anyway (the turn knew it was sent), and loses no race."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, read_lag=READ_LAG)
        budget = tmp_path / "budget"
        first = make_log(hub, budget_dir=budget, sleep=time.sleep)
        first.append({"w": "a", "i": 0})
        first.flush(timeout=30)
        hub.add_fault(Fault(method="PATCH", path=r"/git/refs/", action="drop_after"))
        first.append({"w": "a", "i": 1})
        first.flush(timeout=30)  # landed; the answer was lost, and the resend confirmed it
        start = len(hub.requests)
        second = make_log(hub, budget_dir=budget, sleep=time.sleep)
        second.append({"w": "b", "i": 0})
        second.flush(timeout=30)
        assert refused_updates(hub, start) == 0
        assert second.stats().conflicts_retried == 0
        first.close()
        second.close()
        records = [(r["w"], r["i"]) for r in committed_records(hub)]
        assert records == [("a", 0), ("a", 1), ("b", 0)]
        hub.fsck(REPO)

    def test_a_writer_killed_right_after_its_update_landed_is_built_on(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """A process that dies between its ref update landing and leaving its link (a SIGKILL
        under gunicorn) costs the other writers of this host no race."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, read_lag=READ_LAG)
        budget = tmp_path / "budget"
        live = make_log(hub, budget_dir=budget, sleep=time.sleep)
        live.append({"w": "live", "i": 0})
        live.flush(timeout=30)
        dying = subprocess.run(
            [sys.executable, "-c", DIES_AFTER_ITS_UPDATE, hub.url, str(budget)],
            env={**os.environ, "GITHUB_TOKEN": hub.token},
            timeout=60,
            check=False,
        )
        assert dying.returncode == 9  # killed with its commit on the branch, no link left
        start = len(hub.requests)
        live.append({"w": "live", "i": 1})
        live.flush(timeout=30)
        assert refused_updates(hub, start) == 0
        assert live.stats().conflicts_retried == 0
        live.close()
        records = [(r["w"], r["i"]) for r in committed_records(hub)]
        assert records == [("live", 0), ("dying", 0), ("live", 1)]
        hub.fsck(REPO)


#: A writer process that dies the moment its ref update has landed (argv: API URL, budget_dir).
DIES_AFTER_ITS_UPDATE = """
import os, sys
import gitjsonl
from gitjsonl._github import GitHubRepo

update = GitHubRepo.update_ref

def update_and_die(self, *args, **kwargs):
    update(self, *args, **kwargs)
    os._exit(9)

GitHubRepo.update_ref = update_and_die
log = gitjsonl.Log(
    "owner/repo", path="data/interactions", api_url=sys.argv[1], pacing=None,
    budget_dir=sys.argv[2],
)
log.append({"w": "dying", "i": 0})
log.flush(timeout=30)
"""


@pytest.mark.slow
class TestFreshProcessesOfOneHost:
    def test_into_a_log_this_host_wrote_a_moment_ago(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """Fresh processes flushing at once into a log just written here lose no race."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, read_lag=READ_LAG)
        budget = tmp_path / "budget"
        before = fresh_writers(hub, budget, processes=1, seconds=1.0, branch=None)
        start = len(hub.requests)
        results = fresh_writers(hub, budget, processes=PROCESSES, seconds=1.5, branch=None)
        assert refused_updates(hub, start) == 0
        assert sum(r["conflicts"] for r in results) == 0
        assert_each_record_once_in_order(hub, results, "main", sum(before[0]["counts"]))
        hub.fsck(REPO)

    def test_into_a_branch_that_does_not_exist_yet(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """Fresh processes that all find the branch missing make it once and lose no race."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, read_lag=READ_LAG)
        results = fresh_writers(
            hub, tmp_path / "budget", processes=PROCESSES, seconds=1.5, branch="log"
        )
        assert refused_updates(hub) == 0
        assert sum(r["conflicts"] for r in results) == 0
        assert_each_record_once_in_order(hub, results, "log")
        hub.fsck(REPO)

    def test_into_an_empty_repository(self, localhub_factory: Any, tmp_path: Path) -> None:
        """Fresh processes that all find the repository empty start it once and lose no race."""
        hub = localhub_factory(repos=(REPO,), initial_commit=False, read_lag=READ_LAG)
        results = fresh_writers(
            hub, tmp_path / "budget", processes=PROCESSES, seconds=1.5, branch=None
        )
        assert refused_updates(hub) == 0
        assert sum(r["conflicts"] for r in results) == 0
        assert_each_record_once_in_order(hub, results, "main")
        hub.fsck(REPO)
