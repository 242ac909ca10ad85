"""What ``gitjsonl stats`` and ``gitjsonl verify`` conclude from one read of a log.

``_cli`` does the reading (every segment, the legacy file, the folder's
history) into an ``Inspection``; everything here is a function over that plain
value, unit-tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ._batch import batch_id_of
from ._github import CommitInfo, DirEntry
from ._records import decode_lines

__all__ = ["Inspection", "count_records", "files_of", "find_problems"]


@dataclass(frozen=True)
class Inspection:
    """One pass over a log: every file's lines and the folder's history."""

    branch: str
    head: str
    segments: list[tuple[DirEntry, bytes]]
    legacy: tuple[DirEntry, bytes] | None  # the single file, unless migrated
    migrated: bool
    commits: list[CommitInfo]  # newest first, those touching the folder


def files_of(inspection: Inspection) -> Iterator[tuple[DirEntry, bytes]]:
    if inspection.legacy is not None:
        yield inspection.legacy
    yield from inspection.segments


def count_records(data: bytes) -> int:
    return sum(1 for d in decode_lines(data) if d.record is not None)


def find_problems(found: Inspection, segment_bytes: int) -> list[str]:
    """Every problem ``verify`` reports, one sentence each."""
    problems: list[str] = []
    for entry, data in files_of(found):
        for decoded in decode_lines(data):
            if decoded.record is None:
                problems.append(f"{entry.path}:{decoded.number}: corrupt line: {decoded.problem}")
        if data and not data.endswith(b"\n"):
            problems.append(f"{entry.path}: torn last line (no newline at the end)")
    for entry, data in found.segments:
        if len(data) > segment_bytes and data.count(b"\n") > 1:
            problems.append(
                f"{entry.path}: {len(data):,} bytes, over the {segment_bytes:,}-byte cap "
                "with more than one line"
            )
    seen: dict[str, str] = {}
    for commit in reversed(found.commits):
        batch = batch_id_of(commit.message)
        if batch is None:
            continue
        if batch in seen:
            problems.append(
                f"duplicate batch {batch}: commits {seen[batch][:12]} and {commit.sha[:12]}"
            )
        else:
            seen[batch] = commit.sha
    for commit in found.commits:
        if len(commit.parents) > 1:
            problems.append(f"non-linear history: merge commit {commit.sha[:12]} touches the log")
    return problems
