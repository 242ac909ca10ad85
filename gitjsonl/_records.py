"""Turning records into JSON lines and JSON lines back into records: the one judge of a line.

``encode_record`` runs on the caller's thread inside ``Log.append``: it is the
only work ``append`` does besides taking a lock, so it validates everything a
record can get wrong at once, and serialises immediately (a caller mutating its
dict afterwards changes nothing that was logged).

``parse_line`` is the same judgement from the other side, over a raw line: a
record is valid UTF-8, JSON without Python's ``NaN``/``Infinity`` extension,
an object, and every string in it valid Unicode. Readers (``tail``,
``records``), ``verify``, ``stats``, ``migrate``'s scan and the command line's
``append`` all ask it, so a line one of them accepts, every other accepts too.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from ._exceptions import RecordError, RecordTooLarge

__all__ = [
    "NOT_JSON",
    "NOT_OBJECT",
    "NOT_UNICODE",
    "NOT_UTF8",
    "BadLine",
    "DecodedLine",
    "decode_lines",
    "encode_record",
    "json_default",
    "parse_line",
]

logger = logging.getLogger(__name__)

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

#: Why a line is not a record (``BadLine.reason``).
NOT_UTF8 = "not UTF-8"
NOT_JSON = "not JSON"
NOT_OBJECT = "not a JSON object"
NOT_UNICODE = "not valid Unicode"

# A \uD800-\uDFFF escape: the only way a JSON line that is valid UTF-8 can
# still hold a string that is not valid Unicode (a lone surrogate).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def json_default(value: object) -> object:
    """A ``default=`` for the values apps log that JSON has no type for.

    ``datetime``, ``date`` and ``time`` become ISO 8601 text; ``UUID``, ``Decimal``
    (every digit kept) and paths their text; an ``Enum`` its value; a ``set`` or
    ``frozenset`` a list; a dataclass instance a dict of its fields. Anything else
    raises ``TypeError``, as ``json.dumps`` does, so a record that holds it is refused
    at ``append`` (``RecordError``) instead of being written as something unreadable.
    Pass it (or a function of your own, as to ``json.dumps``) as ``Log(default=...)``.
    """
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _Defaulted:
    """``default`` for json's encoder, remembering that it was asked (the line is then
    judged again from what was written) and making its failures the record's."""

    def __init__(self, default: Callable[[Any], Any]) -> None:
        self.default = default
        self.used = False

    def __call__(self, value: object) -> object:
        self.used = True
        try:
            return self.default(value)
        except TypeError:
            raise
        except Exception as exc:  # the caller's function failed: the record is refused
            raise TypeError(f"default= failed on {type(value).__name__}: {exc!r}") from exc


def encode_record(
    record: Mapping[str, Any],
    max_record_bytes: int,
    default: Callable[[Any], Any] | None = None,
) -> bytes:
    """Return ``record`` as one UTF-8 JSON line ending in ``\\n``, or raise ``RecordError``.

    ``max_record_bytes`` bounds the record's JSON, the newline after it not
    counted. ``default`` converts what JSON has no type for, as ``json.dumps``'s
    does (``json_default`` handles dates, UUIDs, decimals and the like). A record
    holding a container that is not a plain ``dict``, ``list`` or ``tuple`` (a
    subclass whose ``items()`` may say other than its keys do), or a value
    ``default`` converted, is judged again from the line json wrote: that line must
    read back with ``parse_line``, without a key twice, and pass the same checks.
    """
    if not isinstance(record, Mapping):
        raise RecordError(f"a record must be a JSON object (a dict), not {type(record).__name__}")
    try:
        value = record if isinstance(record, dict) else dict(record)
    except Exception as exc:  # a Mapping whose methods raise is the caller's record's fault
        raise RecordError(f"record cannot be read as a mapping: {exc!r}") from exc
    try:
        plain = _check_shape(value)
    except RecordError:
        raise
    except Exception as exc:  # a subclass's __iter__ or values() that raises
        raise RecordError(f"record cannot be read: {exc!r}") from exc
    defaulted = None if default is None else _Defaulted(default)
    encoder = _encoder if defaulted is None else _encoder_with(defaulted)
    try:
        text = encoder.encode(value)
    except ValueError as exc:  # NaN / Infinity, circular reference
        raise RecordError(f"record is not valid JSON: {exc}") from exc
    except TypeError as exc:  # an object json cannot serialise
        raise RecordError(f"record is not JSON-serialisable: {exc}") from exc
    except RecursionError as exc:
        raise RecordError("record is nested too deeply") from exc
    try:
        line = text.encode("utf-8") + b"\n"
    except UnicodeEncodeError as exc:  # lone surrogates
        raise RecordError(f"record holds a string that is not valid Unicode: {exc}") from exc
    if len(line) - 1 > max_record_bytes:
        raise RecordTooLarge(
            f"record is {len(line) - 1:,} bytes as JSON; max_record_bytes is {max_record_bytes:,}"
        )
    if not plain or (defaulted is not None and defaulted.used):
        _judge_written(text)
    return line


