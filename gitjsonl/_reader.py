"""Reading a log back: the tail, every record in order (streaming), or following new ones.

A read pins one commit (one request for the branch head) and lists the log
folder at it (one request per folder level), so what it returns is a
consistent snapshot even while writers commit. Segments are then fetched
newest first (``tail``) or oldest first (``records``), many in one GraphQL
query (``GitHubRepo.read_blobs``): ``tail(n)`` plans, from the listing's sizes,
the newest files that hold about ``n`` records (``plan_reads``) and reads them
in one request, a second when they held fewer. The cost of ``tail(n)`` depends
on how many records it asks for, never on how long the log is, nor on how many
small files hold them. A file GraphQL cannot give whole (512,000 bytes or more,
cut short, binary, another blob's bytes) is read through the REST blob API; a
GraphQL endpoint that fails (a server without it, a token it refuses, an
``errors`` answer) is not asked again by that reader. Every blob read is checked
against its sha: a truncated or altered answer is never records.

A legacy single-file log (``data/interactions.jsonl`` next to
``data/interactions/``) is read through the blob API, so any size up to GitHub's
100 MB works, and counts as the oldest part of the log until ``gitjsonl
migrate`` has moved it into the segments (its manifest says so). ``find_file``
is the one lookup of such a file, used by the reader, ``stats``/``verify`` and
``migrate``. A legacy file that is no longer the blob the manifest says was
migrated (``source_sha``: an old writer appended to it since) is reported
(``legacy_drift``): readers warn once and read the log as it is, ``verify``
counts it as a problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import posixpath
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._exceptions import EmptyRepository, GitHubError, NotFound
from ._github import (
    GRAPHQL_BLOBS_PER_QUERY,
    GRAPHQL_TEXT_LIMIT,
    DirEntry,
    GitHubRepo,
    git_blob_sha,
)
from ._records import decode_lines
from ._segments import MANIFEST_NAME, list_log

__all__ = [
    "LogReader",
    "Snapshot",
    "find_file",
    "graphql_groups",
    "legacy_drift",
    "manifest_source_sha",
    "plan_reads",
    "read_blob",
    "warn_ignored",
]

logger = logging.getLogger(__name__)

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_ignored(path: str, problems: tuple[str, ...]) -> None:
    """Log each entry of log ``path`` that is ignored (``list_log``), once per process."""
    for problem in problems:
        with _warned_lock:
            if (path, problem) in _warned:
                continue
            _warned.add((path, problem))
        logger.warning("gitjsonl: log %s: %s", path, problem)


def read_blob(repo: GitHubRepo, entry: DirEntry) -> bytes:
    """The bytes of ``entry``'s blob (one request), checked against its sha.

    A blob answer missing a line, or any other bytes, would be read as the log,
    or built on by the next batch: it is refused.
    """
    data = repo.get_blob(entry.sha)
    if git_blob_sha(data) != entry.sha:
        raise GitHubError(
            f"GitHub answered blob {entry.sha[:12]} ({entry.path}) with {len(data):,} bytes "
            "that are not that blob"
        )
    return data


def find_file(repo: GitHubRepo, path: str, ref: str) -> DirEntry | None:
    """The entry of the file at ``path`` as of ``ref`` (its folder's listing), or None.

    The folder is listed rather than the file fetched: the entry carries the
    blob sha, and the blob API reads any size, where the Contents API stops
    at 1 MB.
    """
    parent, name = posixpath.split(path.strip("/"))
    found = repo.folder_at(ref, parent) if parent else None
    for entry in (found if found is not None else repo.list_dir(parent, ref=ref)) or []:
        if entry.name == name and entry.type == "file":
            return entry
    return None


def manifest_source_sha(data: bytes) -> str | None:
    """The blob a migration manifest says it migrated (``source_sha``); None when unreadable."""
    try:
        manifest = json.loads(data)
    except ValueError:
        return None
    sha = manifest.get("source_sha") if isinstance(manifest, dict) else None
    return sha if isinstance(sha, str) and re.fullmatch("[0-9a-f]{40}", sha) else None


def legacy_drift(migrated: str | None, legacy: DirEntry | None) -> str | None:
    """What differs between the legacy file now (``legacy``, None: gone) and the blob its
    migration moved (``migrated``, None: the manifest does not say); None when nothing does."""
    if legacy is None or legacy.sha == migrated:
        return None
    if migrated is None:
        return (
            f"{legacy.path} is still here but the migration manifest does not say which blob "
            "of it was migrated (unreadable manifest): records in it may be missing from the log"
        )
    return (
        f"{legacy.path} has changed since it was migrated (it is blob {legacy.sha[:12]}, the "
        f"migration moved blob {migrated[:12]}): what was written to it since is not in the "
        "log; move those records into the log (gitjsonl append) and remove the file"
    )


#: Bytes of blob text one GraphQL query asks for: GitHub answers a query whose answer
#: is too large with an error, at a size it does not document (conwnet/github1s#105).
GRAPHQL_BYTES_PER_QUERY = 2_000_000
#: What a record is taken to weigh before any is read: a cold ``tail(n)``'s first query
#: reads the newest files until they hold ``n`` records this size (apps write 1-2 KB).
ASSUMED_RECORD_BYTES = 3072
#: The margin on the size records were seen to have, when a second query reads more.
_MARGIN = 1.25


def plan_reads(sizes: Sequence[int], records: int, record_bytes: float) -> int:
    """How many of the files (``sizes``, newest first) to read next, for ``records`` more
    records of about ``record_bytes`` each: one at least, within one query's budget
    (``GRAPHQL_BYTES_PER_QUERY`` in all, ``GRAPHQL_BLOBS_PER_QUERY`` files GraphQL reads),
    which also bounds what a round holds in memory."""
    wanted = records * record_bytes
    count = total = texts = 0
    for size in sizes:
        if count and total >= wanted:
            break
        text = size < GRAPHQL_TEXT_LIMIT
        if count and (
            total + size > GRAPHQL_BYTES_PER_QUERY or (text and texts == GRAPHQL_BLOBS_PER_QUERY)
        ):
            break
        total, count, texts = total + size, count + 1, texts + text
    return count


def graphql_groups(entries: Sequence[DirEntry]) -> list[list[DirEntry]]:
    """``entries`` GraphQL can read whole, in order, cut into queries within the budget."""
    groups: list[list[DirEntry]] = []
    size = 0
    for entry in entries:
        if entry.size >= GRAPHQL_TEXT_LIMIT:
            continue
        if (
            not groups
            or len(groups[-1]) == GRAPHQL_BLOBS_PER_QUERY
            or (size + entry.size > GRAPHQL_BYTES_PER_QUERY)
        ):
            groups.append([])
            size = 0
        groups[-1].append(entry)
        size += entry.size
    return groups


@dataclass(frozen=True, slots=True)
class Snapshot:
    commit: str  # the commit read; unpinned (a cold reader), the branch as read by name
    segments: tuple[DirEntry, ...]  # in append order
    migrated: bool  # the folder holds a migration manifest
    ignored: tuple[str, ...] = ()  # entries named like segments and not read (``list_log``)
    manifest: DirEntry | None = None  # the migration manifest's entry


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
        default_branch: bool = False,
    ) -> None:
        self._repo = repo
        # The branch is the repository's default one (not named by the user): a cold
        # read names it HEAD, as GitHub's Trees API takes, instead of asking its name.
        self._default_branch = default_branch
        self._known_head = known_head
        self._path = path.strip("/")
        self._branch = branch
        self._legacy_path = legacy_path.strip("/") if legacy_path else None
        self._lock = threading.Lock()
        self.corrupt_lines = 0
        self._migrated: dict[str, str | None] = {}  # manifest blob -> the blob it migrated
        # GraphQL is asked until it fails once (then never again by this reader).
        self._graphql = repo.graphql_possible

    def snapshot(self, *, pinned: bool = True) -> Snapshot:
        """The log folder at one commit (``pinned``), or, for a reader that has written
        nothing (no read-your-writes to keep), at the branch as one read shows it.

        The folder is listed in one request as ``<ref>:<path>`` where the server
        takes that form, else level by level; unpinned, the branch is not read
        apart: a cold ``tail`` costs that one request and its blobs.
        """
        ours = self._known_head() if self._known_head is not None else None
        if not pinned and ours is None:
            branch = "HEAD" if self._default_branch else self._branch()
            found = self._repo.folder_at(branch, self._path) if "/" not in branch else None
            if found is not None:
                return self._snapshot(branch, found)
        commit = self._pin()
        entries = self._repo.folder_at(commit, self._path)
        if entries is None:
            entries = self._repo.list_dir(self._path, ref=commit) or []
        return self._snapshot(commit, entries)

    def _snapshot(self, commit: str, entries: list[DirEntry]) -> Snapshot:
        listing = list_log(entries)
        warn_ignored(self._path, listing.ignored)
        manifest = next((e for e in entries if e.name == MANIFEST_NAME and e.type == "file"), None)
        return Snapshot(commit, listing.segments, manifest is not None, listing.ignored, manifest)

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
                self._repo.repository()  # a missing repository says so, and where
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
            snap = self.snapshot(pinned=False)
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
        # Where the next poll continues: a byte offset into the files' concatenation (a
        # compaction, files merged under a new listing, leaves it where it was), and the
        # last lines shown, to notice history rewritten under it.
        files = _offsets(snap.segments)
        position = _Position.at(_total(files), self._window(files, _total(files) - 1))
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
            files = _offsets(snap.segments)
            window = self._window(files, position.check_from())
            after = position
            if not position.continued_by(window):
                if not settled:
                    continue  # a lagging read may show less than was shown: never go back
                logger.warning(
                    "gitjsonl: the history of branch %s was rewritten (its head %s does not "
                    "continue what follow showed); following the new history from there",
                    branch,
                    snap.commit,
                )
                window = self._window(files, position.earliest())
                after = position.rewound(window, total=_total(files))
            for start, entry, data in window:
                if start + len(data) > after.done:
                    yield from self._decode(data[max(0, after.done - start) :], entry.path)
            position = after.shown(window)

    def _read_back(self, snap: Snapshot, n: int) -> list[tuple[DirEntry, list[dict[str, Any]]]]:
        """Segments newest first with their records, read until they hold ``n`` (one at least).

        Each round reads the files ``plan_reads`` picks in one query; a round after
        the first knows what records weigh in this log.
        """
        newest_first = list(reversed(snap.segments))
        read: list[tuple[DirEntry, list[dict[str, Any]]]] = []
        have = seen = 0
        record_bytes: float = ASSUMED_RECORD_BYTES
        while len(read) < len(newest_first) and (have < n or not read):
            todo = newest_first[len(read) :]
            chosen = todo[: plan_reads([e.size for e in todo], n - have, record_bytes)]
            for entry, data in zip(chosen, self._fetch(chosen), strict=True):
                records = self._decode(data, entry.path)
                read.append((entry, records))
                have, seen = have + len(records), seen + len(data)
            if have:
                record_bytes = seen / have * _MARGIN
        return read

    def _fetch(self, entries: Sequence[DirEntry]) -> list[bytes]:
        """The bytes of ``entries``, in order: those GraphQL can read in as few queries as
        the budget allows, the rest, and any GraphQL did not give whole, through the REST
        blob API."""
        got: dict[str, bytes] = {}
        # A query of one file costs what its REST read does: only two or more go by GraphQL.
        groups = [g for g in graphql_groups(entries) if len(g) > 1] if self._graphql else []
        for group in groups:
            if not self._graphql:
                break
            try:
                got.update(self._repo.read_blobs(list(dict.fromkeys(e.sha for e in group))))
            except GitHubError as exc:
                with self._lock:  # readers share a LogReader: one of them says it, once
                    first, self._graphql = self._graphql, False
                if not first:
                    continue
                logger.warning(
                    "gitjsonl: GitHub's GraphQL API did not read %d files of log %s (%s); "
                    "this reader reads each file through the REST API from now on",
                    len(group),
                    self._path,
                    exc,
                )
        return [got[e.sha] if e.sha in got else read_blob(self._repo, e) for e in entries]

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
        """Every record in order, a query's worth of files in memory at a time (2 MB, or
        one file when it is larger)."""
        try:
            snap = self.snapshot(pinned=False)
        except EmptyRepository:
            return  # a log that does not exist yet has no records
        legacy = self.legacy_file(snap)
        if legacy is not None:
            yield from self.read(legacy)
        for entry, data in self.files(snap.segments):
            yield from self._decode(data, entry.path)

    def files(self, entries: Sequence[DirEntry]) -> Iterator[tuple[DirEntry, bytes]]:
        """Each of ``entries`` with its bytes, in order, checked against its sha; read a
        query's worth at a time (``plan_reads``), whose budget bounds the memory held."""
        at = 0
        while at < len(entries):
            rest = entries[at:]
            chosen = rest[: plan_reads([e.size for e in rest], len(rest), math.inf)]
            yield from zip(chosen, self._fetch(chosen), strict=True)
            at += len(chosen)

    def legacy_file(self, snap: Snapshot) -> DirEntry | None:
        """The legacy single file as of ``snap``, while it is still part of the log.

        Once migrated it is not, and a legacy file changed since is warned of (once).
        """
        if self._legacy_path is None:
            return None
        if snap.migrated:
            drift = self.legacy_drift(snap)
            if drift is not None:
                warn_ignored(self._path, (drift,))
            return None
        return find_file(self._repo, self._legacy_path, snap.commit)

    def legacy_drift(self, snap: Snapshot) -> str | None:
        """What differs between a migrated log's legacy file and the blob its migration moved.

        One request for the legacy file's entry; the manifest's blob is read
        once per process (a blob never changes).
        """
        if self._legacy_path is None or snap.manifest is None:
            return None
        legacy = find_file(self._repo, self._legacy_path, snap.commit)
        if legacy is None:
            return None
        sha = snap.manifest.sha
        if sha not in self._migrated:
            self._migrated[sha] = manifest_source_sha(read_blob(self._repo, snap.manifest))
        return legacy_drift(self._migrated[sha], legacy)

    def read(self, entry: DirEntry) -> list[dict[str, Any]]:
        """The records of one file of the log (one request), corrupt lines skipped and counted."""
        return self._decode(read_blob(self._repo, entry), entry.path)

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

    def _window(
        self, files: list[tuple[int, DirEntry]], offset: int
    ) -> list[tuple[int, DirEntry, bytes]]:
        """The files from the one holding byte ``offset`` of the log on, with their bytes."""
        wanted = [(start, entry) for start, entry in files if start + entry.size > offset]
        datas = self._fetch([entry for _, entry in wanted])
        return [(start, entry, data) for (start, entry), data in zip(wanted, datas, strict=True)]


