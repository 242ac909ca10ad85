"""One token's write budget, shared by every writer on it: in this process, and on this host.

GitHub's secondary limits count a token's content-generating requests, whoever
sends them: four uvicorn workers with a ``Log`` each, two ``Log``s on one log,
a ``gitjsonl migrate`` run. Each of them holds a ``Budget``, and every
``Budget`` on one token keeps its state in one place:

- ``LedgerStore``: a small JSON file in ``budget_dir`` (``_ledger``), read and
  rewritten under its lock for each decision, so that the processes of a host
  share it; a crashed process's writes simply age out of the windows;
- ``MemoryStore``: the same state in this process only (``budget_dir=None``,
  a test's fake clock, credentials other processes cannot name, or a ledger
  that cannot be written).

The decisions are ``_pacing``'s pure functions; this module only keeps state
and sleeps. ``Registry`` hands out what the ``Log``s of a process share (these
stores, and ``_turn``'s turns), counted by reference, and forgets it all in a
forked child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from . import _ledger
from ._budget_json import state_from_json, state_to_json
from ._exceptions import RateLimited
from ._github import Credentials, is_secondary_limit
from ._pacing import (
    RECOVERY_WINDOWS,
    BudgetState,
    Pacing,
    budget_stats,
    closing_reserve,
    closing_wait,
    dequeue,
    enqueue,
    explained,
    learn_limit,
    prune,
    reserve,
    restore,
    restored,
    settle,
    share_of,
    spend_id,
    wait_in_line,
)
from ._redis import Coordinator, RedisStore
from ._stats import BudgetStats

__all__ = [
    "Budget",
    "LedgerStore",
    "MemoryStore",
    "Registry",
    "budget_for",
    "host_budget",
    "ledger_path",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """What the ``Log``s of this process share, by key, while at least one holds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Hashable, tuple[T, int]] = {}
        if hasattr(os, "register_at_fork"):
            # A child shares nothing with its parent's writers: new objects, new locks.
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._items = {}

    def acquire(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            item, count = self._items.get(key) or (make(), 0)
            self._items[key] = (item, count + 1)
            return item

    def release(self, key: Hashable, item: T) -> None:
        """``item``, acquired under ``key``, is no longer held by one of its holders."""
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] is not item:
                return  # forgotten at a fork (``item`` is the parent's), or released twice
            _, count = found
            if count <= 1:
                del self._items[key]
            else:
                self._items[key] = (item, count - 1)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# -- where the state lives ----------------------------------------------------------------


class Store(Protocol):
    """Where a token's budget state lives; ``_pacing`` decides, a store only stores.

    ``MemoryStore`` (this process), ``LedgerStore`` (this host, a file),
    ``_redis.RedisStore`` (every host, Redis; the host's store while it fails).
    """

    @property
    def shared(self) -> str:
        """Who shares it now, for stats: "hosts", "host" or "process"."""
        ...

    @property
    def share(self) -> float:
        """The part of the token's budget its writers may spend now (1.0: all of it)."""
        ...

    def update(self, change: Callable[[BudgetState], BudgetState]) -> BudgetState:
        """Apply ``change`` atomically; the new state. ``change`` is pure: it may be run
        more than once (a store that found a newer state runs it again on that one)."""
        ...

    def read(self) -> BudgetState: ...

    def peek(self) -> BudgetState:
        """The state, without ever waiting for another process (for ``stats``)."""
        ...


class MemoryStore:
    """A token's budget state in this process."""

    shared = "process"
    share = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = BudgetState()

    def update(self, change: Callable[[BudgetState], BudgetState]) -> BudgetState:
        with self._lock:
            self._state = change(self._state)
            return self._state

    def read(self) -> BudgetState:
        with self._lock:
            return self._state

    peek = read


