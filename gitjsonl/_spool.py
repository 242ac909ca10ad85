"""The spool: a local append-only file that keeps every record until GitHub holds it.

With ``spool_dir`` set, a ``Log`` writes each record to its spool before
``append`` returns, marks each batch in it when the batch is formed and again
when its commit has landed, and notes each ref update before it is sent. After
a crash the next ``Log`` on the same spool gets back every record that was not
marked committed, plus the batches that were formed but not marked: their
commit may have landed just before the crash, so the ``Log`` sends that batch's
last noted update again (``Committer.settle``), which tells exactly, before it
commits anything, and drops the records of the batch that landed. (A spool of
an older version, without noted updates, is looked up by batch id in the
branch's history, ``_batch.find_landed``.) That is how a restart commits every
record exactly once.

File format (``<name>.spool``, one entry a line, each behind a CRC-32 of the rest
of its line so a torn or garbled line is recognised and never replayed)::

    <crc> H <sha or ->                               header: newest commit known to hold ours
    <crc> R <seq> <the record's JSON line>           a record, as appended
    <crc> F <batch id> <first seq> <last seq>        a batch was formed (its commit may land)
    <crc> P <batch id> <commit> <base>               its ref update to <commit> is being sent
    <crc> C <batch id> <first seq> <last seq> <sha>  that batch's commit landed

Durability: each entry is written with one ``write(2)`` on an ``O_APPEND``
descriptor, so it is in the operating system's page cache when ``append``
returns and survives the process being killed (SIGKILL, OOM killer, a crash).
It does not survive the machine losing power or the kernel crashing unless
``fsync=True``, which calls ``fsync(2)`` after every entry: safe against power
loss, but it costs a disk flush (roughly 0.1-10 ms) on every ``append``.

The file is compacted (rewritten through a temporary file and an atomic
rename) when everything in it is committed, and when the committed part
ahead of the first uncommitted record passes ``compact_bytes``.

A spool belongs to one process: it is locked with ``flock(2)`` on
``<name>.lock`` and a second opener gets ``SpoolLocked``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ._batch import Batch
from ._exceptions import SpoolError, SpoolLocked

__all__ = ["Recovery", "Spool", "parse_spool", "spool_name"]

logger = logging.getLogger("gitjsonl.spool")

#: Compact once the committed bytes ahead of the first pending record pass this.
COMPACT_BYTES = 1024 * 1024

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def spool_name(repo: str, path: str, branch: str | None = None) -> str:
    """The spool file's base name for one log: readable, filesystem-safe, unique per log."""
    parts = [repo.strip("/"), path.strip("/")]
    if branch:
        parts.append(branch)
    text = "__".join(_NAME_UNSAFE.sub("_", part.replace("/", "__")) for part in parts)
    # Different logs whose names collapse to the same text still get different files.
    digest = format(zlib.crc32("\0".join(parts).encode()), "08x")
    return f"{text}.{digest}"


