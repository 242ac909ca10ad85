"""The segment layout and the pure planning of what one batch writes."""

from __future__ import annotations

import random

import pytest

from gitjsonl._github import DirEntry
from gitjsonl._segments import (
    MAX_RUN,
    SegmentFile,
    list_log,
    plan_batch,
    segment_name,
    segment_number,
    small_bytes,
    small_run,
    sorted_segments,
)

CAP = 1600  # segment_bytes in these tests: files under 100 bytes are small


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

    def test_only_names_the_layout_writes(self) -> None:
        """Fullwidth digits, 13+ digits, other zero paddings and number 0 are not segments."""
        assert segment_number("\uff10" * 7 + "\uff12.jsonl") is None
        assert segment_number("1" * 4301 + ".jsonl") is None
        assert segment_number("9" * 13 + ".jsonl") is None
        assert segment_number("000000002.jsonl") is None
        assert segment_number("00000000.jsonl") is None
        assert segment_number("999999999999.jsonl") == 999_999_999_999

    def test_number_zero_is_refused(self) -> None:
        """Numbering starts at 1."""
        with pytest.raises(ValueError, match="start at 1"):
            segment_name(0)


def entry(name: str, *, kind: str = "file", mode: str = "100644", size: int = 10) -> DirEntry:
    return DirEntry(name, f"log/{name}", "0" * 40, size, kind, mode)


class TestListLog:
    def test_foreign_names_and_non_files_are_ignored_and_reported(self) -> None:
        """A fullwidth or 4,301-digit name is not read; a folder or symlink is not read
        but its number is taken, so the next file never replaces it."""
        listing = list_log(
            [
                entry("00000001.jsonl"),
                entry("\uff10" * 7 + "\uff12.jsonl"),
                entry("1" * 4301 + ".jsonl"),
                entry("00000002.jsonl", kind="dir", mode="040000"),
                entry("00000003.jsonl", kind="symlink", mode="120000"),
                entry("README.md"),
            ]
        )
        assert [e.name for e in listing.segments] == ["00000001.jsonl"]
        assert listing.next_number == 4
        assert listing.reserved == (2, 3)
        assert len(listing.ignored) == 4
        assert all(len(problem) < 300 for problem in listing.ignored)

    def test_an_executable_file_is_read_but_never_merged(self) -> None:
        """A 100755 file is a segment, but not one a compaction may rewrite."""
        listing = list_log([entry("00000001.jsonl", mode="100755")])
        assert listing.files() == [SegmentFile(1, 10, mergeable=False)]


def plan(
    segments: list[tuple[int, bytes]], lines: list[bytes], *, next_number: int | None = None
) -> tuple[list[tuple[int, bytes]], list[int]]:
    files = [SegmentFile(number, len(content)) for number, content in segments]
    highest = segments[-1][0] if segments else 0
    result = plan_batch(
        files,
        lines,
        segment_bytes=CAP,
        next_number=next_number or highest + 1,
        contents=dict(segments),
    )
    return [(w.number, w.content) for w in result.writes], list(result.deletes)


