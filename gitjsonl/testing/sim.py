"""A deterministic simulator of writers committing to one log: ``./dev sim``.

After FoundationDB's simulation testing and TigerBeetle's VOPR: several
writers commit batches to one log on one ``MemoryGitHub``, on a virtual
clock. Each writer is a ``_protocol.CommitProtocol`` (the write protocol
itself, without I/O) and the step it is running (``commit``, or a restart's
``settle``): a generator that yields actions. No thread runs: a scheduler
seeded by the run's seed picks whose pending action is carried out next, what
it meets (a fault or none) and what the world does meanwhile, and sends the
answer in (or throws the failure in). A seed replays the same run, byte for
byte.

Writers live on hosts. The writers of one host share its turn (a small model
of ``_turn.Turn.take`` over a host file: the chain, the pending link and the
heads left for other processes, applied on ``Intend``/``Keep``/``Drop`` and
on leaving): a writer holds it between ``TakeTurn`` and ``LeaveTurn``, and
another writer's ``TakeTurn`` is not answered until then. A writer alone on
its host keeps its turn in its process (lost when it is killed), or in a file
(kept). Some runs pace writers with a real ``_budget.Budget`` over one
``MemoryStore`` (the token's, shared by every paced writer) on the virtual
clock, with small limits so that batches wait for room.

Faults a seed draws, at any GitHub call: lost answers (the write landed, its
answer did not), dropped requests, 5xx, GitHub's transient 422, 429 and
secondary limits, spurious ref refusals, read lag on reads naming the branch,
a writer killed at any call, or as a write of its lands (``crash``), and
restarted from its spool (the last ref update its batch announced with
``Pushing``, then ``CommitProtocol.settle``), a ``Log`` closing while its
batch waits for the budget (``close``: ``LogClosed`` thrown in, and the
process restarted), foreign commits, writers naming no branch (``default``:
the repository's default, asked of GitHub); opt-in with ``--faults``: an
operator's reset (``reset``).
A killed writer's step is ended with nothing of what it still asks carried
out (a dead process writes nothing, and its host's turn is free at once).
``--coverage`` prints the edges of ``_protocol.TRANSITIONS`` the seeds took.

The checker, after every run: every acknowledged record is on the final
branch exactly once, no record twice, each writer's records in its order,
commits an operator's reset removed never come back, no commit call waits
(sleeps) past its retry policy's bound, no writer waits while it holds its
host's turn, and the paced writers' writes (every write call sent, faulted
or not, at the virtual time it was sent) never number more than the pacing's
``per_minute`` in any 60 s nor ``per_hour`` in any hour (sliding windows:
what ``_pacing`` promises GitHub's secondary limits, whatever the allowance
a limit shrank them to).

Not explored: Redis's coordinator (a turn shared by every host, its leases;
the one budget store stands for a token's budget however it is shared),
writers of one process sharing its ``Turn`` (each writer here is a process of
its own), the ``Log`` around the protocol (its spool files, flusher, segments
of several logs on one branch), bootstrapping an empty repository, kills at
actions other than GitHub calls, turn waits that time out (``TURN_WAIT``: no
writer holds a turn across a wait), and GitHub's refusals other than those
listed (protected branches, a tree stored otherwise than sent).

    ./dev sim --seeds 0:500           # N seeds, V violations (exit 1 on any)
    ./dev sim --digest 7              # the sha256 of seed 7's whole trace
    ./dev sim --control --seeds 0:200 # a GitHub whose compare-and-swap is broken
    ./dev sim --coverage              # and the protocol's transitions visited
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import json
import logging
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitjsonl._actions import (
    Acquire,
    Action,
    Drop,
    Intend,
    Keep,
    Learn,
    LeaveTurn,
    Now,
    Pushing,
    ReadHistory,
    Request,
    Reserve,
    Restore,
    Settle,
    Sleep,
    Steps,
    TakeTurn,
    WaitForBudget,
)
from gitjsonl._batch import Batch
from gitjsonl._budget import Budget, MemoryStore
from gitjsonl._commit import call_seam, change_turn, use_budget
from gitjsonl._exceptions import GitHubError, LogClosed, NotFastForward, RateLimited
from gitjsonl._pacing import Pacing
from gitjsonl._protocol import TRANSITIONS, CommitProtocol, ProtocolError, Settings
from gitjsonl._retry import RetryPolicy
from gitjsonl._turn import Held, Taken, Turn

from ._memory import WRITES, MemoryGitHub

__all__ = ["DEFAULT_FAULTS", "Run", "edges", "main", "run", "search"]

#: Faults a run draws from unless told otherwise (``default``: some writers name no branch,
#: so the repository's default is asked of GitHub); opt-in: ``reset`` (an operator's reset).
DEFAULT_FAULTS = (
    "lost",
    "dropped",
    "5xx",
    "422",
    "429",
    "secondary",
    "refused",
    "kill",
    "crash",
    "close",
    "foreign",
    "lag",
    "default",
)

BRANCH = "main"
LOG_PATH = "logs/chat"
START = 1_700_000_000.0  # the virtual clock's epoch
#: A writer gives a batch up after this much virtual time (the Log would keep it pending).
BATCH_BOUND = 6 * 3600.0
#: Steps a run may take before it is a livelock (a run takes a few hundred).
STEP_LIMIT = 100_000
#: Actions a killed writer's step may still yield (its ``finally`` blocks) before it ends.
DRAIN_LIMIT = 100
#: The pacings a paced run draws from: small limits, so that batches wait for room.
PACINGS = (Pacing(per_minute=6, per_hour=40), Pacing(per_minute=12, per_hour=90), Pacing())
_SEGMENT = re.compile(r"\A[0-9]{8,12}\.jsonl\Z")
#: Actions that wait for the scheduler (a GitHub call, a wait, the turn); the others are
#: this process's own, carried out at once.
_SCHEDULED = (Request, ReadHistory, Sleep, WaitForBudget, Acquire, TakeTurn)
_WAITS = (Sleep, WaitForBudget, Acquire)


class _Killed(BaseException):
    """Thrown into a killed writer's step (a BaseException: nothing catches it)."""