class LedgerStore:
    """A token's budget state in a file that the processes of this host share.

    If the file cannot be written (a read-only home, a full disk), this process
    warns once and keeps the budget to itself. If its lock is not had within
    ``_ledger.LOCK_WAIT`` (a process holding it is stopped or hung), the
    decision is made on the state this store last saw, with one warning; the
    next decision tries the ledger again. ``peek`` never waits.
    """

    shared = "host"
    share = 1.0

    def __init__(self, path: Path, fallback: MemoryStore) -> None:
        self.path = path
        self._fallback = fallback
        self._failed = False
        self._busy_told = False
        # What this store last read or wrote: the decisions' state while the lock is busy.
        self._last = MemoryStore()

    def update(self, change: Callable[[BudgetState], BudgetState]) -> BudgetState:
        if not self._failed:
            try:
                with _ledger.locked(self.path) as fd:
                    if fd is not None:
                        state = change(state_from_json(_ledger.read_json(fd)))
                        _ledger.write_json(fd, state_to_json(state))
                        self._last.update(lambda _: state)
                        return state
                self._busy()
                return self._last.update(change)
            except OSError as exc:
                self._fail(exc)
        return self._fallback.update(change)

    def read(self) -> BudgetState:
        return self._read(None)

    def peek(self) -> BudgetState:
        return self._read(0.0)

    def _read(self, wait: float | None) -> BudgetState:
        if not self._failed:
            try:
                state = state_from_json(_ledger.read_locked_json(self.path, wait=wait))
            except _ledger.LockBusy:
                if wait != 0.0:
                    self._busy()
                return self._last.read()
            except OSError as exc:
                self._fail(exc)
            else:
                self._last.update(lambda _: state)
                return state
        return self._fallback.read()

    def _busy(self) -> None:
        if _ledger.interrupted() or self._busy_told:
            return
        self._busy_told = True
        logger.warning(
            "gitjsonl: the write budget's ledger in %s stayed locked for %.0f s (a process "
            "holding it is stopped or hung?); this process paces on its last view of it",
            self.path.parent,
            _ledger.LOCK_WAIT,
        )

    def _fail(self, exc: OSError) -> None:
        self._failed = True
        logger.warning(
            "gitjsonl: cannot use the write budget's ledger in %s (%s); this process paces "
            "its writes alone (pass budget_dir= a writable folder to share it)",
            self.path.parent,
            exc.strerror or exc,
        )


def ledger_path(directory: Path, key: str) -> Path:
    return directory / f"budget-{key}.json"


# -- a writer's view of the budget ----------------------------------------------------------


