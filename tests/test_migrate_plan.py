"""Tests for gitjsonl._migration: splitting, scanning, history recovery, plan and report."""

from __future__ import annotations

import hashlib
import itertools
import json
import random

import pytest

from gitjsonl import MigrationError, _migration
from gitjsonl._migration import (
    BLANK_LINE,
    NOT_JSON,
    NOT_OBJECT,
    NOT_UTF8,
    TORN_LAST_LINE,
    FileVersion,
    LineProblem,
    Overwrite,
    Recovery,
    format_recovery,
    format_report,
    format_scan,
    normalise,
    plan_migration,
    recover_history,
    scan_lines,
    split_into_segments,
    verify_migration,
)

# --- helpers -----------------------------------------------------------------------------------


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def line(record: object) -> bytes:
    return json.dumps(record).encode() + b"\n"


def history(*contents: bytes | None) -> list[FileVersion]:
    """One version per content, with commits c0, c1... and increasing dates."""
    return [
        FileVersion(commit=f"c{i}", date=f"2024-05-01T00:00:{i:02d}Z", content=content)
        for i, content in enumerate(contents)
    ]


def naive_service(records: list[dict[str, object]], *, empty_past: int) -> list[FileVersion]:
    """Replay the old service: GET, decode, append one line, PUT -- one commit per record.

    GitHub's quirk is reproduced: past ``empty_past`` bytes the GET answers
    ``content: ""``, which the service decodes as an empty log and overwrites.
    """
    stored: bytes | None = None
    versions: list[FileVersion] = []
    for i, record in enumerate(records):
        too_large = stored is None or len(stored) > empty_past
        current = "" if too_large or stored is None else stored.decode("utf-8")
        new_content = current.rstrip("\n") + "\n" + json.dumps(record) + "\n"
        stored = new_content.encode("utf-8")
        versions.append(FileVersion(f"commit{i:05d}", f"2024-05-01T{i:08d}", stored))
    return versions


def _lines(version: FileVersion) -> list[bytes]:
    """The records (non-blank lines) of one version, each ending in a newline."""
    assert version.content is not None
    return [ln + b"\n" for ln in version.content.split(b"\n") if ln.strip()]


def random_records(rng: random.Random, count: int) -> list[dict[str, object]]:
    return [{"id": i, "text": "x" * rng.randint(0, 120)} for i in range(count)]


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


# --- module ------------------------------------------------------------------------------------


class TestModule:
    def test_all_is_sorted_and_complete(self) -> None:
        """__all__ is sorted and names only attributes the module defines."""
        assert _migration.__all__ == sorted(_migration.__all__)
        for name in _migration.__all__:
            assert hasattr(_migration, name)


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


# --- history recovery --------------------------------------------------------------------------


