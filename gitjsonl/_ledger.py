"""Files the processes of one host share, under an OS file lock: the thin I/O layer.

Three kinds live in one folder (``budget_dir``; by default the user's cache
folder): ``budget-<key>.json``, a token's ledger of writes (``_budget``);
``turn-<key>.json``, a branch's turn to commit and the commits its last
writers made (``_turn``); and ``host-id.json``, a random name for the host
that shares the folder (``host_id``: how the coordinator counts hosts). Keys
are hashes (``file_key``) of the API URL, the credentials and the branch: no
token, no repository name and no path appears in a file name, and no token in
a file.

A file is read and written whole while its lock is held, and its lock is held
only for that (a ledger) or for one batch's writes (a turn). The lock is
portalocker's (``flock`` on Linux and macOS, ``LockFileEx`` or ``msvcrt`` on
Windows), exclusive (shared for a read on POSIX) and never blocking (``try_lock``: polled, so that a
wait has a bound and can be cut short). A lock ends with its process however
the process ends: the lock belongs to the open file, which the kernel closes.
A process that is stopped (SIGSTOP, a debugger) keeps its locks, so no wait
for one is unbounded: ``locked`` and ``read_locked_json`` give up after the
wait they are given (``LOCK_WAIT`` by default), and a wait ends early when the
event of ``waits_end_on`` is set (the ``Log`` is closing).

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
import math
import os
import re
import secrets
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
    "LockBusy",
    "file_key",
    "host_id",
    "locked",
    "open_flags",
    "poll",
    "read_json",
    "read_locked_json",
    "try_lock",
    "unlock",
    "waits_end_on",
    "write_json",
]

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


class LockBusy(OSError):
    """A lock was not taken within its wait (its holder is stopped or hung, or we are closing)."""


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


def _open(path: Path, *, create: bool) -> int:
    if create:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT
    else:
        flags = os.O_RDONLY
    with _open_files.lock:
        fd = os.open(path, open_flags(flags), 0o600)
        _open_files.fds.add(fd)
    return fd


def _close(fd: int) -> None:
    with _open_files.lock:
        _open_files.fds.discard(fd)
        os.close(fd)


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
def locked(path: Path, *, wait: float | None = None) -> Iterator[int | None]:
    """The file at ``path`` (made 0600, its folder 0700), open and locked exclusively.

    Yields its descriptor, or ``None`` when ``wait`` seconds (``LOCK_WAIT`` when
    None) passed without the lock, or the wait was interrupted. ``OSError`` when
    the file cannot be opened (a read-only folder, say).
    """
    fd = _open(path, create=True)
    try:
        if not _lock(fd, LOCK_WAIT if wait is None else wait):
            yield None
            return
        try:
            yield fd
        finally:
            unlock(fd)
    finally:
        _close(fd)


def host_id(directory: Path) -> str:
    """A random name for the processes that share ``directory``: the host, as the
    coordinator counts hosts (hostnames repeat across containers; folder paths too).

    Made once, kept in the folder's ``host-id.json`` under its lock; ``OSError``
    (``LockBusy`` included) when the folder cannot give one.
    """
    with locked(directory / "host-id.json") as fd:
        if fd is None:
            raise LockBusy("the host id's lock is held by another process")
        found = (read_json(fd) or {}).get("id")
        if isinstance(found, str) and _HOST_ID.fullmatch(found):
            return found
        made = secrets.token_hex(8)
        write_json(fd, {"id": made})
        return made


def read_json(fd: int) -> dict[str, Any] | None:
    """The JSON object in the open file, or None when it is empty or not one (a torn write)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    try:
        data = json.loads(b"".join(chunks)) if chunks else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def write_json(fd: int, data: dict[str, Any]) -> None:
    """Replace the open file's content with ``data``."""
    payload = json.dumps(data, separators=(",", ":")).encode()
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def read_locked_json(path: Path, *, wait: float | None = None) -> dict[str, Any] | None:
    """The JSON object at ``path`` read under its lock; None when there is no such file.

    ``LockBusy`` when the lock was not had within ``wait`` seconds (``LOCK_WAIT``).
    """
    try:
        fd = _open(path, create=False)
    except FileNotFoundError:
        return None
    try:
        if not _lock(fd, LOCK_WAIT if wait is None else wait, shared=True):
            raise LockBusy(f"the lock of {path.name} is held by another process")
        try:
            return read_json(fd)
        finally:
            unlock(fd)
    finally:
        _close(fd)
