"""Batch identity: what makes a commit recognisably *ours*, and how to find it again.

Every commit gitjsonl makes carries git trailers in its message's last
paragraph::

    gitjsonl: append 3 records to data/interactions [skip ci]

    Gitjsonl-Batch: 5f0c...        a fresh random id per batch (uuid4 hex)
    Gitjsonl-Records: 3
    Gitjsonl-Writer: 9a1b...       the Log that wrote it
    Gitjsonl-Writes: 3             the write requests the batch sent, every attempt
                                   (trees, blobs, commits, ref updates) up to its own
                                   commit and ref update

The batch id is the only thing that can tell, after an answer was lost
(a ref update that timed out, a process killed mid-request), whether a batch
is already on the branch: the committer, the spool's recovery at restart,
``migrate`` and ``verify`` all ask the questions below, and nothing else
parses a commit message. The writes trailer is how a ``Log`` starting on an
empty disk learns what its token spent in the last hour (``_pacing.restored``).

Everything here is pure: strings and plain values in, plain values out.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BATCH_TRAILER",
    "LANDED",
    "LANDED_SEARCH_LIMIT",
    "NOT_LANDED",
    "RECORDS_TRAILER",
    "UNPROVEN",
    "WRITER_TRAILER",
    "WRITES_TRAILER",
    "Batch",
    "batch_id_of",
    "commit_message",
    "find_landed",
    "new_batch_id",
    "settle_lost_update",
    "trailer",
    "trailers",
    "writer_of",
    "writes_of",
]

BATCH_TRAILER = "Gitjsonl-Batch"
RECORDS_TRAILER = "Gitjsonl-Records"
WRITER_TRAILER = "Gitjsonl-Writer"
WRITES_TRAILER = "Gitjsonl-Writes"

#: How far back (in commits) a search for a batch that may have landed looks.
#: A batch can only have landed above the head it was built on; other writers
#: committing more than this many times in between is beyond any real log.
LANDED_SEARCH_LIMIT = 1000

_TRAILER_RE = re.compile(r"^([A-Za-z0-9-]+):[ \t]*(.*?)[ \t]*$")
_WRITES_RE = re.compile(r"[0-9]{1,9}")
_ID_RE = re.compile(r"[0-9a-f]{1,32}")


def new_batch_id() -> str:
    """A fresh batch id: 32 hex digits, never reused."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Batch:
    """Records committed together, in one commit, under one id."""

    id: str
    lines: tuple[bytes, ...]
    first_seq: int  # sequence numbers of the Log's records, inclusive

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.lines) - 1

    @property
    def size(self) -> int:
        return sum(len(line) for line in self.lines)


def trailers(
    batch_id: str, records: int, writer: str | None = None, *, writes: int | None = None
) -> str:
    """The trailer paragraph of a commit holding ``records`` records of batch ``batch_id``,
    which cost ``writes`` write requests (its own commit and ref update included)."""
    text = f"{BATCH_TRAILER}: {batch_id}\n{RECORDS_TRAILER}: {records}\n"
    if writer is not None:
        text += f"{WRITER_TRAILER}: {writer}\n"
    if writes is not None:
        text += f"{WRITES_TRAILER}: {writes}\n"
    return text


def commit_message(
    batch: Batch, path: str, *, skip_ci: bool, writer: str, writes: int | None = None
) -> str:
    """The message of the commit that appends ``batch`` to the log at ``path``."""
    count = len(batch.lines)
    noun = "record" if count == 1 else "records"
    subject = f"gitjsonl: append {count} {noun} to {path}"
    if skip_ci:
        subject += " [skip ci]"
    return f"{subject}\n\n{trailers(batch.id, count, writer, writes=writes)}"


def trailer(message: str, name: str) -> str | None:
    """The value of trailer ``name`` in ``message``'s last paragraph; None if missing or empty.

    Only the last paragraph counts, as for ``git interpret-trailers``: a line
    that merely looks like a trailer in a subject or body is not one.
    """
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:  # a lone paragraph is the subject, never trailers
        return None
    for line in paragraphs[-1].splitlines():
        match = _TRAILER_RE.match(line)
        if match and match.group(1) == name and match.group(2):
            return match.group(2)
    return None


def batch_id_of(message: str) -> str | None:
    """The batch id a gitjsonl commit message names, if any."""
    return trailer(message, BATCH_TRAILER)


def writes_of(message: str) -> int | None:
    """The writes a gitjsonl commit message says its batch cost; None when it does not say
    (an older version's commit, or a value no writer of ours writes)."""
    value = trailer(message, WRITES_TRAILER)
    if value is None or not _WRITES_RE.fullmatch(value):
        return None
    return int(value)


def writer_of(message: str) -> str | None:
    """The writer a gitjsonl commit message names, if it is one a ``Log`` can have written."""
    value = trailer(message, WRITER_TRAILER)
    return value if value is not None and _ID_RE.fullmatch(value) else None


def find_landed(
    commits: Iterable[tuple[str, str]],
    candidates: Sequence[Batch],
    *,
    stop_at: str | None,
    limit: int = LANDED_SEARCH_LIMIT,
) -> tuple[Batch, str] | None:
    """Which candidate batch landed, and in which commit, from ``(sha, message)`` newest first.

    The walk stops at ``stop_at`` (a commit known to be older than every
    candidate) or after ``limit`` commits. ``commits`` is consumed lazily, so
    it may fetch a page at a time; with no candidates it is not touched.
    """
    if not candidates:
        return None
    by_id = {batch.id: batch for batch in candidates}
    for count, (sha, message) in enumerate(commits):
        if sha == stop_at or count >= limit:
            break
        batch_id = batch_id_of(message)
        if batch_id is not None and batch_id in by_id:
            return by_id[batch_id], sha
    return None


Settlement = Literal["landed", "not landed", "unproven"]
LANDED: Settlement = "landed"
NOT_LANDED: Settlement = "not landed"
UNPROVEN: Settlement = "unproven"


def settle_lost_update(
    commits: Iterable[tuple[str, str]],
    batch_id: str,
    *,
    base: str,
    limit: int = LANDED_SEARCH_LIMIT,
) -> tuple[Settlement, str | None]:
    """Did batch ``batch_id``, built on ``base``, land? Read from history below a head.

    Called when re-sending the batch's own fast-forward was refused: the
    branch has moved past ``base``. ``commits`` is the history below a head
    read from the branch, newest first (``(sha, message)``). Reads of a
    branch may lag behind writes, so that head proves nothing by itself:
    only a walk that meets ``base`` shows it is newer than ``base``, and then
    the batch landed exactly when its id is among the commits above ``base``
    (history only moves by fast-forward, so a batch that is not there now
    never will be). A walk that never meets ``base`` is ``"unproven"``: read
    the branch again later. So is a head that *is* ``base``: the refusal
    proved the branch has left it, so that read lags (the batch may well be
    on the branch, under a commit built on it).
    """
    for count, (sha, message) in enumerate(commits):
        if count >= limit:
            break
        if batch_id_of(message) == batch_id:
            return LANDED, sha
        if sha == base:
            return (NOT_LANDED if count > 0 else UNPROVEN), None
    return UNPROVEN, None