@dataclass(slots=True, eq=False)
class _Host:
    """A host's turn record (``_turn``'s host file), and the writer holding the turn."""

    name: str
    file: bool  # kept in a file (else in the process: a kill loses it)
    record: dict[str, Any] | None = None
    holder: _Writer | None = None


class _HostRecord:
    """A host's turn file, as ``Turn`` holds it (``_turn.SharedTurn``): its record, read and
    written whole; who holds it is the scheduler's (a ``TakeTurn`` waits its turn)."""

    def __init__(self, host: _Host) -> None:
        self._host = host

    @contextlib.contextmanager
    def held(self, wait: float) -> Iterator[Held | None]:
        yield _HostLease(self._host)


class _HostLease:
    def __init__(self, host: _Host) -> None:
        self._host = host

    @property
    def record(self) -> dict[str, Any] | None:
        return self._host.record

    def save(self, record: dict[str, Any]) -> None:
        self._host.record = record


@dataclass(slots=True, eq=False)
class _Process:
    """What a writer's process holds, lost when it is killed."""

    protocol: CommitProtocol
    budget: Budget | None
    turn: Turn  # the real ``_turn.Turn``: its chain, local tip and heads live and die here
    taken: Taken | None = None
    leave: Callable[[], None] | None = None  # leaves the turn (its record written)


@dataclass(slots=True, eq=False)
class _Writer:
    name: str
    host: _Host
    batches: list[Batch]
    paced: bool
    branch: str | None  # None: the repository's default (asked of GitHub)
    process: _Process | None = None
    spool: dict[str, tuple[str, str]] = field(default_factory=dict)
    lives: int = 0
    index: int = 0  # the batch being committed
    batch: Batch | None = None
    started: float = 0.0
    steps: Steps[Any] | None = None
    settling: bool = False
    action: Action | None = None  # the action waiting for the scheduler
    wake: float = 0.0
    slept: float = 0.0  # virtual seconds slept inside the current commit call
    restarted: bool = False  # a fresh process: its spool's last ref update is settled first
    done: bool = False
    error: BaseException | None = None


@dataclass(slots=True)
class Run:
    """One seed's run: its trace, what the checker found, and what it explored."""

    seed: int
    trace: list[str]
    violations: list[str]
    steps: int
    faults: Counter[str]
    #: The protocol's transitions taken, over every writer's process: (from, to) -> times.
    visited: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Steps taken while a writer's ``TakeTurn`` went unanswered (another held its turn).
    turn_waits: int = 0
    #: Ref updates, sent for the first time, that lost a race to writers of their own host
    #: (every commit between the writer's base and the branch made by a writer there):
    #: what taking turns should make rare (kills and restarts still cost one now and then).
    home_races: int = 0

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.trace).encode()).hexdigest()


