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

import json
import logging
import posixpath
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._exceptions import NotFound
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
        snap = self.snapshot()
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

        Polls the branch head every ``interval`` seconds with a conditional
        request (``GitHubRepo.read_head``): while the head has not moved GitHub
        answers 304, which costs no primary rate limit, so an idle follower
        spends nothing. The tail and the polls count from the same snapshot, so
        no record is yielded twice or missed in between. Ends when ``stop`` is
        set or after ``max_polls`` polls; otherwise when the caller stops
        iterating.

        History rewritten under it (a force-push, backwards or elsewhere) is
        noticed when the segment it follows no longer begins with the records
        it showed, or is gone: one WARNING, and it follows the new history on
        from there (see ``_Position.advance`` for which records that shows).
        """
        stop = stop or threading.Event()
        branch = self._branch()
        snap = self.snapshot()
        read = self._read_back(snap, n)  # the newest segment at least, even for n == 0
        watch = self._repo.read_head(branch)  # the validators the polls send
        # Where the next poll continues: the newest segment read, and what it held.
        position = _Position(_number(read[0][0]), _prints(read[0][1])) if read else _Position()
        yield from self._last(snap, read, n)
        polls = 0
        while max_polls is None or polls < max_polls:
            polls += 1
            if stop.wait(interval):
                return
            polled = self._repo.read_head(branch, watch)
            if polled.sha == snap.commit:
                watch = polled
                continue
            snap = self.snapshot()
            # Two reads naming the same head: the validators are current. Otherwise one
            # of them lagged; keep the old validators, so that the next poll asks again.
            settled = snap.commit == polled.sha
            if settled:
                watch = polled
            segments = {_number(entry): entry for entry in snap.segments}
            newest = max(segments, default=0)
            read_now = {
                number: self.read(entry)
                for number, entry in segments.items()
                if number >= position.segment or number == newest
            }
            records, after, rewritten = position.advance(read_now, newest=newest)
            if rewritten and not settled:
                continue  # a lagging read may show less than was shown: never go back
            if rewritten:
                logger.warning(
                    "gitjsonl: the history of branch %s was rewritten (its head %s does not "
                    "continue what follow showed); following the new history from there",
                    branch,
                    snap.commit,
                )
            position = after
            yield from records

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
        snap = self.snapshot()
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


def _prints(records: list[dict[str, Any]]) -> tuple[int, ...]:
    """A fingerprint of each record, taken before the caller can change the records."""
    return tuple(hash(json.dumps(record, sort_keys=True)) for record in records)


@dataclass(frozen=True, slots=True)
class _Position:
    """Where ``follow`` is: the segment it follows and the records of it already shown."""

    segment: int = 0
    shown: tuple[int, ...] = ()  # fingerprints (``_prints``) of those records, in order

    def advance(
        self, read: dict[int, list[dict[str, Any]]], *, newest: int
    ) -> tuple[list[dict[str, Any]], _Position, bool]:
        """The records a new snapshot adds, the position after them, and whether the
        snapshot rewrote what was shown.

        ``read`` holds the records of the followed segment, of every later one
        (by number) and of the newest, ``newest``, in the snapshot. A
        snapshot that does not begin with what was shown comes from rewritten
        history, and the rule is: of the followed segment, the records from
        the first one that differs from what was shown onwards, then every
        later segment; when the followed segment is gone, nothing of the new
        history (its records sit at positions already passed) and then every
        record appended to it.
        """
        if self.segment not in read and self.shown:
            return [], _Position(newest, _prints(read.get(newest, []))), True
        current = read.get(self.segment, [])
        prints = _prints(current)
        common = 0
        for old, now in zip(self.shown, prints, strict=False):
            if old != now:
                break
            common += 1
        records = current[common:]
        after = _Position(self.segment, prints)
        for number in sorted(k for k in read if k > self.segment):
            records.extend(read[number])
            after = _Position(number, _prints(read[number]))
        return records, after, common < len(self.shown)


def _number(entry: DirEntry) -> int:
    number = segment_number(entry.name)
    assert number is not None  # snapshots list segment files only
    return number
