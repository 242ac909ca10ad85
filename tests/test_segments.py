"""The segment layout and the pure planning of what one batch writes."""

from __future__ import annotations

import itertools
import random

import pytest

from gitjsonl._segments import (
    ActiveSegment,
    plan_segments,
    segment_name,
    segment_number,
    sorted_segments,
)


def lines_of(*sizes: int) -> list[bytes]:
    return [b"x" * (size - 1) + b"\n" for size in sizes]


class TestNames:
    def test_name_is_eight_digits(self) -> None:
        """Segment 1 is 00000001.jsonl so that names sort like numbers."""
        assert segment_name(1) == "00000001.jsonl"
        assert segment_name(123456789) == "123456789.jsonl"

    def test_number_round_trips_and_ignores_other_files(self) -> None:
        """Only NNNNNNNN.jsonl files are segments; README.md and the manifest are not."""
        assert segment_number("00000042.jsonl") == 42
        assert segment_number("README.md") is None
        assert segment_number("_gitjsonl.json") is None
        assert segment_number("42.jsonl") is None

    def test_sorted_by_number_not_by_name(self) -> None:
        """A nine-digit segment sorts after every eight-digit one."""
        names = ["100000000.jsonl", "00000002.jsonl", "README.md", "00000001.jsonl"]
        assert [n for n, _ in sorted_segments(names)] == [1, 2, 100000000]

    def test_number_zero_is_refused(self) -> None:
        """Numbering starts at 1."""
        with pytest.raises(ValueError, match="start at 1"):
            segment_name(0)


class TestPlanSegments:
    def test_first_batch_starts_segment_one(self) -> None:
        """With no segment yet, the batch becomes 00000001.jsonl."""
        (write,) = plan_segments(None, lines_of(10, 20), 100)
        assert write.number == 1
        assert write.content == b"".join(lines_of(10, 20))

    def test_batch_that_fits_appends_to_active(self) -> None:
        """A batch that fits under the cap extends the active segment."""
        active = ActiveSegment(3, b"a" * 49 + b"\n", "sha")
        (write,) = plan_segments(active, lines_of(50), 100)
        assert write.number == 3
        assert write.content.startswith(active.content)
        assert len(write.content) == 100

    def test_batch_that_does_not_fit_rotates(self) -> None:
        """A batch that would pass the cap leaves the active segment closed as it was."""
        active = ActiveSegment(3, b"a" * 59 + b"\n", "sha")
        writes = plan_segments(active, lines_of(50), 100)
        assert [w.number for w in writes] == [4]
        assert writes[0].content == b"".join(lines_of(50))

    def test_record_larger_than_cap_gets_its_own_segment(self) -> None:
        """A single line over the cap is alone in a segment, never split."""
        writes = plan_segments(None, lines_of(10, 250, 10), 100)
        assert [len(w.content) for w in writes] == [10, 250, 10]
        assert [w.number for w in writes] == [1, 2, 3]

    def test_empty_active_segment_is_filled_not_skipped(self) -> None:
        """An empty active segment (a fresh file) takes the batch."""
        writes = plan_segments(ActiveSegment(1, b"", "e69de29"), lines_of(150), 100)
        assert [w.number for w in writes] == [1]

    def test_torn_last_line_is_ended_before_appending(self) -> None:
        """A foreign torn line is terminated so our first record stays a line of its own."""
        (write,) = plan_segments(ActiveSegment(1, b'{"a":1}\n{"tor', "s"), [b'{"b":2}\n'], 100)
        assert write.content == b'{"a":1}\n{"tor\n{"b":2}\n'

    def test_no_lines_no_writes(self) -> None:
        """An empty batch writes nothing."""
        assert plan_segments(None, [], 100) == []

    @pytest.mark.parametrize("seed", range(20))
    def test_invariants_on_random_batches(self, seed: int) -> None:
        """Order is kept, nothing is lost, only the last segment may change, caps hold."""
        rng = random.Random(seed)
        cap = rng.randint(50, 400)
        active: ActiveSegment | None = None
        everything: dict[int, bytes] = {}
        expected = b""
        for _ in range(30):
            batch = lines_of(*[rng.randint(1, cap + 50) for _ in range(rng.randint(1, 8))])
            expected += b"".join(batch)
            writes = plan_segments(active, batch, cap)
            previous = active.number if active else 1
            assert writes[0].number in (previous, previous + 1)
            for earlier, later in itertools.pairwise(writes):
                assert later.number == earlier.number + 1
            for write in writes:
                lines = write.content.splitlines(keepends=True)
                assert len(write.content) <= cap or len(lines) == 1
                everything[write.number] = write.content
            last = writes[-1]
            active = ActiveSegment(last.number, last.content, None)
        assert b"".join(everything[n] for n in sorted(everything)) == expected
