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
from gitjsonl._chain import (
    Link,
    catch_up,
    chain_from_json,
    chain_to_json,
    pending_from_json,
    with_pending,
)
from gitjsonl._turn import Turn
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


def link(commit: str, base: str, path: str = "log") -> Link:
    return Link(commit, base, f"tree-{commit}", path, 1, f"folder-{commit}")


class TestWithPending:
    def test_a_pending_update_on_the_tip_is_caught_up_to(self) -> None:
        """An update sent on the chain's tip and never answered is where a writer there goes."""
        chain = (link("b", "a"), link("c", "b"))
        known = with_pending(chain, (link("d", "c"),))
        assert known == (*chain, link("d", "c"))
        found = catch_up(known, "c", "log")
        assert found is not None
        assert (found.commit, found.exact) == ("d", True)

    def test_a_pending_update_on_an_older_commit_says_nothing(self) -> None:
        """Sent on a commit the chain has moved past, it never lands: it is left out."""
        chain = (link("b", "a"), link("c", "b"))
        assert with_pending(chain, (link("x", "b"),)) == chain
        assert with_pending(chain, ()) == chain

    def test_a_pending_update_on_a_commit_the_chain_does_not_hold_is_kept(self) -> None:
        """Found by ./dev sim (two writers of one host at a commit another host made): an
        update sent on a commit newer than the chain is where a writer at that commit goes;
        a writer at the chain's tip learns nothing exact from it."""
        chain = (link("b", "a"), link("c", "b"))
        known = with_pending(chain, (link("y", "q"),))
        assert known == (*chain, link("y", "q"))
        found = catch_up(known, "q", "log")
        assert found is not None
        assert (found.commit, found.exact) == ("y", True)
        tip = catch_up(known, "c", "log")
        assert tip is not None
        assert not tip.exact  # a read, never a guess built on

    def test_a_pending_update_that_is_already_a_link_is_not_added_twice(self) -> None:
        """Its answer came after all (or a later writer built on it): the chain has it."""
        chain = (link("b", "a"), link("c", "b"))
        assert with_pending(chain, (link("c", "b"),)) == chain

    def test_on_an_empty_chain_only_a_writer_at_its_base_trusts_it(self) -> None:
        """With no chain, the pending link is proven only by a head that is its base."""
        known = with_pending((), (link("b", "a"),))
        found = catch_up(known, "a", "log")
        assert found is not None
        assert found.commit == "b"
        assert catch_up(known, "z", "log") is None  # another history: nothing learned


