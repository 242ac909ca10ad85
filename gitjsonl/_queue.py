"""The pending queue: records appended and not yet committed, in append order.

Every record gets a sequence number when it is appended. A batch is cut from
the front of the queue and stays there until GitHub holds it: records leave
the queue only through ``drop_committed``, so a failure of any kind leaves
every pending record where it was. A batch that may have landed (its ref
update's answer was lost) is cut again *unchanged*, under the same id, until
that is settled: only its id can tell whether it is already on the branch.

Not thread-safe by itself: ``Log`` holds its lock around every call. The
queue does no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Literal

from ._batch import Batch
from ._config import OnFull

__all__ = ["Admission", "PendingQueue", "admit"]

Admission = Literal["accept", "drop", "raise", "wait"]


def admit(
    policy: OnFull, *, pending_bytes: int, size: int, max_pending_bytes: int, empty: bool
) -> Admission:
    """What ``append`` does with a record of ``size`` bytes given what is pending.

    A record always fits into an empty queue (even one larger than the cap);
    otherwise a full queue follows the ``on_full`` policy.
    """
    if empty or pending_bytes + size <= max_pending_bytes:
        return "accept"
    if policy == "block":
        return "wait"
    if policy == "drop":
        return "drop"
    return "raise"


class PendingQueue:
    """Records waiting to be committed, with their sequence numbers and total size."""

    def __init__(self, *, next_seq: int = 1) -> None:
        self._items: deque[tuple[int, bytes]] = deque()
        self._times: deque[float] = deque()  # when each record was appended (the Log's clock)
        self.bytes = 0
        self.next_seq = next_seq  # the number the next appended record gets
        self.committed_seq = next_seq - 1  # every record up to this one is committed
        self.inflight: Batch | None = None  # the batch being committed

    def __len__(self) -> int:
        return len(self._items)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest record appended."""
        return self.next_seq - 1

    @property
    def oldest_at(self) -> float | None:
        """When the oldest pending record was appended (None: nothing is pending)."""
        return self._times[0] if self._times else None

    def push(self, line: bytes, at: float = 0.0) -> int:
        """Queue one encoded record, appended at time ``at``; its sequence number."""
        seq = self.next_seq
        self._items.append((seq, line))
        self._times.append(at)
        self.next_seq += 1
        self.bytes += len(line)
        return seq

    def extend(self, lines: Iterable[bytes], at: float = 0.0) -> None:
        """Queue records recovered from a spool (at time ``at``), ahead of anything appended
        later."""
        for line in lines:
            self.push(line, at)

    def cut(
        self, max_batch_bytes: int, new_id: Callable[[], str], *, resend: str | None = None
    ) -> Batch | None:
        """The next batch from the front, at most ``max_batch_bytes`` (but at least one record).

        ``resend`` names a batch that may have landed: when it is the one in
        flight, it is returned unchanged so that it is committed under its id.
        """
        if not self._items:
            return None
        if self.inflight is not None and resend == self.inflight.id:
            return self.inflight
        lines: list[bytes] = []
        size = 0
        for _seq, line in self._items:
            if lines and size + len(line) > max_batch_bytes:
                break
            lines.append(line)
            size += len(line)
        self.inflight = Batch(new_id(), tuple(lines), self._items[0][0])
        return self.inflight

    def drop_committed(self, batch: Batch) -> None:
        """``batch`` (the front of the queue) is on the branch: forget its records."""
        for _ in batch.lines:
            self.bytes -= len(self._items.popleft()[1])
            self._times.popleft()
        self.committed_seq = batch.last_seq
        self.inflight = None
