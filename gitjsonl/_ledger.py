"""Files the processes of one host share, under an OS file lock: the thin I/O layer.

Three kinds live in one folder (``budget_dir``; by default the user's cache
folder): ``budget-<key>.json``, a token's ledger of writes (``_budget``);
``turn-<key>.json``, a branch's turn to commit and the commits its last
writers made (``_turn``); and ``host-id.json``, a random name for the host
that shares the folder (``host_id``: how the coordinator counts hosts). Keys
are hashes (``file_key``) of the API URL, the credentials and the branch: no
token, no repository name and no path appears in a file name, and no token in
a file.

A file is read whole, and replaced whole (``HostFile.write``: a temporary file
in the same folder, then a rename), so that a process killed mid-write leaves
the old content or the new, never a torn or empty file. Its lock is on a
separate, stable ``<name>.lock`` beside it (a lock on a file that is then
replaced would lock nothing), held only for a read-modify-write (a ledger) or
for one batch's writes (a turn). The lock is
portalocker's (``flock`` on Linux and macOS, ``LockFileEx`` or ``msvcrt`` on
Windows), exclusive (shared for a read on POSIX) and never blocking (``try_lock``: polled, so that a
wait has a bound and can be cut short). A lock ends with its process however
the process ends: the lock belongs to the open file, which the kernel closes.
A process that is stopped (SIGSTOP, a debugger) keeps its locks, so no wait
for one is unbounded: ``locked`` and ``read_locked_json`` give up after the
wait they are given (``LOCK_WAIT`` by default), and a wait ends early when the
event of ``waits_end_on`` is set (the ``Log`` is closing).

The folder and every file in it are held to the spool's rules: the folder is
made ``0700`` and files ``0600``, opened without following a link
(``O_NOFOLLOW``), and a folder or file that is not a plain one, belongs to
another user or is writable by group or others is refused (``NotOurs``, an
``OSError``): the ledger's user then warns once and keeps its budget in the
process (``_budget.LedgerStore``), the turn's goes without the host's turn.

``host-id.json`` is bound to the file it is in (its device and inode): a copy
of it (into another container, another folder) does not carry them, so a copy
is recognised and the host it now sits on takes a new id (``host_id``).

Fork: a child inherits its parent's open files, and with them any lock a
parent thread held at that moment. The child closes its copies at once (the
parent's lock is untouched), so it never holds a lock that nothing in it will
release.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import logging
import math
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Imported now, never on first use: the first lock may be taken at interpreter exit (the
# last flush), when an import that starts a thread pool (portalocker imports redis-py
# when it is installed) can no longer register its own exit hook.
import portalocker

__all__ = [
    "LOCK_WAIT",
    "MAX_HOST_FILE",
    "HostFile",
    "LockBusy",
    "NotOurs",
    "file_key",
    "host_id",
    "lock_path",
    "locked",
    "make_folder",
    "open_flags",
    "poll",
    "read_json",
    "read_locked_json",
    "refusal",
    "try_lock",
    "unlock",
    "waits_end_on",
    "write_json",
]

logger = logging.getLogger(__name__)

#: Flags every descriptor of ours is opened with where the system has them: not
#: inherited by a program this process runs, and never through a symbolic link.
_SAFE = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


#: The longest a poll for a busy lock sleeps between tries.
_POLL_MAX = 0.02

#: Seconds a ledger's lock is waited for by default: it is held for a read and a
#: write of a small file, so a longer wait means its holder is stopped or hung.
LOCK_WAIT = 5.0

#: Set by ``waits_end_on``: an event that ends this context's waits for a lock.
_interrupt: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "gitjsonl_lock_interrupt", default=None
)


#: The largest host file read: a ledger of an hour's writes is tens of kB, a turn
#: record at most 256 kB of texts and a few folders' entries; a file past this is
#: none of ours (a planted 4 GB sparse file), and reads as none.
MAX_HOST_FILE = 64 * 1024 * 1024


class LockBusy(OSError):
    """A lock was not taken within its wait (its holder is stopped or hung, or we are closing)."""


class NotOurs(OSError):
    """A host folder or file that is not this user's alone (or not a plain one): refused."""


@contextlib.contextmanager
def waits_end_on(event: threading.Event) -> Iterator[None]:
    """In this context (a flusher thread), every wait for a lock ends once ``event`` is set."""
    token = _interrupt.set(event)
    try:
        yield
    finally:
        _interrupt.reset(token)


def interrupted() -> bool:
    """Whether this context's waits have been told to end (``waits_end_on``)."""
    event = _interrupt.get()
    return event is not None and event.is_set()


def pause(seconds: float) -> None:
    """Sleep ``seconds`` between polls for a lock; woken early by ``waits_end_on``'s event."""
    event = _interrupt.get()
    if event is None:
        time.sleep(seconds)
    else:
        event.wait(seconds)


