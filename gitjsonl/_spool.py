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

    <crc> I <identity, hex>                          header: whose log this spool is
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

A spool file belongs to one process: it is locked (``_ledger.try_lock``) on
``<name>.lock`` and a second opener gets ``SpoolLocked``. POSIX only (Linux,
macOS): its checks of owner and mode and its reads are POSIX's.

Slots: one ``spool_dir`` serves any number of processes (``uvicorn --workers
4``, gunicorn ``-w 4``, restarts with new pids). Each ``Log`` claims the first
free *slot* of its log, ``<name>.<k>.spool`` with its lock ``<name>.<k>.lock``
(``open_slot``), held for the ``Log``'s life: a slot whose lock is free was
left by a process that is gone, and claiming it recovers what it left. A live
``Log`` also looks every ``ADOPT_INTERVAL`` seconds for other free slots that
still hold records (a worker that died and was not replaced, fewer workers
after a restart) and *adopts* them one at a time: it holds the dead slot's
lock, settles its batches that may have landed exactly as a restart does, and
supplies the rest to the ``Log``'s one flusher (``SlotSpool.next_adopted``),
which commits them as its own; each batch is marked in the adopted file itself,
so a crash at any point leaves that file as correct as before and the next
adopter carries on. Nothing is copied between files, so nothing can be
committed twice.

Names: ``<readable prefix>.<32 hex digits of SHA-256 over an unambiguous
encoding of (server, repository, path, branch)>``, the server being the API
URL normalised (``spool_server``: two localhubs, or github.com and a GitHub
Enterprise, are two servers); the file's ``I`` entry records that identity and
a spool of another log or server is refused (``SpoolError``), claimed or
adopted. A ``Log`` on the default branch also adopts the slots written under
the other spelling of its branch (``branch=None`` and ``branch="main"`` name
one log). Spools of earlier versions name no server (``<name>.<crc32>.spool``
without an identity entry; ``<prefix>.<hash of (repository, path, branch)>.<k>.spool``):
only a ``Log`` on GitHub's own API (``SERVERLESS_SERVER``) recovers them, under
their old names; a ``Log`` on any other server leaves them, with a WARNING.

Files: folders are created ``0700``, files ``0600`` (``O_EXCL`` where new), all
opened with ``O_NOFOLLOW``; an existing folder or file that is not ours, not
what it should be (a symlink, a fifo) or writable by group or others is
refused with ``SpoolError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import threading
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

from . import _ledger
from ._batch import Batch, find_landed, new_batch_id
from ._config import DEFAULT_API_URL, Origin
from ._exceptions import EmptyRepository, GitJsonlError, NotFound, SpoolError, SpoolLocked
from ._queue import PendingQueue
from ._redact import server_text

__all__ = [
    "Recovery",
    "SlotSpool",
    "Spool",
    "open_owned",
    "open_slot",
    "parse_spool",
    "secure_directory",
    "spool_identity",
    "spool_name",
    "spool_name_v1",
    "spool_name_v2",
    "spool_server",
    "takes_serverless",
]

logger = logging.getLogger(__name__)

#: Compact once the committed bytes ahead of the first pending record pass this.
COMPACT_BYTES = 1024 * 1024
#: Slots per log and spool folder: more processes than this on one log get SpoolLocked.
MAX_SLOTS = 256
#: Seconds between two looks for slots that dead processes left.
ADOPT_INTERVAL = 5.0

#: The one server whose Logs recover spools that name none (written by earlier versions).
SERVERLESS_SERVER = DEFAULT_API_URL

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PREFIX_CHARS = 80


def spool_server(api_url: str) -> str:
    """The server a spool belongs to: ``api_url`` normalised (scheme and host without case,
    the port always written, the API's path without its trailing ``/``)."""
    origin = Origin.of(api_url)
    return f"{origin.scheme}://{origin.host}:{origin.port}{origin.prefix}"


def spool_identity(
    repo: str, path: str, branch: str | None, api_url: str | None = DEFAULT_API_URL
) -> bytes:
    """Whose a spool is, unambiguously: the JSON of (server, repository, path, branch).

    A repository's name is compared as GitHub does, without case; ``None`` is
    the repository's default branch, whatever its name. ``api_url=None`` gives
    the identity the previous version wrote (no server), to recognise its files.
    """
    triple = [repo.strip("/").lower(), path.strip("/"), branch]
    whose = triple if api_url is None else [spool_server(api_url), *triple]
    return json.dumps(whose, ensure_ascii=True, separators=(",", ":")).encode()


