"""gitjsonl._migrate.history: recovering the records that overwrites of a file lost."""

from __future__ import annotations

import json
import random

import pytest

from gitjsonl._migrate.history import FileVersion, Overwrite, RecoveredHistory, recover_history

# --- helpers -----------------------------------------------------------------------------------


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


class TestRecoverHistory:
    def test_no_versions(self) -> None:
        """An empty history recovers nothing."""
        recovery = recover_history([])
        assert recovery == RecoveredHistory(lines=[], overwrites=[], records_recovered=0)
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
