"""Planning ``gitjsonl migrate``: split a single-file log into segments, scan, verify.

Migration moves a single-file log (the service gitjsonl replaces kept one, and
lost records to it past 1 MB: see ``history``) into size-capped segments in
one commit. This module decides what that commit holds and how to check it
afterwards; ``run`` does the reading and the commit.

With ``--force`` the destination may already hold segments a ``Log`` wrote;
``renumber_existing`` puts them after the migrated ones, in the same commit.

Everything here is pure: bytes and plain values in, plain values out.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitjsonl._exceptions import MigrationError
from gitjsonl._records import BadLine, parse_line
from gitjsonl._segments import segment_name, segment_number

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence

    from gitjsonl._segments import Listing

__all__ = [
    "LineProblem",
    "MigrationPlan",
    "Move",
    "Renumbering",
    "ScanReport",
    "normalise",
    "plan_migration",
    "renumber_existing",
    "scan_lines",
    "split_into_segments",
    "verify_migration",
]

#: Why a source line is not a record: a ``_records`` reason (``NOT_JSON``, ...) or these.
TORN_LAST_LINE = "torn last line (no newline)"
BLANK_LINE = "blank line"


# --- splitting ---------------------------------------------------------------------------------


def normalise(data: bytes) -> bytes:
    """Return ``data`` with a newline appended when its final line lacks one.

    This is the only change migration ever makes to the source's bytes: a torn
    last line is kept (and reported) but terminated, so that the next record a
    ``Log`` appends does not get glued onto it. Blank lines, ``\\r`` and invalid
    lines are left exactly as they are.
    """
    if data and not data.endswith(b"\n"):
        return data + b"\n"
    return data


def split_into_segments(data: bytes, segment_bytes: int) -> list[bytes]:
    """Split ``data`` into segments of at most ``segment_bytes``, only at line ends.

    ``data`` is normalised first (see :func:`normalise`), so ``b"".join(result)``
    equals ``normalise(data)``. A line longer than ``segment_bytes`` is never cut:
    it becomes a segment of its own, the only kind allowed over the cap. Empty
    input gives no segments.
    """
    if segment_bytes < 1:
        raise MigrationError(f"segment size must be at least 1 byte, not {segment_bytes}")
    data = normalise(data)
    segments: list[bytes] = []
    start = 0
    while start < len(data):
        # The last newline within the cap ends the segment; slicing by offsets keeps
        # every byte, so the concatenation invariant holds by construction.
        last_newline = data.rfind(b"\n", start, start + segment_bytes)
        if last_newline < 0:
            last_newline = data.index(b"\n", start)  # one line longer than the cap
        segments.append(data[start : last_newline + 1])
        start = last_newline + 1
    return segments


# --- scanning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineProblem:
    """One line of the source that is not a well-formed record; it is kept regardless."""

    line_number: int  # 1-based, counting every line including blank ones
    reason: str


@dataclass(frozen=True)
class ScanReport:
    """What a scan of a JSONL file found: how many lines, and which are not records."""

    line_count: int
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every line is a JSON object ending in a newline."""
        return not self.problems


def _line_problem(line: bytes) -> str | None:
    if not line.strip():
        return BLANK_LINE
    parsed = parse_line(line)  # the same judge as append, the readers and verify
    return parsed.reason if isinstance(parsed, BadLine) else None


def scan_lines(data: bytes) -> ScanReport:
    """Check every line of ``data`` and report the ones that are not JSON objects.

    Never raises. A final line without a newline counts as a line and is reported
    as torn (and, separately, as not JSON when it is cut mid-record).
    """
    problems: list[LineProblem] = []
    lines = data.split(b"\n")
    torn = lines.pop() if lines else b""  # whatever follows the last newline
    if torn:
        lines.append(torn)
    for number, line in enumerate(lines, start=1):
        if torn and number == len(lines):
            problems.append(LineProblem(number, TORN_LAST_LINE))
        reason = _line_problem(line)
        if reason is not None:
            problems.append(LineProblem(number, reason))
    return ScanReport(line_count=len(lines), problems=problems)


# --- the plan and its verification -------------------------------------------------------------


@dataclass(frozen=True)
class MigrationPlan:
    """What one migration commit writes, and what reading it back must give."""

    segments: list[tuple[str, bytes]]  # (file name within the destination, bytes)
    line_count: int  # lines of the normalised source, blank and bad ones included
    sha256: str  # hex digest of the normalised source (all segments, concatenated)
    scan: ScanReport
    normalised: bool  # True when a newline was appended to a torn last line
    segment_bytes: int

    @property
    def byte_count(self) -> int:
        """Total bytes written over all segments."""
        return sum(len(data) for _, data in self.segments)

    @property
    def oversized(self) -> list[str]:
        """Segments over the cap: each holds one line longer than ``segment_bytes``."""
        return [name for name, data in self.segments if len(data) > self.segment_bytes]


def _free_numbers(start: int, reserved: Collection[int]) -> Iterator[int]:
    """Segment numbers from ``start`` on, skipping the ``reserved`` ones (``Listing.reserved``:
    a folder or symlink with a segment's name is never replaced)."""
    return (number for number in itertools.count(start) if number not in reserved)


