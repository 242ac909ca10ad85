"""Turning records into JSON lines and JSON lines back into records.

``encode_record`` runs on the caller's thread inside ``Log.append``: it is the
only work ``append`` does besides taking a lock, so it validates everything a
record can get wrong at once, and serialises immediately (a caller mutating its
dict afterwards changes nothing that was logged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._exceptions import RecordError, RecordTooLarge

__all__ = ["DecodedLine", "decode_lines", "encode_record"]

logger = logging.getLogger("gitjsonl")

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_record(record: Mapping[str, Any], max_record_bytes: int) -> bytes:
    """Return ``record`` as one UTF-8 JSON line ending in ``\\n``, or raise ``RecordError``."""
    if not isinstance(record, Mapping):
        raise RecordError(f"a record must be a JSON object (a dict), not {type(record).__name__}")
    try:
        text = _encoder.encode(record if isinstance(record, dict) else dict(record))
    except ValueError as exc:  # NaN / Infinity, circular reference
        raise RecordError(f"record is not valid JSON: {exc}") from exc
    except TypeError as exc:  # an object json cannot serialise
        raise RecordError(f"record is not JSON-serialisable: {exc}") from exc
    try:
        line = text.encode("utf-8") + b"\n"
    except UnicodeEncodeError as exc:  # lone surrogates
        raise RecordError(f"record holds a string that is not valid Unicode: {exc}") from exc
    if len(line) > max_record_bytes:
        raise RecordTooLarge(
            f"record is {len(line):,} bytes as JSON; max_record_bytes is {max_record_bytes:,}"
        )
    return line


@dataclass(frozen=True, slots=True)
class DecodedLine:
    """One line of a segment: the record, or ``None`` with the reason it is corrupt."""

    number: int  # 1-based within its file
    record: dict[str, Any] | None
    problem: str | None = None


def decode_lines(data: bytes) -> Iterator[DecodedLine]:
    """Parse the lines of one file; corrupt lines come back with ``record=None``.

    Blank lines are skipped silently: the Contents-API service that gitjsonl
    replaces wrote one at the top of every file it re-created.
    """
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            yield DecodedLine(number, None, f"not JSON ({exc})")
            continue
        if not isinstance(value, dict):
            yield DecodedLine(number, None, f"not a JSON object ({type(value).__name__})")
            continue
        yield DecodedLine(number, value)
