"""Taking turns on a branch: the writers of one host commit to it one at a time.

Two writers that build on the same head race: the second ref update is
refused (not a fast-forward), and the loser re-reads the head (a read that may
lag) and sends its writes again, from the same budget. Writers in one process,
and in the processes of one host, need never race: they take turns on the
branch (``Turn.take``: a lock in the process and a lock file beside the budget
ledger, held only around one batch's writes, never across a sleep), and each
leaves a ``Link`` naming the commit it made, the commit it built on, the tree,
and the segment it wrote. The next writer catches up from those links
(``catch_up``, pure) instead of reading the branch: exact, where a read may
lag. Only writers on other hosts still race, and the fast-forward check
handles them as before.

A link is trusted only by a writer whose own head appears in the chain: a
commit sha it read or made itself, so the chain is of the same repository and
history (a ledger folder outliving a repository is harmless); a head that was
only read follows the links once a read proves them (``_protocol``). A link the
branch contradicts is dropped with the links after it (``Taken.drop``); a
pending link that a writer built on joins the chain under that writer's link.

A writer also leaves, just before its ref update, the link that update would
make (``Taken.intend``): the turn's ``pending`` link until the update is
answered. Should the answer never come (a lost answer, a writer killed right
after its update landed), the next writer still knows the commit may be on
the branch, and may build on it (``_chain.with_pending``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import _ledger
from ._budget import Registry
from ._chain import (
    SHARED_HEADS,
    Link,
    chain_from_json,
    chain_to_json,
    dropped,
    heads_from_json,
    pending_from_json,
    with_intended,
    with_landed,
)
from ._exceptions import LogClosed
from ._github import Credentials
from ._redis import Coordinator, CoordinatorDown, RedisTurns

__all__ = ["TURN_WAIT", "BranchTurns", "Held", "SharedTurn", "Taken", "Turn"]

logger = logging.getLogger(__name__)

#: Seconds a writer waits for its turn before it goes anyway (a process hung mid-batch).
TURN_WAIT = 60.0

#: Seconds between looks at an interrupted wait while this process's turn is busy.
_SLICE = 0.05


@dataclass(slots=True)
class Taken:
    """A writer's turn: the chain as it stands, and the link it adds when its batch lands."""

    chain: tuple[Link, ...]
    _contents: dict[str, tuple[str, object]] = field(repr=False)
    local_tip: Link | None = None  # the newest link a writer of this process left
    added: tuple[Link, object, object] | None = None
    # Ref updates sent on the chain's tip (each on the one before) and never answered
    # here: they may have landed.
    pending: tuple[Link, ...] = ()
    _keep: Callable[[Link | None], None] | None = field(default=None, repr=False)
    _drop: Callable[[str], None] | None = field(default=None, repr=False)
    # What the writers of other processes (or hosts) left in the turn record, as JSON.
    _shared: dict[str, tuple[str, object]] = field(default_factory=dict, repr=False)

    def content(self, link: Link) -> object | None:
        """What the writer that made ``link`` left of its log (no read): its own object when
        it is of this process, else the JSON it left in the turn record (to be proven)."""
        for known in (self._contents.get(link.path), self._shared.get(link.path)):
            if known is not None and known[0] == link.segment_sha:
                return known[1]
        return None

    def add(self, link: Link, content: object, shared: object = None) -> None:
        """The link this batch made, what it leaves this process, and (JSON, or None) the
        record's copy for writers elsewhere."""
        self.added = (link, content, shared)

    def intend(self, link: Link | None) -> None:
        """Kept in the turn at once: the ref update making ``link`` is about to be sent
        (None: the one intended was refused, it never lands: the pending links it found
        are put back)."""
        if self._keep is not None:
            self._keep(link)

    def drop(self, commit: str) -> None:
        """The branch contradicts the link (or pending link) to ``commit``: it and the links
        after it leave the turn at once, and nobody here follows them again."""
        self.chain, self.pending = dropped(self.chain, self.pending, commit)
        if self._drop is not None:
            self._drop(commit)


class _FileHeld:
    """The host's turn file, open and locked: the record as read, and the one to write."""

    def __init__(self, fd: _ledger.HostFile) -> None:
        self._fd = fd
        self.record = _ledger.read_json(fd)

    def save(self, record: dict[str, Any]) -> None:
        _ledger.write_json(self._fd, record)


class Held(Protocol):
    """A turn held beyond this process (a host's file, or Redis's lease)."""

    @property
    def record(self) -> dict[str, Any] | None: ...

    def save(self, record: dict[str, Any]) -> None: ...


class SharedTurn(Protocol):
    """A turn shared beyond this host: Redis's (``_redis.RedisTurns``), or a model of a host's
    file (``gitjsonl.testing.sim``). ``held`` yields None when it was not had in time, and
    raises ``CoordinatorDown`` when the store does not answer (the host's file serves)."""

    def held(self, wait: float) -> contextlib.AbstractContextManager[Held | None]: ...


