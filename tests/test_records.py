"""Encoding records into JSON lines at append time, decoding them back, and the one judge."""

from __future__ import annotations

import json
import math
import sys
from collections import OrderedDict, defaultdict
from typing import Any

import pytest

from gitjsonl import RecordError, RecordTooLarge
from gitjsonl._github import DirEntry
from gitjsonl._inspect import Inspection, find_problems
from gitjsonl._migrate.plan import scan_lines
from gitjsonl._records import (
    NOT_JSON,
    NOT_OBJECT,
    NOT_UNICODE,
    NOT_UTF8,
    BadLine,
    decode_lines,
    encode_record,
    json_default,
    parse_line,
)


class TestEncodeRecord:
    def test_one_compact_utf8_line(self) -> None:
        """A record is one UTF-8 line, non-ASCII kept as is, ending in a newline."""
        assert encode_record({"text": "héllo\nworld", "n": 1}, 1000) == (
            '{"text":"héllo\\nworld","n":1}\n'.encode()
        )

    @pytest.mark.parametrize(
        ("record", "match"),
        [
            ({"x": math.nan}, "not valid JSON"),
            ({"x": math.inf}, "not valid JSON"),
            ({"x": object()}, "not JSON-serialisable"),
            ({"x": {1, 2}}, "not JSON-serialisable"),
            ({"x": "\ud800"}, "not valid Unicode"),
            (["not", "an", "object"], "must be a JSON object"),
            ("text", "must be a JSON object"),
        ],
    )
    def test_bad_records_are_refused_with_a_reason(self, record: Any, match: str) -> None:
        """NaN, Infinity, unserialisable values, lone surrogates and non-objects are refused."""
        with pytest.raises(RecordError, match=match):
            encode_record(record, 1000)

    def test_a_record_of_exactly_max_record_bytes_is_accepted(self) -> None:
        """max_record_bytes bounds the record's JSON, newline not counted: equal fits."""
        assert len(encode_record({"a": "x" * 10}, 18)) == 19  # 18 bytes of JSON, then "\n"
        with pytest.raises(RecordTooLarge, match="19 bytes as JSON; max_record_bytes is 18"):
            encode_record({"a": "x" * 11}, 18)

    @pytest.mark.parametrize(
        "record",
        [
            {10**5000: 1},
            {"a": 10**5000},
            {"a": [-(10**4300)]},
            {"a": {"b": 10**4300}},
        ],
        ids=["key", "value", "in-a-list", "nested"],
    )
    def test_an_integer_readers_cannot_convert_is_refused(self, record: Any) -> None:
        """An integer of more than 4,300 digits (Python's default limit) is a RecordError."""
        with pytest.raises(RecordError, match="more than 4,300 digits"):
            encode_record(record, 10**6)

    def test_the_longest_integer_readers_convert_is_kept(self) -> None:
        """An integer of exactly 4,300 digits is encoded and reads back equal."""
        number = 10**4300 - 1
        assert parse_line(encode_record({"n": number}, 10**6)) == {"n": number}

    @pytest.mark.skipif(not hasattr(sys, "set_int_max_str_digits"), reason="no digit limit")
    def test_an_integer_is_refused_even_where_the_process_lifted_the_limit(self) -> None:
        """A 5,000-digit integer is refused even here with the limit lifted: readers are not."""
        old = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)
        try:
            with pytest.raises(RecordError, match="digits"):
                encode_record({int("9" * 5000): 1}, 10**6)
        finally:
            sys.set_int_max_str_digits(old)

    @pytest.mark.parametrize(
        "pairs",
        [[("a", 1), ("a", 2)], [(1, "x"), ("1", "y")], [("a", 1), ("b", 2), ("a", 3)]],
        ids=["repeated", "int-and-str", "repeated-later"],
    )
    @pytest.mark.parametrize("where", ["top", "nested"])
    def test_a_mapping_whose_items_lie_is_refused(self, pairs: list[Any], where: str) -> None:
        """A dict subclass whose items() repeat a key (or give 1 and "1") is refused."""

        class Lying(dict[Any, Any]):
            def items(self) -> Any:
                return list(pairs)

        lying = Lying(a=1)
        record = lying if where == "top" else {"outer": [lying]}
        with pytest.raises(RecordError, match="written twice"):
            encode_record(record, 1000)

    def test_an_honest_dict_subclass_is_encoded_as_it_reads(self) -> None:
        """An OrderedDict or defaultdict still encodes, and reads back equal."""
        record = {"o": OrderedDict([("b", 1), ("a", 2)]), "d": defaultdict(list, x=[1])}
        assert parse_line(encode_record(record, 1000)) == {"o": {"b": 1, "a": 2}, "d": {"x": [1]}}

    def test_circular_record_is_refused(self) -> None:
        """A record that contains itself is a RecordError, not a RecursionError."""
        record: dict[str, Any] = {}
        record["self"] = record
        with pytest.raises(RecordError):
            encode_record(record, 1000)


