"""The write protocol, without I/O: one batch committed to a log exactly once.

h11's way: events in, actions out. ``CommitProtocol`` decides everything a
writer does to commit a batch (what to read, what to build on, what to send,
when to wait, when a lost answer landed, when to give up) and does none of it:
each of its steps is a generator that yields an *action* (``Request`` a GitHub
call, ``Sleep``, ``TakeTurn``, ``Reserve`` writes, ...) and is sent back the
*event* that answers it (the call's value, the time, the turn as it stands) or
has the failure thrown in (a refusal, a lost answer, a limit, a spool write
that failed). No thread, clock, file, socket, thread-local or contextvar is in
here: ``_commit.Committer`` is the one driver that carries actions out in the
flusher thread, and ``gitjsonl.testing.sim`` drives the same steps on a
virtual clock against ``MemoryGitHub``. tenacity decides the retries
(``RetryPolicy.retrying``, stepped through ``Retrying.iter``, whose sleeps come
out here as ``Sleep`` actions).

States (``CommitProtocol.state``) and their transitions, as ``TRANSITIONS``
holds them (a transition not in the table is a ``ProtocolError``)::

    IDLE ──► CHECKING ──► RESTORING ──► TURN     (first batch: a private repository?
      │         │                          ▲        what did the branch's last hour cost?)
      │         └──────────────────────────┤
      ├──────────────────────────────────► TURN ◄──── READING (the head, out of the turn)
      │                                     │  └──────► READING
      │                                     ▼
      │        TURN ──► RESERVING ──► SENDING ──► UPDATING ──► COMMITTED ──► IDLE
      │                    │          (blob,      (pending link,
      │                    ▼           tree,       ref update)
      │                 WAITING        commit)
      │                 (the budget, out of the turn) ──► TURN
      ▼
    SETTLING (a lost or refused update, first; a restart's settle)
      ──► COMMITTED (it landed) | TURN (built again) | IDLE (a restart's: not landed)

    CHECKING, SETTLING, TURN, READING, SENDING, UPDATING ──► BACKOFF (a retryable
        failure: tenacity's wait) ──► CHECKING | SETTLING | TURN (the next attempt)
    every state but IDLE, BACKOFF, COMMITTED ──► GAVE_UP (not retryable, or tenacity
        stopped) ──► IDLE
    TURN ──► IDLE: a prepared change (``commit_change``) whose paths moved: planned again

- ``TURN``: the branch's turn is held (``TakeTurn``); the head is caught up
  along the links other writers here left (``_chain.catch_up``), trusting only
  what the branch proves; the batch is planned on it (``_segments.plan_batch``).
- ``READING``: no head is known (or what was known was contradicted): the
  branch is read out of the turn, bootstrapped if empty, made if missing.
- ``RESERVING``/``WAITING``: the batch's writes are reserved from the token's
  budget inside the turn; a batch that must wait leaves the turn to sleep.
- ``SENDING``/``UPDATING``: blob (bytes that are not UTF-8), tree, commit;
  the ref update's link is left pending in the turn before it goes
  (``Intend``), so an update that lands unanswered is built on, never raced.
- ``SETTLING``: a ref update whose answer was lost (it may have landed) or
  that was refused (our commit may be on the branch all the same, under a
  commit another host built on our pending link) is settled before the batch
  is built again: the same update sent again, else the batch id looked for in
  history below a head proven newer than the one we built on.

Only what the branch proves is trusted: a head that was only read follows the
turn's links once a later read shows the branch moved along them; a branch
that reads as that same head for longer than reads lag (``LAGGING_READS``,
``READ_LAG``) was reset by an operator, and the links above it are dropped,
not brought back. A link whose commit GitHub refuses to build on leaves the
turn at once (``Drop``) and is never followed again.
"""

from __future__ import annotations

import collections
import logging
import random
import sys
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import tenacity

from ._actions import (
    WRITE_CALLS,
    Acquire,
    Action,
    Drop,
    Ignored,
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
    Say,
    Settle,
    Sleep,
    Steps,
    TakeTurn,
    WaitForBudget,
)
from ._batch import (
    LANDED,
    UNPROVEN,
    Batch,
    commit_message,
    settle_lost_update,
    trailers,
)
from ._chain import CatchUp, Head, Link, catch_up, head_from_json, head_to_json, with_pending
from ._config import Identity
from ._exceptions import (
    ContentsConflict,
    EmptyRepository,
    GitHubError,
    NotFastForward,
    NotFound,
    ProtectedBranch,
    PublicRepository,
    RateLimited,
    StaleRead,
    TransientError,
    ValidationFailed,
)
from ._github import COMMITS_PAGE, CreatedTree, DirEntry, git_blob_sha
from ._gittree import PathTrees, is_folder, rebuild_path, tree_sha
from ._pacing import LANDED_WRITES, Pacing
from ._retry import RetryPolicy
from ._segments import (
    BatchPlan,
    list_log,
    plan_batch,
    segment_name,
    segment_number,
    small_run,
)

__all__ = [
    "TRANSITIONS",
    "Change",
    "CommitProtocol",
    "ProtocolError",
    "Replan",
    "State",
]

T = TypeVar("T")

LOG_README = """\
# A gitjsonl log

This folder is an append-only JSON-lines log written by gitjsonl.
Segments are named `00000001.jsonl`, `00000002.jsonl`, ... in append order;
each line is one JSON object. To read every record in order:

    cat $(ls | grep -E '^[0-9]{8,12}\\.jsonl$' | sort) | jq .

A batch adds new files; now and then a few small files at the end are merged
into one (named after the first of them), so at every commit the files, sorted
by name, hold every record exactly once, in order.
"""


# -- states ------------------------------------------------------------------------------------


class State:
    """The protocol's named states (see the module's docstring for the drawing)."""

    IDLE = "idle"
    CHECKING = "checking"
    RESTORING = "restoring"
    SETTLING = "settling"
    TURN = "turn"
    READING = "reading"
    RESERVING = "reserving"
    WAITING = "waiting"
    SENDING = "sending"
    UPDATING = "updating"
    BACKOFF = "backoff"
    COMMITTED = "committed"
    GAVE_UP = "gave-up"