def edges() -> frozenset[tuple[str, str]]:
    """Every edge of the protocol's table (``_protocol.TRANSITIONS``)."""
    return frozenset((a, b) for a, targets in TRANSITIONS.items() for b in targets)


class _World:
    """The scheduler, the virtual clock, the GitHub, the turns, the budget, the trace."""

    def __init__(
        self, seed: int, *, control: bool, faults: Sequence[str], sabotage: str | None = None
    ) -> None:
        self.rng = random.Random(seed)
        self.sabotage = sabotage
        self.seed = seed
        self.now = START
        self.faults = frozenset(faults)
        lag = self.rng.choice((0.0, 0.0, 0.5, 2.0)) if "lag" in self.faults else 0.0
        self.hub = MemoryGitHub(clock=self.clock, read_lag=lag, cas=not control)
        self.rate = self.rng.choice((0.02, 0.05, 0.1, 0.3))  # chance a call meets a fault
        self.pacing = self.rng.choice((None, *PACINGS))
        self.store = MemoryStore()
        self.trace: list[str] = [
            f"seed {seed} lag {lag} rate {self.rate} control {control} pacing "
            + (f"{self.pacing.per_minute}/{self.pacing.per_hour}" if self.pacing else "none")
        ]
        self.counted: Counter[str] = Counter()
        self.visited: Counter[tuple[str, str]] = Counter()
        self.steps = 0
        self.turn_waits = 0
        self.home_races = 0
        self.made: dict[str, str] = {}  # commit -> the host whose writer made it
        self.sent: set[str] = set()  # commits a ref update was sent to
        self.fault: str | None = None  # the fault the call being carried out meets
        self.acked: dict[str, str] = {}  # batch id -> commit sha
        self.acked_records: set[bytes] = set()
        self.removed: set[str] = set()  # commits an operator's reset dropped
        self.found: list[str] = []  # violations seen as they happen
        self.paced_writes: list[float] = []  # when each paced writer's write was sent
        # One client for every writer: the fault a call meets is the scheduler's.
        self.client = self.hub.client(faults=self._take_fault)
        self.head = self.hub.head(BRANCH)
        self.bound = RetryPolicy().max_total_wait + RetryPolicy().max_wait

    def clock(self) -> float:
        return self.now

    def log(self, line: str) -> None:
        self.trace.append(f"{self.now - START:10.3f} {line}")

    # -- the scheduler -----------------------------------------------------------------------

    def schedule(self, writers: list[_Writer]) -> None:
        for writer in writers:
            self._spawn(writer)
            self._begin(writer)
        while True:
            alive = [w for w in writers if not w.done]
            if not alive:
                return
            ready = [w for w in alive if w.wake <= self.now and self._may_go(w)]
            if not ready:
                later = [w.wake for w in alive if w.wake > self.now]
                if not later:
                    raise RuntimeError(f"seed {self.seed}: every writer waits for a turn")
                self.now = min(later)
                continue
            if self.steps >= STEP_LIMIT:
                raise RuntimeError(f"seed {self.seed}: no end after {STEP_LIMIT} steps")
            if any(w.wake <= self.now and not self._may_go(w) for w in alive):
                self.turn_waits += 1  # a step taken while a writer waits for its host's turn
            writer = self.rng.choice(ready)
            self.now += self.rng.uniform(0.01, 0.3)  # the call's latency
            self._world_moves()
            self.steps += 1
            self._carry_out(writer)
            self._moved()

    def _may_go(self, writer: _Writer) -> bool:
        """A writer waiting for its host's turn goes once nobody else holds it."""
        holder = writer.host.holder
        return not isinstance(writer.action, TakeTurn) or holder is None or holder is writer

    def _moved(self) -> None:
        head = self.hub.head(BRANCH)
        if head != self.head:
            self.head = head
            self.log(f"{BRANCH} is now {str(head)[:12]}")

    def _decide(self, action: Action) -> str | None:
        """The fault a GitHub call meets, or a wait for the budget (the Log closes meanwhile);
        a retry's wait or the turn meets none."""
        if not isinstance(action, (Request, ReadHistory, WaitForBudget)):
            return None
        if self.rng.random() >= self.rate:
            return None
        if isinstance(action, WaitForBudget):
            if "close" not in self.faults:
                return None
            self.counted["close"] += 1
            return "close"
        op = _label(action)
        options: list[str] = [
            f for f in ("dropped", "5xx", "429", "secondary", "kill") if f in self.faults
        ]
        if op in WRITES:
            options += [f for f in ("lost", "422", "crash") if f in self.faults]
        if op == "update_ref" and "refused" in self.faults:
            options.append("refused")
        if not options:
            return None
        fault = self.rng.choice(options)
        self.counted[fault] += 1
        return fault

    def _world_moves(self) -> None:
        """Between two steps: a foreign commit, or an operator's reset, now and then."""
        if "foreign" in self.faults and self.rng.random() < 0.01:
            sha = self.hub.foreign_commit(
                BRANCH, "notes/other.txt", f"{self.steps}\n".encode(), "someone else's commit"
            )
            self.counted["foreign"] += 1
            self.log(f"foreign commit {sha[:12]}")
        if "reset" in self.faults and self.rng.random() < 0.005:
            head = self.hub.head(BRANCH)
            assert head is not None
            history = self.hub.ancestors(head)
            if len(history) > 2:
                target = history[self.rng.randint(1, min(3, len(history) - 2))]
                kept = set(self.hub.ancestors(target))
                self.removed.update(sha for sha in history if sha not in kept)
                self.hub.force_ref(BRANCH, target)
                self.counted["reset"] += 1
                self.log(f"operator resets {BRANCH} to {target[:12]}")

    # -- a writer's pending action, carried out ----------------------------------------------

    def _carry_out(self, writer: _Writer) -> None:
        action, writer.action = writer.action, None
        assert action is not None
        decision = self._decide(action)
        self.log(f"{writer.name} {_label(action)} -> {decision or 'ok'}")
        if decision == "kill":
            self._kill(writer)
            return
        if writer.steps is None:  # the pause after a failed batch: the batch is tried again
            self._begin(writer)
            return
        answer: Any = None
        try:
            answer = self._scheduled(writer, action, decision)
        except (GitHubError, LogClosed) as exc:
            self._advance(writer, None, exc)
            return
        if decision == "crash":  # the write landed; the process died before its answer
            self._kill(writer)
            return
        if isinstance(action, Acquire) and answer is None:
            return  # still no room: it waits again
        self._advance(writer, answer, None)

    def _scheduled(self, writer: _Writer, action: Action, decision: str | None) -> Any:
        process = self._process(writer)
        if isinstance(action, (Request, ReadHistory)):
            op = _label(action)
            if writer.paced and op in WRITES:
                self.paced_writes.append(self.now)
            self.fault = None if decision == "crash" else decision
            try:
                return self._request(process, action)
            except NotFastForward:
                if decision is None:
                    self._lost_race(writer, action)
                raise
            finally:
                self.fault = None
                if isinstance(action, Request) and action.call == "update_ref":
                    self.sent.add(action.args[1])
        if isinstance(action, TakeTurn):
            return self._take(writer, process)
        if decision == "close":
            raise LogClosed("the log closed while a batch waited for the budget")
        if isinstance(action, Acquire):
            budget = _budget(process)
            token, wait = budget.reserve(action.cost)
            if token is None:
                self._wait(writer, wait, action)
            return token
        return False if isinstance(action, WaitForBudget) else None  # the time did pass

    def _request(self, process: _Process, action: Request | ReadHistory) -> Any:
        return call_seam(self.client, action)

    def _lost_race(self, writer: _Writer, action: Request | ReadHistory) -> None:
        """Count a first ref update refused for commits of its own host's writers only."""
        if not isinstance(action, Request) or action.call != "update_ref":
            return
        commit = action.args[1]
        if commit in self.sent or not writer.host.file:
            return  # a lost answer's re-send, or a host whose writers share no turn
        base = self.hub.get_commit(commit).parents[0]
        above: list[str] = []
        for sha in self.hub.ancestors(self.hub.head(BRANCH) or base):
            if sha == base:
                break
            above.append(sha)
        if above and all(self.made.get(sha) == writer.host.name for sha in above):
            self.home_races += 1
            self.log(f"{writer.name} lost a race to its own host")

    def _advance(self, writer: _Writer, answer: Any, failure: BaseException | None) -> None:
        """Run the writer's step on, its own actions carried out at once, until it waits for
        the scheduler or ends."""
        steps = writer.steps
        process = self._process(writer)
        assert steps is not None
        while True:
            try:
                action = steps.throw(failure) if failure is not None else steps.send(answer)
            except StopIteration as stop:
                self._ended(writer, stop.value)
                return
            except GitHubError as exc:
                self._failed(writer, exc)
                return
            except LogClosed:  # the process closed its Log: it restarts
                self._restart(writer, "closed")
                return
            except Exception as exc:  # reported by the checker: nothing may kill a writer
                self._leave(writer)
                writer.error, writer.done = exc, True
                return
            answer, failure = None, None
            if isinstance(action, _SCHEDULED):
                if isinstance(action, _WAITS):
                    if writer.host.holder is writer:
                        self.found.append(f"{writer.name} waits holding its host's turn")
                    if isinstance(action, Sleep):
                        writer.slept += max(0.0, action.seconds)
                        if action.after is not None:
                            self.log(f"{writer.name} retries after {type(action.after).__name__}")
                    if not isinstance(action, Acquire):
                        self._wait(writer, getattr(action, "seconds", 0.0), action)
                writer.action = action
                return
            try:
                answer = self._own(writer, process, action)
            except Exception as exc:  # e.g. the budget's store failed: the protocol decides
                failure = exc

    def _own(self, writer: _Writer, process: _Process, action: Action) -> Any:
        """An action of the writer's own process: the clock, the turn, the budget, the spool."""
        if isinstance(action, Now):
            return self.now
        if isinstance(action, LeaveTurn):
            self._leave(writer)
            return None
        if isinstance(action, (Intend, Keep, Drop)):
            change_turn(process.taken, action)
            return None
        if isinstance(action, Pushing):
            writer.spool[action.batch.id] = (action.commit, action.base)
            self.made[action.commit] = writer.host.name
            self.log(
                f"{writer.name} sends {action.batch.id[:8]} as {action.commit[:12]} "
                f"on {action.base[:12]}"
            )
            return None
        if isinstance(action, (Reserve, Settle, Learn, Restore)):
            return use_budget(process.budget, action)
        return None  # Say, Ignored: the log's

    def _wait(self, writer: _Writer, seconds: float, action: Action) -> None:
        writer.wake = self.now + max(0.0, seconds)
        writer.action = action

    # -- the host's turn (``_turn.Turn.take`` over a host file) ------------------------------

    def _take(self, writer: _Writer, process: _Process) -> Taken:
        """The writer's process takes its host's turn: ``_turn.Turn.take`` itself, over the
        host's record (a file's, kept across kills) or its own (``Turn(None)``, alone)."""
        writer.host.holder = writer
        stack = contextlib.ExitStack()
        taken = stack.enter_context(process.turn.take())
        process.taken, process.leave = taken, stack.close
        return taken

    def _leave(self, writer: _Writer) -> None:
        process = self._process(writer)
        leave, process.leave, process.taken = process.leave, None, None
        if leave is not None:
            leave()
        if writer.host.holder is writer:
            writer.host.holder = None

    # -- a writer's life: its batches, as a Log commits them ---------------------------------

    def _spawn(self, writer: _Writer) -> None:
        """A fresh process for ``writer`` (what the last one knew died with it)."""
        writer.lives += 1
        budget = None
        if writer.paced and self.pacing is not None:
            pacing = self.pacing
            if self.sabotage == "budget":  # the pacing property's control: limits too high
                pacing = Pacing(per_minute=4 * pacing.per_minute, per_hour=4 * pacing.per_hour)
            budget = Budget(pacing, self.store, self.clock)
            budget.id = f"{writer.name}.{writer.lives}"  # not a random one: seeds replay
        protocol = CommitProtocol(
            Settings(
                path=LOG_PATH,
                branch=writer.branch,
                segment_bytes=self.rng.choice((200, 1000, 64_000)),
                policy=RetryPolicy(),
                writer_id=writer.name,
                pacing=self.pacing if budget is not None else None,
            ),
            random.Random(self.rng.random()),
        )
        shared = _HostRecord(writer.host) if writer.host.file else None
        writer.process = _Process(protocol, budget, Turn(None, shared))

    def _process(self, writer: _Writer) -> _Process:
        assert writer.process is not None
        return writer.process

    def _begin(self, writer: _Writer) -> None:
        """Try the writer's batch (again): settle what its spool says was sent, else commit."""
        writer.slept = 0.0
        if writer.batch is None:
            if writer.index >= len(writer.batches):
                writer.done = True
                return
            writer.batch, writer.started = writer.batches[writer.index], self.now
        if self.now - writer.started >= BATCH_BOUND:
            # A Log keeps it pending (and the batches after it: they go in order).
            self.log(f"{writer.name} gives batch {writer.batch.id[:8]} up, and stops")
            writer.done = True
            return
        protocol = self._process(writer).protocol
        if writer.restarted and self.sabotage == "spool":
            # The control of the kill path: a restart that forgets its spool sends its
            # batch again under a new id.
            planned = writer.batch
            writer.batch = Batch(
                f"{self.rng.getrandbits(128):032x}", planned.lines, planned.first_seq
            )
        batch = writer.batch
        sent = writer.spool.get(batch.id) if writer.restarted else None
        writer.settling = sent is not None
        if sent is not None:
            writer.steps = protocol.settle(batch, commit=sent[0], base=sent[1])
        else:
            writer.restarted = False
            writer.steps = protocol.commit(batch)
        self._advance(writer, None, None)

    def _ended(self, writer: _Writer, sha: str | None) -> None:
        batch = writer.batch
        assert batch is not None
        if writer.settling:
            self.log(f"{writer.name} settled {batch.id[:8]}: {str(sha)[:12]}")
            writer.settling, writer.restarted = False, False
            if sha is None:
                writer.steps = self._process(writer).protocol.commit(batch)
                self._advance(writer, None, None)
                return
        assert sha is not None
        self._check_wait(writer)
        writer.spool.pop(batch.id, None)
        self.acked[batch.id] = sha
        self.acked_records.update(batch.lines)
        self.log(f"{writer.name} acknowledged {batch.id[:8]} in {sha[:12]}")
        self._next_batch(writer)

    def _next_batch(self, writer: _Writer) -> None:
        writer.index, writer.batch, writer.steps = writer.index + 1, None, None
        self._begin(writer)

    def _failed(self, writer: _Writer, exc: GitHubError) -> None:
        """The step gave up: the batch stays pending, and is tried again after a pause."""
        self._check_wait(writer)
        batch = writer.batch
        assert batch is not None
        self.log(f"{writer.name} batch {batch.id[:8]} failed: {type(exc).__name__}")
        wait = exc.retry_after if isinstance(exc, RateLimited) else None
        seconds = wait or self.rng.uniform(5.0, 60.0)
        writer.steps = None
        writer.slept += seconds
        self._wait(writer, seconds, Sleep(seconds))

    def _kill(self, writer: _Writer) -> None:
        """The writer's process dies here: what it still asks is carried out by nobody."""
        self.visited.update(self._process(writer).protocol.visited)  # those really taken
        if not _drop(writer.steps):
            self.found.append(f"{writer.name}'s step would not end once killed")
        self._restart(writer, "killed")

    def _restart(self, writer: _Writer, how: str) -> None:
        """A new process for the writer, which settles its spool's last ref update first."""
        if how != "killed":
            self.visited.update(self._process(writer).protocol.visited)
        writer.steps = None
        if writer.host.holder is writer:
            writer.host.holder = None  # the OS lets a dead process's lock go
        self.log(f"{writer.name} {how}; restarts from its spool")
        writer.process = None
        self._spawn(writer)
        writer.restarted = True
        self._begin(writer)

    def _check_wait(self, writer: _Writer) -> None:
        if writer.slept > self.bound:
            self.found.append(f"{writer.name} slept {writer.slept:.1f}s in one commit call")

    def _take_fault(self, op: str) -> str | None:
        fault, self.fault = self.fault, None
        return fault