class TestPlanBatch:
    def test_small_threshold_is_a_sixteenth(self) -> None:
        """Files under segment_bytes/16 are small."""
        assert small_bytes(CAP) == 100
        assert small_bytes(3) == 1

    def test_a_small_batch_goes_into_a_new_file(self) -> None:
        """A batch never rewrites a file to add to it: its lines get the next number."""
        writes, deletes = plan([(1, b"a" * 9 + b"\n")], lines_of(10, 20))
        assert writes == [(2, b"".join(lines_of(10, 20)))]
        assert deletes == []

    def test_first_batch_is_segment_one(self) -> None:
        """With no segment yet, the batch becomes 00000001.jsonl."""
        writes, _ = plan([], lines_of(10))
        assert [n for n, _ in writes] == [1]

    def test_run_of_max_files_is_merged_with_the_batch(self) -> None:
        """MAX_RUN small files at the end are merged with the batch into the first of them."""
        run = [(n, b"%d" % n * 9 + b"\n") for n in range(3, 3 + MAX_RUN)]
        writes, deletes = plan([(1, b"x" * 499 + b"\n"), *run], lines_of(10))
        assert writes == [(3, b"".join(c for _, c in run) + lines_of(10)[0])]
        assert deletes == list(range(4, 3 + MAX_RUN))

    def test_run_reaching_small_bytes_is_merged(self) -> None:
        """Fewer files are merged as soon as they and the batch reach small_bytes."""
        writes, deletes = plan([(1, b"a" * 59 + b"\n")], lines_of(50))
        assert writes == [(1, b"a" * 59 + b"\n" + lines_of(50)[0])]
        assert deletes == []

    def test_large_files_are_never_rewritten(self) -> None:
        """A file of small_bytes or more closes the run: it is never merged again."""
        writes, deletes = plan([(1, b"a" * 99 + b"\n"), (2, b"b\n")], lines_of(98))
        assert writes == [(2, b"b\n" + lines_of(98)[0])]
        assert deletes == []

    def test_big_batch_is_packed_into_full_new_files(self) -> None:
        """A batch of small_bytes or more after large files fills new files of its own."""
        writes, deletes = plan([(1, b"a" * 499 + b"\n")], lines_of(*[400] * 9))
        assert [n for n, _ in writes] == [2, 3, 4]
        assert [len(c) for _, c in writes] == [1600, 1600, 400]
        assert deletes == []

    def test_big_batch_takes_the_small_run_along(self) -> None:
        """A batch of small_bytes or more merges the small files before it, so none is
        left behind a large file: the run's first number, then the next ones."""
        run = [(2, b"b\n"), (3, b"c\n")]
        writes, deletes = plan([(1, b"a" * 499 + b"\n"), *run], lines_of(*[400] * 9))
        assert [n for n, _ in writes] == [2, 4, 5]
        assert writes[0][1].startswith(b"b\nc\n" + lines_of(400)[0])
        assert [len(c) for _, c in writes] == [1204, 1600, 800]
        assert deletes == [3]

    def test_a_record_too_large_to_join_the_run_leaves_it(self) -> None:
        """The one exception: a first record that cannot share a file with the run's
        bytes gets a file of its own after them."""
        writes, deletes = plan([(1, b"b" * 50 + b"\n")], lines_of(1580))
        assert [n for n, _ in writes] == [2]
        assert deletes == []

    def test_oversized_line_gets_a_file_of_its_own(self) -> None:
        """A record longer than segment_bytes is never split."""
        writes, _ = plan([], lines_of(100, 2000, 100))
        assert [len(c) for _, c in writes] == [100, 2000, 100]

    def test_numbers_follow_a_folder_named_like_a_segment(self) -> None:
        """next_number (past a folder or symlink with a segment's name) numbers new files."""
        writes, _ = plan([(1, b"a" * 500 + b"\n")], lines_of(10), next_number=7)
        assert writes[0][0] == 7

    def test_torn_last_line_is_ended_not_glued(self) -> None:
        """A small file without its last newline is ended when merged."""
        writes, _ = plan([(1, b'{"a":1}\n{"tor')], [b"b" * 89 + b"\n"])
        assert writes == [(1, b'{"a":1}\n{"tor\n' + b"b" * 89 + b"\n")]

    def test_new_file_after_a_torn_large_file_starts_with_a_blank_line(self) -> None:
        """A torn line at the end of a large file is not glued to our first record."""
        writes, _ = plan([(1, b"x" * 200)], lines_of(10))
        assert writes == [(2, b"\n" + lines_of(10)[0])]

    def test_run_without_contents_is_not_merged(self) -> None:
        """Without the bytes of the run, the batch goes into a new file."""
        result = plan_batch(
            [SegmentFile(1, 10)] * 1,
            lines_of(95),
            segment_bytes=CAP,
            next_number=2,
            contents={},
        )
        assert [w.number for w in result.writes] == [2]

    def test_small_run_stops_at_a_file_that_may_not_be_merged(self) -> None:
        """The run is the newest mergeable small files, at most MAX_RUN."""
        files = [SegmentFile(n, 10) for n in range(1, 8)]
        assert [f.number for f in small_run(files, CAP)] == list(range(8 - MAX_RUN, 8))
        files[5] = SegmentFile(6, 10, mergeable=False)
        assert [f.number for f in small_run(files, CAP)] == [7]

    def test_no_lines_no_writes(self) -> None:
        """An empty batch plans nothing."""
        assert plan([], []) == ([], [])

    @pytest.mark.parametrize("seed", range(30))
    def test_invariants_on_random_batches(self, seed: int) -> None:
        """Every record once, in order; caps hold; at most MAX_RUN small files; only run
        files are ever rewritten or deleted; no small file stands before a large one."""
        rng = random.Random(seed)
        folder: dict[int, bytes] = {}
        expected = b""
        uploaded = appended = 0
        oversized = False
        for _ in range(60):
            big = rng.random() < 0.2
            sizes = [rng.randint(1, 3000 if big else 40) for _ in range(rng.randint(1, 6))]
            batch = lines_of(*sizes)
            expected += b"".join(batch)
            files = [SegmentFile(n, len(c)) for n, c in sorted(folder.items())]
            run = {f.number for f in small_run(files, CAP)}
            result = plan_batch(
                files,
                batch,
                segment_bytes=CAP,
                next_number=max(folder, default=0) + 1,
                contents=dict(folder),
            )
            for write in result.writes:
                assert write.number not in folder or write.number in run
                assert len(write.content) <= CAP or write.content.count(b"\n") == 1
                folder[write.number] = write.content
                uploaded += len(write.content)
            for number in result.deletes:
                assert number in run
                del folder[number]
            appended += len(b"".join(batch))
            assert b"".join(folder[n] for n in sorted(folder)) == expected
            assert len(small_run(files, CAP)) <= MAX_RUN
            # The one exception: a record too large to share a file with the small files.
            oversized = oversized or max(sizes) > CAP - MAX_RUN * small_bytes(CAP)
            assert oversized or stranded(folder) == [], stranded(folder)
        assert uploaded <= 3 * appended