class TestPendingInTheTurn:
    def test_pending_round_trips_through_json_and_a_torn_one_reads_as_none(self) -> None:
        """A turn file's pending link reads back the same; none, or a torn one, is None."""
        chain = (link("b", "a"),)
        data = chain_to_json(chain, (link("c", "b"),))
        assert pending_from_json(data) == (link("c", "b"),)
        assert chain_from_json(data) == chain
        assert pending_from_json(chain_to_json(chain)) == ()
        assert pending_from_json({**data, "pending": ["c"]}) == ()
        assert pending_from_json({**data, "format": 1}) == ()
        assert pending_from_json(None) == ()

    def test_an_intended_link_outlives_a_turn_that_never_added_it(self, tmp_path: Path) -> None:
        """Intended and left without an answer, the link is the next turn's pending one,
        in another process too; a link added, or an intent withdrawn, clears it (a link
        built on it proves it landed: it joins the chain, under that link)."""
        mine, theirs = Turn(tmp_path / "turn.json"), Turn(tmp_path / "turn.json")
        with mine.take() as taken:
            taken.intend(link("b", "a"))
        with theirs.take() as taken:
            assert taken.pending == (link("b", "a"),)
            taken.intend(link("c", "b"))
            taken.add(link("c", "b"), None)
        with mine.take() as taken:
            assert (taken.chain, taken.pending) == ((link("b", "a"), link("c", "b")), ())
            taken.intend(link("d", "c"))
            taken.intend(None)  # refused: it never lands
        with theirs.take() as taken:
            assert taken.pending == ()

    def test_a_dropped_link_leaves_the_turn_with_the_links_after_it(self, tmp_path: Path) -> None:
        """A link the branch contradicts leaves the host's turn file, and those after it,
        and the pending link built on it, for every process."""
        mine, theirs = Turn(tmp_path / "turn.json"), Turn(tmp_path / "turn.json")
        for commit, base in (("b", "a"), ("c", "b"), ("d", "c")):
            with mine.take() as taken:
                taken.add(link(commit, base), None)
        with mine.take() as taken:
            taken.intend(link("e", "d"))
        with theirs.take() as taken:
            taken.drop("c")
            assert (taken.chain, taken.pending) == ((link("b", "a"),), ())
        with mine.take() as taken:
            assert (taken.chain, taken.pending) == ((link("b", "a"),), ())

    def test_a_turn_of_one_process_keeps_its_pending_link_in_memory(self) -> None:
        """Without a turn file, the writers of one process see each other's pending link."""
        turn = Turn(None)
        with turn.take() as taken:
            taken.intend(link("b", "a"))
        with turn.take() as taken:
            assert taken.pending == (link("b", "a"),)

    def test_a_pending_link_built_on_a_pending_link_keeps_the_one_below(
        self, tmp_path: Path
    ) -> None:
        """Found by ./dev sim (seed 46, a lost answer on a lost answer): a writer builds on
        another's pending link and its own answer is lost too. The turn keeps both, in
        order, so the next writer goes up through both; before, the one below was
        forgotten, the one above no longer ran on from the chain's tip, and the next writer
        built beside it: a lost race."""
        first, second, third = (Turn(tmp_path / "turn.json") for _ in range(3))
        with first.take() as taken:
            taken.add(link("b", "a"), None)
        with first.take() as taken:
            taken.intend(link("c", "b"))  # its answer is lost
        with second.take() as taken:
            assert with_pending(taken.chain, taken.pending)[-1] == link("c", "b")
            taken.intend(link("d", "c"))  # built on the pending one; lost too
        with third.take() as taken:
            assert taken.pending == (link("c", "b"), link("d", "c"))
            known = with_pending(taken.chain, taken.pending)
            found = catch_up(known, "b", "log")
            assert found is not None
            assert (found.commit, found.exact) == ("d", True)
            taken.intend(link("e", "d"))
            taken.add(link("e", "d"), None)  # ours landed: both below it did
        with first.take() as taken:
            assert [x.commit for x in taken.chain] == ["b", "c", "d", "e"]
            assert taken.pending == ()

    def test_a_refused_update_puts_back_the_pending_links_it_found(self, tmp_path: Path) -> None:
        """An update refused never lands; the pending link it replaced still may have."""
        turn = Turn(tmp_path / "turn.json")
        with turn.take() as taken:
            taken.add(link("b", "a"), None)
        with turn.take() as taken:
            taken.intend(link("c", "b"))
        with turn.take() as taken:
            taken.intend(link("x", "b"))  # a rival on the tip: the pending one gives way
            taken.intend(None)  # refused
        with turn.take() as taken:
            assert taken.pending == (link("c", "b"),)

    def test_pending_links_round_trip_and_a_broken_sequence_keeps_the_newest(self) -> None:
        """``pending_under`` holds those below the newest; one that does not run up to it
        (torn, or forged) is dropped, the newest kept as every version reads it."""
        pending = (link("c", "b"), link("d", "c"))
        data = chain_to_json((link("b", "a"),), pending)
        assert data["pending"] == list(data["pending"])
        assert pending_from_json(data) == pending
        assert pending_from_json({**data, "pending_under": [["x", "y", "t", "log", 1, "f"]]}) == (
            link("d", "c"),
        )


def refused_updates(hub: Any, since: int = 0) -> int:
    """Ref updates the hub refused as not a fast-forward (lost races)."""
    return sum(1 for r in hub.requests[since:] if _refused(r))


def _refused(r: Any) -> bool:
    return bool(r.method == "PATCH" and "/git/refs/" in r.path and r.status == 422)


def requests_around_refusals(hub: Any, since: int = 0) -> str:
    """The requests before each refused update, for a failure's message."""
    requests = hub.requests[since:]
    lines = []
    for n, r in enumerate(requests):
        if _refused(r):
            lines += [f"{q.method} {q.path} {q.status}" for q in requests[max(0, n - 8) : n + 1]]
            lines.append("--")
    return "\n".join(lines)