def _drop(steps: Steps[Any] | None) -> bool:
    """End a dead process's step: ``_Killed`` thrown in, whatever its ``finally`` blocks
    still ask answered by nobody (None). False when it would not end."""
    if steps is None:
        return True
    failure: BaseException | None = _Killed()
    for _ in range(DRAIN_LIMIT):
        try:
            steps.throw(failure) if failure is not None else steps.send(None)
        except (_Killed, StopIteration):
            return True
        except Exception:  # a failure while dying is no answer to anyone
            return True
        failure = None
    return False


def _budget(process: _Process) -> Budget:
    if process.budget is None:
        raise ProtocolError("a budget's action without a budget")
    return process.budget


def _label(action: Action) -> str:
    if isinstance(action, Request):
        return action.call
    if isinstance(action, ReadHistory):
        return "iter_commits"
    if isinstance(action, Sleep):
        return f"sleep {action.seconds:.3f}"
    if isinstance(action, WaitForBudget):
        return f"wait for budget {action.seconds:.3f}"
    if isinstance(action, Acquire):
        return f"acquire {action.cost}"
    return "take turn"


def _batches(rng: random.Random, name: str, count: int) -> list[Batch]:
    batches, seq = [], 1
    for _ in range(count):
        size = rng.randint(1, 4)
        lines = tuple(
            json.dumps({"w": name, "s": seq + i}, separators=(",", ":")).encode() + b"\n"
            for i in range(size)
        )
        batches.append(Batch(f"{rng.getrandbits(128):032x}", lines, seq))
        seq += size
    return batches


