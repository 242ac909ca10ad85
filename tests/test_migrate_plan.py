"""gitjsonl._migrate.plan: splitting, scanning, planning and verifying a migration."""

from __future__ import annotations

import hashlib
import itertools
import json
import random

import pytest

from gitjsonl import MigrationError
from gitjsonl._github import DirEntry
from gitjsonl._migrate.plan import (
    BLANK_LINE,
    TORN_LAST_LINE,
    LineProblem,
    MigrationPlan,
    Move,
    Renumbering,
    normalise,
    plan_migration,
    renumber_existing,
    scan_lines,
    split_into_segments,
    verify_migration,
)
from gitjsonl._records import NOT_JSON, NOT_OBJECT, NOT_UNICODE, NOT_UTF8
from gitjsonl._segments import list_log, segment_name, sorted_segments

# --- helpers -----------------------------------------------------------------------------------


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def random_jsonl(rng: random.Random, count: int) -> bytes:
    """Lines of random sizes, some blank, some huge, some not JSON; maybe a torn end."""
    lines = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.1:
            lines.append(b"")
        elif kind < 0.15:
            lines.append(b"z" * rng.randint(1, 400))
        else:
            lines.append(json.dumps({"t": "y" * rng.randint(0, 150)}).encode())
    data = b"\n".join(lines) + b"\n"
    if rng.random() < 0.3:
        data = data[:-1]
    return data


# --- splitting ---------------------------------------------------------------------------------


class TestNormalise:
    def test_appends_missing_final_newline(self) -> None:
        """A final line without a newline gets one; nothing else changes."""
        assert normalise(b'{"a":1}\n{"b":2}') == b'{"a":1}\n{"b":2}\n'

    def test_leaves_terminated_data_alone(self) -> None:
        """Data that already ends in a newline, blank lines included, is returned unchanged."""
        assert normalise(b"\n\n{}\n") == b"\n\n{}\n"

    def test_empty_stays_empty(self) -> None:
        """Empty input is not given a newline."""
        assert normalise(b"") == b""


class TestSplitIntoSegments:
    def test_empty_input_gives_no_segments(self) -> None:
        """An empty source splits into no segments at all."""
        assert split_into_segments(b"", 100) == []

    def test_small_input_is_one_segment(self) -> None:
        """Data under the cap stays in a single segment."""
        assert split_into_segments(b"a\nb\n", 100) == [b"a\nb\n"]

    def test_line_exactly_at_cap_fits(self) -> None:
        """A segment may be exactly segment_bytes long."""
        assert split_into_segments(b"abc\ndef\n", 4) == [b"abc\n", b"def\n"]

    def test_splits_only_at_line_ends(self) -> None:
        """Lines are packed greedily up to the cap and never cut."""
        assert split_into_segments(b"aa\nbb\ncc\n", 6) == [b"aa\nbb\n", b"cc\n"]

    def test_oversized_line_gets_its_own_segment(self) -> None:
        """A line longer than the cap becomes one segment of its own, uncut."""
        data = b"a\n" + b"x" * 10 + b"\nb\n"
        assert split_into_segments(data, 4) == [b"a\n", b"x" * 10 + b"\n", b"b\n"]

    def test_torn_last_line_is_terminated(self) -> None:
        """The normalised source is what is split: a torn last line gains a newline."""
        assert split_into_segments(b"a\nbb", 3) == [b"a\n", b"bb\n"]

    def test_blank_lines_are_kept(self) -> None:
        """Blank lines are bytes of the source like any other and survive the split."""
        assert b"".join(split_into_segments(b"\n\na\n\n", 2)) == b"\n\na\n\n"

    def test_carriage_returns_are_not_line_ends(self) -> None:
        """Only \\n ends a line: \\r and \\r\\n are kept inside the lines they belong to."""
        data = b"a\rb\r\nc\n"
        assert split_into_segments(data, 5) == [b"a\rb\r\n", b"c\n"]

    def test_cap_below_one_is_refused(self) -> None:
        """A segment size under one byte is refused with MigrationError."""
        with pytest.raises(MigrationError):
            split_into_segments(b"a\n", 0)

    @pytest.mark.parametrize("seed", range(40))
    def test_invariants_on_random_logs(self, seed: int) -> None:
        """Concatenation equals the normalised input, caps hold, no line is cut, order is kept."""
        rng = random.Random(seed)
        data = random_jsonl(rng, rng.randint(0, 300))
        cap = rng.randint(1, 600)
        segments = split_into_segments(data, cap)
        assert b"".join(segments) == normalise(data)
        for segment in segments:
            assert segment
            assert segment.endswith(b"\n")  # every boundary is a line end
            if len(segment) > cap:
                assert segment.count(b"\n") == 1  # only a single line may exceed the cap
        # Greedy packing: the next segment's first line would not have fitted.
        for current, following in itertools.pairwise(segments):
            first_line = following[: following.index(b"\n") + 1]
            assert len(current) + len(first_line) > cap


