"""A deterministic simulator of writers committing to one log: ``./dev sim``.

After FoundationDB's simulation testing and TigerBeetle's VOPR: several
writers (each a ``Committer`` of its own process, on its own host) commit
batches to one log on one ``MemoryGitHub``, on a virtual clock. Each writer
runs in a thread, but holds the baton only between two of its GitHub calls:
at every call (and every sleep) it hands the baton back, and a scheduler
seeded by the run's seed picks who takes the next step, what that call meets
(a fault or none), and what the world does meanwhile. One thread runs at a
time, so a seed replays the same interleaving, byte for byte.

Faults a seed draws, at any step: lost answers (the write landed, its answer
did not), dropped requests, 5xx, GitHub's transient 422, 429 and secondary
limits, spurious ref refusals, read lag on reads naming the branch, a writer
killed at any step, or as a write of its lands (``crash``), and restarted
from its spool (the last ref update its batch sent, then
``Committer.settle``), foreign commits, an operator's reset (with
``--faults`` naming ``reset``).

The checker, after every run: every acknowledged record is on the final
branch exactly once, no record twice, each writer's records in its order,
commits an operator's reset removed never come back, and no commit call waits
(sleeps) past its retry policy's bound.

    ./dev sim --seeds 0:500           # N seeds, V violations (exit 1 on any)
    ./dev sim --digest 7              # the sha256 of seed 7's whole trace
    ./dev sim --control --seeds 0:200 # a GitHub whose compare-and-swap is broken
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from gitjsonl._batch import Batch
from gitjsonl._commit import Committer
from gitjsonl._exceptions import GitHubError, RateLimited
from gitjsonl._retry import RetryPolicy

from ._memory import WRITES, MemoryGitHub

if TYPE_CHECKING:
    from gitjsonl._github import GitHubRepo

__all__ = ["DEFAULT_FAULTS", "Run", "main", "run", "search"]

#: Faults a run draws from unless told otherwise (``reset``: an operator's reset, opt-in).
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
    "foreign",
    "lag",
)

BRANCH = "main"
LOG_PATH = "logs/chat"
START = 1_700_000_000.0  # the virtual clock's epoch
#: Real seconds a writer may hold the baton between two steps before the run is a hang.
STEP_BOUND = 30.0
#: A writer gives a batch up after this much virtual time (the Log would keep it pending).
BATCH_BOUND = 6 * 3600.0
_SEGMENT = re.compile(r"\A[0-9]{8,12}\.jsonl\Z")


class _Killed(BaseException):
    """The writer's process is killed at this step (a BaseException: nothing catches it)."""


@dataclass(slots=True)
class _Writer:
    name: str
    batches: list[Batch]
    go: threading.Event = field(default_factory=threading.Event)
    back: threading.Event = field(default_factory=threading.Event)
    op: str = "start"
    decision: str | None = None
    wake: float = 0.0
    done: bool = False
    error: BaseException | None = None
    slept: float = 0.0  # virtual seconds slept inside the current commit call
    crashed: bool = False  # killed as its last write landed: dies at its next step


@dataclass(slots=True)
class Run:
    """One seed's run: its trace, what the checker found, and what it explored."""

    seed: int
    trace: list[str]
    violations: list[str]
    steps: int
    faults: Counter[str]

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.trace).encode()).hexdigest()