class TestRecoverHistory:
    def test_no_versions(self) -> None:
        """An empty history recovers nothing."""
        recovery = recover_history([])
        assert recovery == Recovery(lines=[], overwrites=[], records_recovered=0)
        assert recovery.content == b""

    def test_no_overwrites_gives_last_version(self) -> None:
        """A history of pure appends recovers exactly the last version's lines."""
        a, b, c = line({"a": 1}), line({"b": 2}), line({"c": 3})
        recovery = recover_history(history(a, a + b, a + b + c))
        assert recovery.lines == [a, b, c]
        assert recovery.overwrites == []
        assert recovery.records_recovered == 0
        assert recovery.content == a + b + c

    def test_blank_lines_are_not_records(self) -> None:
        """The old service's leading blank line (and any other) is dropped from the result."""
        a, b = line({"a": 1}), line({"b": 2})
        recovery = recover_history(history(b"\n" + a, b"\n" + a + b"\n" + b))
        assert recovery.lines == [a, b]
        assert recovery.overwrites == []

    def test_single_overwrite(self) -> None:
        """Records dropped by an overwrite come back, ahead of the record that replaced them."""
        a, b, x = line({"a": 1}), line({"b": 2}), line({"x": 9})
        recovery = recover_history(history(a, a + b, x))
        assert recovery.lines == [a, b, x]
        assert recovery.overwrites == [Overwrite("c2", "2024-05-01T00:00:02Z", 2, 2)]
        assert recovery.records_recovered == 2

    def test_clobber_repeated_three_times(self) -> None:
        """Three clobbers by the old service each restore their lost records, in order."""
        records = [{"id": i, "pad": "p" * 40} for i in range(30)]
        versions = naive_service(records, empty_past=500)
        recovery = recover_history(versions)
        assert recovery.lines == [line(r) for r in records]
        assert len(recovery.overwrites) == 3
        # 61-62 bytes a line: the tenth GET of each run sees over 500 bytes and gets "".
        assert [(o.commit, o.records_lost, o.records_recovered) for o in recovery.overwrites] == [
            ("commit00009", 9, 9),
            ("commit00018", 9, 9),
            ("commit00027", 9, 9),
        ]
        assert recovery.overwrites[0].date == versions[9].date
        assert _lines(versions[-1]) == [line(r) for r in records[27:]]
        assert recovery.records_recovered == 27

    def test_identical_version_changes_nothing(self) -> None:
        """A version equal to its predecessor adds nothing and is no overwrite."""
        a, b = line({"a": 1}), line({"b": 2})
        recovery = recover_history(history(a, a + b, a + b, a + b))
        assert recovery.lines == [a, b]
        assert recovery.overwrites == []

    def test_legitimate_duplicates_stay(self) -> None:
        """The same record appended twice appears twice, as do repeats across an overwrite."""
        a, x = line({"a": 1}), line({"x": 9})
        recovery = recover_history(history(a, a + a, a + a + a, x, x + a))
        assert recovery.lines == [a, a, a, x, a]
        assert recovery.overwrites[0].records_lost == 3

    def test_partial_truncation(self) -> None:
        """Dropping the tail of the file is an overwrite losing just that tail."""
        a, b, c = line({"a": 1}), line({"b": 2}), line({"c": 3})
        recovery = recover_history(history(a + b + c, a))
        assert recovery.lines == [a, b, c]
        assert recovery.overwrites == [Overwrite("c1", "2024-05-01T00:00:01Z", 2, 2)]

    def test_extension_after_overwrite(self) -> None:
        """Appends after an overwrite follow the restored records, and are no overwrite."""
        a, b, x, y, z = (line({k: 0}) for k in "abxyz")
        recovery = recover_history(history(a, a + b, x, x + y, x + y + z))
        assert recovery.lines == [a, b, x, y, z]
        assert len(recovery.overwrites) == 1
        assert recovery.overwrites[0].commit == "c2"
        assert recovery.records_recovered == 2

    def test_rewrite_in_the_middle(self) -> None:
        """A changed middle line is an overwrite: the old line and its successors are kept."""
        a, b, c, b2 = line({"a": 1}), line({"b": 2}), line({"c": 3}), line({"b": 22})
        recovery = recover_history(history(a + b + c, a + b2 + c))
        assert recovery.lines == [a, b, c, b2, c]
        assert recovery.overwrites[0].records_lost == 2
        assert recovery.records_recovered == 2

    def test_deletion_then_fresh_recreation(self) -> None:
        """Re-creating a deleted file afresh is an overwrite naming the deleting commit."""
        a, b, x = line({"a": 1}), line({"b": 2}), line({"x": 9})
        recovery = recover_history(history(a, a + b, None, None, x))
        assert recovery.lines == [a, b, x]
        assert recovery.overwrites == [
            Overwrite("c4", "2024-05-01T00:00:04Z", 2, 2, deleted_at="c2")
        ]

    def test_deletion_then_restore(self) -> None:
        """Restoring a deleted file (plus appends) loses and duplicates nothing."""
        a, b, c = line({"a": 1}), line({"b": 2}), line({"c": 3})
        recovery = recover_history(history(a, a + b, None, a + b, a + b + c))
        assert recovery.lines == [a, b, c]
        assert recovery.overwrites == []

    def test_deleted_for_good(self) -> None:
        """A file deleted at the end: the deletion is the overwrite and everything is recovered."""
        a, b = line({"a": 1}), line({"b": 2})
        recovery = recover_history(history(a, a + b, None, None))
        assert recovery.lines == [a, b]
        assert recovery.overwrites == [Overwrite("c2", "2024-05-01T00:00:02Z", 2, 2, "c2")]
        assert recovery.records_recovered == 2

    def test_absent_before_creation(self) -> None:
        """Versions before the file first existed are ignored."""
        a = line({"a": 1})
        recovery = recover_history(history(None, None, a))
        assert recovery.lines == [a]
        assert recovery.overwrites == []

    def test_revert_of_a_clobber_duplicates_nothing(self) -> None:
        """Reverting a clobber by hand restores the old lines without repeating them.

        The clobbering record, dropped by the revert, is what recovery puts back.
        """
        a, b, x = line({"a": 1}), line({"b": 2}), line({"x": 9})
        recovery = recover_history(history(a, a + b, x, a + b))
        assert recovery.lines == [a, b, x]
        assert [(o.commit, o.records_lost, o.records_recovered) for o in recovery.overwrites] == [
            ("c2", 2, 0),
            ("c3", 1, 1),
        ]
        assert recovery.records_recovered == 1

    def test_record_lost_twice_is_counted_once(self) -> None:
        """A line lost, restored and lost again is recovered once, at its last loss."""
        a, b, c = line({"a": 1}), line({"b": 2}), line({"c": 3})
        recovery = recover_history(history(a + b + c, a + b, a + b + c, a))
        assert recovery.lines == [a, b, c]
        assert [(o.records_lost, o.records_recovered) for o in recovery.overwrites] == [
            (1, 0),
            (2, 2),
        ]
        assert recovery.records_recovered == 2

    def test_torn_line_completed_later(self) -> None:
        """A last line missing its newline matches the same line once terminated."""
        a, b = line({"a": 1}), line({"b": 2})
        recovery = recover_history(history(a + b[:-1], a + b))
        assert recovery.lines == [a, b]
        assert recovery.overwrites == []

    def test_known_limit_clobber_equal_to_first_record(self) -> None:
        """A clobbering record equal to the file's first line is taken for a truncation."""
        a, b = line({"same": 1}), line({"b": 2})
        recovery = recover_history(history(a, a + b, a))
        assert recovery.lines == [a, b]
        assert recovery.overwrites[0].records_lost == 1

    @pytest.mark.parametrize("seed", range(12))
    def test_naive_service_every_record_once_in_order(self, seed: int) -> None:
        """Whatever the record sizes and threshold, recovery returns every record once, in order."""
        rng = random.Random(seed)
        records = random_records(rng, rng.randint(1, 250))
        versions = naive_service(records, empty_past=rng.randint(50, 3000))
        recovery = recover_history(versions)
        assert recovery.lines == [line(r) for r in records]
        final = _lines(versions[-1])
        assert recovery.records_recovered == len(records) - len(final)
        assert sum(o.records_recovered for o in recovery.overwrites) == recovery.records_recovered
        assert all(o.records_lost == o.records_recovered for o in recovery.overwrites)

    @pytest.mark.parametrize("seed", range(6))
    def test_naive_service_with_repeated_records(self, seed: int) -> None:
        """Records that repeat between clobbers (but never open a file) keep every copy."""
        rng = random.Random(seed)
        # Predict each GET as the service would see it, so that a clobber is always
        # written by a unique record and the repeats fall inside runs.
        records: list[dict[str, object]] = []
        stored_len: int | None = None
        for i in range(150):
            opens = stored_len is None or stored_len > 120
            record: dict[str, object] = (
                {"id": i} if opens or rng.random() < 0.5 else {"repeat": True}
            )
            records.append(record)
            stored_len = (1 if opens or stored_len is None else stored_len) + len(line(record))
        versions = naive_service(records, empty_past=120)
        assert records.count({"repeat": True}) > 20
        assert sum(v.content == b"\n" + line(r) for v, r in zip(versions, records, strict=True)) > 5
        assert recover_history(versions).lines == [line(r) for r in records]


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
    def plan(self) -> _migration.MigrationPlan:
        return plan_migration(jsonl(*({"i": i} for i in range(50))), segment_bytes=64)

    def test_exact_read_back_verifies(self, plan: _migration.MigrationPlan) -> None:
        """Reading back exactly the planned segments gives no discrepancies."""
        assert verify_migration(plan, [data for _, data in plan.segments]) == []

    def test_same_bytes_split_differently_verifies(self, plan: _migration.MigrationPlan) -> None:
        """Verification is over the concatenated bytes, not the segment boundaries."""
        whole = b"".join(data for _, data in plan.segments)
        assert verify_migration(plan, [whole]) == []

    def test_missing_line_is_caught(self, plan: _migration.MigrationPlan) -> None:
        """A line missing from the read-back breaks both the line count and the hash."""
        segments = [data for _, data in plan.segments]
        segments[1] = segments[1].split(b"\n", 1)[1]
        problems = verify_migration(plan, segments)
        assert any(p.startswith("line count: planned 50, read back 49") for p in problems)
        assert any(p.startswith("SHA-256") for p in problems)
        first_line_of_second = plan.segments[0][1].count(b"\n") + 1
        assert f"first difference at line {first_line_of_second}" in problems

    def test_changed_byte_is_caught(self, plan: _migration.MigrationPlan) -> None:
        """One changed byte keeps the line count but fails the hash, at the right line."""
        segments = [data for _, data in plan.segments]
        segments[0] = segments[0].replace(b'"i": 0', b'"i": 9', 1)
        problems = verify_migration(plan, segments)
        assert len(problems) == 2
        assert problems[0].startswith("SHA-256")
        assert problems[1] == "first difference at line 1"

    def test_missing_segment_is_caught(self, plan: _migration.MigrationPlan) -> None:
        """A whole segment missing is reported along with the segment counts."""
        segments = [data for _, data in plan.segments][:-1]
        problems = verify_migration(plan, segments)
        assert f"segments: planned {len(plan.segments)}, read back {len(segments)}" in problems


