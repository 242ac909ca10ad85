"""Planning ``gitjsonl migrate``: split a single-file log into segments, recover its history.

Why this exists: the service gitjsonl replaces kept its log as one file updated
through the Contents API (GET, decode, append a line, PUT). Past 1 MB GitHub
answers that GET with ``content: ""``, so the service decoded an empty log and
PUT a file holding a single record -- overwriting everything before it, possibly
several times. Migration moves the file into size-capped segments, and history
recovery walks the file's versions to put every overwritten record back, in
its original place.

Everything here is pure: bytes and plain values in, plain values out. The CLI
does the reading (blob API, commits API) and the single commit; this module
decides what that commit holds and how to check it afterwards.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._exceptions import MigrationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "FileVersion",
    "LineProblem",
    "MigrationPlan",
    "Overwrite",
    "Recovery",
    "ScanReport",
    "format_plan",
    "format_recovery",
    "format_report",
    "format_scan",
    "normalise",
    "plan_migration",
    "recover_history",
    "scan_lines",
    "split_into_segments",
    "verify_migration",
]

NOT_JSON = "not JSON"
NOT_OBJECT = "not a JSON object"
NOT_UTF8 = "not UTF-8"
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


def _reject_constant(name: str) -> object:
    # NaN and Infinity are Python's extension, not JSON: other readers choke on them.
    raise ValueError(f"{name} is not JSON")


def _line_problem(line: bytes) -> str | None:
    if not line.strip():
        return BLANK_LINE
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return NOT_JSON
    if not isinstance(value, dict):
        return NOT_OBJECT
    return None


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


# --- history recovery --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileVersion:
    """The source file as of one commit; ``content`` is ``None`` where it did not exist."""

    commit: str
    date: str
    content: bytes | None


@dataclass(frozen=True)
class Overwrite:
    """A version that dropped records of the version before it.

    ``records_lost`` is how many lines of the previous version this one did not
    carry forward; ``records_recovered`` how many of those the final version still
    lacks, i.e. what recovery puts back on account of this overwrite (a record lost
    twice is counted at its last loss only, so these add up to
    ``Recovery.records_recovered``). ``deleted_at`` names the commit that deleted
    the file when this version re-created it (or, for a file deleted for good, the
    overwrite is the deletion itself).
    """

    commit: str
    date: str
    records_lost: int
    records_recovered: int
    deleted_at: str | None = None


@dataclass(frozen=True)
class Recovery:
    """Every record the file ever held, in order, and where it lost some."""

    lines: list[bytes]  # each ends with b"\n"; blank lines are not records and are dropped
    overwrites: list[Overwrite]
    records_recovered: int  # lines here that the final version lacks

    @property
    def content(self) -> bytes:
        """The recovered log as one JSONL file."""
        return b"".join(self.lines)


class _Node:
    """A trie node: one line, under the exact sequence of lines that precedes it."""

    __slots__ = ("children", "index")

    def __init__(self, index: int) -> None:
        self.index = index  # position of this line in the logical log
        self.children: dict[bytes, _Node] = {}


def _records(content: bytes) -> list[bytes]:
    # The old service wrote "\n{record}\n" into an empty file, so blank lines are
    # expected and carry nothing; a torn last line is terminated so that it compares
    # equal to the same line once a later version completes the newline.
    return [line + b"\n" for line in content.split(b"\n") if line.strip()]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def recover_history(versions: Iterable[FileVersion]) -> Recovery:
    """Rebuild every record a file ever held from its versions, oldest first.

    ``versions`` is read once, in order, so it may be a generator that fetches one
    blob at a time.

    Each version is read as its list of non-blank lines. A version that starts
    with the lines of the version before it merely appended; one that does not is
    an overwrite, and the lines it dropped are kept in the result, ahead of what
    was written after them. Records that legitimately repeat stay repeated.

    The lines a version shares with *any* earlier version as a prefix count as
    already seen, not only those it shares with its predecessor: so a revert that
    restores an older version (by hand, after noticing the damage) does not
    duplicate what it restores. Lines are identified by their position in the
    sequence (a trie of versions), never by content alone.

    A deleted file (``content is None``) is skipped over: its re-creation is
    compared with the last version that existed, so deleting then restoring the
    file loses nothing, while re-creating it afresh is an overwrite.

    Known limit: the old service's clobber writes a one-record file, and if that
    record is byte-identical to the first line of an earlier version it is
    indistinguishable from a truncation and appears once, not twice.
    """
    log: list[bytes] = []
    root = _Node(-1)
    overwrites: list[Overwrite] = []
    last_lost_by: dict[int, int] = {}  # logical index -> the overwrite that last dropped it
    previous: list[int] | None = None  # logical indices of the last version that existed
    deleted_at: FileVersion | None = None  # first deletion since that version

    def lose(version: FileVersion, dropped: list[int]) -> None:
        for index in dropped:
            last_lost_by[index] = len(overwrites)
        overwrites.append(
            Overwrite(
                commit=version.commit,
                date=version.date,
                records_lost=len(dropped),
                records_recovered=0,  # filled in once the final version is known
                deleted_at=None if deleted_at is None else deleted_at.commit,
            )
        )

    for version in versions:
        if version.content is None:
            if previous is not None and deleted_at is None:
                deleted_at = version
            continue
        node = root
        current: list[int] = []
        for line in _records(version.content):
            child = node.children.get(line)
            if child is None:
                child = node.children[line] = _Node(len(log))
                log.append(line)
            current.append(child.index)
            node = child
        if previous is not None:
            kept = _common_prefix(previous, current)
            if kept < len(previous):
                lose(version, previous[kept:])
        previous = current
        deleted_at = None

    final: list[int] = previous or []
    if deleted_at is not None and previous:
        lose(deleted_at, previous)  # deleted and never re-created: the deletion is the loss
        final = []

    recovered = [0] * len(overwrites)
    in_final = set(final)
    for index, by in last_lost_by.items():
        if index not in in_final:
            recovered[by] += 1
    return Recovery(
        lines=log,
        overwrites=[
            Overwrite(o.commit, o.date, o.records_lost, n, o.deleted_at)
            for o, n in zip(overwrites, recovered, strict=True)
        ],
        records_recovered=len(log) - len(final),
    )


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


def plan_migration(
    source: bytes, *, segment_bytes: int, first_segment_number: int = 1
) -> MigrationPlan:
    """Plan the migration of ``source`` into segments numbered from ``first_segment_number``.

    Raises MigrationError for a segment size under one byte or a negative number.
    """
    if first_segment_number < 0:
        raise MigrationError(f"segment numbers start at 0 or more, not {first_segment_number}")
    data = normalise(source)
    segments = split_into_segments(data, segment_bytes)
    return MigrationPlan(
        segments=[
            (f"{number:08d}.jsonl", segment)
            for number, segment in enumerate(segments, start=first_segment_number)
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


# --- reports -----------------------------------------------------------------------------------


def format_scan(scan: ScanReport, *, limit: int = 20) -> str:
    """Describe the scan's problems, at most ``limit`` of them, one per line."""
    if scan.ok:
        return f"All {scan.line_count} lines are JSON objects."
    lines = [f"{len(scan.problems)} problem(s) in {scan.line_count} lines (kept in place):"]
    lines += [f"  line {p.line_number}: {p.reason}" for p in scan.problems[:limit]]
    if len(scan.problems) > limit:
        lines.append(f"  ... and {len(scan.problems) - limit} more")
    return "\n".join(lines)