class Budget:
    """A writer's handle on its token's shared budget: reserve, settle, wait, learn.

    ``clock`` is the store's: the wall clock for a ledger (the one clock every
    process on a host reads alike), else the ``Log``'s.

    ``closing`` is set by a ``Log`` that is closing (``close()``, the exit flush,
    ``aclose()``): from then on its batches may spend the closing reserve that
    every other writer leaves in GitHub's windows (``_pacing.closing_reserve``),
    and skip the bucket and the line (``_pacing.closing_wait``), so its last batch
    goes at once whatever the traffic. A ``Log``'s budget
    keeps that reserve (``closing_reserve``, from ``budget_for``); a bare ``Budget``
    (``migrate``, the simulations) spends the whole budget, as before.
    """

    def __init__(
        self,
        pacing: Pacing,
        store: Store,
        clock: Callable[[], float],
        release: Callable[[], None] = lambda: None,
        *,
        closing_reserve: bool = False,
    ) -> None:
        self.pacing = pacing
        self._keeps_reserve = closing_reserve
        self.store = store
        self.clock = clock
        self._release = release
        self.id = uuid.uuid4().hex[:12]  # this writer's place in the line for room
        self.closing = False

    def paced(self) -> Pacing:
        """The pacing this writer's decisions keep now: ``pacing``, or the store's share of it
        (a host's part of the token's writers while the coordinator fails)."""
        return share_of(self.pacing, self.store.share)

    def release(self) -> None:
        """This writer is done with the budget (``Log.close``): it leaves the line."""
        release, self._release = self._release, lambda: None
        with contextlib.suppress(OSError):
            self.store.update(lambda state: dequeue(state, self.id))
        release()

    def _wait(self, state: BudgetState, now: float, cost: int, pacing: Pacing) -> float:
        """How long this writer waits for ``cost`` writes: in line and leaving the closing
        reserve, or, closing, for room alone."""
        if self.closing:
            return closing_wait(state, now, cost, pacing)
        keep = closing_reserve(state, now, cost, pacing, self.id) if self._keeps_reserve else 0
        return wait_in_line(state, now, cost, pacing, self.id, keep=keep)

    def reserve(
        self, cost: int, *, force: bool = False, batch: str | None = None
    ) -> tuple[str | None, float]:
        """Reserve ``cost`` writes if they fit now: (its id, 0), else (None, seconds to wait).

        ``force`` reserves them whatever the budget says (only when a test's sleep
        does not move the clock: see ``acquire``). A writer told to wait takes its
        place in line (``_pacing.wait_in_line``); one that reserves leaves it.
        ``batch`` names the batch they pay for (``restore`` then never counts its
        commit again).
        """
        token = spend_id(batch, self.id, uuid.uuid4().hex[:12])
        waits: list[float] = []

        def change(state: BudgetState) -> BudgetState:
            now, pacing = self.clock(), self.paced()
            state = prune(state, now, pacing)
            wait = 0.0 if force else self._wait(state, now, cost, pacing)
            waits.append(wait)
            if wait > 0:
                return self._queued(state, now, wait)
            return reserve(dequeue(state, self.id), now, cost, token, pacing)

        self.store.update(change)
        return (None, waits[-1]) if waits[-1] > 0 else (token, 0.0)

    def delay(self, cost: int, *, queue: bool = True) -> float:
        """Seconds before ``cost`` writes would fit, reserving nothing (the flusher asks
        before it cuts a batch, so that what is appended meanwhile joins it); a writer
        told to wait takes its place in line. ``queue=False`` only looks (never waiting
        for another process's lock either): for an error message."""
        if not queue:
            now, pacing = self.clock(), self.paced()
            state = prune(self.store.peek(), now, pacing)
            return self._wait(state, now, cost, pacing)
        waits: list[float] = []

        def change(state: BudgetState) -> BudgetState:
            now, pacing = self.clock(), self.paced()
            state = prune(state, now, pacing)
            wait = self._wait(state, now, cost, pacing)
            waits.append(wait)
            return self._queued(state, now, wait) if wait > 0 else state

        self.store.update(change)
        return waits[-1]

    def _queued(self, state: BudgetState, now: float, wait: float) -> BudgetState:
        state = enqueue(state, now, self.id, wait)
        return replace(state, waits=state.waits + 1, waited=state.waited + wait)

    def settle(self, token: str, used: int) -> None:
        """The writes reserved under ``token`` are done: ``used`` of them were sent."""

        def change(state: BudgetState) -> BudgetState:
            now, pacing = self.clock(), self.paced()
            return settle(prune(state, now, pacing), token, now, used, pacing)

        self.store.update(change)

    def acquire(self, cost: int, sleep: Callable[[float], None]) -> str:
        """Wait until ``cost`` writes fit, and reserve them.

        A ``Log`` that is closing ends the waiting by raising from ``sleep``
        (``LogClosed``): its writes never go without room. Only a sleep that
        does not let the time pass (a test's sleep that does not move this
        clock) ends the waiting with the writes going, as without pacing.
        """
        while True:
            token, wait = self.reserve(cost)
            if token is not None:
                return token
            if self.sleep_for(wait, sleep):
                forced, _ = self.reserve(cost, force=True)
                assert forced is not None
                return forced

    def sleep_for(self, wait: float, sleep: Callable[[float], None]) -> bool:
        """Sleep ``wait`` s for room; True when the sleep did not let the time pass (a test's
        sleep that does not move this clock): then the writes go forced, as without pacing."""
        before = self.clock()
        sleep(wait)
        return self.clock() - before < wait / 2

    @contextlib.contextmanager
    def spend(self, cost: int, sleep: Callable[[float], None]) -> Iterator[None]:
        """Around ``cost`` writes sent one after the other: wait for room, then count them."""
        with self.settling(self.acquire(cost, sleep), lambda: cost):
            yield

    @contextlib.contextmanager
    def settling(self, token: str | None, used: Callable[[], int]) -> Iterator[None]:
        """Around the writes reserved under ``token``: settled with the number really sent
        (``used()``, asked at the end), and a secondary limit answered learned from."""
        try:
            yield
        except RateLimited as exc:
            self.learn(exc)
            raise
        finally:
            if token is not None:
                self.settle(token, used())

    def restore(self, commits: list[tuple[str, float]], server_now: float) -> int:
        """Take what the branch's recent commits say their batches cost into the shared state
        (``_pacing.restored``), except the batches it knows; the writes it added."""
        added: list[int] = []

        def change(state: BudgetState) -> BudgetState:
            now, pacing = self.clock(), self.paced()
            state = prune(state, now, pacing)
            spends = restored(commits, server_now=server_now, now=now, pacing=self.pacing)
            merged = restore(state, now, spends, pacing)
            added.append(sum(s.count for s in merged.spent) - sum(s.count for s in state.spent))
            return merged

        self.store.update(change)
        return added[-1]

    def learn(self, error: RateLimited) -> None:
        """GitHub answered a secondary limit: pause every writer on the token, halve the budget."""
        if not is_secondary_limit(error):
            return  # the primary limit is GitHub's hourly count of everything: not ours to pace
        shrunk: list[bool] = []
        ours: list[bool] = []

        def change(state: BudgetState) -> BudgetState:
            now = self.clock()
            state = prune(state, now, self.pacing)
            ours.append(explained(state, now, self.pacing))
            state, fresh = learn_limit(state, now, error.retry_after, self.pacing)
            shrunk.append(fresh)
            return state

        state = self.store.update(change)
        if ours[-1] and not shrunk[-1]:
            logger.info(
                "gitjsonl: GitHub answered %s (a secondary rate limit) to writes this budget "
                "counted past its limits; every Log on the token pauses %.0f s",
                error.status,
                max(0.0, state.blocked_until - self.clock()),
            )
            return
        if not shrunk[-1]:
            logger.info("gitjsonl: another secondary-limit answer during the same pause")
            return
        stats = budget_stats(state, self.clock(), self.pacing, shared=self.store.shared)
        where = _WHERE.get(self.store.shared, "in this process")
        logger.warning(
            "gitjsonl: GitHub answered %s (a secondary rate limit) although this token's writes "
            "were paced: something else is spending its budget (a CI job, a script, another "
            "host). Every Log on the token %s now pauses %.0f s, then writes at most %d a "
            "minute and %d an hour, growing back to %d and %d over %s",
            error.status,
            where,
            stats.paused_for,
            stats.allowed_per_minute,
            stats.allowed_per_hour,
            self.pacing.per_minute,
            self.pacing.per_hour,
            _duration((1.0 - stats.allowance) * RECOVERY_WINDOWS * self.pacing.minute),
        )

    def stats(self) -> BudgetStats:
        """What ``stats()`` shows; never waits for another process's lock."""
        now, pacing = self.clock(), self.paced()
        state = prune(self.store.peek(), now, pacing)
        return budget_stats(state, now, pacing, shared=self.store.shared)


