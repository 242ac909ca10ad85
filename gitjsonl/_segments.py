"""The on-branch layout of a log, and the pure planning of what a batch writes.

A log at ``path`` is a folder of segment files named by an 8-digit sequence
number, ``00000001.jsonl``, ``00000002.jsonl``, ... in append order. Each line
is one JSON object and ``\\n``. Only the highest-numbered segment (the *active*
one) ever changes; every other segment is closed and never rewritten. A
segment closes when the next batch would take it past ``segment_bytes``, so no
file outgrows what any Contents-API client can read (1 MB); a single record
larger than that gets a segment of its own.

Everything here is a function over plain values: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "MANIFEST_NAME",
    "ActiveSegment",
    "SegmentWrite",
    "plan_segments",
    "segment_name",
    "segment_number",
    "sorted_segments",
]

#: Written into the log folder by ``gitjsonl migrate``; its presence tells
#: readers that the legacy single file is already part of the segments.
MANIFEST_NAME = "_gitjsonl.json"

_SEGMENT_RE = re.compile(r"^(\d{8,})\.jsonl$")


def segment_name(number: int) -> str:
    """``1`` -> ``"00000001.jsonl"``."""
    if number < 1:
        raise ValueError(f"segment numbers start at 1, got {number}")
    return f"{number:08d}.jsonl"


def segment_number(name: str) -> int | None:
    """The sequence number of a segment file name, or ``None`` for any other file."""
    match = _SEGMENT_RE.match(name)
    return int(match.group(1)) if match else None


def sorted_segments(names: Iterable[str]) -> list[tuple[int, str]]:
    """``(number, name)`` of the segment files among ``names``, in append order."""
    found = [(n, name) for name in names if (n := segment_number(name)) is not None]
    return sorted(found)


@dataclass(frozen=True, slots=True)
class ActiveSegment:
    """The segment the next batch appends to, as it stands at the head we build on."""

    number: int
    content: bytes
    sha: str | None = None  # its blob sha at that head; None when it does not exist yet


@dataclass(frozen=True, slots=True)
class SegmentWrite:
    """One file a batch writes: the segment's whole new content."""

    number: int
    content: bytes

    @property
    def name(self) -> str:
        return segment_name(self.number)


def plan_segments(
    active: ActiveSegment | None, lines: Sequence[bytes], segment_bytes: int
) -> list[SegmentWrite]:
    """Decide which segment files a batch of ``lines`` writes, and their new content.

    The batch goes whole into the active segment when it fits under
    ``segment_bytes``; otherwise the active segment is closed as it is and the
    batch is packed, line by line, into new segments (a line longer than the cap
    alone in its own). An empty active segment is filled rather than closed.
    """
    if segment_bytes < 1:
        raise ValueError("segment_bytes must be positive")
    if not lines:
        return []
    if active is None:
        active = ActiveSegment(number=1, content=b"")
    base = active.content
    if base and not base.endswith(b"\n"):
        # Someone left a torn last line. Ending it keeps our first record from
        # being glued to it; readers report the torn line as corrupt.
        base += b"\n"
    batch_size = sum(len(line) for line in lines)
    if len(base) + batch_size <= segment_bytes:
        return [SegmentWrite(active.number, base + b"".join(lines))]

    writes: list[SegmentWrite] = []
    number, current, size = active.number, [base] if base else [], len(base)
    if base:  # close the active segment untouched and start a new one
        number, current, size = number + 1, [], 0
    for line in lines:
        if current and size + len(line) > segment_bytes:
            writes.append(SegmentWrite(number, b"".join(current)))
            number, current, size = number + 1, [], 0
        current.append(line)
        size += len(line)
    writes.append(SegmentWrite(number, b"".join(current)))
    return writes