def fresh_writers(
    hub: Any,
    budget_dir: Path,
    *,
    processes: int,
    seconds: float,
    branch: str | None,
    start_at: float | None = None,
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
        start_at=start_at or time.time() + STARTUP,
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

    @pytest.mark.parametrize("sent", [True, False], ids=["update-sent", "update-never-sent"])
    def test_a_writer_killed_at_its_update_costs_the_others_no_race(
        self, localhub_factory: Any, tmp_path: Path, sent: bool
    ) -> None:
        """A process that dies at its ref update (a SIGKILL under gunicorn), after it landed
        or before it was sent, leaves no link; the others of this host lose no race, and
        its batch is on the branch once (a guess built on a commit never sent lands it)."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, read_lag=READ_LAG)
        budget = tmp_path / "budget"
        spool = tmp_path / "spool"
        live = make_log(hub, budget_dir=budget, sleep=time.sleep)
        live.append({"w": "live", "i": 0})
        live.flush(timeout=30)
        script = [DIES_AT_ITS_UPDATE, hub.url, str(budget), str(sent), str(spool), "0"]
        dying = subprocess.run(
            [sys.executable, "-c", *script],
            env={**os.environ, "GITHUB_TOKEN": hub.token},
            timeout=60,
            check=False,
        )
        assert dying.returncode == 9  # killed at its update: no link left
        start = len(hub.requests)
        live.append({"w": "live", "i": 1})
        live.flush(timeout=30)
        assert refused_updates(hub, start) == 0
        assert live.stats().conflicts_retried == 0
        live.close()
        # The dead writer's spool, recovered by the next Log to start: settled, not resent.
        make_log(hub, budget_dir=budget, spool_dir=spool, sleep=time.sleep).close(timeout=30)
        records = [(r["w"], r["i"]) for r in committed_records(hub)]
        assert records == [("live", 0), ("dying", 0), ("live", 1)]
        hub.fsck(REPO)


#: A writer process that dies at its first ref update, once it landed or before it is sent
#: (argv: API URL, budget_dir, "True" for landed, spool_dir, a time.time() to start at).
DIES_AT_ITS_UPDATE = """
import os, sys, time
import gitjsonl
from gitjsonl._github import GitHubRepo

update = GitHubRepo.update_ref

def update_and_die(self, *args, **kwargs):
    if sys.argv[3] == "True":
        update(self, *args, **kwargs)
    os._exit(9)

GitHubRepo.update_ref = update_and_die
log = gitjsonl.Log(
    "owner/repo", path="data/interactions", api_url=sys.argv[1], pacing=None,
    budget_dir=sys.argv[2], spool_dir=sys.argv[4],
)
time.sleep(max(0.0, float(sys.argv[5]) - time.time()))
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
        assert refused_updates(hub, start) == 0, requests_around_refusals(hub, start)
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
        assert refused_updates(hub) == 0, requests_around_refusals(hub)
        assert sum(r["conflicts"] for r in results) == 0
        assert_each_record_once_in_order(hub, results, "log")
        hub.fsck(REPO)

    def test_into_an_empty_repository(self, localhub_factory: Any, tmp_path: Path) -> None:
        """Fresh processes that all find the repository empty start it once and lose no race."""
        hub = localhub_factory(repos=(REPO,), initial_commit=False, read_lag=READ_LAG)
        results = fresh_writers(
            hub, tmp_path / "budget", processes=PROCESSES, seconds=1.5, branch=None
        )
        assert refused_updates(hub) == 0, requests_around_refusals(hub)
        assert sum(r["conflicts"] for r in results) == 0
        assert_each_record_once_in_order(hub, results, "main")
        hub.fsck(REPO)

    def test_a_worker_killed_at_its_update_among_fresh_workers(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """Fresh processes writing at once, and one killed as its update lands a second in
        (gunicorn's SIGKILL): no race lost among them, its spooled batch on the branch once."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, read_lag=READ_LAG)
        budget, spool = tmp_path / "budget", tmp_path / "spool"
        start_at = time.time() + STARTUP
        script = [DIES_AT_ITS_UPDATE, hub.url, str(budget), "True", str(spool)]
        dying = subprocess.Popen(
            [sys.executable, "-c", *script, repr(start_at + 1.0)],
            env={**os.environ, "GITHUB_TOKEN": hub.token},
        )
        results = fresh_writers(
            hub, budget, processes=PROCESSES, seconds=3.0, branch=None, start_at=start_at
        )
        assert dying.wait(timeout=60) == 9
        assert refused_updates(hub) == 0, requests_around_refusals(hub)
        assert sum(r["conflicts"] for r in results) == 0
        make_log(hub, budget_dir=budget, spool_dir=spool, sleep=time.sleep).close(timeout=30)
        records = committed_records(hub)
        assert [r for r in records if r["w"] == "dying"] == [{"w": "dying", "i": 0}]
        kept = [r for r in records if r["w"] != "dying"]
        assert len(kept) == sum(sum(r["counts"]) for r in results)
        for n, result in enumerate(results):
            mine = [r["i"] for r in kept if r["w"] == f"p{n}-0"]
            assert mine == list(range(result["counts"][0]))
        assert history_is_linear(hub)
        hub.fsck(REPO)