_WHERE = {"hosts": "on every host", "host": "on this host"}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


_memory_stores: Registry[MemoryStore] = Registry()


def budget_for(
    pacing: Pacing,
    credentials: Credentials,
    *,
    directory: Path | None,
    clock: Callable[[], float] = time.monotonic,
    coordinator: Coordinator | None = None,
) -> Budget:
    """The budget of these credentials, shared on this host when ``directory`` is given,
    and by every host through Redis when ``coordinator`` is (the host's while it fails).

    A ``clock`` other than ``time.monotonic`` (a test's) keeps the budget in
    this process, shared only with writers on the same clock: no other
    process reads that clock.
    """
    key = credentials.key
    shareable = credentials.portable and clock is time.monotonic
    host = directory if shareable else None
    wall = host is not None or (shareable and coordinator is not None)  # on the wall clock
    memory_key: Hashable = (key, "host" if wall else clock)
    memory = _memory_stores.acquire(memory_key, MemoryStore)
    store: Store = memory if host is None else LedgerStore(ledger_path(host, key), memory)
    budget_clock = time.time if wall else clock
    if shareable and coordinator is not None:
        # The writers that share ``store`` while Redis fails: this host's ledger, or this process.
        redis = RedisStore(coordinator, key, store, host=_sharing(host))
        store, budget_clock = redis, redis.clock
    return Budget(
        pacing,
        store,
        budget_clock,
        release=lambda: _memory_stores.release(memory_key, memory),
        closing_reserve=True,
    )


_process_ids: dict[int, str] = {}


def _sharing(directory: Path | None) -> str:
    """Who shares a budget's host store while the coordinator fails: the host whose
    processes share ``directory`` (its id), else this process (a forked child: its own)."""
    if directory is not None:
        try:
            return _ledger.host_id(directory)
        except OSError:
            pass  # the ledger will not be shared either: this process alone
    return _process_ids.setdefault(os.getpid(), uuid.uuid4().hex[:16])


def host_budget(pacing: Pacing, credentials: Credentials, *, directory: Path) -> BudgetStats | None:
    """What the ledger of these credentials on this host says (None: no ledger yet).

    Reads only: for ``gitjsonl stats``.
    """
    path = ledger_path(directory, credentials.key)
    if not credentials.portable or not path.exists():
        return None
    try:
        state = state_from_json(_ledger.read_locked_json(path, wait=1.0))
    except OSError:  # busy, or not ours (_ledger.NotOurs): no view of the host's budget
        return None
    now = time.time()
    return budget_stats(prune(state, now, pacing), now, pacing, shared="host")
