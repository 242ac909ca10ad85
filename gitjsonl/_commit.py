"""The driver of the write protocol: ``_protocol``'s actions carried out, in the flusher thread.

``_protocol.CommitProtocol`` decides how a batch is committed (three writes
in the steady state: a tree carrying the batch's files as text, a commit, a
fast-forward; what to trust, when a lost answer landed, when to give up) and
does no I/O. ``Committer`` is its one driver: it runs a step (``commit``,
``settle``) to its end, and carries each action out against the outside
world, sending the answer back in (or throwing the failure in):

- ``Request``/``ReadHistory``: the GitHub seam (``GitHubRepo`` over HTTP, or
  ``gitjsonl.testing.MemoryGitHub``);
- ``TakeTurn``/``LeaveTurn``/``Intend``/``Keep``/``Drop``: the branch's turn
  (``_turn``: this process's lock, the host's file, the coordinator's lease);
- ``Reserve``/``WaitForBudget``/``Acquire``/``Settle``/``Learn``/``Restore``:
  the token's shared ``Budget``;
- ``Pushing``: the spool's note of a ref update about to go;
- ``Sleep``/``Now``: the clock; ``Say``/``Ignored``: the log.

The ``Log``'s flusher commits its batches and its adopted spool slots'
batches through one ``Committer``; ``migrate`` commits its one prepared
change through one of its own (``commit_change``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._actions import (
    SEAM_CALLS,
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
from ._batch import Batch, batch_id_of
from ._budget import Budget
from ._chain import Head
from ._config import Identity
from ._protocol import Change, CommitProtocol, ProtocolError, Replan, Settings
from ._reader import warn_ignored
from ._retry import RetryPolicy
from ._seam import GitHubSeam
from ._turn import BranchTurns, Taken, Turn

__all__ = ["Committer", "call_seam", "change_turn", "use_budget"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Committer:
    """Commits batches to one log on one branch; used by one thread at a time."""

    def __init__(
        self,
        repo: GitHubSeam,
        *,
        path: str,
        branch: str | None,
        segment_bytes: int,
        policy: RetryPolicy,
        budget: Budget | None,
        sleep: Callable[[float], None],
        writer_id: str,
        skip_ci: bool = True,
        author: Identity | None = None,
        committer: Identity | None = None,
        rng: random.Random | None = None,
        before_update: Callable[[Batch, str, str], None] | None = None,
        allow_public: bool = False,
        turns: BranchTurns | None = None,
        on_retry: Callable[[BaseException | None], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repo
        self._budget = budget
        self._turns = turns
        self._own_turn = Turn(None)  # without turns: a turn nobody else takes
        self._sleep = sleep
        self._clock = clock
        # Told (batch, commit, base) before each ref update: the spool keeps it.
        self._before_update = before_update
        # Told of each failed attempt that is tried again: stats() shows it at once.
        self._on_retry = on_retry
        self._held: contextlib.ExitStack | None = None
        self._taken: Taken | None = None
        self.protocol = CommitProtocol(
            Settings(
                path=path,
                branch=branch,
                segment_bytes=segment_bytes,
                policy=policy,
                writer_id=writer_id,
                pacing=budget.pacing if budget is not None else None,
                skip_ci=skip_ci,
                author=author,
                committer=committer,
                allow_public=allow_public,
            ),
            rng,
        )

    # -- what the Log and the spool see ------------------------------------------------------

    @property
    def branch(self) -> str:
        """The branch this log writes. Read by other threads (the ``Log``'s reader) too: it
        never runs a step (a step may hold the flusher's turn)."""
        protocol = self.protocol
        if protocol.branch is None:
            protocol.branch = self._repo.default_branch()
        return protocol.branch

    @property
    def unresolved_batch_id(self) -> str | None:
        """A batch that must be committed again under the same id (it may have landed)."""
        return self.protocol.unresolved_batch_id

    @property
    def head(self) -> Head | None:
        return self.protocol.head

    @property
    def conflicts(self) -> int:
        return self.protocol.conflicts

    @property
    def retries(self) -> int:
        return self.protocol.retries

    @property
    def landed_after_error(self) -> int:
        return self.protocol.landed_after_error

    def known_head(self) -> str | None:
        """The newest commit known to be on the branch (ours, or one read and proven)."""
        head = self.protocol.head
        return head.commit if head is not None else None

    def commit(self, batch: Batch) -> str:
        """Commit ``batch`` exactly once; the sha of the commit that holds it."""
        return self.run(self.protocol.commit(batch))

    def commit_change(self, change: Change) -> str | Replan:
        """Commit a change prepared elsewhere (``migrate``): ``CommitProtocol.commit_change``."""
        return self.run(self.protocol.commit_change(change))

    def settle(self, batch: Batch, *, commit: str, base: str) -> str | None:
        """Did ``batch``, last sent as a ref update to ``commit`` on ``base``, land?
        (A restart's question: see ``CommitProtocol.settle``.)"""
        return self.run(self.protocol.settle(batch, commit=commit, base=base))

    def close(self) -> None:
        """Let go of the shared budget and turn (the ``Log`` is closed)."""
        if self._budget is not None:
            self._budget.release()
        if self._turns is not None:
            self._turns.release()

    # -- the driver ------------------------------------------------------------------------

    def run(self, steps: Steps[T]) -> T:
        """Carry ``steps`` out to its end: each action done, its answer (or failure) sent back."""
        answer: Any = None
        failure: BaseException | None = None
        took = False  # this run took the turn (and leaves it, should the step not)
        try:
            while True:
                try:
                    action = steps.throw(failure) if failure is not None else steps.send(answer)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                answer, failure = None, None
                try:
                    answer = self._do(action)
                except BaseException as exc:  # the answer is a failure: the protocol decides
                    failure = exc
                took = took or (isinstance(action, TakeTurn) and failure is None)
        finally:
            if took:
                self._leave()  # a turn a failing step still held

    def _do(self, action: Action) -> Any:
        if isinstance(action, (Request, ReadHistory)):
            return self._request(action)
        if isinstance(action, Sleep):
            if action.after is not None:
                logger.debug("gitjsonl: retrying batch after %r", action.after)
                if self._on_retry is not None:
                    self._on_retry(action.after)
            self._sleep(action.seconds)
            return None
        if isinstance(action, Now):
            return self._clock()
        if isinstance(action, TakeTurn):
            return self._take(action.branch)
        if isinstance(action, LeaveTurn):
            self._leave()
            return None
        if isinstance(action, (Intend, Keep, Drop)):
            change_turn(self._taken, action)
            return None
        if isinstance(action, Pushing):
            if self._before_update is not None:
                self._before_update(action.batch, action.commit, action.base)
            return None
        if isinstance(action, Say):
            logger.log(action.level, action.message, *action.args)
            return None
        if isinstance(action, Ignored):
            warn_ignored(action.path, action.problems)
            return None
        return self._budgeted(action)

    def _request(self, action: Request | ReadHistory) -> Any:
        if isinstance(action, ReadHistory):
            return call_seam(self._repo, action)
        repo = self._repo
        before = repo.writes
        try:
            return call_seam(repo, action)
        finally:
            # The seam's count is the truth: a write sent again after a 307, a blob sent
            # twice (as text, then as base64) cost more than the one request asked for.
            self.protocol.sent(repo.writes - before, action, repo.full_name)

    def _budgeted(self, action: Action) -> Any:
        """A budget action: the waits sleep on this driver's sleep, the rest are the store's."""
        budget = self._budget
        if isinstance(action, WaitForBudget) and budget is not None:
            return budget.sleep_for(action.seconds, self._sleep)
        if isinstance(action, Acquire) and budget is not None:
            return budget.acquire(action.cost, self._sleep)
        return use_budget(budget, action)

    # -- the turn --------------------------------------------------------------------------

    def _take(self, branch: str) -> Taken:
        turn = self._turns.get(branch) if self._turns is not None else self._own_turn
        stack = contextlib.ExitStack()
        taken = stack.enter_context(turn.take())
        self._held, self._taken = stack, taken
        return taken

    def _leave(self) -> None:
        held, self._held, self._taken = self._held, None, None
        if held is not None:
            held.close()


# -- what every driver does the same way (this one, the simulator's, the tests') ----------------


def call_seam(repo: GitHubSeam, action: Request | ReadHistory) -> Any:
    """A GitHub call as the protocol asked for it, on ``repo``; ``ReadHistory``: the commits
    below its tip, (sha, message), read lazily until its base or its batch."""
    if isinstance(action, ReadHistory):
        read: list[tuple[str, str]] = []
        for info in repo.iter_commits(action.tip):
            read.append((info.sha, info.message))
            if info.sha == action.base or batch_id_of(info.message) == action.batch:
                break
            if len(read) >= action.limit:
                break
        return read
    if action.call not in SEAM_CALLS:
        raise ProtocolError(f"the protocol asked for an unknown call {action.call!r}")
    return getattr(repo, action.call)(*action.args, **action.kwargs)


def change_turn(taken: Taken | None, action: Intend | Keep | Drop) -> None:
    """A change to the turn held (``taken``): a link intended, kept, or dropped."""
    if taken is None:
        raise ProtocolError(f"{type(action).__name__} outside the turn")
    if isinstance(action, Intend):
        taken.intend(action.link)
    elif isinstance(action, Keep):
        taken.add(action.link, action.content, action.shared)
    else:
        taken.drop(action.commit)


def use_budget(budget: Budget | None, action: Action) -> Any:
    """A budget action that does not wait (``Reserve``, ``Settle``, ``Learn``, ``Restore``)."""
    if budget is None:
        raise ProtocolError(f"{type(action).__name__} without a budget")
    if isinstance(action, Reserve):
        return budget.reserve(action.cost, force=action.force, batch=action.batch)
    if isinstance(action, Settle):
        budget.settle(action.token, action.used)
        return None
    if isinstance(action, Learn):
        budget.learn(action.error)
        return None
    if isinstance(action, Restore):
        return budget.restore(action.commits, action.server_now)
    raise ProtocolError(f"an action no driver knows: {action!r}")