# --- reports -----------------------------------------------------------------------------------


class TestReports:
    def test_dry_run_report(self) -> None:
        """A dry run names source, destination and segment span, and says nothing was written."""
        plan = plan_migration(b"aa\nbb\ncc", segment_bytes=3)
        text = format_report(
            plan, source="data/interactions.jsonl", destination="data/interactions", dry_run=True
        )
        assert text.splitlines()[0] == (
            "Dry run: would migrate data/interactions.jsonl -> data/interactions"
        )
        assert "3 segment(s) of at most 3 bytes, 3 lines" in text
        assert "data/interactions/00000001.jsonl .. 00000003.jsonl" in text
        assert "newline was added" in text
        assert "line 3: torn last line (no newline)" in text
        assert text.endswith("Nothing was written.")

    def test_recovery_lists_each_overwrite(self) -> None:
        """The history section gives commit, date, lost and recovered counts per overwrite."""
        a, b, x = line({"a": 1}), line({"b": 2}), line({"x": 9})
        recovery = recover_history(history(a, a + b, None, x))
        text = format_recovery(recovery)
        assert "1 overwrite(s); 2 record(s) recovered, 3 records in all" in text
        assert "c3 2024-05-01T00:00:03Z: 2 lost, 2 recovered (file deleted at c2)" in text

    def test_recovery_without_overwrites(self) -> None:
        """A clean history says so in one line."""
        assert format_recovery(recover_history(history(b"{}\n"))) == (
            "History: no overwrites; 1 records."
        )

    def test_problems_are_capped(self) -> None:
        """Only the first problems are listed, then how many more there are."""
        text = format_scan(scan_lines(b"x\n" * 30), limit=5)
        assert text.count("not JSON") == 5
        assert text.endswith("... and 25 more")

    def test_clean_scan(self) -> None:
        """A clean scan is summarised in one line."""
        assert format_scan(scan_lines(b"{}\n{}\n")) == "All 2 lines are JSON objects."

    def test_verification_outcomes(self) -> None:
        """After the commit the report ends with the verification's verdict."""
        plan = plan_migration(b"{}\n", segment_bytes=10)
        ok = format_report(plan, source="s", destination="d", discrepancies=[])
        assert ok.endswith("Verified: 1 lines read back, SHA-256 matches.")
        bad = format_report(plan, source="s", destination="d", discrepancies=["line count: x"])
        assert bad.endswith("Verification FAILED:\n  line count: x")
        assert "Nothing was written" not in bad