def spool_name(
    repo: str, path: str, branch: str | None = None, api_url: str = DEFAULT_API_URL
) -> str:
    """The spool's base name for one log: a readable prefix, then a hash that cannot collide.

    The prefix (the server's host, the repository, path and branch) only helps
    a person find the file; the 128-bit SHA-256 prefix of ``spool_identity``,
    the server included, is what tells two logs apart.
    """
    text = _readable([Origin.of(api_url).host, repo, path, *([branch] if branch else [])])
    digest = hashlib.sha256(spool_identity(repo, path, branch, api_url)).hexdigest()[:32]
    return f"{text[:_PREFIX_CHARS]}.{digest}"


def spool_name_v2(repo: str, path: str, branch: str | None = None) -> str:
    """The name the previous version gave a log's spool slots, without the server (read only)."""
    text = _readable([repo, path, *([branch] if branch else [])])
    digest = hashlib.sha256(spool_identity(repo, path, branch, None)).hexdigest()[:32]
    return f"{text[:_PREFIX_CHARS]}.{digest}"


def takes_serverless(api_url: str) -> bool:
    """Whether a Log on ``api_url`` recovers spools that name no server (previous versions).

    Only one on GitHub's own API: such a file cannot say which server its
    records were meant for, and github.com is where a log is unless told
    otherwise. A Log on any other server leaves them alone (with a WARNING).
    """
    return spool_server(api_url) == spool_server(SERVERLESS_SERVER)


def _readable(parts: list[str]) -> str:
    return "__".join(_NAME_UNSAFE.sub("_", part.strip("/").replace("/", "__")) for part in parts)


def spool_name_v1(repo: str, path: str, branch: str | None = None) -> str:
    """The name the first versions gave a log's spool (read at upgrade, never written anew)."""
    parts = [repo.strip("/"), path.strip("/")]
    if branch:
        parts.append(branch)
    text = "__".join(_NAME_UNSAFE.sub("_", part.replace("/", "__")) for part in parts)
    digest = format(zlib.crc32("\0".join(parts).encode()), "08x")
    return f"{text}.{digest}"


# -- files that are ours and only ours -----------------------------------------------


def _refuse(what: str, where: Path, why: str) -> SpoolError:
    return SpoolError(f"spool {what} {where} {why}; refusing to use it (see README, spool_dir)")


def _check_owned(st: os.stat_result, what: str, where: Path, *, kind: int) -> None:
    """Refuse an entry that is not of ``kind``, not ours, or writable by group or others."""
    why = _ledger.refusal(st, folder=kind == stat.S_IFDIR)
    if why is not None:
        raise _refuse(what, where, why)


def secure_directory(directory: Path) -> None:
    """Make ``directory`` (0700, and its missing parents) or check that an existing one is ours."""
    _ledger.make_folder(directory)
    try:
        st = os.stat(directory)  # the folder the user named may be reached through a link
    except OSError as exc:
        raise SpoolError(f"cannot use spool folder {directory}: {exc}") from exc
    _check_owned(st, "folder", directory, kind=stat.S_IFDIR)


def open_owned(where: Path, flags: int, what: str) -> int:
    """Open a file of ours without following a link; new files are 0600. Checked after opening."""
    try:
        fd = os.open(where, _ledger.open_flags(flags), 0o600)
    except OSError as exc:
        raise SpoolError(f"cannot open spool {what} {where}: {exc}") from exc
    try:
        _check_owned(os.fstat(fd), what, where, kind=stat.S_IFREG)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


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
    #: Whose log the file says it is (``spool_identity``); None in a file of the previous version.
    identity: bytes | None = None

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
    identity: bytes | None = None
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
        elif kind == b"I":
            parsed.identity = bytes.fromhex(rest.decode("ascii"))
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
        identity=parsed.identity,
        torn_lines=parsed.torn,
        corrupt_lines=parsed.corrupt,
    )