# --- scanning ----------------------------------------------------------------------------------


class TestScanLines:
    def test_clean_file(self) -> None:
        """A file of JSON objects reports its line count and no problems."""
        report = scan_lines(jsonl({"a": 1}, {"b": 2}))
        assert report.line_count == 2
        assert report.problems == []
        assert report.ok

    def test_empty_file(self) -> None:
        """An empty file has no lines and no problems."""
        assert scan_lines(b"").line_count == 0
        assert scan_lines(b"").ok

    def test_each_kind_of_bad_line(self) -> None:
        """Blank, non-JSON, non-object and non-UTF-8 lines are reported by 1-based number."""
        data = b'{"ok":1}\n\n{not json\n[1,2]\n\xff\xfe\n"s"\n'
        report = scan_lines(data)
        assert report.line_count == 6
        assert report.problems == [
            LineProblem(2, BLANK_LINE),
            LineProblem(3, NOT_JSON),
            LineProblem(4, NOT_OBJECT),
            LineProblem(5, NOT_UTF8),
            LineProblem(6, NOT_OBJECT),
        ]
        assert not report.ok

    def test_whitespace_only_line_is_blank(self) -> None:
        """A line of spaces counts as blank, not as bad JSON."""
        assert scan_lines(b"  \t\n").problems == [LineProblem(1, BLANK_LINE)]

    def test_torn_last_line_that_is_json(self) -> None:
        """A complete record missing only its newline is reported as torn, nothing else."""
        report = scan_lines(b'{"a":1}\n{"b":2}')
        assert report.line_count == 2
        assert report.problems == [LineProblem(2, TORN_LAST_LINE)]

    def test_torn_last_line_cut_mid_record(self) -> None:
        """A record cut mid-way is reported both as torn and as not JSON."""
        report = scan_lines(b'{"a":1}\n{"b":')
        assert report.problems == [LineProblem(2, TORN_LAST_LINE), LineProblem(2, NOT_JSON)]

    def test_nan_is_not_json(self) -> None:
        """NaN and Infinity, which Python accepts, are reported as not JSON."""
        report = scan_lines(b'{"a":NaN}\n{"b":-Infinity}\n')
        assert report.problems == [LineProblem(1, NOT_JSON), LineProblem(2, NOT_JSON)]

    def test_lone_surrogate_is_not_valid_unicode(self) -> None:
        """A string escaping half a surrogate pair is reported; an escaped emoji is fine."""
        report = scan_lines(b'{"a":"\\ud800"}\n{"b":"\\ud83d\\ude00"}\n')
        assert report.problems == [LineProblem(1, NOT_UNICODE)]

    def test_line_count_matches_plan(self) -> None:
        """The scan counts lines exactly as the plan does, blank and torn ones included."""
        data = b"\n{}\n\nx"
        assert scan_lines(data).line_count == plan_migration(data, segment_bytes=10).line_count

    @pytest.mark.parametrize("seed", range(10))
    def test_never_raises_on_random_bytes(self, seed: int) -> None:
        """Arbitrary bytes are scanned without an exception, every line numbered in range."""
        rng = random.Random(seed)
        data = bytes(rng.choice(b'{}[]":,\n\xff\x00 ab1') for _ in range(2000))
        report = scan_lines(data)
        assert all(1 <= p.line_number <= report.line_count for p in report.problems)


# --- plan and verification ---------------------------------------------------------------------


