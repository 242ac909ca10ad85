"""The on-branch layout of a log, and the pure planning of what a batch writes.

A log at ``path`` is a folder of files named by a sequence number of 8 to 12
ASCII digits, ``00000001.jsonl``, ``00000002.jsonl``, ... Each line is one JSON
object and ``\\n``; the files sorted by name concatenate to the log in append
order, and none outgrows ``segment_bytes`` (a single record larger than that
gets a file of its own), so every file is readable through the Contents API.

A batch never rewrites a file to add to it: it writes its lines into new
files numbered after the highest number in the folder, packed up to
``segment_bytes`` each, so it uploads about what it appends. Small files (under
``small_bytes``, a sixteenth of ``segment_bytes``) are the newest part of a log
fed small batches; a batch that finds ``MAX_RUN`` of them at the end, or
enough to reach ``small_bytes`` with its own lines (a batch of ``small_bytes``
or more always does), merges them with its lines: they and its first lines go
into one file, named after the first of them, the others are deleted in the
same commit (*compaction*). A file so made is no longer small and is never
rewritten again: each byte is uploaded about twice (once in its batch, once
when compacted), and a ``tail`` reads at most ``MAX_RUN`` small files before
the large ones. So small files only ever stand at the end: no mergeable small
file is followed by a file that is not small, over any history of batches
(the one exception: a record too large to share a file with the small files'
bytes, which gets a file of its own after them). Logs of earlier versions,
whose last file grew in place, are read and continued as they are: their files
are simply files of this layout.

Only names this layout writes are the log's: ``segment_name(n)`` exactly. A
name of other digits (fullwidth ones, 13 or more, a different zero padding)
is someone else's file, and an entry with a segment's name that is not a plain
file (a folder, a symlink, a submodule) is never read, merged or replaced.

Everything here is a function over plain values: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._github import DirEntry

__all__ = [
    "MANIFEST_NAME",
    "MAX_RUN",
    "BatchPlan",
    "Listing",
    "SegmentFile",
    "SegmentWrite",
    "list_log",
    "looks_like_segment",
    "plan_batch",
    "segment_name",
    "segment_number",
    "small_bytes",
    "small_run",
    "sorted_segments",
]

#: Written into the log folder by ``gitjsonl migrate``; its presence tells
#: readers that the legacy single file is already part of the segments.
MANIFEST_NAME = "_gitjsonl.json"

#: Digits of the largest segment number this layout writes (a trillion files).
MAX_DIGITS = 12

#: At most this many small files stand at the end of a log: a batch that finds
#: them merges them (``plan_batch``). ``tail`` reads them before any large file.
MAX_RUN = 4

_SEGMENT_RE = re.compile(rf"([0-9]{{8,{MAX_DIGITS}}})\.jsonl", re.ASCII)


def segment_name(number: int) -> str:
    """``1`` -> ``"00000001.jsonl"``."""
    if number < 1:
        raise ValueError(f"segment numbers start at 1, got {number}")
    if number >= 10**MAX_DIGITS:
        raise ValueError(f"segment numbers have at most {MAX_DIGITS} digits, got {number}")
    return f"{number:08d}.jsonl"


def segment_number(name: str) -> int | None:
    """The sequence number of a name this layout writes, or ``None`` for any other name."""
    match = _SEGMENT_RE.fullmatch(name)
    if match is None:
        return None
    number = int(match.group(1))
    return number if number >= 1 and segment_name(number) == name else None


def looks_like_segment(name: str) -> bool:
    """A ``.jsonl`` name: ignored with a warning when it is not one of ours."""
    return name.endswith(".jsonl")


def sorted_segments(names: Iterable[str]) -> list[tuple[int, str]]:
    """``(number, name)`` of the segment files among ``names``, in append order."""
    found = [(n, name) for name in names if (n := segment_number(name)) is not None]
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Listing:
    """A log folder's entries, as the layout sees them."""

    segments: tuple[DirEntry, ...]  # the plain files with a segment's name, in append order
    next_number: int  # the number the next new file gets
    ignored: tuple[str, ...]  # one sentence per entry named like a segment and not read
    reserved: tuple[int, ...] = ()  # numbers of the non-files with a segment's name: never reused

    def files(self) -> list[SegmentFile]:
        """The segments as ``plan_batch`` sees them (a non-100644 file is never rewritten)."""
        return [
            SegmentFile(_number(entry.name), entry.size, entry.mode == "100644")
            for entry in self.segments
        ]


def list_log(entries: Iterable[DirEntry]) -> Listing:
    """Which entries of a log folder are its segments, and which look like one but are not.

    A plain file (``type == "file"``) with a name ``segment_name`` writes is a
    segment. A ``.jsonl`` name of other digits is someone else's file. A folder,
    symlink or submodule with a segment's name is never read, but its number
    is taken (``reserved``): the next new file is numbered after it, so it is
    never replaced.
    """
    segments: list[tuple[int, DirEntry]] = []
    ignored: list[str] = []
    reserved: list[int] = []
    highest = 0
    for entry in entries:
        number = segment_number(entry.name)
        if number is None:
            if looks_like_segment(entry.name):
                ignored.append(f"{_shown(entry.path)}: not a segment name gitjsonl writes; ignored")
            continue
        highest = max(highest, number)
        if entry.type == "file":
            segments.append((number, entry))
        else:
            reserved.append(number)
            ignored.append(
                f"{_shown(entry.path)}: a {entry.type} (mode {entry.mode}), not a plain file; "
                "never read or replaced"
            )
    segments.sort(key=lambda pair: pair[0])
    return Listing(
        tuple(entry for _, entry in segments), highest + 1, tuple(ignored), tuple(sorted(reserved))
    )


