"""The pending queue: admission under ``on_full``, sequence numbers, bytes and batch cutting."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from gitjsonl._config import ON_FULL_POLICIES
from gitjsonl._queue import Admission, PendingQueue, admit


def ids() -> Callable[[], str]:
    """Batch ids ``b1``, ``b2``, ... in order."""
    counter = itertools.count(1)
    return lambda: f"b{next(counter)}"


def record(i: int, size: int = 10) -> bytes:
    """A line of exactly ``size`` bytes that names record ``i``."""
    return f"{i}".encode().ljust(size - 1, b".") + b"\n"


def queue_of(*sizes: int) -> PendingQueue:
    queue = PendingQueue()
    for i, size in enumerate(sizes, 1):
        queue.push(record(i, size))
    return queue


#: How full the queue is: (pending_bytes, size, empty) against max_pending_bytes=100.
FILL = {
    "empty": (0, 500, True),  # even a record larger than the cap
    "fits": (60, 40, False),  # exactly at the cap
    "full": (60, 41, False),
}
ADMISSIONS: dict[tuple[str, str], Admission] = {
    ("raise", "empty"): "accept",
    ("raise", "fits"): "accept",
    ("raise", "full"): "raise",
    ("block", "empty"): "accept",
    ("block", "fits"): "accept",
    ("block", "full"): "wait",
    ("drop", "empty"): "accept",
    ("drop", "fits"): "accept",
    ("drop", "full"): "drop",
}


class TestAdmit:
    @pytest.mark.parametrize(("policy", "state"), sorted(ADMISSIONS))
    def test_decision_per_policy_and_fill(self, policy: str, state: str) -> None:
        """An empty or fitting queue accepts; a full one raises, waits or drops per ``on_full``."""
        pending, size, empty = FILL[state]
        decision = admit(
            policy,  # type: ignore[arg-type]
            pending_bytes=pending,
            size=size,
            max_pending_bytes=100,
            empty=empty,
        )
        assert decision == ADMISSIONS[policy, state]

    def test_table_covers_every_policy(self) -> None:
        """The table above has a row for every ``on_full`` policy in every state."""
        assert set(ADMISSIONS) == set(itertools.product(ON_FULL_POLICIES, FILL))


class TestPush:
    def test_sequence_numbers_count_up_from_one(self) -> None:
        """Each record gets the next sequence number; ``last_seq`` is the newest."""
        queue = PendingQueue()
        assert [queue.push(record(i)) for i in range(3)] == [1, 2, 3]
        assert (queue.last_seq, queue.next_seq, queue.committed_seq) == (3, 4, 0)

    def test_sequence_numbers_go_on_from_next_seq(self) -> None:
        """A queue started at ``next_seq`` (after a fork) numbers on from there."""
        queue = PendingQueue(next_seq=41)
        assert queue.committed_seq == 40
        assert queue.push(record(1)) == 41

    def test_bytes_and_length_track_what_is_pending(self) -> None:
        """``bytes`` is the total size of the pending lines and ``len`` their number."""
        queue = queue_of(10, 25, 7)
        assert (len(queue), queue.bytes) == (3, 42)

    def test_extend_queues_recovered_lines_in_order(self) -> None:
        """Lines recovered from a spool are numbered 1..n in their order."""
        queue = PendingQueue()
        queue.extend([record(1), record(2)])
        assert queue.push(record(3)) == 3
        batch = queue.cut(1000, ids())
        assert batch is not None
        assert batch.lines == (record(1), record(2), record(3))


class TestCut:
    def test_empty_queue_has_no_batch(self) -> None:
        """Nothing pending: no batch."""
        assert PendingQueue().cut(100, ids()) is None

    def test_batch_takes_the_front_in_order(self) -> None:
        """A batch holds the oldest records in append order, from the first sequence number."""
        queue = queue_of(10, 10, 10)
        batch = queue.cut(100, ids())
        assert batch is not None
        assert (batch.id, batch.first_seq, batch.last_seq) == ("b1", 1, 3)
        assert batch.lines == (record(1), record(2), record(3))

    @pytest.mark.parametrize(
        ("sizes", "max_batch_bytes", "expected_count"),
        [
            ((10, 10, 10), 30, 3),  # exactly at the limit
            ((10, 10, 10), 29, 2),
            ((10, 10, 10), 10, 1),
            ((50, 10), 20, 1),  # a single larger record goes alone
            ((10, 50, 10), 20, 1),  # the large one waits for the next batch
        ],
    )
    def test_batch_never_exceeds_max_batch_bytes(
        self, sizes: tuple[int, ...], max_batch_bytes: int, expected_count: int
    ) -> None:
        """A batch stays within ``max_batch_bytes`` unless one record alone is larger."""
        queue = queue_of(*sizes)
        batch = queue.cut(max_batch_bytes, ids())
        assert batch is not None
        assert len(batch.lines) == expected_count
        assert batch.size <= max_batch_bytes or len(batch.lines) == 1

    def test_cutting_does_not_remove_records(self) -> None:
        """Records stay pending while their batch is in flight."""
        queue = queue_of(10, 10)
        queue.cut(100, ids())
        assert (len(queue), queue.bytes, queue.committed_seq) == (2, 20, 0)

    def test_resend_returns_the_inflight_batch_unchanged(self) -> None:
        """A batch that may have landed is cut again with the same id and the same lines."""
        queue = queue_of(10, 10)
        new_id = ids()
        first = queue.cut(100, new_id)
        assert first is not None
        queue.push(record(3))  # arrives meanwhile
        again = queue.cut(100, new_id, resend=first.id)
        assert again == first
        assert again is not None
        assert again.lines == (record(1), record(2))

    def test_other_resend_id_gets_a_new_batch(self) -> None:
        """A resend id that is not the batch in flight gets a new batch under a new id."""
        queue = queue_of(10, 10)
        new_id = ids()
        first = queue.cut(100, new_id)
        queue.push(record(3))
        second = queue.cut(100, new_id, resend="someone-else")
        assert first is not None
        assert second is not None
        assert second.id != first.id
        assert second.lines == (record(1), record(2), record(3))
        assert queue.inflight == second

    def test_records_appended_in_flight_wait_for_the_next_batch(self) -> None:
        """Records pushed while a batch is in flight are not in it, and come next."""
        queue = queue_of(10, 10)
        new_id = ids()
        batch = queue.cut(100, new_id)
        assert batch is not None
        queue.push(record(3))
        assert record(3) not in batch.lines
        queue.drop_committed(batch)
        following = queue.cut(100, new_id)
        assert following is not None
        assert (following.first_seq, following.lines) == (3, (record(3),))


class TestDropCommitted:
    def test_drops_the_batch_and_advances_committed_seq(self) -> None:
        """A committed batch leaves the queue; ``committed_seq`` is its last record."""
        queue = queue_of(10, 20, 30)
        batch = queue.cut(30, ids())
        assert batch is not None
        queue.drop_committed(batch)
        assert (len(queue), queue.bytes, queue.committed_seq) == (1, 30, 2)
        assert queue.inflight is None

    def test_next_batch_starts_after_the_committed_one(self) -> None:
        """After a drop the next batch starts at the next sequence number under a new id."""
        queue = queue_of(10, 10, 10)
        new_id = ids()
        first = queue.cut(20, new_id)
        assert first is not None
        queue.drop_committed(first)
        second = queue.cut(20, new_id)
        assert second is not None
        assert (second.id, second.first_seq, second.last_seq) == ("b2", 3, 3)
        queue.drop_committed(second)
        assert (len(queue), queue.bytes, queue.committed_seq) == (0, 0, 3)
        assert queue.cut(20, new_id) is None