class _OpenFiles:
    """The descriptors this module has open, so that a forked child can close them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fds: set[int] = set()


_open_files = _OpenFiles()


def _after_fork_in_child() -> None:
    _open_files.lock = threading.Lock()  # a parent thread may have held it
    for fd in _open_files.fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    _open_files.fds = set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def file_key(*parts: str) -> str:
    """A file name's key for ``parts`` (a token among them): a hash, never the parts."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def open_flags(flags: int) -> int:
    """``flags`` with this module's safe ones (``_SAFE``) added."""
    return flags | _SAFE


_HOST_ID = re.compile(r"[0-9a-f]{16}")

#: What a lock that another open file holds fails with (older portalockers say only this).
_BUSY = {errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK}


def try_lock(fd: int, *, shared: bool = False) -> bool:
    """Lock ``fd`` if no other open file holds a lock in its way: True, else False at once.

    Exclusive, or ``shared`` (a reader's, on POSIX: an exclusive lock needs a
    descriptor open for writing on NFS; Windows takes a shared lock only with
    pywin32, so there a reader locks exclusively). ``OSError`` for a lock the
    system refuses for another reason.
    """
    kind = portalocker.LockFlags.EXCLUSIVE
    if shared and os.name == "posix":
        kind = portalocker.LockFlags.SHARED
    try:
        portalocker.lock(fd, kind | portalocker.LockFlags.NON_BLOCKING)
    except portalocker.AlreadyLocked:
        return False
    except portalocker.LockException as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else None
        if cause is not None and cause.errno in _BUSY:
            return False
        raise cause or OSError(str(exc)) from exc
    return True


def unlock(fd: int) -> None:
    try:
        portalocker.unlock(fd)
    except portalocker.LockException as exc:
        raise OSError(str(exc)) from exc


def refusal(st: os.stat_result, *, folder: bool = False) -> str | None:
    """Why an entry is not ours to trust (None when it is): not a plain file (or folder),
    another user's, or writable by group or others."""
    if stat.S_IFMT(st.st_mode) != (stat.S_IFDIR if folder else stat.S_IFREG):
        return "is not a plain " + ("folder" if folder else "file")
    if os.name != "posix":  # pragma: no cover - Windows: ACLs, not these bits, say who may write
        return None
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to this process"
    if st.st_mode & 0o022:
        return f"is writable by group or others (mode {st.st_mode & 0o777:o})"
    return None


def make_folder(directory: Path) -> None:
    """Make ``directory`` and its missing parents, each ``0700`` (an existing one is left)."""
    missing: list[Path] = []
    probe = directory
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.mkdir(folder, 0o700)


def _refuse(where: Path, why: str) -> NotOurs:
    return NotOurs(errno.EPERM, f"{where} {why}; refusing to use it", str(where))


def _check_folder(directory: Path) -> None:
    """``NotOurs`` unless ``directory`` (reached through a link, if the user named one) is ours."""
    why = refusal(os.stat(directory), folder=True)
    if why is not None:
        raise _refuse(directory, why)


def _open(path: Path, flags: int) -> int:
    """``path`` opened without following a link (new files 0600), checked to be ours."""
    with _open_files.lock:
        try:
            fd = os.open(path, open_flags(flags), 0o600)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
                raise _refuse(path, "is a symbolic link") from exc
            raise
        _open_files.fds.add(fd)
    try:
        why = refusal(os.fstat(fd))
        if why is not None:
            raise _refuse(path, why)
    except BaseException:
        _close(fd)
        raise
    return fd


def _close(fd: int) -> None:
    with _open_files.lock:
        _open_files.fds.discard(fd)
        os.close(fd)