class _World:
    """The scheduler, the virtual clock, the GitHub and the trace of one run."""

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
        self.rate = self.rng.choice((0.02, 0.05, 0.1))  # chance a step meets a fault
        self.trace: list[str] = [f"seed {seed} lag {lag} rate {self.rate} control {control}"]
        self.counted: Counter[str] = Counter()
        self.steps = 0
        self.acked: dict[str, str] = {}  # batch id -> commit sha
        self.acked_records: set[bytes] = set()
        self.removed: set[str] = set()  # commits an operator's reset dropped
        self.overslept: list[str] = []
        self.head = self.hub.head(BRANCH)

    def clock(self) -> float:
        return self.now

    def log(self, line: str) -> None:
        self.trace.append(f"{self.now - START:10.3f} {line}")

    # -- called from a writer's thread, while it holds the baton --------------------------

    def step(self, writer: _Writer, op: str) -> str | None:
        self._die_if_crashed(writer)
        self._hand_back(writer, op)
        if writer.decision == "kill":
            raise _Killed
        if writer.decision == "crash":
            writer.crashed = True  # the write lands, and the process dies before its answer
            return "lost"
        return writer.decision

    def _die_if_crashed(self, writer: _Writer) -> None:
        if writer.crashed:
            writer.crashed = False
            raise _Killed

    def sleep(self, writer: _Writer, seconds: float) -> None:
        self._die_if_crashed(writer)
        writer.slept += max(0.0, seconds)
        writer.wake = self.now + max(0.0, seconds)
        self._hand_back(writer, f"sleep {seconds:.3f}")

    def _hand_back(self, writer: _Writer, op: str) -> None:
        writer.op = op
        writer.go.clear()
        writer.back.set()
        writer.go.wait()

    # -- the scheduler (the run's own thread) ------------------------------------------------

    def schedule(self, writers: list[_Writer]) -> None:
        for writer in writers:
            if not writer.back.wait(STEP_BOUND):
                raise RuntimeError(f"seed {self.seed}: {writer.name} never reached its first step")
        while True:
            alive = [w for w in writers if not w.done]
            if not alive:
                return
            ready = [w for w in alive if w.wake <= self.now]
            if not ready:
                self.now = min(w.wake for w in alive)
                continue
            writer = self.rng.choice(ready)
            self.now += self.rng.uniform(0.01, 0.3)  # the call's latency
            self._world_moves()
            writer.decision = self._decide(writer)
            self.steps += 1
            self.log(f"{writer.name} {writer.op} -> {writer.decision or 'ok'}")
            writer.back.clear()
            writer.go.set()
            if not writer.back.wait(STEP_BOUND):
                raise RuntimeError(f"seed {self.seed}: {writer.name} hung after {writer.op}")
            self._moved()

    def _moved(self) -> None:
        head = self.hub.head(BRANCH)
        if head != self.head:
            self.head = head
            self.log(f"{BRANCH} is now {str(head)[:12]}")

    def _decide(self, writer: _Writer) -> str | None:
        if writer.op.startswith(("sleep", "start")) or self.rng.random() >= self.rate:
            return None
        write = writer.op in WRITES
        options: list[str] = [
            f for f in ("dropped", "5xx", "429", "secondary", "kill") if f in self.faults
        ]
        if write:
            options += [f for f in ("lost", "422", "crash") if f in self.faults]
        if writer.op == "update_ref" and "refused" in self.faults:
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


def _committer(world: _World, writer: _Writer, spool: dict[str, tuple[str, str]]) -> Committer:
    """A fresh process's committer for ``writer`` (what it knew died with the last one)."""

    def remember(batch: Batch, commit: str, base: str) -> None:
        spool[batch.id] = (commit, base)  # the spool's "last ref update sent"
        world.log(f"{writer.name} sends {batch.id[:8]} as {commit[:12]} on {base[:12]}")

    client = world.hub.client(faults=lambda op: world.step(writer, op))
    return Committer(
        cast("GitHubRepo", client),  # Committer is typed for the HTTP seam: see _seam
        path=LOG_PATH,
        branch=BRANCH,
        segment_bytes=world.rng.choice((200, 1000, 64_000)),
        policy=RetryPolicy(),
        budget=None,
        sleep=lambda seconds: world.sleep(writer, seconds),
        writer_id=writer.name,
        rng=random.Random(world.rng.random()),
        before_update=remember,
        on_retry=lambda exc: world.log(f"{writer.name} retries after {type(exc).__name__}"),
    )