def _writers(world: _World) -> list[_Writer]:
    """2 to 5 writers on 1 to as many hosts; the writers of a host share its turn."""
    count = world.rng.randint(2, 5)
    hosts = [_Host(f"h{i}", world.rng.random() < 0.5) for i in range(world.rng.randint(1, count))]
    writers = []
    for i in range(count):
        host = hosts[world.rng.randrange(len(hosts))]
        paced = world.pacing is not None and world.rng.random() < 0.7
        branch = BRANCH if world.rng.random() < 0.7 or "default" not in world.faults else None
        batches = _batches(world.rng, f"w{i}", world.rng.randint(2, 5))
        writers.append(_Writer(f"w{i}", host, batches, paced, branch))
    for host in hosts:  # a host file is what lets its processes share the turn
        host.file = host.file or sum(1 for w in writers if w.host is host) > 1
    world.log(
        "writers "
        + " ".join(
            f"{w.name}@{w.host.name}{'$' if w.paced else ''}{'' if w.branch else '?'}"
            for w in writers
        )
        + " files "
        + " ".join(h.name for h in hosts if h.file)
    )
    return writers


def run(
    seed: int,
    *,
    control: bool = False,
    faults: Iterable[str] = DEFAULT_FAULTS,
    sabotage: str | None = None,
) -> Run:
    """Run seed ``seed`` to its end, and check it.

    ``control``: the GitHub's compare-and-swap is broken. ``sabotage="spool"``: a
    restarted writer forgets its spool (its batch goes again under a new id);
    ``sabotage="budget"``: the paced writers' budget paces for four times the run's
    limits. Each exists to prove the checker live: it must make it report violations.
    """
    world = _World(seed, control=control, faults=tuple(faults), sabotage=sabotage)
    writers = _writers(world)
    try:
        world.schedule(writers)
    except RuntimeError as exc:  # a livelock or a deadlock: the checker reports it
        world.found.append(str(exc))
        for writer in writers:
            _drop(writer.steps)
    for writer in writers:
        if writer.process is not None:
            world.visited.update(writer.process.protocol.visited)
    violations = check(world, writers)
    head = world.hub.head(BRANCH)
    world.trace.append(f"final {head}")
    return Run(
        seed,
        world.trace,
        violations,
        world.steps,
        world.counted,
        world.visited,
        world.turn_waits,
        world.home_races,
    )