class TestPlanMigration:
    def test_segment_names_start_at_first_number(self) -> None:
        """Segments are named with eight-digit numbers counting from first_segment_number."""
        plan = plan_migration(b"aa\nbb\ncc\n", segment_bytes=3, first_segment_number=7)
        assert plan.segments == [
            ("00000007.jsonl", b"aa\n"),
            ("00000008.jsonl", b"bb\n"),
            ("00000009.jsonl", b"cc\n"),
        ]

    def test_default_numbering_starts_at_one(self) -> None:
        """Without first_segment_number the first segment is 00000001.jsonl."""
        assert plan_migration(b"{}\n", segment_bytes=10).segments[0][0] == "00000001.jsonl"

    def test_counts_and_hash_over_normalised_source(self) -> None:
        """Line count and SHA-256 describe the source with its torn last line terminated."""
        source = b'\n{"a":1}\n{"b":2}'
        plan = plan_migration(source, segment_bytes=8)
        assert plan.normalised
        assert plan.line_count == 3
        assert plan.sha256 == hashlib.sha256(source + b"\n").hexdigest()
        assert b"".join(data for _, data in plan.segments) == source + b"\n"
        assert plan.byte_count == len(source) + 1

    def test_terminated_source_is_not_normalised(self) -> None:
        """A source that ends in a newline is planned byte for byte."""
        plan = plan_migration(jsonl({"a": 1}), segment_bytes=100)
        assert not plan.normalised
        assert plan.sha256 == hashlib.sha256(jsonl({"a": 1})).hexdigest()

    def test_bad_lines_are_reported_and_kept(self) -> None:
        """The plan carries the scan of the source, and its segments keep the bad lines."""
        source = b'{"a":1}\nnot json\n'
        plan = plan_migration(source, segment_bytes=100)
        assert plan.scan.problems == [LineProblem(2, NOT_JSON)]
        assert plan.segments[0][1] == source

    def test_empty_source(self) -> None:
        """An empty source plans no segments, zero lines and the hash of nothing."""
        plan = plan_migration(b"", segment_bytes=100)
        assert plan.segments == []
        assert plan.line_count == 0
        assert plan.sha256 == hashlib.sha256(b"").hexdigest()

    def test_oversized_segments_listed(self) -> None:
        """Segments that exceed the cap (single long lines) are listed by name."""
        plan = plan_migration(b"a\n" + b"x" * 20 + b"\n", segment_bytes=5)
        assert plan.oversized == ["00000002.jsonl"]

    def test_refuses_negative_first_number(self) -> None:
        """A negative first segment number is refused with MigrationError."""
        with pytest.raises(MigrationError):
            plan_migration(b"{}\n", segment_bytes=10, first_segment_number=-1)

    def test_refuses_zero_cap(self) -> None:
        """A zero segment size is refused with MigrationError."""
        with pytest.raises(MigrationError):
            plan_migration(b"{}\n", segment_bytes=0)


class TestVerifyMigration:
    @pytest.fixture
    def plan(self) -> MigrationPlan:
        return plan_migration(jsonl(*({"i": i} for i in range(50))), segment_bytes=64)

    def test_exact_read_back_verifies(self, plan: MigrationPlan) -> None:
        """Reading back exactly the planned segments gives no discrepancies."""
        assert verify_migration(plan, [data for _, data in plan.segments]) == []

    def test_same_bytes_split_differently_verifies(self, plan: MigrationPlan) -> None:
        """Verification is over the concatenated bytes, not the segment boundaries."""
        whole = b"".join(data for _, data in plan.segments)
        assert verify_migration(plan, [whole]) == []

    def test_missing_line_is_caught(self, plan: MigrationPlan) -> None:
        """A line missing from the read-back breaks both the line count and the hash."""
        segments = [data for _, data in plan.segments]
        segments[1] = segments[1].split(b"\n", 1)[1]
        problems = verify_migration(plan, segments)
        assert any(p.startswith("line count: planned 50, read back 49") for p in problems)
        assert any(p.startswith("SHA-256") for p in problems)
        first_line_of_second = plan.segments[0][1].count(b"\n") + 1
        assert f"first difference at line {first_line_of_second}" in problems

    def test_changed_byte_is_caught(self, plan: MigrationPlan) -> None:
        """One changed byte keeps the line count but fails the hash, at the right line."""
        segments = [data for _, data in plan.segments]
        segments[0] = segments[0].replace(b'"i": 0', b'"i": 9', 1)
        problems = verify_migration(plan, segments)
        assert len(problems) == 2
        assert problems[0].startswith("SHA-256")
        assert problems[1] == "first difference at line 1"

    def test_missing_segment_is_caught(self, plan: MigrationPlan) -> None:
        """A whole segment missing is reported along with the segment counts."""
        segments = [data for _, data in plan.segments][:-1]
        problems = verify_migration(plan, segments)
        assert f"segments: planned {len(plan.segments)}, read back {len(segments)}" in problems


