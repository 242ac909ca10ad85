"""What the command line prints: never a byte that drives the terminal or forges a line.

A file name in the repository, a commit trailer, a branch name, a server's
error message: each may hold ESC (a terminal escape: retitle the window,
rewrite the screen, answer back), BEL, a carriage return or a newline (a
forged ``gitjsonl: error: ...`` line under ours). ``printable`` shows each such
character as its escape (``\\x1b``, ``\\n``, ``\\u2028``), visible and inert;
every line ``_cli`` writes goes through it (``_doctor``'s checklist through it
item by item, since its own lines are joined by newlines).

JSON lines are encoded by ``json``, which escapes C0 characters but, with
``ensure_ascii=False`` (records keep their accents and scripts readable), lets
DEL, C1 controls (among them CSI, ``\\x9b``, an ESC ``[`` of its own) and the
Unicode line separators through: ``json_line`` escapes those as ``\\uXXXX``,
which is the same JSON (they can only occur inside strings).

A terminal that is not UTF-8 (``LANG=C``, ``PYTHONIOENCODING=ascii``) cannot
take every character: ``speaks_unicode`` says whether a stream can, and the
command line then writes JSON with ``ascii_only`` (``\\uXXXX``, the same JSON)
and text through ``fit`` (what the stream cannot encode as its escape).
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

__all__ = ["fit", "json_line", "printable", "speaks_unicode"]

#: C0 controls (tab and newline among them), DEL, C1 controls, the Unicode line and
#: paragraph separators, and the bidirectional overrides and isolates that reorder
#: what a terminal shows.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: What ``json`` leaves raw inside a string with ``ensure_ascii=False``.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` as one line a terminal shows as it is: every control character escaped."""
    return _UNSAFE.sub(_escape, text)


def speaks_unicode(stream: object) -> bool:
    """Whether ``stream`` encodes every character (a UTF encoding, or a text buffer without one)."""
    encoding = getattr(stream, "encoding", None)
    if not isinstance(encoding, str):
        return True  # io.StringIO and the like hold any str
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def fit(text: str, stream: object) -> str:
    """``text`` as ``stream`` can encode it: each character it cannot, as its escape."""
    encoding = getattr(stream, "encoding", None)
    if speaks_unicode(stream) or not isinstance(encoding, str):
        return text
    try:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return text.encode("ascii", "backslashreplace").decode("ascii")


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ascii_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def json_line(record: dict[str, Any], *, ascii_only: bool = False) -> str:
    """``record`` as one JSON line (with its newline), safe on a terminal, readable in a pipe.

    ``ascii_only``: every character beyond ASCII as ``\\uXXXX`` (for a stream
    that is not UTF-8), which is the same JSON.
    """
    if ascii_only:
        return _ascii_encoder.encode(record) + "\n"
    encoded = _encoder.encode(record)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded) + "\n"
