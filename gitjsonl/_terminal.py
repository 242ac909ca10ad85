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
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["json_line", "printable"]

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


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_line(record: dict[str, Any]) -> str:
    """``record`` as one JSON line (with its newline), safe on a terminal, readable in a pipe."""
    encoded = _encoder.encode(record)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded) + "\n"