def _shown(path: str) -> str:
    """A path for a message: a hostile name may be thousands of characters long."""
    return path if len(path) <= 120 else f"{path[:60]}...{path[-40:]} ({len(path):,} chars)"


def _number(name: str) -> int:
    number = segment_number(name)
    if number is None:
        raise ValueError(f"{name!r} is not a segment name")
    return number


def small_bytes(segment_bytes: int) -> int:
    """Files under this size are small: merged by a later batch, never read alone for long."""
    return max(1, segment_bytes // 16)


@dataclass(frozen=True, slots=True)
class SegmentFile:
    """A segment file of the folder a batch builds on (a plain file with a segment's name)."""

    number: int
    size: int
    mergeable: bool = True  # a plain, non-executable file: ours to rewrite in a compaction


@dataclass(frozen=True, slots=True)
class SegmentWrite:
    """One file a batch writes: the segment's whole new content."""

    number: int
    content: bytes

    @property
    def name(self) -> str:
        return segment_name(self.number)


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What one batch writes: whole new files, and the files a compaction replaces."""

    writes: tuple[SegmentWrite, ...]
    deletes: tuple[int, ...] = ()


def small_run(segments: Sequence[SegmentFile], segment_bytes: int) -> list[SegmentFile]:
    """The small files at the end of the log that the next batch may merge (oldest first).

    The longest run of mergeable files under ``small_bytes`` ending with the
    last segment, cut to the newest ``MAX_RUN``.
    """
    limit = small_bytes(segment_bytes)
    run: list[SegmentFile] = []
    for segment in reversed(segments):
        if not segment.mergeable or segment.size >= limit or len(run) == MAX_RUN:
            break
        run.append(segment)
    return run[::-1]


def plan_batch(
    segments: Sequence[SegmentFile],
    lines: Sequence[bytes],
    *,
    segment_bytes: int,
    next_number: int,
    contents: Mapping[int, bytes],
) -> BatchPlan:
    """Decide which files a batch of ``lines`` writes and which it deletes.

    ``segments`` are the log's segment files in order; ``next_number`` is one
    more than the highest segment number of any entry in the folder (a folder
    or symlink with a segment's name included, so it is never replaced);
    ``contents`` holds the bytes of the ``small_run`` files (and of the last
    file, when known). A batch merges the run with its own lines when the run is
    ``MAX_RUN`` files long or would reach ``small_bytes`` with them (so a batch
    of ``small_bytes`` or more always does): the run and the batch's first lines
    in one file named after the run's first, the rest of the batch in new files
    after it, the run's other files deleted. Otherwise the lines go into new
    files of at most ``segment_bytes`` each, and nothing existing changes.
    """
    if segment_bytes < 1:
        raise ValueError("segment_bytes must be positive")
    if not lines:
        return BatchPlan(())
    if segments and next_number <= segments[-1].number:
        raise ValueError("next_number must follow every segment")
    batch = b"".join(lines)
    run = small_run(segments, segment_bytes)
    limit = small_bytes(segment_bytes)
    if run and all(s.number in contents for s in run):
        merged = b"".join(_ended(contents[s.number]) for s in run)
        full = len(run) == MAX_RUN or len(merged) + len(batch) >= limit
        # A batch of small_bytes or more takes the run along too: appended after it,
        # the run would stand behind a large file, never merged again.
        if full and len(merged) + len(lines[0]) <= segment_bytes:
            # Packed as if from next_number - 1: the first file takes the run's first
            # number instead, the others follow without a gap.
            writes = _pack([merged + lines[0], *lines[1:]], next_number - 1, segment_bytes)
            first_write = SegmentWrite(run[0].number, writes[0].content)
            return BatchPlan((first_write, *writes[1:]), tuple(s.number for s in run[1:]))
    first = lines
    last = contents.get(segments[-1].number) if segments else None
    if last and not last.endswith(b"\n"):
        # Someone left a torn last line: a blank line keeps our first record from being
        # glued to it in a checkout's concatenation (readers skip blank lines).
        first = [b"\n" + lines[0], *lines[1:]]
    return BatchPlan(tuple(_pack(first, next_number, segment_bytes)))


def _ended(content: bytes) -> bytes:
    """``content`` ending in a newline (a torn last line is ended, not glued to the next)."""
    return content if not content or content.endswith(b"\n") else content + b"\n"


def _pack(lines: Sequence[bytes], number: int, segment_bytes: int) -> list[SegmentWrite]:
    """``lines`` in new files from ``number`` on, at most ``segment_bytes`` each (a longer
    line alone in its own)."""
    writes: list[SegmentWrite] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > segment_bytes:
            writes.append(SegmentWrite(number, b"".join(current)))
            number, current, size = number + 1, [], 0
        current.append(line)
        size += len(line)
    writes.append(SegmentWrite(number, b"".join(current)))
    return writes