def format_recovery(recovery: Recovery) -> str:
    """Describe each overwrite found in the history and what recovery restores."""
    if not recovery.overwrites:
        return f"History: no overwrites; {len(recovery.lines)} records."
    lines = [
        f"History: {len(recovery.overwrites)} overwrite(s); "
        f"{recovery.records_recovered} record(s) recovered, "
        f"{len(recovery.lines)} records in all:"
    ]
    for o in recovery.overwrites:
        note = f" (file deleted at {o.deleted_at})" if o.deleted_at else ""
        lines.append(
            f"  {o.commit} {o.date}: {o.records_lost} lost, {o.records_recovered} recovered{note}"
        )
    return "\n".join(lines)


def format_plan(plan: MigrationPlan, *, destination: str = "") -> str:
    """Describe the segments a migration writes, with its line count and hash."""
    prefix = f"{destination.rstrip('/')}/" if destination else ""
    lines = [
        f"{len(plan.segments)} segment(s) of at most {plan.segment_bytes} bytes, "
        f"{plan.line_count} lines, {plan.byte_count} bytes, sha256 {plan.sha256}"
    ]
    if plan.segments:
        first, last = plan.segments[0][0], plan.segments[-1][0]
        span = first if first == last else f"{first} .. {last}"
        lines.append(f"  {prefix}{span}")
    if plan.normalised:
        lines.append("  a newline was added after the torn last line")
    if plan.oversized:
        lines.append(
            f"  {len(plan.oversized)} segment(s) over the cap, each a single longer line: "
            + ", ".join(plan.oversized)
        )
    return "\n".join(lines)


def format_report(
    plan: MigrationPlan,
    *,
    source: str,
    destination: str,
    recovery: Recovery | None = None,
    discrepancies: Sequence[str] | None = None,
    dry_run: bool = False,
    problem_limit: int = 20,
) -> str:
    """The migration report the CLI prints: plan, history, problems, verification.

    ``discrepancies`` is :func:`verify_migration`'s answer, or ``None`` before (or
    instead of, with ``dry_run``) the commit.
    """
    verb = "Dry run: would migrate" if dry_run else "Migrating"
    parts = [f"{verb} {source} -> {destination}", format_plan(plan, destination=destination)]
    if recovery is not None:
        parts.append(format_recovery(recovery))
    parts.append(format_scan(plan.scan, limit=problem_limit))
    if discrepancies is not None:
        if discrepancies:
            parts.append("Verification FAILED:\n" + "\n".join(f"  {d}" for d in discrepancies))
        else:
            parts.append(f"Verified: {plan.line_count} lines read back, SHA-256 matches.")
    elif dry_run:
        parts.append("Nothing was written.")
    return "\n".join(parts)
