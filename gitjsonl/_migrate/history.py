"""History recovery: every record a single-file log ever held, put back in order.

Why this exists: the service gitjsonl replaces kept its log as one file updated
through the Contents API (GET, decode, append a line, PUT). Past 1 MB GitHub
answers that GET with ``content: ""``, so the service decoded an empty log and
PUT a file holding a single record -- overwriting everything before it, possibly
several times. ``recover_history`` walks the file's versions and restores every
overwritten record in its original place, ahead of what was written after it.

Pure: the versions come in as plain values (``run`` fetches them one blob at a
time); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FileVersion", "HistoryWalk", "Overwrite", "RecoveredHistory", "recover_history"]


@dataclass(frozen=True)
class FileVersion:
    """The source file as of one commit; ``content`` is ``None`` where it did not exist.

    ``blob`` is the sha git names ``content`` by, where the source knows it.
    """

    commit: str
    date: str
    content: bytes | None
    blob: str | None = None


@dataclass(frozen=True)
class Overwrite:
    """A version that dropped records of the version before it.

    ``records_lost`` is how many lines of the previous version this one did not
    carry forward; ``records_recovered`` how many of those the final version still
    lacks, i.e. what recovery puts back on account of this overwrite (a record lost
    twice is counted at its last loss only, so these add up to
    ``RecoveredHistory.records_recovered``). ``deleted_at`` names the commit that deleted
    the file when this version re-created it (or, for a file deleted for good, the
    overwrite is the deletion itself).
    """

    commit: str
    date: str
    records_lost: int
    records_recovered: int
    deleted_at: str | None = None


@dataclass(frozen=True)
class RecoveredHistory:
    """Every record the file ever held, in order, and where it lost some."""

    lines: list[bytes]  # each ends with b"\n"; blank lines are not records and are dropped
    overwrites: list[Overwrite]
    records_recovered: int  # lines here that the final version lacks

    @property
    def content(self) -> bytes:
        """The recovered log as one JSONL file."""
        return b"".join(self.lines)


def _records(content: bytes) -> list[bytes]:
    # The old service wrote "\n{record}\n" into an empty file, so blank lines are
    # expected and carry nothing; a torn last line is terminated so that it compares
    # equal to the same line once a later version completes the newline.
    return [line + b"\n" for line in content.split(b"\n") if line.strip()]


def _appended(last: bytes | None, content: bytes) -> bool:
    """``content`` is ``last`` (whole lines) with more after it."""
    return last is not None and (not last or last.endswith(b"\n")) and content.startswith(last)


def _is_sha(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 40 and all(c in "0123456789abcdef" for c in value)
    )


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def recover_history(versions: Iterable[FileVersion]) -> RecoveredHistory:
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
    walk = HistoryWalk()
    for version in versions:
        walk.feed(version)
    return walk.finish()


class HistoryWalk:
    """``recover_history`` one version at a time, with a state that can be saved and resumed.

    The trie is append-only: node ``i`` is line ``i`` of the logical log under
    its parent node, so the state is the log's lines with their parents, the
    last version as its last node, and the overwrites found so far: about the
    size of the recovered log, plain JSON values (``state``/``from_state``).
    ``migrate`` saves it every so often, so a walk of 100,000 commits stopped
    half-way (a rate limit, a ^C) goes on where it stopped.
    """

    def __init__(self) -> None:
        self._log: list[bytes] = []
        self._parents: list[int] = []
        self._children: list[dict[bytes, int]] = [{}]  # [0] is the root; node i is [i + 1]
        self._overwrites: list[Overwrite] = []
        self._last_lost_by: dict[int, int] = {}  # logical index -> overwrite that last lost it
        self._previous: list[int] | None = None  # logical indices of the last version that existed
        self._deleted_at: FileVersion | None = None  # first deletion since that version
        self._last_content: bytes | None = None  # that version's bytes (not saved: a hint)
        self.versions = 0  # how many versions were fed
        self.last_blob: str | None = None  # the blob of the last version fed (None: deleted)

    def feed(self, version: FileVersion) -> None:
        """Take the next version, oldest first."""
        self.versions += 1
        self.last_blob = version.blob if version.content is not None else None
        if version.content is None:
            if self._previous is not None and self._deleted_at is None:
                self._deleted_at = version
            return
        content = version.content
        if self._previous is not None and _appended(self._last_content, content):
            # An append, the common case by far: only the new bytes are read (the
            # comparison runs in C), so a history of 100,000 appends costs the
            # bytes appended, not the sum of every version's size.
            self._extend(self._previous, content[len(self._last_content or b"") :])
            self._last_content = content
            self._deleted_at = None
            return
        self._last_content = content
        current: list[int] = []
        self._extend(current, content)
        if self._previous is not None:
            kept = _common_prefix(self._previous, current)
            if kept < len(self._previous):
                self._lose(version, self._previous[kept:])
        self._previous = current
        self._deleted_at = None

    def _extend(self, current: list[int], content: bytes) -> None:
        """Walk ``content``'s lines down the trie from the end of ``current``, adding to both."""
        node = current[-1] if current else -1
        for line in _records(content):
            children = self._children[node + 1]
            child = children.get(line)
            if child is None:
                child = children[line] = len(self._log)
                self._log.append(line)
                self._parents.append(node)
                self._children.append({})
            current.append(child)
            node = child

    def _lose(self, version: FileVersion, dropped: list[int]) -> None:
        for index in dropped:
            self._last_lost_by[index] = len(self._overwrites)
        deleted = self._deleted_at
        self._overwrites.append(
            Overwrite(
                commit=version.commit,
                date=version.date,
                records_lost=len(dropped),
                records_recovered=0,  # filled in once the final version is known
                deleted_at=None if deleted is None else deleted.commit,
            )
        )

    def finish(self) -> RecoveredHistory:
        """Every record, in order, once the last version was fed."""
        final: list[int] = self._previous or []
        overwrites = list(self._overwrites)
        last_lost_by = dict(self._last_lost_by)
        if self._deleted_at is not None and self._previous:
            # Deleted and never re-created: the deletion is the loss.
            for index in self._previous:
                last_lost_by[index] = len(overwrites)
            deleted = self._deleted_at
            overwrites.append(
                Overwrite(deleted.commit, deleted.date, len(self._previous), 0, deleted.commit)
            )
            final = []
        recovered = [0] * len(overwrites)
        in_final = set(final)
        for index, by in last_lost_by.items():
            if index not in in_final:
                recovered[by] += 1
        return RecoveredHistory(
            lines=list(self._log),
            overwrites=[
                Overwrite(o.commit, o.date, o.records_lost, n, o.deleted_at)
                for o, n in zip(overwrites, recovered, strict=True)
            ],
            records_recovered=len(self._log) - len(final),
        )

    # -- saving and resuming -----------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The walk so far as plain JSON values."""
        previous = self._previous
        deleted = self._deleted_at
        return {
            "versions": self.versions,
            "lines": [line.decode("utf-8", "surrogateescape") for line in self._log],
            "parents": self._parents,
            "previous": None if previous is None else (previous[-1] if previous else -1),
            "deleted_at": None if deleted is None else [deleted.commit, deleted.date],
            "overwrites": [
                [o.commit, o.date, o.records_lost, o.deleted_at] for o in self._overwrites
            ],
            "last_lost_by": sorted(self._last_lost_by.items()),
            "last_blob": self.last_blob,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HistoryWalk:
        """A walk that goes on from ``state``; ``ValueError`` if it is not one ``state`` wrote."""
        walk = cls()
        try:
            lines = [str(text).encode("utf-8", "surrogateescape") for text in state["lines"]]
            parents = [int(p) for p in state["parents"]]
            if len(parents) != len(lines) or any(not -1 <= p < i for i, p in enumerate(parents)):
                raise ValueError("the trie's parents are not a trie")
            for index, (line, parent) in enumerate(zip(lines, parents, strict=True)):
                walk._log.append(line)
                walk._parents.append(parent)
                walk._children.append({})
                walk._children[parent + 1][line] = index
            last = state["previous"]
            if last is not None:
                path: list[int] = []
                node = int(last)
                if not -1 <= node < len(lines):
                    raise ValueError("the last version is not in the trie")
                while node != -1:
                    path.append(node)
                    node = parents[node]
                walk._previous = path[::-1]
            deleted = state["deleted_at"]
            if deleted is not None:
                walk._deleted_at = FileVersion(str(deleted[0]), str(deleted[1]), None)
            for commit, date, lost, deleted_at in state["overwrites"]:
                walk._overwrites.append(
                    Overwrite(str(commit), str(date), int(lost), 0, deleted_at and str(deleted_at))
                )
            for index, by in state["last_lost_by"]:
                if not (0 <= int(index) < len(lines) and 0 <= int(by) < len(walk._overwrites)):
                    raise ValueError("a lost record out of range")
                walk._last_lost_by[int(index)] = int(by)
            walk.versions = int(state["versions"])
            last_blob = state["last_blob"]  # a walk saved without it starts afresh
            if last_blob is not None and not _is_sha(last_blob):
                raise ValueError("the last blob is not a sha")
            walk.last_blob = last_blob
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not a saved history walk: {exc!r}") from exc
        return walk
