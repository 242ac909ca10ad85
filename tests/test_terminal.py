"""What the command line prints on a terminal that is not UTF-8 (``_terminal``)."""

from __future__ import annotations

import io
import json

import pytest

from gitjsonl._terminal import fit, json_line, speaks_unicode


def stream(encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding)


class TestSpeaksUnicode:
    @pytest.mark.parametrize(
        ("encoding", "expected"),
        [("utf-8", True), ("UTF8", True), ("utf-16", True), ("ascii", False), ("latin-1", False)],
    )
    def test_by_encoding(self, encoding: str, expected: bool) -> None:
        """A UTF encoding takes every character; ASCII and Latin-1 do not."""
        assert speaks_unicode(stream(encoding)) is expected

    def test_a_text_buffer_without_encoding(self) -> None:
        """io.StringIO (no encoding) holds any str."""
        assert speaks_unicode(io.StringIO()) is True


class TestFit:
    def test_what_the_stream_cannot_encode_is_escaped(self) -> None:
        """On ASCII, ✓ and é become their escapes; the rest is unchanged."""
        assert fit("ok ✓ café", stream("ascii")) == "ok \\u2713 caf\\xe9"

    def test_latin_1_keeps_what_it_can(self) -> None:
        """On Latin-1, é stays and ✓ is escaped."""
        assert fit("✓ café", stream("latin-1")) == "\\u2713 café"

    def test_unicode_streams_get_the_text_as_it_is(self) -> None:
        """On UTF-8 nothing changes."""
        assert fit("✓ café", stream("utf-8")) == "✓ café"


class TestJsonLineAscii:
    def test_the_same_json_in_ascii(self) -> None:
        """ascii_only escapes every character beyond ASCII (a surrogate pair above the BMP)."""
        record = {"text": "café ✓ 😀\u2028\x9b"}
        line = json_line(record, ascii_only=True)
        assert line.isascii()
        assert line.endswith("\n")
        assert "\\ud83d\\ude00" in line
        assert json.loads(line) == record == json.loads(json_line(record))
