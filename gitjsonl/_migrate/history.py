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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FileVersion", "Overwrite", "RecoveredHistory", "recover_history"]


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
    return RecoveredHistory(
        lines=log,
        overwrites=[
            Overwrite(o.commit, o.date, o.records_lost, n, o.deleted_at)
            for o, n in zip(overwrites, recovered, strict=True)
        ],
        records_recovered=len(log) - len(final),
    )