class Turn:
    """The turn to commit to one branch, for the writers of this process and (with a file)
    host, or (with Redis, ``_redis.RedisTurns``) every host; the host's file while Redis fails."""

    def __init__(self, file: Path | None, redis: SharedTurn | None = None) -> None:
        self._lock = threading.Lock()
        self._file = file
        self._redis = redis
        self._chain: tuple[Link, ...] = ()
        self._local_tip: Link | None = None
        self._pending: tuple[Link, ...] = ()
        # What each path's writers in this process last left: path -> (folder sha, state).
        self._contents: dict[str, tuple[str, object]] = {}

    @contextlib.contextmanager
    def take(self, wait: float = TURN_WAIT) -> Iterator[Taken]:
        """Hold the turn (give up waiting after ``wait`` s and go anyway: the fast-forward
        check still keeps the branch whole); the chain is updated on leaving.

        ``LogClosed`` when the wait is interrupted (``_ledger.waits_end_on``: the
        ``Log`` closed): a batch that waited is not sent after ``close()`` gave up.
        """
        mine = self._acquire(wait)
        try:
            with self._shared_turn(wait) as held:
                chain, pending = self._chain, self._pending
                heads: dict[str, tuple[str, object]] = {}
                if held is not None:
                    chain = chain_from_json(held.record)
                    pending = pending_from_json(held.record)
                    heads = heads_from_json(held.record)
                found = pending  # what a refused update of ours puts back
                alone = self._file is None and self._redis is None
                holds = mine and (held is not None or alone)

                def record_of(links: Sequence[Link], intended: Sequence[Link]) -> dict[str, Any]:
                    record = chain_to_json(links, intended)
                    newest = list(heads.items())[-SHARED_HEADS:]
                    record["heads"] = {path: list(head) for path, head in newest}
                    return record

                def keep(link: Link | None) -> None:
                    # Written at once, in the host's file or Redis's record: a holder that
                    # dies mid-update leaves the pending link to the next writer.
                    if holds:
                        now = found if link is None else with_intended(found, link)
                        self._pending = now
                        if held is not None:
                            held.save(record_of(chain, now))

                def drop(commit: str) -> None:
                    nonlocal chain, pending, found
                    chain, pending = dropped(chain, pending, commit)
                    found = pending
                    if holds:
                        self._chain, self._pending = chain, pending
                        if self._local_tip is not None and self._local_tip not in chain:
                            self._local_tip = None
                        if held is not None:
                            held.save(record_of(chain, pending))

                taken = Taken(
                    chain,
                    self._contents,
                    self._local_tip,
                    pending=pending,
                    _keep=keep,
                    _drop=drop,
                    _shared=heads,
                )
                yield taken
                if taken.added is not None and holds:
                    link, content, shared = taken.added
                    # Built on pending links, our update proved they landed: they join the
                    # chain (else a writer whose head is one of them, or a read below it,
                    # would find nothing in the chain about its head).
                    self._chain = with_landed(chain, pending, link)
                    self._local_tip = link
                    self._pending = ()
                    self._contents = {**self._contents, link.path: (link.segment_sha, content)}
                    if held is not None:
                        heads.pop(link.path, None)
                        if shared is not None:
                            heads[link.path] = (link.segment_sha, shared)
                        held.save(record_of(self._chain, ()))
        finally:
            if mine:
                self._lock.release()
            else:
                logger.debug("gitjsonl: went ahead without the turn after %.0f s", wait)

    def _acquire(self, wait: float) -> bool:
        """This process's lock, polled in slices so that an interrupted wait ends at once."""
        deadline = time.monotonic() + wait
        while not self._lock.acquire(timeout=min(_SLICE, max(0.0, deadline - time.monotonic()))):
            _check_interrupted()
            if time.monotonic() >= deadline:
                return False
        return True

    @contextlib.contextmanager
    def _shared_turn(self, wait: float) -> Iterator[Held | None]:
        """Redis's turn while it answers, else the host's (None: neither was had)."""
        if self._redis is not None:
            with contextlib.ExitStack() as stack:
                try:
                    lease = stack.enter_context(self._redis.held(wait))
                except CoordinatorDown:
                    pass  # the coordinator warned once; the host's turn serves meanwhile
                else:
                    if lease is None:
                        _check_interrupted()
                    yield lease
                    return
        with self._host_turn(wait) as fd:
            yield None if fd is None else _FileHeld(fd)

    @contextlib.contextmanager
    def _host_turn(self, wait: float) -> Iterator[_ledger.HostFile | None]:
        with contextlib.ExitStack() as stack:
            fd = None
            if self._file is not None:
                try:
                    fd = stack.enter_context(_ledger.locked(self._file, wait=wait))
                    if fd is None:
                        _check_interrupted()
                except OSError as exc:
                    logger.warning(
                        "gitjsonl: cannot use the turn file in %s (%s); writers of other "
                        "processes may race this one",
                        self._file.parent,
                        exc.strerror or exc,
                    )
                    self._file = None
            yield fd


def _check_interrupted() -> None:
    if _ledger.interrupted():
        raise LogClosed(
            "the log closed while a batch waited for its turn; its records stay pending"
        )


_turns: Registry[Turn] = Registry()


class BranchTurns:
    """A writer's way to the turn of the branch it writes, once it knows which branch that is."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        repo: str,
        directory: Path | None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self._key = (credentials.key, repo)
        portable = credentials.portable
        self._directory = directory if portable else None
        self._coordinator = coordinator if portable else None
        self._held: tuple[tuple[object, ...], Turn] | None = None

    def get(self, branch: str) -> Turn:
        if self._held is not None and self._held[0][2] == branch:
            return self._held[1]
        self.release()
        coordinator = self._coordinator
        key = (*self._key, branch, self._directory, coordinator)
        directory = self._directory
        name = _ledger.file_key(*self._key, branch)

        def make() -> Turn:
            file = None if directory is None else directory / f"turn-{name}.json"
            return Turn(file, None if coordinator is None else RedisTurns(coordinator, name))

        turn = _turns.acquire(key, make)
        self._held = (key, turn)
        return turn

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            _turns.release(*held)