_S = State
_ACTIVE = (
    _S.CHECKING,
    _S.RESTORING,
    _S.SETTLING,
    _S.TURN,
    _S.READING,
    _S.RESERVING,
    _S.WAITING,
    _S.SENDING,
    _S.UPDATING,
)
_FAILED = frozenset({_S.BACKOFF, _S.GAVE_UP})

#: Every transition the protocol makes: state -> the states it may go to next. What the
#: simulator never reaches is not here (``tests/test_sim.py`` checks both ways): a lost
#: update exists only after a push, so nothing settles before its first turn; restoring
#: swallows GitHub's and the store's failures; reserving and waiting raise nothing that is
#: retried (a broken store, a closed ``Log``: given up).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    # A batch starts where it stands; a restart's settle, and a prepared change, too.
    _S.IDLE: frozenset({_S.CHECKING, _S.SETTLING, _S.TURN}),
    _S.CHECKING: frozenset({_S.RESTORING, _S.TURN}) | _FAILED,
    _S.RESTORING: frozenset({_S.TURN, _S.GAVE_UP}),
    # A settled update: landed (done), not landed (built again, or a restart's None).
    _S.SETTLING: frozenset({_S.COMMITTED, _S.TURN, _S.IDLE}) | _FAILED,
    # A prepared change (``commit_change``) whose paths moved meanwhile: planned again.
    _S.TURN: frozenset({_S.READING, _S.RESERVING, _S.IDLE}) | _FAILED,
    _S.READING: frozenset({_S.TURN}) | _FAILED,
    _S.RESERVING: frozenset({_S.SENDING, _S.WAITING, _S.GAVE_UP}),
    _S.WAITING: frozenset({_S.TURN, _S.GAVE_UP}),
    _S.SENDING: frozenset({_S.UPDATING}) | _FAILED,
    _S.UPDATING: frozenset({_S.COMMITTED}) | _FAILED,
    _S.BACKOFF: frozenset({_S.CHECKING, _S.SETTLING, _S.TURN}),
    _S.COMMITTED: frozenset({_S.IDLE}),
    _S.GAVE_UP: frozenset({_S.IDLE}),
}


class ProtocolError(RuntimeError):
    """The protocol was asked to make a transition its table does not have (a bug)."""


@dataclass(slots=True)
class _Unresolved:
    """A ref update whose answer was lost: it may or may not have landed."""

    batch: Batch
    base: str  # the head we built on
    commit: str  # the commit we tried to move the branch to
    head: Head | None  # our head, had it landed (None: read it when needed)
    # The update was refused: it did not move the branch, but the commit may be on it all
    # the same (another host built on our pending link while our lease ran out).
    refused: bool = False
    resend: bool = True  # sending the same update again may still land it


@dataclass(frozen=True, slots=True)
class Settings:
    """What a protocol commits to, and how: plain values, fixed for its life."""

    path: str
    branch: str | None
    segment_bytes: int
    policy: RetryPolicy
    writer_id: str
    pacing: Pacing | None = None  # None: no budget is kept
    skip_ci: bool = True
    author: Identity | None = None
    committer: Identity | None = None
    allow_public: bool = False


@dataclass(frozen=True, slots=True)
class Replan:
    """A prepared change's paths moved since it was planned: plan again at ``commit``."""

    commit: str


@dataclass(frozen=True, slots=True)
class Change:
    """One commit prepared elsewhere (``migrate``): its files' blobs already uploaded.

    ``files`` maps each path to the blob sha the tree sets (None: deleted);
    ``base(chain)`` says where, among the turn's links, the commit goes: a
    ``Link``-free commit sha and root tree, or a ``Replan`` (``_migrate.turn``,
    pure); ``link(commit, base, tree)`` the link it leaves (None: none).
    """

    batch: str
    planned_at: str  # the commit the change was planned at
    files: Mapping[str, str | None]
    title: str
    lines: int
    writes_before: int  # writes the change cost before its commit (its blobs)
    base: Callable[[tuple[Link, ...]], tuple[str, str | None] | Replan]
    link: Callable[[str, str, str], Link | None]