def _encoder_with(default: Callable[[Any], Any]) -> json.JSONEncoder:
    return json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=default
    )


def _judge_written(text: str) -> None:
    """The line json wrote reads back as written: a record, no key twice, the same checks."""
    parsed = parse_line(text)
    if isinstance(parsed, BadLine):
        raise RecordError(f"record does not read back as written: {parsed}")
    try:
        json.loads(text, object_pairs_hook=_unique_pairs)
    except ValueError as exc:
        raise RecordError(f"record does not read back as written: {exc}") from exc
    _check_shape(parsed)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        names = [name for name, _ in pairs]
        twice = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"the key {twice[:40]!r} is written twice (a mapping's items() repeat it)")
    return value


#: Deeper records are refused; json would overflow Python's stack near 1,000.
MAX_DEPTH = 200

_CONTAINERS = (dict, list, tuple)

#: The most digits an integer may have: Python's default limit on converting
#: integers to and from text (``sys.int_info.default_max_str_digits``), which
#: a reader in another process applies even where this one lifted it.
MAX_INT_DIGITS = 4300
_INT_BOUND = 10**MAX_INT_DIGITS


def _json_key(key: object) -> object:
    """The name json gives a dict key (``1`` and ``"1"`` both become ``"1"``)."""
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        _check_int(key)
    return key if isinstance(key, str) else str(key)


def _check_int(number: int) -> None:
    if -_INT_BOUND < number < _INT_BOUND:
        return
    raise RecordError(
        f"record holds an integer of more than {MAX_INT_DIGITS:,} digits, "
        "which readers cannot convert (write it as a string)"
    )


def _check_shape(value: dict[Any, Any]) -> bool:
    """Refuse what json would serialise into a line that does not read back the same.

    Keys that json converts to the same name (``{1: "a", "1": "b"}``: a line
    with a duplicate key, of which readers keep one), integers too long for a
    reader to convert, and nesting deeper than ``MAX_DEPTH``. Iterative, so
    hostile depth cannot overflow the stack here. True when every container is
    a plain ``dict``, ``list`` or ``tuple`` (json writes what was checked).
    """
    plain = True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RecordError(f"record is nested more than {MAX_DEPTH} levels deep")
        plain = plain and type(item) in _CONTAINERS
        if isinstance(item, dict):
            if not all(type(key) is str for key in item):
                names = [_json_key(key) for key in item]
                if len(set(names)) != len(names):
                    raise RecordError(
                        "record has keys that become the same JSON name (such as 1 and '1')"
                    )
            children = item.values()
        else:
            children = item
        for child in children:
            if isinstance(child, _CONTAINERS):
                stack.append((child, depth + 1))
            elif type(child) is int and not -_INT_BOUND < child < _INT_BOUND:
                _check_int(child)
    return plain


@dataclass(frozen=True, slots=True)
class DecodedLine:
    """One line of a segment: the record, or ``None`` with the reason it is corrupt."""

    number: int  # 1-based within its file
    record: dict[str, Any] | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class BadLine:
    """Why a line is not a record: ``reason`` is one of the ``NOT_*`` constants."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason} ({self.detail})"


def _reject_constant(name: str) -> object:
    # NaN and Infinity are Python's extension, not JSON: other readers choke on them,
    # and encode_record never writes them.
    raise ValueError(f"{name} is not JSON")


def parse_line(line: bytes | str) -> dict[str, Any] | BadLine:
    """The record one JSON line holds, or a ``BadLine`` saying why it holds none.

    A line is a record when ``encode_record`` could have written it: UTF-8,
    JSON without ``NaN``/``Infinity``, an object, and no lone surrogate in
    any string. Surrounding whitespace (a trailing ``\\r`` or ``\\n``) is
    allowed; a blank line is ``NOT_JSON`` (callers that skip blanks do so first).
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return BadLine(NOT_UTF8, str(exc))
    else:
        try:  # text decoded with surrogateescape (a C locale's stdin) carries lone surrogates
            line.encode("utf-8")
        except UnicodeEncodeError as exc:
            return BadLine(NOT_UNICODE, str(exc))
    try:
        value = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past Python's limit
        return BadLine(NOT_JSON, str(exc))
    if not isinstance(value, dict):
        return BadLine(NOT_OBJECT, type(value).__name__)
    if _SURROGATE_ESCAPE.search(line):  # only these lines (an escaped emoji, say) pay twice
        try:
            _encoder.encode(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            return BadLine(NOT_UNICODE, str(exc))
    return value


def decode_lines(data: bytes | Iterable[bytes]) -> Iterator[DecodedLine]:
    """Parse the lines of one file (its bytes, or its lines as a file streams them);
    corrupt lines come back with ``record=None``.

    Blank lines are skipped silently: the Contents-API service that gitjsonl
    replaces wrote one at the top of every file it re-created.
    """
    lines = data.split(b"\n") if isinstance(data, bytes) else data
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        parsed = parse_line(raw)
        if isinstance(parsed, BadLine):
            yield DecodedLine(number, None, str(parsed))
        else:
            yield DecodedLine(number, parsed)