class TestDecodeLines:
    def test_records_and_corrupt_lines_come_back_in_order(self) -> None:
        """Good lines decode; bad ones are reported with their line number, not raised."""
        data = b'{"a":1}\nnot json\n[1,2]\n\n{"b":2}\n{"torn'
        decoded = list(decode_lines(data))
        assert [(d.number, d.record) for d in decoded] == [
            (1, {"a": 1}),
            (2, None),
            (3, None),
            (5, {"b": 2}),
            (6, None),
        ]
        assert "not a JSON object" in (decoded[2].problem or "")

    def test_invalid_utf8_is_a_corrupt_line(self) -> None:
        """Bytes that are not UTF-8 make that line corrupt, and only that line."""
        decoded = list(decode_lines(b'\xff\xfe\n{"ok":true}\n'))
        assert decoded[0].record is None
        assert decoded[1].record == {"ok": True}

    def test_nan_line_is_corrupt(self) -> None:
        """A line holding NaN or Infinity is corrupt: append would never have written it."""
        decoded = list(decode_lines(b'{"x":NaN}\n{"y":-Infinity}\n{"z":1}\n'))
        assert [d.record for d in decoded] == [None, None, {"z": 1}]
        assert (decoded[0].problem or "").startswith("not JSON (NaN is not JSON")


class TestParseLine:
    def test_an_object_line_is_its_record(self) -> None:
        """A JSON object line, bytes or text, trailing newline or not, gives its record."""
        assert parse_line(b'{"a":1,"t":"\xc3\xa9"}\n') == {"a": 1, "t": "é"}
        assert parse_line('{"a": 1}') == {"a": 1}

    @pytest.mark.parametrize(
        ("line", "reason"),
        [
            (b"\xff{}", NOT_UTF8),
            (b"nope", NOT_JSON),
            (b"", NOT_JSON),
            (b'{"a":NaN}', NOT_JSON),
            (b'{"a":Infinity}', NOT_JSON),
            (b"[1]", NOT_OBJECT),
            (b"null", NOT_OBJECT),
            (b'{"a":"\\udc00"}', NOT_UNICODE),
            ("{}\udcff", NOT_UNICODE),
            (b"[" * 100_000, NOT_JSON),
        ],
    )
    def test_each_reason_a_line_is_not_a_record(self, line: bytes | str, reason: str) -> None:
        """Bad bytes, bad JSON, Python's constants, non-objects and lone surrogates are named."""
        parsed = parse_line(line)
        assert isinstance(parsed, BadLine)
        assert parsed.reason == reason
        assert str(parsed).startswith(f"{reason} (")

    def test_escaped_surrogate_pair_is_fine(self) -> None:
        """An emoji escaped as a surrogate pair (Python's json.dumps default) is a record."""
        assert parse_line(b'{"e":"\\ud83d\\ude00"}') == {"e": "\U0001f600"}


