"""The write protocol without I/O (``gitjsonl._protocol``): driven here by hand, one action at a
time, with answers from an in-memory GitHub and faults placed on exact actions. No thread, no
clock, no server: what a batch does is read off the actions it asks for."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gitjsonl._actions import (
    Drop,
    Intend,
    Keep,
    LeaveTurn,
    Pushing,
    ReadHistory,
    Request,
    Sleep,
    Steps,
    TakeTurn,
)
from gitjsonl._batch import Batch, commit_message
from gitjsonl._chain import Link
from gitjsonl._commit import call_seam, change_turn
from gitjsonl._exceptions import NotFastForward, PublicRepository, TransientError
from gitjsonl._github import RepoInfo
from gitjsonl._protocol import TRANSITIONS, CommitProtocol, ProtocolError, Settings, State
from gitjsonl._retry import RetryPolicy
from gitjsonl._turn import Taken, Turn
from gitjsonl.testing import MemoryGitHub

PATH = "logs/chat"


def protocol(**settings: Any) -> CommitProtocol:
    values: dict[str, Any] = {
        "path": PATH,
        "branch": "main",
        "segment_bytes": 64_000,
        "policy": RetryPolicy(),
        "writer_id": "w",
        **settings,
    }
    return CommitProtocol(Settings(**values), random.Random(0))


def batch(n: int, *, bid: str | None = None) -> Batch:
    return Batch(bid or f"{n:032x}", (f'{{"n":{n}}}\n'.encode(),), n)


@dataclass
class Driver:
    """Carries a step's actions out: GitHub calls on ``hub``, the real ``_turn.Turn`` of a
    process nobody else shares; each action is recorded, and ``fault(action)`` may answer
    one with an exception instead."""

    hub: MemoryGitHub
    fault: Callable[[Any], BaseException | None] = lambda action: None
    actions: list[Any] = field(default_factory=list)
    turn: Turn = field(default_factory=lambda: Turn(None))
    states: list[str] = field(default_factory=list)

    @property
    def chain(self) -> tuple[Link, ...]:
        return self.turn._chain

    def run(self, proto: CommitProtocol, steps: Steps[Any]) -> Any:
        answer: Any = None
        failure: BaseException | None = None
        held = contextlib.ExitStack()
        taken: Taken | None = None
        while True:
            try:
                action = steps.throw(failure) if failure else steps.send(answer)
            except StopIteration as stop:
                held.close()
                return stop.value
            except BaseException:
                held.close()
                raise
            self.states.append(proto.state)
            self.actions.append(action)
            answer, failure = None, self.fault(action)
            if failure is not None:
                continue
            if isinstance(action, (Request, ReadHistory)):
                try:
                    answer = call_seam(self.hub, action)
                except Exception as exc:
                    failure = exc
            elif isinstance(action, TakeTurn):
                taken = answer = held.enter_context(self.turn.take())
            elif isinstance(action, LeaveTurn):
                held.close()
                taken = None
            elif isinstance(action, (Keep, Intend, Drop)):
                change_turn(taken, action)

    def calls(self, name: str) -> list[Request]:
        return [a for a in self.actions if isinstance(a, Request) and a.call == name]


def records(hub: MemoryGitHub) -> list[bytes]:
    """The log's lines on the branch, in order."""
    folder = hub.read_folder(hub.get_head("main"), PATH)
    return b"".join(
        hub.get_blob(e.sha) for e in sorted(folder.entries or (), key=lambda e: e.name)
    ).splitlines(keepends=True)


