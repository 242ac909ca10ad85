"""Encoding records into JSON lines at append time, and decoding them back."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gitjsonl import RecordError, RecordTooLarge
from gitjsonl._records import decode_lines, encode_record


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

    def test_size_limit_counts_the_whole_line(self) -> None:
        """max_record_bytes bounds the encoded line, newline included."""
        assert len(encode_record({"a": "x" * 10}, 19)) == 19
        with pytest.raises(RecordTooLarge, match="max_record_bytes"):
            encode_record({"a": "x" * 11}, 19)

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