def _entry(*fields: bytes) -> bytes:
    body = b" ".join(fields)
    return b"%08x %s\n" % (zlib.crc32(body), body)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a spool held when it was opened.

    ``lines`` are the records not marked committed, in append order; the
    ``Log`` queues them ahead of new records as sequence numbers ``1..len(lines)``.
    ``candidates`` are batches over those numbers that were formed but not
    marked committed: at most one of them can have landed, and only its id in
    the branch's history can tell. ``last_commit`` is the newest commit known
    to hold this spool's records, where a history search may stop.
    """

    lines: tuple[bytes, ...] = ()
    candidates: tuple[Batch, ...] = ()
    last_commit: str | None = None
    torn_lines: int = 0
    corrupt_lines: int = 0
    #: For candidates whose ref update was sent: batch id -> (commit, base) of the last one.
    pushes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def remaining_after(self, landed: Batch | None) -> tuple[bytes, ...]:
        """The records still to commit once ``landed`` (a leading batch) is known to be in."""
        if landed is None:
            return self.lines
        return self.lines[landed.last_seq :]


@dataclass(slots=True)
class _Parsed:
    records: dict[int, bytes] = field(default_factory=dict)  # seq -> line, in file order
    formed: dict[str, tuple[int, int]] = field(default_factory=dict)
    pushes: dict[str, tuple[str, str]] = field(default_factory=dict)
    committed: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_commit: str | None = None
    torn: int = 0
    corrupt: int = 0


def _parse_entry(body: bytes, parsed: _Parsed) -> bool:
    kind, _, rest = body.partition(b" ")
    try:
        if kind == b"R":
            seq, _, line = rest.partition(b" ")
            parsed.records[int(seq)] = line + b"\n"
        elif kind == b"P":
            batch_id, commit, base = rest.split(b" ")
            parsed.pushes[batch_id.decode()] = (commit.decode("ascii"), base.decode("ascii"))
        elif kind == b"F":
            batch_id, first, last = rest.split(b" ")
            parsed.formed[batch_id.decode()] = (int(first), int(last))
        elif kind == b"C":
            batch_id, first, last, sha = rest.split(b" ")
            parsed.committed[batch_id.decode()] = (int(first), int(last))
            parsed.last_commit = sha.decode()
        elif kind == b"H":
            parsed.last_commit = None if rest == b"-" else rest.decode()
        else:
            return False
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def parse_spool(data: bytes, where: str = "spool") -> Recovery:
    """Read a spool file's bytes into what must be recovered (pure; no I/O)."""
    parsed = _Parsed()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, raw in enumerate(complete, start=1):
        crc, _, body = raw.partition(b" ")
        try:
            good = int(crc, 16) == zlib.crc32(body) and len(crc) == 8
        except ValueError:
            good = False
        if good and _parse_entry(body, parsed):
            continue
        if number == len(complete) and not tail:
            # The last complete-looking line is garbled: a write cut short and
            # then padded (a filesystem after power loss), i.e. torn too.
            parsed.torn += 1
            logger.warning("gitjsonl: %s: last line is torn; it is not replayed", where)
        else:
            parsed.corrupt += 1
            logger.warning("gitjsonl: %s: line %d is corrupt; skipped", where, number)
    if tail:
        parsed.torn += 1
        logger.warning(
            "gitjsonl: %s: last line is torn (%d bytes without a newline); it is not replayed",
            where,
            len(tail),
        )
    done: set[int] = set()
    for first, last in parsed.committed.values():
        done.update(range(first, last + 1))
    pending = sorted(seq for seq in parsed.records if seq not in done)
    renumber = {old: new for new, old in enumerate(pending, start=1)}
    lines_out = tuple(parsed.records[seq] for seq in pending)
    candidates: list[Batch] = []
    for batch_id, (first, last) in parsed.formed.items():
        if batch_id in parsed.committed or first in done:
            continue
        span = range(first, last + 1)
        if not all(seq in renumber for seq in span):
            # Records of a formed batch are always written before its marker,
            # so this can only be a batch over lines that were lost.
            logger.warning("gitjsonl: %s: batch %s refers to missing records", where, batch_id)
            continue
        new_first = renumber[first]
        candidates.append(Batch(batch_id, lines_out[new_first - 1 : renumber[last]], new_first))
    return Recovery(
        lines=lines_out,
        candidates=tuple(candidates),
        pushes={b.id: parsed.pushes[b.id] for b in candidates if b.id in parsed.pushes},
        last_commit=parsed.last_commit,
        torn_lines=parsed.torn,
        corrupt_lines=parsed.corrupt,
    )


