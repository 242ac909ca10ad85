"""Reading a log back: the tail, or every record in order, streaming.

A read pins one commit (one request for the branch head) and lists the log
folder at it (one request), so what it returns is a consistent snapshot even
while writers commit. Segments are then fetched newest first (``tail``) or
oldest first (``records``) one blob at a time: the cost of ``tail(n)`` depends
on how many segments hold the last ``n`` records, never on how long the log is.

A legacy single-file log (``data/interactions.jsonl`` next to
``data/interactions/``) is read through the blob API, so any size up to GitHub's
100 MB works, and counts as the oldest part of the log until ``gitjsonl
migrate`` has moved it into the segments (its manifest says so).
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._github import DirEntry, GitHubRepo
from ._records import decode_lines
from ._segments import MANIFEST_NAME, sorted_segments

__all__ = ["LogReader", "Snapshot"]

logger = logging.getLogger("gitjsonl")


@dataclass(frozen=True, slots=True)
class Snapshot:
    commit: str
    segments: tuple[DirEntry, ...]  # in append order
    migrated: bool  # the folder holds a migration manifest


class LogReader:
    """Reads one log on one branch; safe to share between threads."""

    def __init__(
        self,
        repo: GitHubRepo,
        *,
        path: str,
        branch: Callable[[], str],
        legacy_path: str | None,
    ) -> None:
        self._repo = repo
        self._path = path.strip("/")
        self._branch = branch
        self._legacy_path = legacy_path.strip("/") if legacy_path else None
        self._lock = threading.Lock()
        self.corrupt_lines = 0

    def snapshot(self) -> Snapshot:
        commit = self._repo.get_head(self._branch())
        entries = self._repo.list_dir(self._path, ref=commit) or []
        files = {e.name: e for e in entries if e.type == "file"}
        ordered = tuple(files[name] for _, name in sorted_segments(files))
        return Snapshot(commit, ordered, MANIFEST_NAME in files)

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` records, oldest first."""
        if n <= 0:
            return []
        snap = self.snapshot()
        chunks: list[list[dict[str, Any]]] = []  # newest chunk first
        have = 0
        for entry in reversed(snap.segments):
            records = self.read(entry)
            chunks.append(records)
            have += len(records)
            if have >= n:
                break
        if have < n and not snap.migrated:
            legacy = self._legacy_entry(snap.commit)
            if legacy is not None:
                chunks.append(self.read(legacy))
        ordered = [record for chunk in reversed(chunks) for record in chunk]
        return ordered[-n:]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record in order, one file in memory at a time."""
        snap = self.snapshot()
        if not snap.migrated:
            legacy = self._legacy_entry(snap.commit)
            if legacy is not None:
                yield from self.read(legacy)
        for entry in snap.segments:
            yield from self.read(entry)

    def _legacy_entry(self, commit: str) -> DirEntry | None:
        if self._legacy_path is None:
            return None
        parent, name = posixpath.split(self._legacy_path)
        for entry in self._repo.list_dir(parent, ref=commit) or []:
            if entry.name == name and entry.type == "file":
                return entry
        return None

    def read(self, entry: DirEntry) -> list[dict[str, Any]]:
        """The records of one file of the log (one request), corrupt lines skipped and counted."""
        return self._decode(self._repo.get_blob(entry.sha), entry.path)

    def _decode(self, data: bytes, where: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for line in decode_lines(data):
            if line.record is None:
                with self._lock:
                    self.corrupt_lines += 1
                logger.warning(
                    "gitjsonl: skipping corrupt line %s:%d: %s", where, line.number, line.problem
                )
                continue
            records.append(line.record)
        return records