def plan_migration(
    source: bytes,
    *,
    segment_bytes: int,
    first_segment_number: int = 1,
    reserved: Collection[int] = (),
) -> MigrationPlan:
    """Plan the migration of ``source`` into segments numbered from ``first_segment_number``,
    skipping the ``reserved`` numbers.

    Raises MigrationError for a segment size under one byte or a negative number.
    """
    if first_segment_number < 0:
        raise MigrationError(f"segment numbers start at 0 or more, not {first_segment_number}")
    data = normalise(source)
    segments = split_into_segments(data, segment_bytes)
    numbers = _free_numbers(first_segment_number, frozenset(reserved))
    return MigrationPlan(
        segments=[
            (f"{number:08d}.jsonl", segment)
            for segment, number in zip(segments, numbers, strict=False)
        ],
        line_count=data.count(b"\n"),
        sha256=hashlib.sha256(data).hexdigest(),
        scan=scan_lines(source),
        normalised=len(data) != len(source),
        segment_bytes=segment_bytes,
    )


def _first_difference(expected: bytes, actual: bytes) -> int:
    expected_lines, actual_lines = expected.split(b"\n"), actual.split(b"\n")
    for number, (a, b) in enumerate(zip(expected_lines, actual_lines, strict=False), start=1):
        if a != b:
            return number
    return min(len(expected_lines), len(actual_lines)) + 1  # one is a prefix of the other


def verify_migration(plan: MigrationPlan, read_back: Sequence[bytes]) -> list[str]:
    """Compare what was read back from the destination with the plan.

    ``read_back`` is the segments' bytes in order. Returns the discrepancies, one
    sentence each; an empty list means the line count and the SHA-256 over the
    concatenated bytes both match.
    """
    actual = b"".join(read_back)
    discrepancies: list[str] = []
    lines = actual.count(b"\n")
    if lines != plan.line_count:
        discrepancies.append(f"line count: planned {plan.line_count}, read back {lines}")
    digest = hashlib.sha256(actual).hexdigest()
    if digest != plan.sha256:
        discrepancies.append(f"SHA-256: planned {plan.sha256}, read back {digest}")
        expected = b"".join(data for _, data in plan.segments)
        discrepancies.append(f"first difference at line {_first_difference(expected, actual)}")
    if discrepancies and len(read_back) != len(plan.segments):
        discrepancies.append(f"segments: planned {len(plan.segments)}, read back {len(read_back)}")
    return discrepancies


# --- renumbering the destination's own segments (--force) ---------------------------------------


@dataclass(frozen=True)
class Move:
    """One existing segment's blob, from its old name to its new one (maybe the same)."""

    old: str
    new: str
    sha: str


@dataclass(frozen=True)
class Renumbering:
    """Where ``--force`` puts the segments already in the destination, and which names go."""

    moves: tuple[Move, ...]  # every existing segment, in append order
    deletes: tuple[str, ...]  # old names that neither a migrated nor a moved segment takes
    migrated: tuple[str, ...]  # the migrated segments' names, which come first

    @property
    def renumbered(self) -> int:
        """How many existing segments change name."""
        return sum(move.old != move.new for move in self.moves)

    def tree(self) -> dict[str, str | None]:
        """Name -> blob sha (None: deleted) for the commit's tree: the moved blobs are
        already on GitHub, so renumbering only re-points entries. Unmoved ones are set
        too, so the commit names its newest segment (``destination_link``)."""
        entries: dict[str, str | None] = dict.fromkeys(self.deletes)
        entries.update((move.new, move.sha) for move in self.moves)
        return entries

    def check(self, after: Mapping[str, str]) -> list[str]:
        """Compare the destination's segment files after the commit (name -> blob sha)
        with the renumbering: one sentence per difference, none when it all landed."""
        problems = [
            f"{move.new} (was {move.old}): expected blob {move.sha}, found {after.get(move.new)}"
            for move in self.moves
            if after.get(move.new) != move.sha
        ]
        intended = {move.new for move in self.moves}.union(self.migrated)
        left = sorted(set(after) - intended)
        problems += [f"{name}: a segment file the migration did not plan" for name in left]
        return problems


def renumber_existing(listing: Listing, plan: MigrationPlan) -> Renumbering:
    """Number the destination's segments on after the migrated ones, in their order.

    Whatever gaps their old numbers have (files a compaction merged, or deleted by
    hand), they take the next free numbers after the last migrated segment, so
    reading the folder in order gives the migrated records, then theirs, each
    once; an old name that no segment takes any more is deleted. What counts as
    a segment is ``list_log``'s: a plain file named as this layout names one;
    other names are left alone, and a non-file's number (``reserved``) is skipped.
    """
    migrated = tuple(name for name, _ in plan.segments)
    last = max((segment_number(name) or 0 for name in migrated), default=0)
    numbers = _free_numbers(last + 1, frozenset(listing.reserved))
    moves = tuple(
        Move(entry.name, segment_name(number), entry.sha)
        for entry, number in zip(listing.segments, numbers, strict=False)
    )
    taken = {move.new for move in moves}.union(migrated)
    deletes = tuple(move.old for move in moves if move.old not in taken)
    return Renumbering(moves, deletes, migrated)