# --- renumbering the destination's segments (--force) ------------------------------------------


def folder_of(numbers: set[int], *others: DirEntry) -> dict[str, tuple[DirEntry, bytes]]:
    """A destination holding a segment per number (record ``100 + number`` in each; the
    blob sha names the content), plus ``others`` (content: their name)."""
    folder = {}
    for number in sorted(numbers):
        name, content = segment_name(number), jsonl({"id": 100 + number})
        folder[name] = (DirEntry(name, f"log/{name}", f"{number:040d}", 10, "file"), content)
    for entry in others:
        folder[entry.name] = (entry, entry.name.encode())
    return folder


def force(
    folder: dict[str, tuple[DirEntry, bytes]], source: bytes
) -> tuple[MigrationPlan, Renumbering, dict[str, bytes]]:
    """Plan a forced migration of ``source`` over ``folder`` and apply its tree to a copy
    of the folder: the plan, the renumbering, and the file names and bytes it leaves."""
    listing = list_log(entry for entry, _ in folder.values())
    plan = plan_migration(source, segment_bytes=10, reserved=listing.reserved)
    renumbering = renumber_existing(listing, plan)
    blobs = {entry.sha: content for entry, content in folder.values()}
    after = {name: content for name, (_, content) in folder.items()}
    after.update(plan.segments)
    for name, sha in renumbering.tree().items():
        if sha is None:
            del after[name]
        else:
            after[name] = blobs[sha]
    return plan, renumbering, after


def read_in_order(files: dict[str, bytes]) -> list[int]:
    """The ids a reader gets from the folder: its segments in number order."""
    data = b"".join(files[name] for _, name in sorted_segments(files))
    return [json.loads(line)["id"] for line in data.splitlines()]