def _write(world: _World, writer: _Writer, bound: float) -> None:
    """A writer's life: commit each batch, surviving errors and kills, as a Log would."""
    spool: dict[str, tuple[str, str]] = {}
    committer = _committer(world, writer, spool)
    restarted = False  # a fresh process: its spool's last ref update is settled first
    for planned in writer.batches:
        batch, started = planned, world.now
        while world.now - started < BATCH_BOUND:
            writer.slept = 0.0
            try:
                if restarted and world.sabotage == "spool":
                    # The control of the kill path: a restart that forgets its spool
                    # sends its batch again under a new id.
                    batch = Batch(
                        f"{world.rng.getrandbits(128):032x}", planned.lines, planned.first_seq
                    )
                sent = spool.get(batch.id) if restarted else None
                sha = None
                if sent is not None:
                    sha = committer.settle(batch, commit=sent[0], base=sent[1])
                    world.log(f"{writer.name} settled {batch.id[:8]}: {str(sha)[:12]}")
                restarted = False
                if sha is None:
                    sha = committer.commit(batch)
            except _Killed:
                world.log(f"{writer.name} killed; restarts from its spool")
                committer = _committer(world, writer, spool)
                restarted = True
                continue
            except GitHubError as exc:
                _check_wait(world, writer, bound)
                wait = exc.retry_after if isinstance(exc, RateLimited) else None
                world.log(f"{writer.name} batch {batch.id[:8]} failed: {type(exc).__name__}")
                world.sleep(writer, wait or world.rng.uniform(5.0, 60.0))
                continue
            _check_wait(world, writer, bound)
            spool.pop(batch.id, None)
            world.acked[batch.id] = sha
            world.acked_records.update(batch.lines)
            world.log(f"{writer.name} acknowledged {batch.id[:8]} in {sha[:12]}")
            break
        else:
            world.log(f"{writer.name} gave batch {batch.id[:8]} up")


def _check_wait(world: _World, writer: _Writer, bound: float) -> None:
    if writer.slept > bound:
        world.overslept.append(f"{writer.name} slept {writer.slept:.1f}s in one commit call")


def _thread(world: _World, writer: _Writer, bound: float) -> None:
    writer.back.set()
    writer.go.wait()
    try:
        _write(world, writer, bound)
    except BaseException as exc:  # reported by the checker: nothing may kill a writer
        writer.error = exc
    finally:
        writer.done = True
        writer.back.set()


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


def run(
    seed: int,
    *,
    control: bool = False,
    faults: Iterable[str] = DEFAULT_FAULTS,
    sabotage: str | None = None,
) -> Run:
    """Run seed ``seed`` to its end, and check it.

    ``control``: the GitHub's compare-and-swap is broken. ``sabotage="spool"``: a
    restarted writer forgets its spool (its batch goes again under a new id). Both
    exist to prove the checker live: either must make it report violations.
    """
    world = _World(seed, control=control, faults=tuple(faults), sabotage=sabotage)
    bound = RetryPolicy().max_total_wait + RetryPolicy().max_wait
    writers = [
        _Writer(f"w{i}", _batches(world.rng, f"w{i}", world.rng.randint(2, 5)))
        for i in range(world.rng.randint(2, 4))
    ]
    threads = [
        threading.Thread(target=_thread, args=(world, w, bound), daemon=True) for w in writers
    ]
    for thread in threads:
        thread.start()
    try:
        world.schedule(writers)
    finally:
        for writer in writers:  # a hung run: let every thread end
            writer.done = True
            writer.decision = "kill"
            writer.go.set()
    for thread in threads:
        thread.join(STEP_BOUND)
    violations = check(world, writers)
    head = world.hub.head(BRANCH)
    world.trace.append(f"final {head}")
    return Run(seed, world.trace, violations, world.steps, world.counted)


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
    found += world.overslept
    found += [f"{w.name} died: {w.error!r}" for w in writers if w.error is not None]
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


def _seeds(text: str) -> range:
    start, _, stop = text.partition(":")
    return range(int(start), int(stop)) if stop else range(int(start), int(start) + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0:100", help="A:B runs seeds A to B-1 (default 0:100)")
    parser.add_argument("--digest", type=int, help="print the sha256 of one seed's trace")
    parser.add_argument("--control", action="store_true", help="a GitHub with a broken CAS")
    parser.add_argument("--faults", help=f"comma-separated, of: {','.join(DEFAULT_FAULTS)},reset")
    parser.add_argument("--trace", action="store_true", help="print each run's trace")
    args = parser.parse_args(argv)
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
    print(f"{len(runs)} seeds, {violated} violations")
    return 1 if violated else 0


if __name__ == "__main__":
    sys.exit(main())