class Spool:
    """One log's spool file in ``directory``, locked for this process while open.

    ``Log`` calls ``append`` for every record (before ``append`` returns to its
    caller), ``batch_formed`` before a batch's first request and
    ``batch_committed`` once its commit has landed; ``recover()`` tells it what
    the previous process left.

    A file whose ``I`` entry is neither ``identity`` nor one of ``accepts``
    (``None``: a file without one) is refused; the rewritten file says ``identity``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        name: str,
        *,
        fsync: bool = False,
        compact_bytes: int = COMPACT_BYTES,
        identity: bytes | None = None,
        accepts: tuple[bytes | None, ...] = (None,),
    ) -> None:
        if os.name != "posix":  # pragma: no cover - Windows
            # Locking is portable; the spool's checks of its files (owner, mode) and its
            # reads (os.pread) are POSIX's.
            raise SpoolError("the spool needs a POSIX system (Linux, macOS)")
        self.directory = Path(directory)
        self.name = name
        self.path = self.directory / f"{name}.spool"
        self.identity = identity
        self._fsync = fsync
        self._compact_bytes = compact_bytes
        self._closed = False
        self._torn = False  # a failed write left bytes that do not end in a newline
        secure_directory(self.directory)
        self._lock_fd = open_owned(self.directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, "lock")
        try:
            if not _ledger.try_lock(self._lock_fd):
                raise SpoolLocked(f"spool {self.path} is in use by another Log")
        except OSError as exc:
            os.close(self._lock_fd)
            raise SpoolLocked(f"spool {self.path} cannot be locked ({exc})") from exc
        except SpoolLocked:
            os.close(self._lock_fd)
            raise
        try:
            existing = self._read_existing()
            self._recovery = parse_spool(existing, str(self.path))
            found = self._recovery.identity
            if existing and identity is not None and found != identity and found not in accepts:
                whose = "no log" if found is None else found.decode(errors="replace")
                raise SpoolError(
                    f"spool {self.path} belongs to another log or server "
                    f"({server_text(whose, 300)}, not {identity.decode()}); "
                    "refusing to recover it"
                )
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

    def _read_existing(self) -> bytes:
        """The spool file's bytes (empty when there is none), never through a link."""
        try:
            fd = open_owned(self.path, os.O_RDONLY, "file")
        except SpoolError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return b""
            raise
        try:
            return _read_all(fd)
        finally:
            os.close(fd)

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

    def note_committed(self, batch: Batch, sha: str) -> None:
        """``batch_committed``, where a failed write (a full disk) is only warned about: the
        commit stands and its records are done with in memory; the file still names the
        batch's ref update, by which a restart finds it landed (``settle_candidates``)."""
        try:
            self.batch_committed(batch, sha)
        except GitJsonlError as exc:
            logger.warning("gitjsonl: could not mark a batch committed in the spool: %s", exc)

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
        who = _entry(b"I", self.identity.hex().encode()) if self.identity is not None else b""
        return who + _entry(b"H", (self._last_commit or "-").encode())

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
        """Atomically make ``content`` the spool file; an O_APPEND descriptor on it.

        The temporary file is made anew (``O_EXCL``, never through a link: one
        left behind, or planted, is removed first; we hold the lock) and the
        descriptor written through is the one kept after the rename.
        """
        tmp = self.path.with_suffix(".spool.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = open_owned(tmp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, "file")
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            if self._fsync:
                os.fsync(fd)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            raise
        if self._fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return fd

    def remove(self) -> None:
        """Delete the (fully committed) file and release the lock: the slot is free and empty."""
        with self._lock:
            if self._closed:
                return
            if self._uncommitted:
                raise SpoolError(f"spool {self.path} still holds records")
            self._closed = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.close(self._fd)
        self._release()

    def _release(self) -> None:
        try:
            _ledger.unlock(self._lock_fd)
        finally:
            os.close(self._lock_fd)


# -- slots: one spool folder, any number of processes ---------------------------------


class _Committer(Protocol):
    """What adopting needs from ``Committer`` (the ``Log``'s flusher commits the batches)."""

    @property
    def branch(self) -> str: ...

    @property
    def unresolved_batch_id(self) -> str | None: ...

    def settle(self, batch: Batch, *, commit: str, base: str) -> str | None: ...


class _History(Protocol):
    """What looking for a batch by id needs from ``GitHubRepo``."""

    def default_branch(self) -> str: ...

    def get_head(self, branch: str) -> str: ...

    def iter_commits(self, sha: str, path: str | None = None) -> Iterator[_CommitInfo]: ...


class _CommitInfo(Protocol):
    @property
    def sha(self) -> str: ...

    @property
    def message(self) -> str: ...


def settle_candidates(
    recovery: Recovery, committer: _Committer, history: _History
) -> tuple[Batch, str] | None:
    """Which of a spool's formed batches landed before its process died, and where.

    A batch whose ref update was noted is settled by sending that update again
    (``Committer.settle``), newest first: a later batch holds the records of an
    earlier one that failed. Batches of an older spool, without a noted update,
    are looked for by id in the branch's history. Raises ``GitHubError`` while
    GitHub cannot tell.
    """
    for batch in reversed(recovery.candidates):
        push = recovery.pushes.get(batch.id)
        if push is not None:
            sha = committer.settle(batch, commit=push[0], base=push[1])
            if sha is not None:
                return batch, sha
    unsent = [b for b in recovery.candidates if b.id not in recovery.pushes]
    if not unsent:
        return None
    try:
        tip = history.get_head(committer.branch)
    except (EmptyRepository, NotFound):
        return None  # no history: nothing of ours can have landed
    commits = ((c.sha, c.message) for c in history.iter_commits(tip))
    return find_landed(commits, unsent, stop_at=recovery.last_commit)


@dataclass(slots=True)
class _Adopted:
    """A dead process's slot this ``Log`` is committing, from that slot's own file."""

    spool: Spool
    queue: PendingQueue
    recovery: Recovery
    settled: bool = False


class SlotSpool(Spool):
    """The spool of one ``Log``: the slot it claimed, and the dead slot it adopts.

    Everything ``Spool`` does is about the claimed slot's file, but the marks of the
    adopted batch in flight (``next_adopted``) go to the adopted file.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        name: str,
        *,
        identity: bytes,
        log: tuple[str, str, str | None],
        api_url: str,
        fsync: bool,
        max_batch_bytes: int,
        compact_bytes: int = COMPACT_BYTES,
        accepts: tuple[bytes | None, ...] = (),
    ) -> None:
        super().__init__(
            directory,
            name,
            fsync=fsync,
            compact_bytes=compact_bytes,
            identity=identity,
            accepts=accepts,
        )
        self._log = log
        self._api_url = api_url
        self._max_batch_bytes = max_batch_bytes
        self._adopted: _Adopted | None = None
        self._next_look = 0.0
        self._default_branch: str | None = None

    # -- the claimed slot, as Log sees it --------------------------------------------

    def _formed_by(self, batch: Batch) -> _Adopted | None:
        """The adopted slot whose batch in flight ``batch`` is (None: ours)."""
        adopted = self._adopted
        inflight = adopted.queue.inflight if adopted is not None else None
        return adopted if inflight is not None and inflight.id == batch.id else None

    def batch_pushing(self, batch: Batch, commit: str, base: str) -> None:
        """Note a ref update in the file that formed ``batch`` (ours, or the adopted one)."""
        adopted = self._formed_by(batch)
        target = adopted.spool.batch_pushing if adopted is not None else super().batch_pushing
        target(batch, commit, base)

    def note_committed(self, batch: Batch, sha: str) -> None:
        """Mark ``batch`` committed in the file that formed it; an adopted batch's records are
        done with, and with the last of them the slot is let go in the same call (a ``Log``
        closed once it landed finds it gone)."""
        adopted = self._formed_by(batch)
        if adopted is None:
            super().note_committed(batch, sha)
        else:
            self._adopted_landed(adopted, batch, sha)

    def close(self) -> None:
        """Release the adopted slot (its file says what is left) and our own."""
        adopted, self._adopted = self._adopted, None
        if adopted is not None:
            adopted.spool.close()
        super().close()

    def abandon_after_fork(self) -> None:
        adopted, self._adopted = self._adopted, None
        if adopted is not None:
            adopted.spool.abandon_after_fork()
        super().abandon_after_fork()

    # -- adopting dead slots -----------------------------------------------------------

    def next_adopted(self, committer: _Committer, history: _History, now: float) -> Batch | None:
        """A dead process's slot's next batch, formed in its file, for the ``Log``'s flusher to
        commit as its own (and mark through ``note_committed``; a failed one is cut anew).

        A slot is looked for every ``ADOPT_INTERVAL`` seconds; its batches that
        may have landed are settled first (``GitHubError`` while GitHub cannot
        tell). While the committer owes a resend, only that batch may be given.
        """
        owed = committer.unresolved_batch_id
        adopted = self._adopted
        if owed is not None:
            inflight = adopted.queue.inflight if adopted is not None else None
            return inflight if inflight is not None and inflight.id == owed else None
        if adopted is None:
            if now < self._next_look:
                return None
            self._next_look = now + ADOPT_INTERVAL
            adopted = self._adopted = self._claim_dead_slot(committer, history)
            if adopted is None:
                return None
        if not adopted.settled:
            landed = settle_candidates(adopted.recovery, committer, history)
            adopted.settled = True
            if landed is not None:
                done, sha = landed
                where = adopted.spool.path
                logger.info("gitjsonl: batch %s of %s had landed (%s)", done.id, where, sha)
                self._adopted_landed(adopted, done, sha)
        batch = adopted.queue.cut(self._max_batch_bytes, new_batch_id)
        if batch is not None:  # None: its last batch had landed, the slot is let go
            adopted.spool.batch_formed(batch)  # before its first request
        return batch

    def _adopted_landed(self, adopted: _Adopted, batch: Batch, sha: str) -> None:
        """An adopted batch landed in ``sha``: done with, as the ``Log`` does with its own
        (a mark the disk refused does not bring its records back)."""
        adopted.spool.note_committed(batch, sha)
        adopted.queue.drop_committed(batch)
        if not len(adopted.queue):
            self._let_go(adopted)

    def _let_go(self, adopted: _Adopted) -> None:
        """Every record of the adopted slot is committed: its file goes (unless a mark could
        not be written: then a later adopter settles those batches by their ref updates)."""
        self._adopted = None
        spool = adopted.spool
        if spool.pending:
            spool.close()
        else:
            spool.remove()
        logger.warning(
            "gitjsonl: committed %d record(s) a process that is gone left in %s",
            len(adopted.recovery.lines),
            spool.path,
        )

    def _claim_dead_slot(self, committer: _Committer, history: _History) -> _Adopted | None:
        """Lock the first slot of this log that a dead process left records in, if any."""
        for name, identity, accepts in self._adoptable(committer, history):
            try:
                spool = Spool(
                    self.directory, name, fsync=self._fsync, identity=identity, accepts=accepts
                )
            except SpoolLocked:
                continue  # a live process's
            except SpoolError as exc:
                logger.error("gitjsonl: not adopting spool %s: %s", name, exc)
                continue
            recovery = spool.recover()
            if not recovery.lines:
                spool.remove()  # nothing left in it: a free, empty slot
                continue
            logger.warning(
                "gitjsonl: %d record(s) recovered from the spool %s (left by a process that is "
                "gone); adopted by this one",
                len(recovery.lines),
                spool.path,
            )
            queue = PendingQueue()
            queue.extend(recovery.lines)
            return _Adopted(spool, queue, recovery, settled=not recovery.candidates)
        return None

    def _adoptable(
        self, committer: _Committer, history: _History
    ) -> list[tuple[str, bytes, tuple[bytes | None, ...]]]:
        """Slots of this log (and of its other branch spelling) that hold a spool file, not ours:
        (name, identity, the other identities its file may say)."""
        try:
            present = set(os.listdir(self.directory))
        except OSError as exc:
            logger.warning("gitjsonl: cannot list spool folder %s: %s", self.directory, exc)
            return []
        repo, path, _ = self._log
        found: list[tuple[str, bytes, tuple[bytes | None, ...]]] = []
        for spelling in self._spellings(present, committer, history):
            identity = spool_identity(repo, path, spelling, self._api_url)
            own = spool_name(repo, path, spelling, self._api_url)
            found += [(name, identity, ()) for name in _slot_files(present, own)]
            if takes_serverless(self._api_url):
                serverless = (None, spool_identity(repo, path, spelling, None))
                v2 = _slot_files(present, spool_name_v2(repo, path, spelling))
                found += [(name, identity, serverless) for name in v2]
                legacy = spool_name_v1(repo, path, spelling)
                if f"{legacy}.spool" in present:
                    found.append((legacy, identity, serverless))
        return [entry for entry in found if entry[0] != self.name]

    def _spellings(
        self, present: set[str], committer: _Committer, history: _History
    ) -> list[str | None]:
        """Our branch argument, and the other one naming the same branch if files use it."""
        repo, path, branch = self._log
        api_url = self._api_url
        host = Origin.of(api_url).host
        own = (
            spool_name(repo, path, branch, api_url),
            spool_name_v2(repo, path, branch),
            spool_name_v1(repo, path, branch),
        )
        if branch is None:
            # Spools of this log under a branch's name start like ours: only
            # then is it worth asking which branch is the default.
            starts = (
                _readable([host, repo, path])[:_PREFIX_CHARS],
                _readable([repo, path])[:_PREFIX_CHARS],
            )
            others = [e for e in present if e.startswith(starts) and not e.startswith(own)]
            if not any(e.endswith(".spool") for e in others):
                return [branch]
            return [branch, committer.branch]  # resolved as the first commit resolves it
        names = (
            spool_name(repo, path, None, api_url),
            spool_name_v2(repo, path, None),
            spool_name_v1(repo, path, None),
        )
        if not any(entry.startswith(names) for entry in present):
            return [branch]
        if self._default_branch is None:
            self._default_branch = history.default_branch()
        return [branch, None] if self._default_branch == branch else [branch]


def _slot_files(present: Iterable[str], name: str) -> list[str]:
    """The slots ``<name>.<k>`` that have a spool file, in slot order."""
    pattern = re.compile(re.escape(name) + r"\.(\d{1,3})\.spool")
    slots = [int(m.group(1)) for m in map(pattern.fullmatch, present) if m]
    return [f"{name}.{k}" for k in sorted(slots)]


def open_slot(
    directory: str | os.PathLike[str],
    repo: str,
    path: str,
    branch: str | None,
    *,
    api_url: str = DEFAULT_API_URL,
    fsync: bool = False,
    max_batch_bytes: int,
) -> SlotSpool:
    """Claim the first free slot of this log on this server in ``directory``; its records are
    recovered.

    A spool of the first version under this log's old name is claimed first
    when it is free (by a Log on GitHub's own API only, ``takes_serverless``),
    so an upgrade recovers it like any restart; the slots of the previous
    version are adopted (``SlotSpool.next_adopted``).
    """
    folder = Path(directory)
    identity = spool_identity(repo, path, branch, api_url)
    name = spool_name(repo, path, branch, api_url)
    legacy = spool_name_v1(repo, path, branch)
    slots: list[tuple[str, tuple[bytes | None, ...]]] = [
        (f"{name}.{k}", ()) for k in range(MAX_SLOTS)
    ]
    if takes_serverless(api_url):
        if os.path.lexists(folder / f"{legacy}.spool"):
            slots.insert(0, (legacy, (None, spool_identity(repo, path, branch, None))))
    else:
        _warn_serverless(folder, repo, path, branch, api_url)
    for slot, accepts in slots:
        try:
            return SlotSpool(
                folder,
                slot,
                identity=identity,
                log=(repo, path, branch),
                api_url=api_url,
                fsync=fsync,
                max_batch_bytes=max_batch_bytes,
                accepts=accepts,
            )
        except SpoolLocked:
            continue
    raise SpoolLocked(
        f"all {MAX_SLOTS} spool slots of {repo}:{path} in {folder} are in use by live Logs"
    )


def _warn_serverless(folder: Path, repo: str, path: str, branch: str | None, api_url: str) -> None:
    """One WARNING when spools of an earlier version (no server in them) of this log's name are
    here: a Log on another server than GitHub's own never takes them."""
    try:
        present = set(os.listdir(folder))
    except OSError:
        return  # the folder's own checks say why, next
    found = _slot_files(present, spool_name_v2(repo, path, branch))
    if f"{spool_name_v1(repo, path, branch)}.spool" in present:
        found.append(spool_name_v1(repo, path, branch))
    if found:
        logger.warning(
            "gitjsonl: %d spool file(s) of an earlier gitjsonl in %s (%s) name no server; "
            "they are recovered only by a Log on %s, never by this one on %s (left as they are)",
            len(found),
            folder,
            ", ".join(f"{n}.spool" for n in found[:3]),
            SERVERLESS_SERVER,
            spool_server(api_url),
        )