def _check_file(path: Path) -> None:
    """``NotOurs`` when there is something at ``path`` that is not a file of ours (a link...)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    why = refusal(st)
    if why is not None:
        raise _refuse(path, why)


def lock_path(path: Path) -> Path:
    """The stable file whose lock guards ``path`` (which is replaced, never written in place)."""
    return path.with_name(f"{path.stem}.lock")


def _read(path: Path) -> dict[str, Any] | None:
    """The JSON object in the file at ``path``; None when there is none, or it is not one.

    ``O_NONBLOCK``: a fifo planted there is refused at once, not waited on.
    """
    try:
        fd = _open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    try:
        return _json_object(_read_bounded(fd))
    finally:
        _close(fd)


def _read_bounded(fd: int) -> bytes:
    chunks = []
    size = 0
    while size <= MAX_HOST_FILE and (chunk := os.read(fd, 65536)):
        chunks.append(chunk)
        size += len(chunk)
    return b"" if size > MAX_HOST_FILE else b"".join(chunks)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _replace(path: Path, content: Callable[[os.stat_result], bytes], *, fsync: bool) -> None:
    """Make ``path`` hold ``content(<the new file's stat>)``, atomically: a temporary file in
    the same folder, written whole, then renamed over it. Only under ``path``'s lock (the
    temporary's name is fixed: a leftover of a killed writer is removed first)."""
    tmp = path.with_name(f"{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = _open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        view = memoryview(content(os.fstat(fd)))
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        _close(fd)
    if fsync and os.name == "posix":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class HostFile:
    """A host file whose lock this process holds: ``read`` it, ``write`` it whole."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self.fd = lock_fd  # the lock file's descriptor (a forked child closes its copy)

    def read(self) -> dict[str, Any] | None:
        """The JSON object in the file; None when there is none, or it is torn or not one."""
        return _read(self.path)

    def write(self, data: dict[str, Any], *, fsync: bool = False) -> None:
        """Replace the file's content with ``data``, atomically (``fsync``: durably too)."""
        payload = json.dumps(data, separators=(",", ":")).encode()
        _replace(self.path, lambda _: payload, fsync=fsync)


def poll(attempt: Callable[[], float | None], wait: float) -> bool:
    """Call ``attempt`` until it succeeds (None) or ``wait`` seconds have passed, or this
    context's waits are told to end (False). A failed attempt answers the longest pause
    worth taking before the next (``math.inf``: no idea); pauses grow from 1 ms to
    ``_POLL_MAX``. Every wait for a lock or a lease polls here."""
    deadline = time.monotonic() + wait
    delay = 0.001
    while (most := attempt()) is not None:
        if time.monotonic() >= deadline or interrupted():
            return False
        pause(min(delay, most, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _POLL_MAX)
    return True


def _lock(fd: int, wait: float, *, shared: bool = False) -> bool:
    """Lock ``fd``; give up (False) once ``wait`` seconds have passed, or when interrupted."""
    return poll(lambda: None if try_lock(fd, shared=shared) else math.inf, wait)


@contextlib.contextmanager
def locked(path: Path, *, wait: float | None = None) -> Iterator[HostFile | None]:
    """The file at ``path`` (its folder made 0700 and checked), locked exclusively through
    its ``lock_path`` (0600).

    Yields it, or ``None`` when ``wait`` seconds (``LOCK_WAIT`` when None)
    passed without the lock, or the wait was interrupted. ``OSError`` when the
    folder or a file cannot be used: ``NotOurs`` when it is not ours.
    """
    make_folder(path.parent)
    _check_folder(path.parent)
    fd = _open(lock_path(path), os.O_RDWR | os.O_CREAT)
    try:
        if not _lock(fd, LOCK_WAIT if wait is None else wait):
            yield None
            return
        try:
            _check_file(path)  # refused now, where its user expects an OSError, not mid-update
            yield HostFile(path, fd)
        finally:
            unlock(fd)
    finally:
        _close(fd)


def host_id(directory: Path) -> str:
    """A random name for the processes that share ``directory``: the host, as the
    coordinator counts hosts (hostnames repeat across containers; folder paths too).

    Made once, kept in the folder's ``host-id.json`` under its lock, bound to
    that file (device, inode): a copy of the file elsewhere is not this host's,
    and gets a new id there, with a WARNING. ``OSError`` (``LockBusy`` and
    ``NotOurs`` included) when the folder cannot give one.
    """
    path = directory / "host-id.json"
    try:
        return _host_id(path)
    except NotOurs as exc:
        logger.warning(
            "gitjsonl: cannot use the host id in %s (%s); this process counts as a host of its own",
            directory,
            exc.strerror,
        )
        raise


def _host_id(path: Path) -> str:
    with locked(path) as held:
        if held is None:
            raise LockBusy("the host id's lock is held by another process")
        found = held.read() or {}
        known = found.get("id")
        valid = isinstance(known, str) and _HOST_ID.fullmatch(known) is not None
        if valid:
            with contextlib.suppress(OSError):
                if found.get("file") == _binding(os.stat(path, follow_symlinks=False)):
                    return str(known)
            if "file" in found:
                logger.warning(
                    "gitjsonl: %s was copied from another host (or moved); this host takes "
                    "an id of its own, so that the two are counted as two",
                    path,
                )
        made = secrets.token_hex(8)

        def bound(st: os.stat_result) -> bytes:
            return json.dumps({"id": made, "file": _binding(st)}).encode()

        _replace(path, bound, fsync=True)  # made once: worth a disk flush
        return made


def _binding(st: os.stat_result) -> list[int]:
    """What a copy of a file does not carry: the file system and inode it is on."""
    return [st.st_dev, st.st_ino]


def read_json(held: HostFile) -> dict[str, Any] | None:
    """The JSON object in the locked file, or None when there is none or it is not one."""
    return held.read()


def write_json(held: HostFile, data: dict[str, Any]) -> None:
    """Replace the locked file's content with ``data``, atomically."""
    held.write(data)


def read_locked_json(path: Path, *, wait: float | None = None) -> dict[str, Any] | None:
    """The JSON object at ``path`` read under a shared lock; None when there is no such file.

    The file is replaced whole, never written in place: the lock only orders a
    read after a write in progress. Never creates anything (a read-only folder
    reads): without a lock file, no writer of this version was ever here.
    ``LockBusy`` when the lock was not had within ``wait`` seconds (``LOCK_WAIT``);
    ``NotOurs`` when the folder or a file is not ours.
    """
    try:
        _check_folder(path.parent)
        fd = _open(lock_path(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return _read(path) if path.parent.is_dir() else None
    try:
        if not _lock(fd, LOCK_WAIT if wait is None else wait, shared=True):
            raise LockBusy(f"the lock of {path.name} is held by another process")
        try:
            return _read(path)
        finally:
            unlock(fd)
    finally:
        _close(fd)