def check(world: _World, writers: Sequence[_Writer]) -> list[str]:
    """The properties every run must keep; what broke, in words."""
    found: list[str] = []
    hub = world.hub
    head = hub.head(BRANCH)
    assert head is not None
    lines = _log_lines(hub, head)
    counts = Counter(lines)
    found += [f"record {line.decode().strip()} {n} times" for line, n in counts.items() if n > 1]
    history = set(hub.ancestors(head))
    removed_records = _removed_records(world, history)
    found += [
        f"acknowledged record {line.decode().strip()} missing"
        for line in sorted(world.acked_records)
        if line not in counts and line not in removed_records
    ]
    seen: dict[str, int] = {}
    for line in lines:
        record = json.loads(line)
        if record["s"] <= seen.get(record["w"], 0):
            found.append(f"record {line.decode().strip()} after seq {seen[record['w']]}")
        seen[record["w"]] = max(record["s"], seen.get(record["w"], 0))
    found += [f"commit {sha[:12]} removed by a reset is back" for sha in world.removed & history]
    found += world.found
    if world.pacing is not None:
        found += _over_budget(world.paced_writes, world.pacing)
    found += [f"{w.name} died: {w.error!r}" for w in writers if w.error is not None]
    return found


def _over_budget(times: Sequence[float], pacing: Pacing) -> list[str]:
    """The sliding windows (``length`` s, ending at each write) holding more writes than the
    pacing lets through."""
    found = []
    for length, limit in pacing.windows():
        for end, time in enumerate(times):
            count = end + 1 - bisect.bisect_right(times, time - length, hi=end)
            if count > limit:
                found.append(
                    f"{count} paced writes in the {length:.0f} s up to {time - START:.3f} "
                    f"(at most {limit})"
                )
                break
    return found