def _offsets(segments: tuple[DirEntry, ...]) -> list[tuple[int, DirEntry]]:
    """Each file with the offset of its first byte in the files' concatenation."""
    files, start = [], 0
    for entry in segments:
        files.append((start, entry))
        start += entry.size
    return files


def _total(files: list[tuple[int, DirEntry]]) -> int:
    return files[-1][0] + files[-1][1].size if files else 0


#: How many of the last lines shown ``follow`` remembers, to find where rewritten
#: history parts from what it showed.
RECENT_LINES = 256


def _present(window: list[tuple[int, DirEntry, bytes]]) -> set[tuple[int, int, bytes]]:
    return {line for start, _, data in window for line in _lines(start, data)}


def _lines(start: int, data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(first, end, digest)`` of each line of a file that begins at offset ``start``."""
    at = 0
    while at < len(data):
        cut = data.find(b"\n", at)
        cut = len(data) if cut < 0 else cut + 1
        yield start + at, start + cut, hashlib.blake2b(data[at:cut], digest_size=16).digest()
        at = cut


@dataclass(frozen=True, slots=True)
class _Position:
    """Where ``follow`` is: the bytes of the log shown, and the last lines among them.

    Pure: ``advance`` gets the files of a new snapshot from ``check_from()`` on
    (``(offset, entry, bytes)``) and decides where to continue and whether the
    history was rewritten.
    """

    done: int = 0  # bytes of the files' concatenation shown
    recent: tuple[tuple[int, int, bytes], ...] = ()  # (first, end, digest) of the last lines

    @classmethod
    def at(cls, done: int, window: list[tuple[int, DirEntry, bytes]]) -> _Position:
        """The position of a reader that has shown the first ``done`` bytes (``window``
        holds the last of them)."""
        lines = [line for start, _, data in window for line in _lines(start, data)]
        return cls(done, tuple(line for line in lines if line[1] <= done)[-RECENT_LINES:])

    def check_from(self) -> int:
        """The offset from which a new snapshot is read to check it: the last line shown."""
        return self.recent[-1][0] if self.recent else self.done

    def earliest(self) -> int:
        """The offset from which a rewritten snapshot is read: the oldest line remembered."""
        return self.recent[0][0] if self.recent else self.done

    def continued_by(self, window: list[tuple[int, DirEntry, bytes]]) -> bool:
        """Whether a snapshot (its files from ``check_from()`` on) still holds the last
        line shown where it was: then everything past ``done`` is new."""
        return not self.recent or self.recent[-1] in _present(window)

    def rewound(self, window: list[tuple[int, DirEntry, bytes]], *, total: int) -> _Position:
        """Where to continue in rewritten history (its files from ``earliest()`` on).

        After the newest remembered line that is still where it was: what
        follows it differs from what was shown, so it is shown. When none is,
        at the new end: the new history's records sit at positions already
        passed, and what is appended to it is shown.
        """
        present = _present(window)
        for index in range(len(self.recent) - 1, -1, -1):
            if self.recent[index] in present:
                return _Position(self.recent[index][1], self.recent[: index + 1])
        return _Position(total)

    def shown(self, window: list[tuple[int, DirEntry, bytes]]) -> _Position:
        """The position after showing every byte of ``window`` past ``done``."""
        lines = list(self.recent)
        end = self.done
        for start, _, data in window:
            for first, last, digest in _lines(start, data):
                if last > self.done:
                    lines.append((first, last, digest))
                    end = max(end, last)
        return _Position(end, tuple(lines[-RECENT_LINES:]))