class TestRenumberExisting:
    def test_gap_leaves_no_duplicate(self) -> None:
        """Segments 1 and 3 under one migrated segment become 2 and 3, not 2 and 4 beside
        the old 3: the colleague's case, where record 103 was read twice."""
        _, renumbering, after = force(folder_of({1, 3}), jsonl({"id": 1}))
        assert renumbering.moves == (
            Move("00000001.jsonl", "00000002.jsonl", f"{1:040d}"),
            Move("00000003.jsonl", "00000003.jsonl", f"{3:040d}"),
        )
        assert renumbering.deletes == ()
        assert sorted(after) == [segment_name(n) for n in (1, 2, 3)]
        assert read_in_order(after) == [1, 101, 103]

    def test_old_names_past_the_new_ones_are_deleted(self) -> None:
        """Segments 4 and 5 under one migrated segment become 2 and 3; 4 and 5 are deleted."""
        _, renumbering, after = force(folder_of({4, 5}), jsonl({"id": 1}))
        assert [move.new for move in renumbering.moves] == ["00000002.jsonl", "00000003.jsonl"]
        assert renumbering.deletes == ("00000004.jsonl", "00000005.jsonl")
        assert read_in_order(after) == [1, 104, 105]

    @pytest.mark.parametrize("existing", [{1, 3}, {2}, {1, 2, 5, 9}, {4, 5}])
    @pytest.mark.parametrize("migrated", [1, 3])
    def test_every_record_once_and_no_stray_name(self, existing: set[int], migrated: int) -> None:
        """Whatever the gaps: the migrated records, then the existing ones, each once, in
        consecutive segments; every old name rewritten or deleted, nothing else written."""
        source = jsonl(*({"id": i} for i in range(1, migrated + 1)))
        plan, renumbering, after = force(folder_of(existing), source)
        assert len(plan.segments) == migrated  # one record a segment at 10 bytes
        expected = [*range(1, migrated + 1), *(100 + n for n in sorted(existing))]
        assert read_in_order(after) == expected
        total = migrated + len(existing)
        assert sorted(after) == [segment_name(n) for n in range(1, total + 1)]
        written = {name for name, _ in plan.segments} | set(renumbering.tree())
        assert {segment_name(n) for n in existing} <= written
        assert set(renumbering.deletes) <= {segment_name(n) for n in existing}
        shas = {move.new: move.sha for move in renumbering.moves}
        assert renumbering.check(shas | {name: "m" for name, _ in plan.segments}) == []

    def test_merged_small_files_keep_their_order(self) -> None:
        """Files a compaction left (1 large, 2 merged, 6 and 7 small after a gap) keep
        their order behind the migrated ones, small files last, as the next batch expects."""
        folder = folder_of({1, 2, 6, 7})
        _, renumbering, after = force(folder, jsonl({"id": 1}, {"id": 2}))
        assert read_in_order(after) == [1, 2, 101, 102, 106, 107]
        assert [move.new for move in renumbering.moves][-2:] == ["00000005.jsonl", "00000006.jsonl"]
        assert renumbering.deletes == ("00000007.jsonl",)

    def test_names_of_other_patterns_are_left_alone(self) -> None:
        """A .jsonl name this layout does not write is no segment: not moved, not deleted,
        and never overwritten (its digits are not a segment's name)."""
        odd = DirEntry("000000003.jsonl", "log/000000003.jsonl", "a" * 40, 5, "file")
        _, renumbering, after = force(folder_of({3}, odd), jsonl({"id": 1}))
        assert [move.old for move in renumbering.moves] == ["00000003.jsonl"]
        assert "000000003.jsonl" not in renumbering.tree()
        assert after["000000003.jsonl"] == b"000000003.jsonl"
        assert read_in_order(after) == [1, 103]

    def test_a_folder_with_a_segment_name_is_never_replaced(self) -> None:
        """A folder named like segment 2 keeps its name: the migrated and the renumbered
        segments skip its number, as a Log's next file does."""
        folder = DirEntry("00000002.jsonl", "log/00000002.jsonl", "d" * 40, 0, "dir", "040000")
        plan, renumbering, after = force(folder_of({5}, folder), jsonl({"id": 1}, {"id": 2}))
        assert [name for name, _ in plan.segments] == ["00000001.jsonl", "00000003.jsonl"]
        assert renumbering.moves == (Move("00000005.jsonl", "00000004.jsonl", f"{5:040d}"),)
        assert "00000002.jsonl" not in renumbering.tree()
        assert after["00000002.jsonl"] == b"00000002.jsonl"

    def test_nothing_to_renumber(self) -> None:
        """A destination without segments has nothing moved or deleted."""
        _, renumbering, _ = force(folder_of(set()), jsonl({"id": 1}))
        assert renumbering == Renumbering((), (), ("00000001.jsonl",))
        assert renumbering.renumbered == 0

    def test_check_names_a_stray_segment(self) -> None:
        """A segment file the renumbering did not plan is a discrepancy, by name."""
        _, renumbering, _ = force(folder_of({2}), jsonl({"id": 1}))
        after = {"00000001.jsonl": "m", "00000002.jsonl": f"{2:040d}", "00000004.jsonl": "x"}
        assert renumbering.check(after) == [
            "00000004.jsonl: a segment file the migration did not plan"
        ]

    def test_check_names_a_segment_with_the_wrong_blob(self) -> None:
        """An existing segment not found under its new name, with its blob, is a discrepancy."""
        _, renumbering, _ = force(folder_of({1}), jsonl({"id": 1}))
        assert renumbering.check({"00000001.jsonl": "m", "00000002.jsonl": "x" * 40}) == [
            f"00000002.jsonl (was 00000001.jsonl): expected blob {1:040d}, found {'x' * 40}"
        ]