class CommitProtocol:
    """Commits batches to one log on one branch: the decisions, without I/O.

    One instance per writer, driven by one thread at a time. ``commit`` and
    ``settle`` are steps (generators of actions); the state between batches
    (the head, what was refuted, a lost answer to settle) lives here.
    """

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._rng = rng or random.Random()
        self._path = settings.path.strip("/")
        self._parts = tuple(part for part in self._path.split("/") if part)
        self.branch: str | None = settings.branch
        self.state = State.IDLE
        # The transitions made (bounded by the table) and the newest states entered: what
        # the simulator and the tests read to prove the table is walked, and walked right.
        self.visited: collections.Counter[tuple[str, str]] = collections.Counter()
        self.trail: collections.deque[str] = collections.deque(maxlen=TRAIL)
        self.writes = 0  # write requests sent (or tried), in all
        self.repo = "the repository"  # its name, as the driver last said it (messages)
        self._checked = False  # the repository was checked before our first write
        self._restored = settings.pacing is None  # the budget knows what the branch spent
        self.head: Head | None = None
        self._stale: Head | None = None  # the head a lost race proved old: its segment may serve
        # Trust only what the branch proves: our head's commit when it was only read (the
        # turn's links above it are followed once a read shows them), the commit the turn's
        # links moved our head to (proven by our update's outcome), the links the branch
        # contradicted (never followed again), and reads that showed the branch below proof.
        self._read_at: str | None = None
        self._guess: str | None = None
        self._refuted: collections.deque[str] = collections.deque(maxlen=REFUTED_KEPT)
        self._lag: tuple[str, int, float] = ("", 0, 0.0)  # commit read, times, since waited
        self._waited = 0.0  # seconds slept between attempts, in all
        self._stale_reads = 0  # reads since a refusal that still showed the head we built on
        self._unresolved: _Unresolved | None = None
        self._uploaded: set[str] = set()  # blobs this batch has uploaded already
        self._inline = True  # send files as text in the tree (False after a tree mismatch)
        self._reload = False  # read the head from the branch: what we knew was contradicted
        self._batch_started = 0  # ``writes`` when this batch began
        self._taken: Any = None  # the turn while it is held (``_turn.Taken``)
        self.conflicts = 0
        self.retries = 0
        self.landed_after_error = 0

    def sent(self, writes: int, request: Request, repo: str) -> None:
        """The driver's word on a request carried out: the writes it really sent (more than
        one when the seam sent it again) and the repository's name now (it may have moved)."""
        if request.call in WRITE_CALLS:
            self.writes += max(0, writes - 1)
        self.repo = repo

    @property
    def unresolved_batch_id(self) -> str | None:
        """A batch that must be committed again under the same id (it may have landed)."""
        return self._unresolved.batch.id if self._unresolved else None

    # -- transitions -------------------------------------------------------------------------

    def _enter(self, state: str) -> None:
        if state == self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise ProtocolError(f"no transition from {self.state} to {state}")
        self.visited[self.state, state] += 1
        self.trail.append(state)
        self.state = state

    # -- the two entry steps -----------------------------------------------------------------

    def commit(self, batch: Batch) -> Steps[str]:
        """Commit ``batch`` exactly once; the sha of the commit that holds it."""
        self._uploaded = set()
        self._batch_started = self.writes
        result: str = yield from self._retrying(lambda: self._attempt(batch), counted=True)
        self._enter(State.COMMITTED)
        self._enter(State.IDLE)
        return result

    def settle(self, batch: Batch, *, commit: str, base: str) -> Steps[str | None]:
        """Did ``batch``, last sent as a ref update to ``commit`` on ``base``, land?

        For a restart: the spool knows the commit a batch's last ref update
        named, but not the answer. Settled exactly as a lost answer in this
        process (``_resolve``), with the usual retries; the sha of the commit
        holding the batch, or None when it did not land (and now never will).
        """
        lost = _Unresolved(batch, base, commit, None)

        def attempt() -> Steps[str | None]:
            self._enter(State.SETTLING)
            return (yield from self._resolve(lost))

        try:
            result: str | None = yield from self._retrying(attempt, counted=False)
        finally:
            self._unresolved = None
        if result is not None:
            self._enter(State.COMMITTED)
        self._enter(State.IDLE)
        return result

    def commit_change(self, change: Change) -> Steps[str | Replan]:
        """The commit of a prepared ``change``, in the branch's turn, on the newest commit the
        turn names (``change.base``): its sha, or ``Replan`` (nothing was written).

        The same sequence as a batch's (turn, reserve, tree, commit, pending link, ref
        update, link), once: a failure propagates to the caller, whose retry plans the
        change again from a read (a lost answer that landed is found by its trailer
        there). The turn is left to wait for the budget, never held across a sleep.
        """
        branch = yield from self.resolve_branch()
        started = self.writes
        planned = yield Request("get_commit", (change.planned_at,))  # by sha: exact
        force = False
        try:
            while True:
                self._enter(State.TURN)
                self._taken = yield TakeTurn(branch)
                try:
                    where = change.base(tuple(self._taken.chain))
                    if isinstance(where, Replan):
                        self._enter(State.IDLE)
                        return where
                    self._enter(State.RESERVING)
                    token, wait = (None, 0.0)
                    if self.settings.pacing is not None:
                        token, wait = yield Reserve(COMMIT_WRITES, force, change.batch)
                    if wait <= 0:
                        self._enter(State.SENDING)
                        parent, tree = where[0], where[1] or planned.tree_sha
                        sha = yield from self._paid(
                            token, self._send_change(change, parent, tree, started)
                        )
                        self._enter(State.COMMITTED)
                        self._enter(State.IDLE)
                        return sha
                finally:
                    self._taken = None
                    yield LeaveTurn()
                self._enter(State.WAITING)
                force = yield WaitForBudget(wait)
        except BaseException:
            if self.state != State.IDLE:
                self._enter(State.GAVE_UP)
                self._enter(State.IDLE)
            raise

    def _send_change(self, change: Change, parent: str, tree_base: str, started: int) -> Steps[str]:
        """Tree, commit, ref update of a prepared change; its link pending while the update
        is out, kept once it landed. A refused update puts back the pending links it found
        (they may still have landed); a lost answer's stays (ours may have)."""
        tree: str = yield from self._send(Request("create_tree", (tree_base, dict(change.files))))
        writes = change.writes_before + self.writes - started + 2
        message = f"{change.title}\n\n" + trailers(change.batch, change.lines, writes=writes)
        commit: str = yield from self._send(Request("create_commit", (message, tree, [parent])))
        link = change.link(commit, parent, tree)
        if link is not None:
            yield Intend(link)
        self._enter(State.UPDATING)
        try:
            yield from self._send(Request("update_ref", (self.branch, commit)))
        except BaseException as exc:
            # Refused, or failed before it went: it never lands, and the turn puts back the
            # pending links it found (a lost answer's stays pending: it may have landed).
            ambiguous = isinstance(exc, TransientError) and exc.ambiguous
            if link is not None and not ambiguous:
                yield Intend(None)
            raise
        if link is not None:
            yield Keep(link, None, None)
        return commit

    def resolve_branch(self) -> Steps[str]:
        """The branch this log writes (the repository's default when none was named)."""
        if self.branch is None:
            self.branch = yield Request("default_branch")
        return self.branch

    # -- retries: tenacity decides, the driver sleeps ----------------------------------------

    def _retrying(self, attempt: Any, *, counted: bool) -> Steps[Any]:
        """``attempt()`` (a step) under the retry policy: tenacity's loop, stepped by hand
        (``Retrying.iter``), its sleeps yielded as ``Sleep``."""
        retrying = self.settings.policy.retrying(sleep=_no_sleep, rng=self._rng)
        retrying.begin()
        state = tenacity.RetryCallState(retry_object=retrying, fn=None, args=(), kwargs={})
        while True:
            try:
                do = retrying.iter(retry_state=state)
            except BaseException:
                self._enter(State.GAVE_UP)
                self._enter(State.IDLE)
                raise
            if isinstance(do, tenacity.DoAttempt):
                try:
                    result = yield from attempt()
                except BaseException:
                    state.set_exception(sys.exc_info())  # type: ignore[arg-type]
                else:
                    state.set_result(result)
            elif isinstance(do, tenacity.DoSleep):
                exc = state.outcome.exception() if state.outcome else None
                state.prepare_for_next_attempt()
                self._enter(State.BACKOFF)
                if counted:
                    # A restart's settle does not count its waits: what it cannot prove
                    # stays unproven (``_lagging``), never "not landed".
                    self.retries += 1
                    self._waited += float(do)
                yield Sleep(float(do), exc if counted else None)
            else:
                return do

    # -- one attempt -------------------------------------------------------------------------

    def _attempt(self, batch: Batch) -> Steps[str]:
        # Every path enters a state before anything can fail (a failure leaves from it).
        if not self._checked or self.branch is None:
            self._enter(State.CHECKING)
            if not self._checked:
                yield from self._check_repository()
        branch = yield from self.resolve_branch()
        if not self._restored:
            self._enter(State.RESTORING)
            yield from self._restore_budget(branch)
        if self._unresolved is not None:
            self._enter(State.SETTLING)
            if self._unresolved.batch.id != batch.id:
                raise RuntimeError("a batch that may have landed must be resolved first")
            landed = yield from self._resolve(self._unresolved)  # raises while it cannot tell
            if landed is not None:
                return landed
        force = False
        while True:
            self._enter(State.TURN)
            self._taken = yield TakeTurn(branch)
            try:
                try:
                    head = yield from self._catch_up()
                    if head is not None:
                        plan = self._plan(head, batch)
                        self._enter(State.RESERVING)
                        cost = self._cost(plan)
                        reservation, wait = (None, 0.0)
                        if self.settings.pacing is not None:
                            reservation, wait = yield Reserve(cost, force, batch.id)
                        if wait <= 0:
                            self._enter(State.SENDING)
                            ours = yield from self._paid(reservation, self._push(batch, head, plan))
                            return ours.commit
                except (NotFastForward, NotFound, ValidationFailed) as exc:
                    yield from self._contradicted(exc)
                    raise
            finally:
                self._taken = None
                yield LeaveTurn()
            # Out of the turn: others may go meanwhile.
            if head is None:
                self._enter(State.READING)
                self.head = yield from self._load_head(self._stale)  # may write, and wait
                self._read_at, self._guess = self.head.commit, None
                self._stale, self._reload = None, False
            else:
                self._enter(State.WAITING)
                force = yield WaitForBudget(wait)

    def _contradicted(self, exc: GitHubError) -> Steps[None]:
        """GitHub refused what was built on the commit the turn's links moved our head to (or
        could not find it): that link is dropped, never followed again, and the batch is
        tried again at once, on the branch as read."""
        guess, self._guess = self._guess, None
        if guess is None:
            return
        yield from self._refute(guess)
        self.head = None
        if not isinstance(exc, NotFastForward):
            raise StaleRead(
                f"the turn's link to {guess[:12]} is not on the branch ({exc.message.strip()}); "
                "reading the branch"
            ) from exc

    def _refute(self, commit: str) -> Steps[None]:
        yield Say(
            logging.INFO,
            "gitjsonl: the branch contradicts the turn's link to %s: dropped",
            (commit[:12],),
        )
        yield Drop(commit)
        self._refuted.append(commit)

    def _catch_up(self) -> Steps[Head | None]:
        """Our head, moved on to the newest commit other writers here left on the branch.

        None when we know no head yet, and no writer of this process has left one (a
        link of this process is proven by its writer's update; one from a file or the
        coordinator is followed only from a head of ours, or once a read proves it).
        """
        head = self.head
        if head is None and self._stale is None and not self._reload:
            head = yield from self._local_head()  # never after a lost race: that head lost
        if head is None:
            return None
        self.head = head
        found = catch_up(self._links(head.commit), head.commit, self._path)
        if found is None:
            return head
        if self._read_at == head.commit:
            # Our head is only a read: the links above it are followed once a read shows them.
            found = yield from self._proven(head, found)
            if found is None:
                return self.head
        self._guess = found.commit
        moved = self._moved(head, found)
        if moved is None:
            moved = yield from self._load_head_at(found.commit, head)
        elif found.segment is not None:  # its folder as another writer left it
            moved = yield from self._with_texts(moved)
        self.head = moved
        return moved

    def _links(self, head: str) -> tuple[Link, ...]:
        """The turn's chain as a writer at ``head`` may follow it: with its pending links,
        cut before any link to or on a commit the branch refuted. Pending links sent on a
        commit the chain does not hold are for a writer at that very commit only (another
        writer's read may have lagged: from the chain's tip they would be a guess)."""
        taken = self._taken
        pending = taken.pending
        chain_tip = taken.chain[-1].commit if taken.chain else None
        if pending and chain_tip not in (None, pending[0].base) and pending[0].base != head:
            pending = ()
        links = with_pending(taken.chain, pending)
        refuted = set(self._refuted)
        for index, link in enumerate(links):
            if link.commit in refuted or link.base in refuted:
                return links[:index]
        return links

    def _proven(self, head: Head, found: CatchUp) -> Steps[CatchUp | None]:
        """``found`` once the branch proves it: a read shows the branch moved past our head
        along the links (any of them: reads lag, and the links go on from there).

        A read still at our head lags (``StaleRead``: read again after a wait),
        until the branch has read as that commit ``LAGGING_READS`` times: then the
        links above it are not on the branch (an operator reset it), and are
        dropped rather than brought back. None: build on our head as it is now
        (``self.head``, the commit the branch reads as).
        """
        tip = yield from self._read_head()
        if tip != head.commit and all(link.commit != tip for link in found.newer):
            # A commit nobody here made: built on as read, unless links go on above it.
            head = self.head = yield from self._load_head_at(tip, head)
            self._read_at = tip
            again = catch_up(self._links(tip), tip, self._path)
            if again is None:
                return None
            found = again
        if tip != head.commit:
            self._lag = ("", 0, 0.0)
            return found
        if self._lagging(tip):
            raise StaleRead(
                f"the branch reads as {tip[:12]}, below {found.commit[:12]} that this host "
                "committed (GitHub's reads lag behind writes)"
            )
        yield from self._refute(found.newer[0].commit)
        return None

    def _lagging(self, commit: str) -> bool:
        """Does a read showing ``commit`` (again) below what is proven lag, or is it the
        branch (an operator reset it)? It lags until it has shown that commit more than
        ``LAGGING_READS`` times over more than ``READ_LAG`` seconds of waiting."""
        same = self._lag[0] == commit
        reads, since = (self._lag[1] + 1, self._lag[2]) if same else (1, self._waited)
        if reads <= LAGGING_READS or self._waited - since < READ_LAG:
            self._lag = (commit, reads, since)
            return True
        self._lag = ("", 0, 0.0)
        return False

    def _moved(self, head: Head, found: CatchUp) -> Head | None:
        """``head`` moved to ``found`` without a read, or None when a read is needed.

        A read is needed when a commit nobody here made lies between (not
        ``exact``), when the newest commit to this log was made by another
        process (its folder is not known here), or when another log's path lies
        inside this one's folder. A commit to another log changes the trees the
        two paths share: they are taken from its writer when it is of this
        process, else forgotten (the next tree answer is then checked by
        following it down, see ``_check_tree``).
        """
        if not found.exact:
            return None
        newer = found.newer
        base = head
        if found.segment is not None:
            state = self._known(found.segment)
            if state is None:
                return None
            base = state
            newer = newer[newer.index(found.segment) + 1 :]
        levels = list(base.levels)
        for link in newer:
            if link.path.startswith(f"{self._path}/"):
                return None
            theirs = self._known(link)
            trees = None if theirs is None else (*theirs.levels, theirs.folder)
            for index in range(min(_shared(link.path, self._parts) + 1, len(levels))):
                levels[index] = trees[index] if trees is not None else None
        return Head(found.commit, found.tree, base.folder, tuple(levels), base.texts)

    def _local_head(self) -> Steps[Head | None]:
        """The last commit a writer of this process made on the branch, as our head.

        A link from this process is of this repository for sure (one from a file
        might not be: it is only trusted once our own head is found in the
        chain), and reading it by sha is exact where reading the branch may lag.
        """
        link = self._taken.local_tip
        if link is None:
            return None
        state = self._known(link) if link.path == self._path else None
        if state is not None:
            return (yield from self._with_texts(state))
        return (yield from self._load_head_at(link.commit, None))

    def _known(self, link: Link) -> Head | None:
        """The head ``link``'s writer left: of this process, or proven from the turn record
        (another process or host); None when neither is known. A head from the record has
        no texts (``_with_texts`` reads them when the batch needs them)."""
        state = self._taken.content(link)
        if state is not None and not isinstance(state, Head):
            parts = tuple(part for part in link.path.split("/") if part)
            state = head_from_json(state, parts, link.segment_sha)
        return state if state is not None and state.commit == link.commit else None

    def _with_texts(self, head: Head) -> Steps[Head]:
        """``head`` with the bytes of its small files: those this writer knows, the rest read
        by sha (a turn record carries no record's text)."""
        known = {
            **(self._stale.texts if self._stale else {}),
            **(self.head.texts if self.head else {}),
            **head.texts,
        }
        texts = yield from self._texts(head.folder, known)
        return Head(head.commit, head.tree, head.folder, head.levels, texts)

    def _plan(self, head: Head, batch: Batch) -> BatchPlan:
        """What the batch writes on ``head`` (``plan_batch``, over what the head knows)."""
        listing = list_log(head.folder)
        contents = {
            segment.number: head.texts[entry.sha]
            for segment, entry in zip(listing.files(), listing.segments, strict=True)
            if entry.sha in head.texts
        }
        return plan_batch(
            listing.files(),
            batch.lines,
            segment_bytes=self.settings.segment_bytes,
            next_number=listing.next_number,
            contents=contents,
        )

    def _cost(self, plan: BatchPlan) -> int:
        """The writes ``plan`` costs: tree, commit, ref update, and a blob per binary file."""
        blobs = [w for w in plan.writes if not self._as_text(w.content)]
        return 3 + sum(1 for w in blobs if git_blob_sha(w.content) not in self._uploaded)

    def _as_text(self, content: bytes) -> bool:
        """Does ``content`` go up inline, as text in the tree (else as a base64 blob)?"""
        if not self._inline:
            return False
        if content.isascii():
            return True
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def _restore_budget(self, branch: str) -> Steps[None]:
        """Teach the budget what the branch's commits of the last hour cost (one read, two
        pages for a log past 100 commits an hour): a process starting on an empty disk
        must not take the hour for a fresh one. Best effort: a failed read is today's
        behaviour (the budget knows only what the host's ledger says)."""
        pacing = self.settings.pacing
        if pacing is None:  # pragma: no cover - only entered with a budget
            raise ProtocolError("no budget to restore")
        self._restored = True
        # Since an hour and a minute ago on our clock: a server clock a minute ahead of
        # ours loses nothing; older commits are dropped by their age on the server's clock.
        now: float = yield Now()
        since = now - pacing.hour - pacing.minute
        pages = max(1, min(RESTORE_PAGES, -(-pacing.per_hour // (LANDED_WRITES * COMMITS_PAGE))))
        try:
            commits, server_now = yield Request(
                "recent_commits", (branch,), {"since": since, "pages": pages}
            )
        except GitHubError as exc:
            yield Say(
                logging.INFO, "gitjsonl: could not read the branch's recent commits (%s)", (exc,)
            )
            return
        try:
            added = yield Restore(commits, now if server_now is None else server_now)
        except OSError as exc:
            yield Say(logging.INFO, "gitjsonl: could not restore the write budget (%s)", (exc,))
            return
        if added:
            yield Say(
                logging.INFO,
                "gitjsonl: the branch's commits of the last hour cost %d writes this host's "
                "budget did not know of (a restart on an empty disk?): counted",
                (added,),
            )

    def _paid(self, reservation: str | None, step: Steps[T]) -> Steps[T]:
        """``step``'s writes, its reservation settled with the writes really sent, and a
        secondary limit answered learned from."""
        sent = self.writes
        try:
            return (yield from step)
        except RateLimited as exc:
            if self.settings.pacing is not None:
                yield Learn(exc)
            raise
        finally:
            if reservation is not None:
                yield Settle(reservation, self.writes - sent)

    def _spent(self, call: Request) -> Steps[Any]:
        """One write outside a batch (bootstrap, a new branch, a lost answer's re-send): it
        waits for room in the budget, and is counted."""
        if self.settings.pacing is None:
            return (yield from self._send(call))
        token = yield Acquire(1)
        return (yield from self._paid(token, self._send(call)))

    def _send(self, call: Request) -> Steps[Any]:
        """A request, its writes counted."""
        if call.call in WRITE_CALLS:
            self.writes += 1
        return (yield call)

    def _push(self, batch: Batch, head: Head, plan: BatchPlan) -> Steps[Head]:
        """Tree, commit, fast-forward: the three writes of one batch (a blob before them
        for bytes that are not UTF-8); our new head, left in the turn as a link (and as
        the pending link while the ref update is out: it may land unanswered)."""
        texts: dict[str, bytes] = {}
        blobs: dict[str, str] = {}
        for write in plan.writes:
            path = f"{self._path}/{write.name}"
            if self._as_text(write.content):
                texts[path] = write.content
            else:
                blobs[path] = yield from self._blob(write.content)
        # Only names of the folder we build on: GitHub refuses to delete an absent path.
        deletes = [f"{self._path}/{segment_name(number)}" for number in plan.deletes]
        folder = self._new_folder(head.folder, plan)
        expected = rebuild_path(self._parts, head.levels, folder)
        answer: CreatedTree = yield from self._send(
            Request("post_tree", (head.tree,), {"texts": texts, "blobs": blobs, "deletes": deletes})
        )
        levels = yield from self._check_tree(batch, head, answer, expected)
        # Every write this batch sent, its commit and ref update to come included: the
        # cost a process restarting on an empty disk reads back (``_budget.restore``).
        writes = self.writes - self._batch_started + 2
        settings = self.settings
        message = commit_message(
            batch, self._path, skip_ci=settings.skip_ci, writer=settings.writer_id, writes=writes
        )
        sha: str = yield from self._send(
            Request(
                "create_commit",
                (message, answer.sha, [head.commit]),
                {"author": settings.author, "committer": settings.committer},
            )
        )
        ours = Head(sha, answer.sha, folder, levels, self._small_texts(head, plan, folder))
        folder_sha = expected.shas[-1]
        if folder_sha is None:  # pragma: no cover - the folder holds the batch's files
            raise ProtocolError("the log folder's tree sha was not computed")
        yield Pushing(batch, sha, head.commit)
        number = segment_number(list_log(folder).segments[-1].name) or 0
        link = Link(sha, head.commit, answer.sha, self._path, number, folder_sha)
        self._enter(State.UPDATING)
        yield Intend(link)
        try:
            yield from self._update_ref(batch, head, sha, ours)
        finally:
            if self.head is not ours and not self._settling(sha):
                # Refused, or failed in a way this writer will not settle: should the
                # update have landed all the same, nobody may build on it (its batch is
                # sent again), so the turn forgets it.
                yield Intend(None)
        yield Keep(link, ours, head_to_json(ours))
        return ours

    def _settling(self, commit: str) -> bool:
        """Will this writer settle whether its update to ``commit``, sent and unanswered,
        landed (``_resolve``)? (A refused one may be on the branch too, but only under a
        commit already built on it: nobody needs to build on it now.)"""
        lost = self._unresolved
        return lost is not None and lost.commit == commit and not lost.refused

    def _update_ref(self, batch: Batch, head: Head, sha: str, ours: Head) -> Steps[None]:
        """The ref update of a batch: our head is ``ours`` once it landed."""
        branch = self.branch
        try:
            yield from self._send(Request("update_ref", (branch, sha)))
        except ProtectedBranch as exc:
            raise ProtectedBranch(
                f"branch {branch!r} of {self.repo} is protected and refuses "
                f"gitjsonl's commits "
                f"({exc.message.strip()}). Give the log a branch of its own, e.g. "
                "branch='gitjsonl-log' (gitjsonl creates it from the default branch)",
                status=exc.status,
            ) from exc
        except NotFastForward:
            self.conflicts += 1
            # A lost race, or our commit is on the branch all the same (another host built on
            # our pending link): settled before the batch is built again (``_resolve``).
            self._unresolved = _Unresolved(batch, head.commit, sha, ours, refused=True)
            self.head, self._stale = None, head
            raise
        except TransientError as exc:
            if exc.ambiguous:
                self._unresolved = _Unresolved(batch, head.commit, sha, ours)
            raise
        self.head, self._guess = ours, None

    def _new_folder(self, folder: tuple[DirEntry, ...], plan: BatchPlan) -> tuple[DirEntry, ...]:
        """The log folder's entries once ``plan`` is carried out."""
        gone = {segment_name(number) for number in plan.deletes}
        written = {
            write.name: DirEntry(
                write.name,
                f"{self._path}/{write.name}",
                git_blob_sha(write.content),
                len(write.content),
                "file",
                "100644",
            )
            for write in plan.writes
        }
        kept = [e for e in folder if e.name not in gone and e.name not in written]
        return (*kept, *written.values())

    def _small_texts(
        self, head: Head, plan: BatchPlan, folder: tuple[DirEntry, ...]
    ) -> dict[str, bytes]:
        """The bytes the next batch may merge: those of the small files at the folder's end."""
        known = dict(head.texts)
        known.update((git_blob_sha(w.content), w.content) for w in plan.writes)
        listing = list_log(folder)
        run = small_run(listing.files(), self.settings.segment_bytes)
        shas = {entry.sha for entry in listing.segments[len(listing.segments) - len(run) :]}
        return {sha: known[sha] for sha in shas if sha in known}

    def _check_tree(
        self, batch: Batch, head: Head, answer: CreatedTree, expected: PathTrees
    ) -> Steps[tuple[tuple[DirEntry, ...] | None, ...]]:
        """Is ``answer`` the tree we asked for? The trees above the log folder in it.

        Compared with the root's sha computed locally when every level is known;
        otherwise the answer's own listing (hashed) is followed down the path, a
        level read by sha where its sha is not known, until a computed sha.
        """
        if expected.shas[0] is not None:
            if answer.sha != expected.shas[0]:
                yield from self._mismatch(
                    batch, f"root tree {answer.sha[:12]}, not {expected.shas[0][:12]}"
                )
            return expected.levels[:-1]
        rows, learned = answer.entries, []
        if not answer.truncated and _hash(rows) != answer.sha:
            yield from self._mismatch(
                batch, f"root tree {answer.sha[:12]}, listed as other entries"
            )
        for index, name in enumerate(self._parts):
            learned.append(rows)
            entry = next((e for e in rows if e.name == name and is_folder(e)), None)
            path = "/".join(self._parts[: index + 1])
            if entry is None:
                yield from self._mismatch(batch, f"no folder {path}")
                raise ProtocolError("unreachable")  # pragma: no cover - _mismatch raises
            want = expected.shas[index + 1]
            if want is not None:
                if entry.sha != want:
                    yield from self._mismatch(
                        batch, f"folder {path} as tree {entry.sha[:12]}, not {want[:12]}"
                    )
                return (*learned, *expected.levels[index + 1 : -1])
            rows = yield Request("tree_entries", (entry.sha, path))
            if _hash(rows) != entry.sha:
                yield from self._mismatch(
                    batch, f"folder {path} as tree {entry.sha[:12]}, listed otherwise"
                )
        raise ProtocolError("the log folder's sha is always computed")  # pragma: no cover

    def _mismatch(self, batch: Batch, what: str) -> Generator[Action, Any, NoReturn]:
        """GitHub stored another tree than the batch's: nothing is committed on it."""
        # Build on a fresh read next time, and upload files as blobs (checked by sha).
        if self._inline:
            yield Say(
                logging.WARNING,
                "gitjsonl: GitHub stored %s for batch %s; this log's files now go up as "
                "blobs, each checked by its sha",
                (what, batch.id),
            )
        self.head, self._reload, self._inline = None, True, False
        raise GitHubError(
            f"GitHub stored {what} for batch {batch.id}: not what was sent. Nothing was "
            "committed on it; the records stay pending"
        )

    def _blob(self, content: bytes) -> Steps[str]:
        """Upload ``content`` unless this batch already did (a retry after a conflict)."""
        sha = git_blob_sha(content)
        if sha not in self._uploaded:
            created = yield from self._send(Request("create_blob", (content,)))
            if created != sha:  # GitHub names blobs exactly as git does
                raise ValidationFailed(f"blob uploaded as {created}, expected {sha}")
            self._uploaded.add(sha)
        return sha

    def _resolve(self, lost: _Unresolved) -> Steps[str | None]:
        """After a lost answer: the sha of the commit holding the batch, or None to build anew.

        Reads of a branch may lag behind writes, so "is it there?" is first
        asked of the one thing that is consistent, the ref update itself: the
        same fast-forward to the same commit is sent again. Success means the
        commit is on the branch now, exactly once (it is one object, whichever
        request moved the branch). A refusal means the branch moved past the
        head we built on; then history is searched from a head *proven* newer
        than that one (``settle_lost_update``), never from a possibly stale read.
        An update that was refused is not sent again, but settled the same way:
        refused, it may be on the branch all the same, under a commit another
        host built on it. A history that has not reached the head we built on
        for longer than reads lag (``_lagging``) no longer holds it (a planted
        link, an operator's reset): the batch is built again on what was read.
        """
        branch = yield from self.resolve_branch()
        if not lost.refused and lost.resend:
            try:
                yield from self._spent(Request("update_ref", (branch, lost.commit)))
            except NotFastForward:
                # The branch has left the head we built on: sending the update again can
                # never land it (found by ./dev sim: a write a retry, while reads lagged).
                # Only the re-send stops: it was not refused when sent, so it may have
                # landed, and nothing but history says whether it did.
                lost.resend = False
            else:
                return (yield from self._landed(lost, lost.commit, lost.head))
        tip = yield from self._read_head()
        if tip == lost.commit:
            return (yield from self._landed(lost, tip, lost.head))
        commits = yield ReadHistory(tip, lost.base, lost.batch.id)
        outcome, sha = settle_lost_update(commits, lost.batch.id, base=lost.base)
        if outcome == UNPROVEN and lost.refused and tip == lost.base:
            self._stale_reads += 1
            if self._stale_reads <= STALE_READS_SKIPPED:
                # Refused, so the branch has moved past this commit: a read that still shows
                # it most likely lags. Read again before spending writes on it (a few times:
                # a refusal may also have been spurious); then build on it, never along a
                # link through our commit (were it on the branch, that is refused too).
                raise NotFastForward(
                    f"update refused, and the branch still reads as {tip[:12]} "
                    "(GitHub's reads lag behind writes)",
                    status=422,
                )
        elif outcome == UNPROVEN and self._lagging(f"{lost.commit}:unproven"):
            # A stale read (it does not even reach the head we built on): ask again later.
            raise StaleRead(
                f"cannot tell yet whether batch {lost.batch.id} landed: "
                f"the branch read as {tip[:12]}, not above {lost.base[:12]}"
            )
        # The head is loaded before the verdict is let go: a read that fails here (a 5xx, a
        # limit) leaves the batch unresolved, so the retry settles it again rather than
        # building it anew (found by ./dev sim: a landed batch sent a second time).
        head = yield from self._load_head_at(tip, self.head or self._stale)
        self._unresolved, self._stale_reads = None, 0
        self.head = head
        self._read_at, self._guess, self._stale = tip, None, None
        if outcome == LANDED:
            if sha is None:  # pragma: no cover - settle_lost_update names what landed
                raise ProtocolError("a landed batch without its commit")
            self.landed_after_error += 1
            return sha
        # Not in the history read: built again on the head read, never along links through
        # our commit (nor through the head we built on, when the history never reached it:
        # should reads have lagged that long, the rebuilt commit is refused, and settled).
        self._refuted.append(lost.commit)
        if outcome == UNPROVEN and tip != lost.base:
            self._refuted.append(lost.base)
        return None

    def _check_repository(self) -> Steps[None]:
        """Before the first write: refuse a public repository unless allowed (one request)."""
        info = yield Request("repository")
        if not info.private and not self.settings.allow_public:
            raise PublicRepository(
                f"{info.full_name} is public: every record of this log would be published. "
                "Use a private repository, or pass allow_public=True (CLI: --allow-public) "
                "if the log holds nothing personal"
            )
        self._checked = True

    def _landed(self, lost: _Unresolved, sha: str, head: Head | None) -> Steps[str]:
        loaded = head if head is not None else (yield from self._load_head_at(sha, self.head))
        self._unresolved, self._guess, self._stale = None, None, None  # only once loaded
        self.landed_after_error += 1
        self.head = loaded
        return sha

    # -- reading the head ------------------------------------------------------------------

    def _load_head(self, previous: Head | None) -> Steps[Head]:
        """Read the branch's head; the small files' bytes only if they changed."""
        commit = yield from self._branch_head()
        return (yield from self._load_head_at(commit, previous))

    def _load_head_at(self, commit: str, previous: Head | None) -> Steps[Head]:
        """The head at ``commit``: the trees along the path, the log folder, and the bytes
        of its small files (those ``previous`` knows are not read again)."""
        folder = yield Request("read_folder", (commit, self._path))
        entries = tuple(folder.entries or ())
        levels: tuple[tuple[DirEntry, ...] | None, ...] = folder.levels
        if len(levels) != len(self._parts):  # a file where a folder of the path should be
            levels = (None,) * len(self._parts)
        ignored = list_log(entries).ignored
        if ignored:
            yield Ignored(self._path, ignored)
        texts = yield from self._texts(entries, previous.texts if previous is not None else {})
        return Head(commit, folder.root_tree, entries, levels, texts)

    def _texts(
        self, folder: tuple[DirEntry, ...], known: Mapping[str, bytes]
    ) -> Steps[dict[str, bytes]]:
        """The bytes of the small files at ``folder``'s end (a batch may merge them): from
        ``known``, else read by sha and checked against it."""
        listing = list_log(folder)
        run = small_run(listing.files(), self.settings.segment_bytes)
        texts: dict[str, bytes] = {}
        for entry in listing.segments[len(listing.segments) - len(run) :]:
            data = known.get(entry.sha)
            if not data:
                data = yield Request("get_blob", (entry.sha,))
                if git_blob_sha(data) != entry.sha:
                    raise GitHubError(
                        f"GitHub answered blob {entry.sha[:12]} ({entry.path}) with "
                        f"{len(data):,} bytes that are not that blob"
                    )
            texts[entry.sha] = data
        return texts

    def _branch_head(self) -> Steps[str]:
        """The branch's head; the repository's first commit or the branch made if missing.

        Right after a commit or a branch is made, reads of the branch may still
        miss it (GitHub's reads lag writes): what we made ourselves is taken from
        the answer that made it, never read back.
        """
        branch = yield from self.resolve_branch()  # a 404 here is the repository's
        try:
            head: str = yield Request("get_head", (branch,))
        except EmptyRepository:
            return (yield from self._bootstrap_empty_repository())
        except NotFound:
            return (yield from self._create_branch())
        return head

    def _bootstrap_empty_repository(self) -> Steps[str]:
        """The Git Data API refuses an empty repository; a Contents PUT makes its first commit."""
        message = f"gitjsonl: start log {self._path}"
        if self.settings.skip_ci:
            message += " [skip ci]"
        first: str | None
        try:
            first = yield from self._spent(
                Request(
                    "put_file",
                    (f"{self._path}/README.md", message, LOG_README.encode()),
                    {"branch": None},
                )
            )
        except (ValidationFailed, ContentsConflict):
            yield Say(logging.INFO, "gitjsonl: another writer initialised the repository first")
            first = None
        # GitHub names the first branch itself; make ours if it is another.
        default: str = yield Request("default_branch")
        if first is None:
            first = yield from self._read_head(default)
        if default != self.branch:
            return (yield from self._create_branch(default, at=first))
        return first

    def _create_branch(self, source: str | None = None, *, at: str | None = None) -> Steps[str]:
        """Make the branch at ``source``'s head (or ``at``); the commit it points at."""
        if source is None:
            source = yield Request("default_branch")
        if source == self.branch:
            # The default branch of a repository with commits exists: this read lags.
            raise _lagging(source)
        sha = at if at is not None else (yield from self._read_head(source))
        try:
            yield from self._spent(Request("create_ref", (self.branch, sha)))
        except ValidationFailed:
            yield Say(
                logging.INFO, "gitjsonl: branch %s was created by another writer", (self.branch,)
            )
            return (yield from self._read_head())
        return sha

    def _read_head(self, branch: str | None = None) -> Steps[str]:
        """A branch known to exist (ours by default); a 404 means the read lags, and is
        retried."""
        name = branch if branch is not None else self.branch
        try:
            head: str = yield Request("get_head", (name,))
        except NotFound as exc:
            raise _lagging(str(name)) from exc
        return head


def _no_sleep(seconds: float) -> None:  # pragma: no cover - the driver sleeps
    raise ProtocolError("the protocol's retries sleep through its driver")


def _shared(path: str, parts: tuple[str, ...]) -> int:
    """How many leading folders ``path`` shares with ``parts``."""
    theirs = [part for part in path.split("/") if part]
    shared = 0
    while shared < min(len(theirs), len(parts)) and theirs[shared] == parts[shared]:
        shared += 1
    return shared


def _hash(entries: tuple[DirEntry, ...]) -> str | None:
    """The sha git gives a tree of ``entries``; None when git could not hold them."""
    try:
        return tree_sha(entries)
    except ValueError:
        return None


def _lagging(branch: str) -> StaleRead:
    return StaleRead(
        f"branch {branch!r} exists but reads as missing (GitHub's reads lag behind writes)"
    )


#: A prepared change's commit writes: tree, commit, ref update (its blobs went before).
COMMIT_WRITES = 3

#: Pages of commits a restore reads at most (the newest 200 commits: GitHub's hour
#: lets through about 166 batches of 3 writes).
RESTORE_PAGES = 2

#: After a refused update, reads still showing the head it was built on are retried this
#: many times before the batch is built on that head anyway.
STALE_READS_SKIPPED = 3

#: Reads of a branch at a head below the turn's links that are taken for lag (each after a
#: retry's wait), and the seconds of waiting they must span (GitHub's reads lag by up to
#: about 1 s): past both, the links are taken as undone (an operator reset the branch) and
#: what the read shows is built on.
LAGGING_READS = 8
READ_LAG = 3.0

#: States a protocol remembers having entered, newest last (``CommitProtocol.trail``).
TRAIL = 32

#: Commits whose links the branch contradicted, remembered so as never to follow them again.
REFUTED_KEPT = 64