class TestSteadyState:
    def test_a_batch_is_one_tree_one_commit_one_update_in_named_states(self) -> None:
        hub, proto = MemoryGitHub(), protocol()
        driver = Driver(hub)
        driver.run(proto, proto.commit(batch(1)))
        first = len(driver.actions)
        sha = driver.run(proto, proto.commit(batch(2)))
        assert hub.get_head("main") == sha
        second = [a for a in driver.actions[first:] if isinstance(a, Request)]
        # A known head: nothing is read; three writes.
        assert [a.call for a in second] == ["post_tree", "create_commit", "update_ref"]
        assert proto.writes == 6
        assert list(proto.trail)[-7:] == [
            State.IDLE,
            State.TURN,
            State.RESERVING,
            State.SENDING,
            State.UPDATING,
            State.COMMITTED,
            State.IDLE,
        ]
        assert records(hub) == [b'{"n":1}\n', b'{"n":2}\n']

    def test_the_ref_update_is_announced_and_left_pending_before_it_goes(self) -> None:
        hub, proto = MemoryGitHub(), protocol()
        driver = Driver(hub)
        driver.run(proto, proto.commit(batch(1)))
        kinds = [type(a).__name__ for a in driver.actions]
        update = next(
            i for i, a in enumerate(driver.actions) if getattr(a, "call", "") == "update_ref"
        )
        assert kinds[update - 2 : update] == ["Pushing", "Intend"]
        assert kinds[update + 1 : update + 3] == ["Keep", "LeaveTurn"]

    def test_a_public_repository_is_refused_before_any_write(self) -> None:
        hub, proto = MemoryGitHub(), protocol()
        hub.repository = lambda fresh=False: RepoInfo("o/r", "main", False, True)  # type: ignore[method-assign]
        driver = Driver(hub)
        with pytest.raises(PublicRepository):
            driver.run(proto, proto.commit(batch(1)))
        assert proto.writes == 0
        assert proto.state == State.IDLE


class TestLostAnswers:
    def test_a_lost_update_answer_is_settled_by_the_same_update_not_a_second_commit(self) -> None:
        hub, proto = MemoryGitHub(), protocol()
        lost = [True]

        def fault(action: Any) -> BaseException | None:
            if isinstance(action, Request) and action.call == "update_ref" and lost:
                lost.clear()
                hub.update_ref(*action.args)  # it landed; the answer is lost
                return TransientError("502", status=502, ambiguous=True)
            return None

        driver = Driver(hub, fault)
        sha = driver.run(proto, proto.commit(batch(1)))
        assert [a.args[1] for a in driver.calls("update_ref")] == [sha, sha]
        assert len(driver.calls("create_commit")) == 1
        assert any(isinstance(a, Sleep) for a in driver.actions)
        assert State.SETTLING in driver.states
        assert proto.landed_after_error == 1
        assert records(hub) == [b'{"n":1}\n']

    def test_a_refused_update_whose_commit_is_on_the_branch_landed(self) -> None:
        """Another host built on our pending link while our update was refused: our commit is
        in the branch's history, so the batch is done, not sent again."""
        hub, proto = MemoryGitHub(), protocol()
        driver = Driver(hub)
        driver.run(proto, proto.commit(batch(1)))
        refused = [True]

        def fault(action: Any) -> BaseException | None:
            if isinstance(action, Request) and action.call == "update_ref" and refused:
                refused.clear()
                hub.update_ref(*action.args)
                hub.foreign_commit("main", "other.txt", b"x", "another host, on ours")
                return NotFastForward("refused", status=422)
            return None

        driver.fault = fault
        mark = len(driver.actions)
        sha = driver.run(proto, proto.commit(batch(2)))
        assert len(driver.calls("create_commit")) == 2  # one per batch: never rebuilt
        assert any(isinstance(a, ReadHistory) for a in driver.actions[mark:])
        assert sha in hub.ancestors(hub.get_head("main"))
        assert records(hub) == [b'{"n":1}\n', b'{"n":2}\n']

    def test_a_restart_settles_an_update_that_never_landed_as_none(self) -> None:
        hub, proto = MemoryGitHub(), protocol()
        driver = Driver(hub)
        base = hub.get_head("main")
        tree = hub.post_tree(hub.get_commit(base).tree_sha, texts={"x": b"1"}, blobs={}, deletes=[])
        lost = hub.create_commit(
            commit_message(batch(1), PATH, skip_ci=True, writer="w"), tree.sha, [base]
        )
        hub.foreign_commit("main", "other.txt", b"x", "someone else")
        assert driver.run(proto, proto.settle(batch(1), commit=lost, base=base)) is None
        assert proto.state == State.IDLE
        assert proto.unresolved_batch_id is None