class Spool:
    """One log's spool file in ``directory``, locked for this process while open.

    ``Log`` calls ``append`` for every record (before ``append`` returns to its
    caller), ``batch_formed`` before a batch's first request and
    ``batch_committed`` once its commit has landed; ``recover()`` tells it what
    the previous process left.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        name: str,
        *,
        fsync: bool = False,
        compact_bytes: int = COMPACT_BYTES,
    ) -> None:
        try:
            import fcntl
        except ImportError as exc:  # pragma: no cover - Windows
            raise SpoolError("the spool needs a POSIX system (fcntl.flock)") from exc
        self._fcntl = fcntl
        self.directory = Path(directory)
        self.path = self.directory / f"{name}.spool"
        self._fsync = fsync
        self._compact_bytes = compact_bytes
        self._closed = False
        self._torn = False  # a failed write left bytes that do not end in a newline
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise SpoolLocked(
                f"spool {self.path} is in use by another Log (this or another process); "
                "give each process its own spool_dir"
            ) from exc
        try:
            data = self.path.read_bytes() if self.path.exists() else b""
            self._recovery = parse_spool(data, str(self.path))
            self._last_commit = self._recovery.last_commit
            # Start a fresh file holding only what is still owed, numbered 1..n.
            self._uncommitted: deque[tuple[int, int]] = deque()  # (seq, offset)
            self._last_seq = 0
            content = bytearray(self._header())
            for seq, line in enumerate(self._recovery.lines, start=1):
                self._uncommitted.append((seq, len(content)))
                content += _entry(b"R", b"%d" % seq, line.rstrip(b"\n"))
                self._last_seq = seq
            for batch in self._recovery.candidates:
                content += self._formed_entry(batch)
                if batch.id in self._recovery.pushes:
                    content += self._push_entry(batch.id, *self._recovery.pushes[batch.id])
            self._fd = self._replace(bytes(content))
            self._size = len(content)
        except OSError as exc:
            self._release()
            raise SpoolError(f"cannot read or rewrite spool {self.path}: {exc}") from exc
        except BaseException:
            self._release()
            raise
        self._lock = threading.Lock()

    # -- what Log calls ----------------------------------------------------------

    def recover(self) -> Recovery:
        """What the previous process left: records to queue first, batches that may have landed."""
        return self._recovery

    def append(self, seq: int, line: bytes) -> None:
        """Write one record; it is in the file (page cache, or disk with fsync) on return."""
        entry = _entry(b"R", b"%d" % seq, line.rstrip(b"\n"))
        with self._lock:
            self._uncommitted.append((seq, self._size))
            self._last_seq = max(self._last_seq, seq)
            self._write(entry)

    def batch_pushing(self, batch: Batch, commit: str, base: str) -> None:
        """Note that ``batch``'s ref update to ``commit`` (built on ``base``) is about to be sent.

        After a crash, sending that same update again is how a restart learns,
        exactly, whether the batch landed (``Committer.settle``).
        """
        with self._lock:
            self._write(self._push_entry(batch.id, commit, base))

    def batch_formed(self, batch: Batch) -> None:
        """Mark ``batch`` formed: from now on its commit may land."""
        with self._lock:
            self._write(self._formed_entry(batch))

    def batch_committed(self, batch: Batch, sha: str) -> None:
        """Mark ``batch`` committed in ``sha``; compact the file when that frees enough."""
        entry = _entry(
            b"C",
            batch.id.encode(),
            b"%d" % batch.first_seq,
            b"%d" % batch.last_seq,
            sha.encode(),
        )
        with self._lock:
            self._write(entry)
            self._last_commit = sha
            while self._uncommitted and self._uncommitted[0][0] <= batch.last_seq:
                self._uncommitted.popleft()
            if not self._uncommitted:
                self._compact(self._size)
            elif self._uncommitted[0][1] >= self._compact_bytes:
                self._compact(self._uncommitted[0][1])

    def close(self) -> None:
        """Close the file and release the lock; what is uncommitted stays for the next Log."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._fd)
        self._release()

    def abandon_after_fork(self) -> None:
        """In a forked child: let go of the parent's spool without touching its file or lock.

        The lock belongs to the open file description shared with the parent:
        closing our copies releases nothing the parent holds.
        """
        self._closed = True
        for fd in (self._fd, self._lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def pending(self) -> int:
        """Records written and not yet marked committed."""
        with self._lock:
            return len(self._uncommitted)

    @property
    def size(self) -> int:
        """The spool file's size in bytes."""
        with self._lock:
            return self._size

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the file ------------------------------------------------------------------

    def _header(self) -> bytes:
        return _entry(b"H", (self._last_commit or "-").encode())

    @staticmethod
    def _push_entry(batch_id: str, commit: str, base: str) -> bytes:
        return _entry(b"P", batch_id.encode(), commit.encode(), base.encode())

    @staticmethod
    def _formed_entry(batch: Batch) -> bytes:
        return _entry(b"F", batch.id.encode(), b"%d" % batch.first_seq, b"%d" % batch.last_seq)

    def _write(self, entry: bytes) -> None:
        if self._closed:
            raise SpoolError(f"spool {self.path} is closed")
        if self._torn:
            # An earlier write left a fragment we could not cut off: end it, so
            # that this entry starts on a line of its own and stays readable.
            entry = b"\n" + entry
        view = memoryview(entry)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self._fsync:
                os.fsync(self._fd)
        except OSError as exc:
            self._undo_partial_write()
            raise SpoolError(f"cannot write spool {self.path}: {exc}") from exc
        self._size += len(entry)
        self._torn = False

    def _undo_partial_write(self) -> None:
        """After a failed write (a full disk): leave the file as it was, or mark it torn."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            with contextlib.suppress(OSError):
                self._size = os.fstat(self._fd).st_size
            self._torn = True

    def _compact(self, cut: int) -> None:
        """Drop the file's first ``cut`` bytes (all committed); keep the rest behind a header."""
        header = self._header()
        try:
            rest = os.pread(self._fd, self._size - cut, cut) if cut < self._size else b""
            fd = self._replace(header + rest)
        except OSError as exc:
            # Not fatal: the old file is still correct, only larger.
            logger.warning("gitjsonl: could not compact spool %s: %s", self.path, exc)
            return
        os.close(self._fd)
        self._fd = fd
        shift = len(header) - cut
        self._uncommitted = deque((seq, offset + shift) for seq, offset in self._uncommitted)
        self._size = len(header) + len(rest)

    def _replace(self, content: bytes) -> int:
        """Atomically make ``content`` the spool file; an O_APPEND descriptor on it."""
        tmp = self.path.with_suffix(".spool.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return os.open(self.path, os.O_RDWR | os.O_APPEND)

    def _release(self) -> None:
        try:
            self._fcntl.flock(self._lock_fd, self._fcntl.LOCK_UN)
        finally:
            os.close(self._lock_fd)
