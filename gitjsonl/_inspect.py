"""``gitjsonl stats`` and ``gitjsonl verify``: read a log once, conclude over plain values.

``inspect_log`` does the reading (every segment, the legacy file, the folder's
history) into an ``Inspection``; everything else here is a pure function over
that value (the figures ``stats`` prints, the problems ``verify`` reports),
unit-tested without a server.

``gitjsonl verify --json`` prints ``verify_json``::

    {"repo": "owner/name", "path": "data/interactions", "branch": "main",
     "head": "<commit sha>", "ok": false, "records": 1200, "segments": 2,
     "commits": 31, "problems": ["data/interactions/00000002.jsonl:7: corrupt line: ..."]}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._batch import WRITER_TRAILER, batch_id_of, trailer
from ._config import legacy_path_for
from ._github import CommitInfo, DirEntry, GitHubRepo
from ._reader import LogReader, read_blob
from ._records import decode_lines

__all__ = [
    "Inspection",
    "count_records",
    "files_of",
    "find_problems",
    "inspect_log",
    "stats_figures",
    "total_records",
    "verify_json",
]


@dataclass(frozen=True)
class Inspection:
    """One pass over a log: every file's lines and the folder's history."""

    branch: str
    head: str
    segments: list[tuple[DirEntry, bytes]]
    legacy: tuple[DirEntry, bytes] | None  # the single file, unless migrated
    migrated: bool
    commits: list[CommitInfo]  # newest first, those touching the folder
    ignored: tuple[str, ...] = ()  # entries named like segments that are not read
    legacy_drift: str | None = None  # a migrated legacy file changed since (``legacy_drift``)


def inspect_log(
    repo: GitHubRepo,
    *,
    path: str,
    branch: str,
    progress: Callable[[str], None] = lambda _message: None,
) -> Inspection:
    """Read the log at ``path`` on ``branch``: every file as of one commit, and its history."""
    reader = LogReader(repo, path=path, branch=lambda: branch, legacy_path=legacy_path_for(path))
    snap = reader.snapshot()
    segments = []
    for index, (entry, data) in enumerate(reader.files(snap.segments), start=1):
        progress(f"read segment {index}/{len(snap.segments)}")
        segments.append((entry, data))
    legacy = None
    single = None if snap.migrated else reader.legacy_file(snap)
    if single is not None:
        progress(f"reading {single.path}")
        legacy = (single, read_blob(repo, single))
    commits = []
    for commit in repo.iter_commits(snap.commit, path=path):
        commits.append(commit)
        if len(commits) % 100 == 0:
            progress(f"reading history: {len(commits):,} commits")
    drift = reader.legacy_drift(snap)
    return Inspection(
        branch, snap.commit, segments, legacy, snap.migrated, commits, snap.ignored, drift
    )


def files_of(inspection: Inspection) -> Iterator[tuple[DirEntry, bytes]]:
    if inspection.legacy is not None:
        yield inspection.legacy
    yield from inspection.segments


def count_records(data: bytes) -> int:
    return sum(1 for d in decode_lines(data) if d.record is not None)


def total_records(found: Inspection) -> int:
    """Records in the whole log, the legacy file included; corrupt lines are not records."""
    return sum(count_records(data) for _, data in files_of(found))


def stats_figures(found: Inspection, *, repo: str, path: str) -> dict[str, Any]:
    """What ``gitjsonl stats`` reports, as JSON-ready values."""
    commits = found.commits  # newest first
    writers = {w for c in commits if (w := trailer(c.message, WRITER_TRAILER))}
    return {
        "repo": repo,
        "branch": found.branch,
        "path": path,
        "head": found.head,
        "segments": len(found.segments),
        "first_segment": found.segments[0][0].name if found.segments else None,
        "last_segment": found.segments[-1][0].name if found.segments else None,
        "records": total_records(found),
        "bytes": sum(len(data) for _, data in files_of(found)),
        "legacy_file": found.legacy[0].path if found.legacy else None,
        "migrated": found.migrated,
        "commits": len(commits),
        "batches": sum(1 for c in commits if batch_id_of(c.message)),
        "writers": len(writers),
        "first_commit": _commit_json(commits[-1]) if commits else None,
        "last_commit": _commit_json(commits[0]) if commits else None,
    }


def _commit_json(commit: CommitInfo) -> dict[str, str]:
    return {"sha": commit.sha, "date": commit.date}


def find_problems(found: Inspection, segment_bytes: int) -> list[str]:
    """Every problem ``verify`` reports, one sentence each."""
    problems: list[str] = list(found.ignored)
    if found.legacy_drift is not None:
        problems.append(found.legacy_drift)
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


def verify_json(found: Inspection, problems: list[str], *, repo: str, path: str) -> dict[str, Any]:
    """What ``gitjsonl verify --json`` prints (the module docstring's shape)."""
    return {
        "repo": repo,
        "path": path,
        "branch": found.branch,
        "head": found.head,
        "ok": not problems,
        "records": total_records(found),
        "segments": len(found.segments),
        "commits": len(found.commits),
        "problems": problems,
    }