class TestTrust:
    def test_a_link_the_branch_contradicts_is_dropped_and_not_followed_again(self) -> None:
        """A planted link (a commit GitHub does not have) costs one refusal, then the branch
        as read is built on; the link leaves the turn."""
        hub, proto = MemoryGitHub(), protocol()
        driver = Driver(hub)
        driver.run(proto, proto.commit(batch(1)))
        head = hub.get_head("main")
        planted = Link("f" * 40, head, "e" * 40, "elsewhere", 1, "d" * 40)
        driver.turn._chain = (*driver.turn._chain, planted)
        driver.run(proto, proto.commit(batch(2)))
        assert Drop("f" * 40) in driver.actions
        assert planted not in driver.chain
        assert records(hub) == [b'{"n":1}\n', b'{"n":2}\n']


class TestTable:
    def test_a_transition_outside_the_table_is_an_error(self) -> None:
        proto = protocol()
        with pytest.raises(ProtocolError, match="idle to updating"):
            proto._enter(State.UPDATING)

    def test_every_state_has_its_transitions_and_terminal_states_lead_home(self) -> None:
        names = {v for k, v in vars(State).items() if k.isupper()}
        assert set(TRANSITIONS) == names
        assert all(target in names for targets in TRANSITIONS.values() for target in targets)
        assert TRANSITIONS[State.COMMITTED] == {State.IDLE}
        assert TRANSITIONS[State.GAVE_UP] == {State.IDLE}

    @pytest.mark.parametrize("name", ["_protocol", "_actions", "_chain"])
    def test_the_core_imports_nothing_that_does_io(self, name: str) -> None:
        """The core's modules import no thread, clock, file, socket or context of the standard
        library, and none of the package's modules whose job is I/O (the turn's files and
        leases, the budget's stores, the spool, HTTP): the driver does all of that."""
        import ast
        import importlib
        from pathlib import Path

        module = importlib.import_module(f"gitjsonl.{name}")
        tree = ast.parse(Path(str(module.__file__)).read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            ("." * node.level) + (node.module or "")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        stdlib = {"threading", "time", "os", "socket", "contextvars", "asyncio", "io", "pathlib"}
        package = {"._turn", "._budget", "._redis", "._ledger", "._spool", "._http", "._log"}
        assert {m.split(".")[0] for m in imported}.isdisjoint(stdlib), imported
        assert imported.isdisjoint(package), imported & package


def test_leave_turn_follows_every_take_even_on_failure() -> None:
    hub, proto = MemoryGitHub(), protocol()

    def fault(action: Any) -> BaseException | None:
        if isinstance(action, Request) and action.call == "post_tree":
            return TransientError("500", status=500)
        return None

    driver = Driver(hub, fault)
    with pytest.raises(TransientError):
        driver.run(proto, proto.commit(batch(1)))
    takes = sum(isinstance(a, TakeTurn) for a in driver.actions)
    leaves = sum(isinstance(a, LeaveTurn) for a in driver.actions)
    assert takes == leaves > 1
    assert not any(isinstance(a, Pushing) for a in driver.actions)
    assert proto.state == State.IDLE


class TestDriver:
    """``Committer``, the protocol's driver, found wanting by review."""

    def committer(self, hub: MemoryGitHub, **options: Any) -> Any:
        from gitjsonl._commit import Committer

        values: dict[str, Any] = {
            "path": PATH,
            "branch": None,
            "segment_bytes": 64_000,
            "policy": RetryPolicy(),
            "budget": None,
            "sleep": lambda seconds: None,
            "writer_id": "w",
            "rng": random.Random(0),
            **options,
        }
        return Committer(hub, **values)

    def test_asking_the_branch_while_a_batch_holds_the_turn_leaves_the_turn_held(self) -> None:
        """Another thread (the Log's reader) asks the branch just as the flusher's batch is
        about to update the ref: the turn stays held, and the batch lands once."""
        hub = MemoryGitHub()
        asked: list[str] = []
        holder: list[Any] = []
        committer = self.committer(
            hub, before_update=lambda batch, commit, base: asked.append(holder[0].branch)
        )
        holder.append(committer)
        sha = committer.commit(batch(1))
        assert asked == ["main"]
        landed = [c for c in hub.iter_commits(hub.get_head("main")) if f"{1:032x}" in c.message]
        assert [c.sha for c in landed] == [sha]
        assert committer.retries == 0

    def test_a_restart_never_takes_an_unprovable_history_for_not_landed(self) -> None:
        """A spooled update whose base lies deeper than the search reaches: settle keeps saying
        it cannot tell (the batch stays in the spool), never None (which would send it again)."""
        from gitjsonl._batch import LANDED_SEARCH_LIMIT
        from gitjsonl._exceptions import StaleRead

        hub = MemoryGitHub()
        base = hub.get_head("main")
        tree = hub.post_tree(hub.get_commit(base).tree_sha, texts={"x": b"1"}, blobs={}, deletes=[])
        message = commit_message(batch(1), PATH, skip_ci=True, writer="w")
        landed = hub.create_commit(message, tree.sha, [base])
        hub.update_ref("main", landed)
        for n in range(LANDED_SEARCH_LIMIT + 1):
            hub.foreign_commit("main", "other.txt", str(n).encode(), f"other {n}")
        slow = RetryPolicy(max_attempts=12, conflict_wait=1.0, max_conflict_wait=1.0)
        committer = self.committer(hub, branch="main", policy=slow)
        with pytest.raises(StaleRead):
            committer.settle(batch(1), commit=landed, base=base)


class TestPreparedChange:
    """``commit_change``: migrate's one commit, through the same turn, budget and ref update."""

    def change(self, hub: MemoryGitHub, base: Any) -> Any:
        from gitjsonl._protocol import Change

        blob = hub.create_blob(b'{"n":1}\n')
        return Change(
            batch="ab" * 16,
            planned_at=hub.get_head("main"),
            files={f"{PATH}/00000001.jsonl": blob},
            title="gitjsonl: migrate",
            lines=1,
            writes_before=1,
            base=base,
            link=lambda commit, parent, tree: None,
        )

    def test_a_change_whose_paths_moved_is_planned_again_without_a_write(self) -> None:
        from gitjsonl._protocol import Replan

        hub, proto = MemoryGitHub(), protocol()
        head = hub.get_head("main")
        driver = Driver(hub)
        moved = driver.run(
            proto, proto.commit_change(self.change(hub, lambda chain: Replan("c" * 40)))
        )
        assert moved == Replan("c" * 40)
        assert proto.writes == 0
        assert list(proto.trail)[-2:] == [State.TURN, State.IDLE]
        assert sum(isinstance(a, TakeTurn) for a in driver.actions) == 1
        assert sum(isinstance(a, LeaveTurn) for a in driver.actions) == 1
        sha = driver.run(proto, proto.commit_change(self.change(hub, lambda chain: (head, None))))
        assert hub.get_head("main") == sha
        assert [
            a.call
            for a in driver.actions
            if isinstance(a, Request) and a.call in {"create_tree", "create_commit", "update_ref"}
        ] == ["create_tree", "create_commit", "update_ref"]
        assert "Gitjsonl-Writes: 4" in hub.get_commit(sha).message

    def test_a_restart_never_settles_a_landed_batch_as_not_landed_while_reads_lag(self) -> None:
        """A dead process's batch never sent, landed under a commit another writer built on
        its pending link; the restart's re-send is refused and the branch still reads as the
        base: settle keeps saying it cannot tell (never None, which would send it again)."""
        from gitjsonl._exceptions import StaleRead

        now = [1_000.0]
        hub = MemoryGitHub(clock=lambda: now[0], read_lag=5.0)
        base = hub.get_head("main")
        message = commit_message(batch(1), PATH, skip_ci=True, writer="dead")
        tree = hub.post_tree(hub.get_commit(base).tree_sha, texts={"x": b"1"}, blobs={}, deletes=[])
        dead = hub.create_commit(message, tree.sha, [base])  # its update was never sent
        above = hub.create_commit("another writer, on the pending link", tree.sha, [dead])
        hub.update_ref("main", above)  # the branch moved; reads still show ``base``
        slow = RetryPolicy(max_attempts=12, conflict_wait=1.0, max_conflict_wait=1.0)
        committer = TestDriver().committer(hub, branch="main", policy=slow)
        with pytest.raises(StaleRead):
            committer.settle(batch(1), commit=dead, base=base)
        now[0] += 10  # the reads catch up: it landed
        assert committer.settle(batch(1), commit=dead, base=base) == dead
