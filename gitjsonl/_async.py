"""``AsyncLog``: the same log for asyncio, without ever blocking the event loop.

``append`` is already non-blocking (it encodes the record and takes a lock for
a queue push), so it stays a plain call. Everything that waits on the network
(``flush``, ``tail``, ``close``, reading records) runs in a worker thread
through ``asyncio.to_thread`` and is awaited; each is bounded in time as the
``Log``'s call is, and a cancelled ``flush`` ends its thread's wait at once.
``records()`` pulls the blocking iterator a chunk at a time in a worker thread
and hands the records over, so the loop only ever sees finished lists.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._config import DEFAULT
from ._log import Log
from ._stats import LogStats

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._config import LogOptions

__all__ = ["AsyncLog"]

#: Records handed from the reading thread to the loop per hop.
RECORDS_CHUNK = 256


def _take(iterator: Iterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    chunk: list[dict[str, Any]] = []
    for record in iterator:
        chunk.append(record)
        if len(chunk) >= count:
            break
    return chunk


class AsyncLog:
    """An append-only JSON-lines log in a GitHub repository, for asyncio.

    Takes exactly the arguments of ``Log`` except ``on_full="block"``, which would
    stall the event loop when the buffer is full (use ``"raise"`` or ``"drop"``)::

        async with AsyncLog("owner/repo", path="data/interactions") as log:
            log.append({"type": "interaction"})
            recent = await log.tail(500)

    Constructing it does no network I/O (it starts the flusher thread).
    """

    def __init__(self, repo: str, **options: Unpack[LogOptions]) -> None:
        if options.get("on_full") == "block":
            raise ValueError(
                'AsyncLog does not take on_full="block": it would block the event loop'
            )
        self._log = Log(repo, **options)

    @classmethod
    def wrap(cls, log: Log) -> AsyncLog:
        """An ``AsyncLog`` over an existing ``Log`` (sharing its queue and flusher)."""
        self = cls.__new__(cls)
        self._log = log
        return self

    @property
    def log(self) -> Log:
        """The underlying thread-based ``Log``."""
        return self._log

    @property
    def repo(self) -> str:
        return self._log.repo

    @property
    def path(self) -> str:
        return self._log.path

    def append(self, record: Mapping[str, Any]) -> None:
        """Queue ``record`` for the next batch; no I/O, returns at once (see ``Log.append``)."""
        self._log.append(record)

    async def flush(self, timeout: float | None = None) -> None:
        """Return when every record appended before this call is committed.

        Cancelling it ends the worker thread's wait too, so that no thread is left
        behind in the default executor (``asyncio.run`` waits for those at exit).
        """
        cancelled = threading.Event()
        try:
            await asyncio.to_thread(self._log._flush, timeout, cancelled)
        except asyncio.CancelledError:
            self._log._cancel_flush(cancelled)
            raise

    async def tail(self, n: int = 500) -> list[dict[str, Any]]:
        """The last ``n`` committed records on the branch, oldest first."""
        return await asyncio.to_thread(self._log.tail, n)

    async def records(self, chunk: int = RECORDS_CHUNK) -> AsyncIterator[dict[str, Any]]:
        """Every committed record, in order, streamed ``chunk`` records per worker-thread hop."""
        iterator = await asyncio.to_thread(self._log.records)
        try:
            while True:
                batch = await asyncio.to_thread(_take, iterator, chunk)
                if not batch:
                    return
                for record in batch:
                    yield record
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a suspended generator: closing it does no I/O

    def stats(self) -> LogStats:
        """A consistent snapshot of the counters (no I/O)."""
        return self._log.stats()

    async def aclose(self, timeout: float | None = DEFAULT) -> None:
        """Flush, then stop the flusher. Idempotent; raises if records could not be committed.

        Within the deadline the ``Log``'s ``close()`` keeps by default (shorter than the
        host's ``shutdown_grace``), or ``timeout`` seconds.
        """
        await asyncio.to_thread(self._log.close, timeout)

    async def __aenter__(self) -> AsyncLog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