def _log_lines(hub: MemoryGitHub, commit: str) -> list[bytes]:
    """The log's lines at ``commit``, its segments in name order."""
    folder = hub.client().read_folder(commit, LOG_PATH)
    names = sorted(e.name for e in folder.entries or () if _SEGMENT.match(e.name))
    lines: list[bytes] = []
    for name in names:
        data = hub.file_at(commit, f"{LOG_PATH}/{name}") or b""
        lines += data.splitlines(keepends=True)
    return lines


def _removed_records(world: _World, history: set[str]) -> set[bytes]:
    """Records only the commits a reset removed held: absent from the branch by the operator."""
    if not world.removed:
        return set()
    kept = {line for sha in history for line in _log_lines(world.hub, sha)}
    gone = {line for sha in world.removed for line in _log_lines(world.hub, sha)}
    return gone - kept


def search(
    seeds: Iterable[int],
    *,
    control: bool = False,
    faults: Iterable[str] = DEFAULT_FAULTS,
    report: Callable[[Run], None] | None = None,
) -> list[Run]:
    """Run every seed; each run handed to ``report`` as it ends."""
    kinds = tuple(faults)
    runs = []
    for seed in seeds:
        result = run(seed, control=control, faults=kinds)
        if report is not None:
            report(result)
        runs.append(result)
    return runs