def _append_accepts(line: bytes) -> bool:
    """Whether ``Log.append`` takes the value Python's permissive json.loads reads from ``line``."""
    try:
        value = json.loads(line)
    except ValueError:
        return False  # nothing to append
    try:
        encode_record(value, 1000)
    except RecordError:
        return False
    return True


def _verify_accepts(line: bytes) -> bool:
    segment = DirEntry("00000001.jsonl", "log/00000001.jsonl", "0" * 40, len(line), "file")
    found = Inspection("main", "h" * 40, [(segment, line)], None, False, [])
    return find_problems(found, 1000) == []


class TestOneJudge:
    @pytest.mark.parametrize(
        "line",
        [
            b'{"a":1}\n',
            b'{"t":"\xc3\xa9","e":"\\ud83d\\ude00"}\n',
            b'{"x":NaN}\n',
            b'{"x":-Infinity}\n',
            b'{"x":"\\ud800"}\n',
            b"[1,2]\n",
            b'"text"\n',
            b"not json\n",
            b"\xff\xfe\n",
        ],
    )
    def test_append_verify_and_migrate_agree(self, line: bytes) -> None:
        """A line is a record for verify and migrate's scan exactly when append would take it."""
        expected = _append_accepts(line)
        assert _verify_accepts(line) is expected
        assert scan_lines(line).ok is expected
        assert (not isinstance(parse_line(line), BadLine)) is expected


class TestDefault:
    """``default=``: what JSON has no type for, converted as ``json.dumps`` would."""

    def test_json_default_writes_what_apps_log(self) -> None:
        """Dates, UUIDs, decimals, enums, sets, paths and dataclasses become JSON that
        reads back as the same text a reader expects."""
        import dataclasses
        import datetime
        import decimal
        import enum
        import pathlib
        import uuid

        class Mood(enum.Enum):
            GOOD = "good"

        @dataclasses.dataclass
        class Point:
            x: int
            y: int

        record = {
            "at": datetime.datetime(2026, 12, 7, 3, 4, 5, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2026, 12, 7),
            "id": uuid.UUID(int=255),
            "price": decimal.Decimal("10.10"),
            "mood": Mood.GOOD,
            "tags": frozenset({"a"}),
            "file": pathlib.PurePosixPath("/data/x"),
            "point": Point(1, 2),
        }
        line = encode_record(record, 10_000, json_default)
        assert json.loads(line) == {
            "at": "2026-12-07T03:04:05+00:00",
            "day": "2026-12-07",
            "id": "00000000-0000-0000-0000-0000000000ff",
            "price": "10.10",
            "mood": "good",
            "tags": ["a"],
            "file": "/data/x",
            "point": {"x": 1, "y": 2},
        }

    def test_without_default_such_a_record_is_refused(self) -> None:
        """No default: a datetime is a RecordError at the call, as before."""
        import datetime

        with pytest.raises(RecordError, match="not JSON-serialisable"):
            encode_record({"at": datetime.date(2026, 1, 1)}, 1000)

    @pytest.mark.parametrize(
        ("default", "match"),
        [
            (json_default, "not JSON-serialisable"),  # an object nobody knows
            (lambda value: 1 / 0, "default= failed"),  # the caller's function raises
            (lambda value: math.nan, "not valid JSON"),  # returns what JSON cannot hold
            (lambda value: 10**5000, r"4,?300\b"),  # returns what readers cannot read
            (lambda value: {1: "a", "1": "b"}, "written twice|same JSON name"),
        ],
    )
    def test_what_default_cannot_make_json_is_refused(self, default: Any, match: str) -> None:
        """A default that fails, or returns what a reader would not read back, refuses the
        record with a RecordError: never a line the readers would skip."""
        with pytest.raises(RecordError, match=match):
            encode_record({"value": object()}, 1000, default)

    def test_default_output_counts_against_the_record_size(self) -> None:
        """What default returns is bounded by max_record_bytes like the rest of the record."""
        with pytest.raises(RecordTooLarge):
            encode_record({"value": object()}, 100, lambda value: "x" * 200)