def stranded(folder: dict[int, bytes]) -> list[int]:
    """The small files of ``folder`` that stand before a file that is not small."""
    sizes = [(n, len(folder[n])) for n in sorted(folder)]
    large = [i for i, (_, size) in enumerate(sizes) if size >= small_bytes(CAP)]
    return [n for n, size in sizes[: large[-1]] if size < small_bytes(CAP)] if large else []


class TestHistories:
    """Whole histories of batches from several writers, as the branch sees them."""

    @staticmethod
    def records(writer: int, first: int, count: int, size: int) -> list[bytes]:
        return [
            b'{"w":%d,"n":%d,"pad":"%s"}\n' % (writer, first + i, b"x" * size) for i in range(count)
        ]

    @pytest.mark.parametrize("seed", range(40))
    def test_several_writers_never_strand_a_small_file(self, seed: int) -> None:
        """Writers taking turns on one branch (each planning on the head as it reads it:
        the small run's bytes only, a stale view refused and read again), with trickles
        and bursts: at every commit every record is there once, in each writer's order,
        and no small file stands before a large one."""
        rng = random.Random(seed)
        folder: dict[int, bytes] = {}
        sent = dict.fromkeys(range(3), 0)
        stale: dict[int, dict[int, bytes]] = {}
        for _ in range(120):
            writer = rng.randrange(3)
            burst = rng.random() < 0.15
            count = rng.randint(10, 40) if burst else rng.randint(1, 4)
            batch = self.records(writer, sent[writer], count, rng.randint(0, 60))
            view = stale.get(writer)
            if view is not None and view != folder:
                del stale[writer]  # its fast-forward is refused: it reads the head again
                view = None
            if view is None:
                view = dict(folder)
            files = [SegmentFile(n, len(c)) for n, c in sorted(view.items())]
            known = {f.number: view[f.number] for f in small_run(files, CAP)}
            result = plan_batch(
                files,
                batch,
                segment_bytes=CAP,
                next_number=max(view, default=0) + 1,
                contents=known,
            )
            for write in result.writes:
                folder[write.number] = write.content
            for number in result.deletes:
                del folder[number]
            sent[writer] += count
            stale = {w: dict(folder) for w in range(3) if rng.random() < 0.5}
            lines = b"".join(folder[n] for n in sorted(folder)).splitlines()
            for w in range(3):
                mine = [line for line in lines if line.startswith(b'{"w":%d,' % w)]
                assert [int(line.split(b'"n":')[1].split(b",")[0]) for line in mine] == list(
                    range(sent[w])
                )
            assert stranded(folder) == [], (seed, stranded(folder))

    def test_the_check_catches_a_stranded_file(self) -> None:
        """The checker itself: a small file behind a large one is reported."""
        assert stranded({1: b"a\n", 2: b"b" * 200}) == [1]
        assert stranded({1: b"b" * 200, 2: b"a\n", 3: b"c\n"}) == []
        assert stranded({1: b"a\n", 2: b"c\n"}) == []
