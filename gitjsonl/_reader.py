"""Reading a log back: the tail, every record in order (streaming), or following new ones.

A read pins one commit (one request for the branch head) and lists the log
folder at it (one request), so what it returns is a consistent snapshot even
while writers commit. Segments are then fetched newest first (``tail``) or
oldest first (``records``) one blob at a time: the cost of ``tail(n)`` depends
on how many segments hold the last ``n`` records, never on how long the log is.

A legacy single-file log (``data/interactions.jsonl`` next to
``data/interactions/``) is read through the blob API, so any size up to GitHub's
100 MB works, and counts as the oldest part of the log until ``gitjsonl
migrate`` has moved it into the segments (its manifest says so). ``find_file``
is the one lookup of such a file, used by the reader, ``stats``/``verify`` and
``migrate``.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._exceptions import EmptyRepository, NotFound
from ._github import DirEntry, GitHubRepo
from ._records import decode_lines
from ._segments import MANIFEST_NAME, segment_number, sorted_segments

__all__ = ["LogReader", "Snapshot", "find_file"]

logger = logging.getLogger("gitjsonl")


def find_file(repo: GitHubRepo, path: str, ref: str) -> DirEntry | None:
    """The entry of the file at ``path`` as of ``ref`` (its folder's listing), or None.

    The folder is listed rather than the file fetched: the entry carries the
    blob sha, and the blob API reads any size, where the Contents API stops
    at 1 MB.
    """
    parent, name = posixpath.split(path.strip("/"))
    for entry in repo.list_dir(parent, ref=ref) or []:
        if entry.name == name and entry.type == "file":
            return entry
    return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    commit: str
    segments: tuple[DirEntry, ...]  # in append order
    migrated: bool  # the folder holds a migration manifest


#: How many commits below a head are searched for our own last commit (one page).
KNOWN_HEAD_SEARCH = 99


class LogReader:
    """Reads one log on one branch; safe to share between threads."""

    def __init__(
        self,
        repo: GitHubRepo,
        *,
        path: str,
        branch: Callable[[], str],
        legacy_path: str | None,
        known_head: Callable[[], str | None] | None = None,
    ) -> None:
        self._repo = repo
        self._known_head = known_head
        self._path = path.strip("/")
        self._branch = branch
        self._legacy_path = legacy_path.strip("/") if legacy_path else None
        self._lock = threading.Lock()
        self.corrupt_lines = 0

    def snapshot(self) -> Snapshot:
        commit = self._pin()
        entries = self._repo.list_dir(self._path, ref=commit) or []
        files = {e.name: e for e in entries if e.type == "file"}
        ordered = tuple(files[name] for _, name in sorted_segments(files))
        return Snapshot(commit, ordered, MANIFEST_NAME in files)

    def _pin(self) -> str:
        """The commit a read pins: the branch's head, unless that read is behind our own write.

        Reads of a branch may lag behind writes, so right after ``flush()`` the
        head can read as it was before our commit. ``known_head`` is the
        newest commit this process knows is on the branch (its own last
        commit): a head is used only when its history (read by sha, never
        stale) reaches that commit; otherwise the known commit is read
        instead. One more request, and only when the two differ.
        """
        ours = self._known_head() if self._known_head is not None else None
        try:
            head = self._repo.get_head(self._branch())
        except NotFound:
            if ours is None:
                raise
            return ours  # a branch we wrote to a moment ago: the read lags
        if ours is None or head == ours:
            return head
        for count, info in enumerate(self._repo.iter_commits(head)):
            if info.sha == ours:
                return head  # newer than ours: it holds our commit and more
            if count >= KNOWN_HEAD_SEARCH:
                break
        return ours

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` records, oldest first."""
        if n <= 0:
            return []
        try:
            snap = self.snapshot()
        except EmptyRepository:
            return []  # a log that does not exist yet has no records
        return self._last(snap, self._read_back(snap, n), n)

    def follow(
        self,
        n: int,
        *,
        interval: float,
        stop: threading.Event | None = None,
        max_polls: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The last ``n`` records (as ``tail``), then every record committed later, as it lands.

        Polls the branch head every ``interval`` seconds (one request while
        nothing changed). The tail and the polls count from the same snapshot,
        so no record is yielded twice or missed in between. Ends when ``stop``
        is set or after ``max_polls`` polls; otherwise when the caller stops
        iterating.
        """
        stop = stop or threading.Event()
        snap = self.snapshot()
        read = self._read_back(snap, n)  # the newest segment at least, even for n == 0
        yield from self._last(snap, read, n)
        # Where the next poll continues: the newest segment read, and how many records it held.
        last, seen = (_number(read[0][0]), len(read[0][1])) if read else (0, 0)
        polls = 0
        while max_polls is None or polls < max_polls:
            polls += 1
            if stop.wait(interval):
                return
            if self._repo.get_head(self._branch()) == snap.commit:
                continue
            snap = self.snapshot()
            for entry in snap.segments:
                number = _number(entry)
                if number < last:
                    continue
                records = self.read(entry)
                yield from records[seen:] if number == last else records
                # A lagging read may show fewer records than already shown: never go back.
                last, seen = max((last, seen), (number, len(records)))

    def _read_back(self, snap: Snapshot, n: int) -> list[tuple[DirEntry, list[dict[str, Any]]]]:
        """Segments newest first with their records, read until they hold ``n`` (one at least)."""
        read: list[tuple[DirEntry, list[dict[str, Any]]]] = []
        have = 0
        for entry in reversed(snap.segments):
            records = self.read(entry)
            read.append((entry, records))
            have += len(records)
            if have >= n:
                break
        return read

    def _last(
        self, snap: Snapshot, read: list[tuple[DirEntry, list[dict[str, Any]]]], n: int
    ) -> list[dict[str, Any]]:
        """The last ``n`` records of what ``_read_back`` read, the legacy file first if short."""
        if n <= 0:
            return []
        chunks = [records for _, records in reversed(read)]  # oldest first
        if sum(len(records) for records in chunks) < n:
            legacy = self.legacy_file(snap)
            if legacy is not None:
                chunks.insert(0, self.read(legacy))
        ordered = [record for chunk in chunks for record in chunk]
        return ordered[-n:]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record in order, one file in memory at a time."""
        try:
            snap = self.snapshot()
        except EmptyRepository:
            return  # a log that does not exist yet has no records
        legacy = self.legacy_file(snap)
        if legacy is not None:
            yield from self.read(legacy)
        for entry in snap.segments:
            yield from self.read(entry)

    def legacy_file(self, snap: Snapshot) -> DirEntry | None:
        """The legacy single file as of ``snap``, while it is still part of the log."""
        if self._legacy_path is None or snap.migrated:
            return None
        return find_file(self._repo, self._legacy_path, snap.commit)

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


def _number(entry: DirEntry) -> int:
    number = segment_number(entry.name)
    assert number is not None  # snapshots list segment files only
    return number