def coverage(runs: Iterable[Run]) -> tuple[Counter[tuple[str, str]], list[tuple[str, str]]]:
    """The transitions ``runs`` took, and the table's edges none took."""
    visited = sum((r.visited for r in runs), start=Counter[tuple[str, str]]())
    return visited, sorted(edges() - set(visited))


def _seeds(text: str) -> range:
    start, _, stop = text.partition(":")
    return range(int(start), int(stop)) if stop else range(int(start), int(start) + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0:100", help="A:B runs seeds A to B-1 (default 0:100)")
    parser.add_argument("--digest", type=int, help="print the sha256 of one seed's trace")
    parser.add_argument("--control", action="store_true", help="a GitHub with a broken CAS")
    parser.add_argument(
        "--faults", help=f"comma-separated, of: {','.join(DEFAULT_FAULTS)},reset,default"
    )
    parser.add_argument("--trace", action="store_true", help="print each run's trace")
    parser.add_argument(
        "--coverage", action="store_true", help="print the protocol's transitions visited"
    )
    args = parser.parse_args(argv)
    logging.getLogger("gitjsonl").addHandler(logging.NullHandler())  # the budget's warnings
    faults = tuple(args.faults.split(",")) if args.faults else DEFAULT_FAULTS
    if args.digest is not None:
        print(run(args.digest, control=args.control, faults=faults).digest)
        return 0
    violated = 0

    def report(result: Run) -> None:
        nonlocal violated
        if args.trace:
            print("\n".join(result.trace))
        if result.violations:
            violated += 1
            replay = f"./dev sim --seeds {result.seed}:{result.seed + 1} --trace"
            if args.control:
                replay += " --control"
            if args.faults:
                replay += f" --faults {args.faults}"
            print(f"seed {result.seed}: {'; '.join(result.violations[:5])}")
            print(f"  replay: {replay}")

    runs = search(_seeds(args.seeds), control=args.control, faults=faults, report=report)
    if args.coverage:
        _, missing = coverage(runs)
        print(f"transitions: {len(edges()) - len(missing)}/{len(edges())} edges visited")
        for a, b in missing:
            print(f"  never: {a} -> {b}")
    print(f"{len(runs)} seeds, {violated} violations")
    return 1 if violated else 0


if __name__ == "__main__":
    sys.exit(main())
