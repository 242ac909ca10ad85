"""Reading a log from a checkout (a clone of the repository), without a token or a request.

For training jobs and scripts that read a clone rather than the API: the same
layout rules as the API reader (``_segments.list_log``: only names the layout
writes, only plain files, never a symlink), the same judge of a line
(``_records.decode_lines``, as ``verify``), and the legacy single file
(``<folder>.jsonl``) first unless a migration manifest says it is already in
the segments (a legacy file that is no longer the blob migrated is warned of,
as the API reader does: ``_reader.legacy_drift``).

A checkout is a folder anyone may have written to: a file is opened without
following a link, and one larger than any file GitHub holds (``MAX_FILE_BYTES``:
a 4 GB sparse file, say) is reported and never read. The rest stream line by
line: memory holds one line, never a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._config import MiB
from ._github import DirEntry
from ._reader import legacy_drift, manifest_source_sha, warn_ignored
from ._records import decode_lines
from ._segments import MANIFEST_NAME, list_log

__all__ = ["MAX_FILE_BYTES", "read_checkout"]

logger = logging.getLogger(__name__)

#: GitHub refuses a file over 100 MiB: no file of a log it holds is larger.
MAX_FILE_BYTES = 100 * MiB


def read_checkout(folder: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every record of the log whose folder is ``folder`` in a checkout, in append order.

    One line in memory at a time. Corrupt lines are skipped with a warning (as
    ``tail`` and ``records`` do); entries named like segments that are not the
    log's (another name, a folder, a symlink) are ignored with one warning, and
    so is a file over ``MAX_FILE_BYTES`` (never read).
    Raises ``FileNotFoundError`` when neither the folder nor a legacy file exists.
    """
    root = Path(folder)
    legacy = root.with_name(root.name + ".jsonl")
    if not root.is_dir() and not legacy.is_file():
        raise FileNotFoundError(f"no log at {root}: neither a folder nor {legacy.name}")
    entries = _entries(root) if root.is_dir() else []
    migrated = any(e.name == MANIFEST_NAME and e.type == "file" for e in entries)
    if legacy.is_file() and not legacy.is_symlink():
        if not migrated:
            yield from _records(legacy)
        else:
            drift = legacy_drift(_migrated(root / MANIFEST_NAME), _entry_of(legacy))
            if drift is not None:
                warn_ignored(str(root), (drift,))
    listing = list_log(entries)
    warn_ignored(str(root), listing.ignored)
    for entry in listing.segments:
        yield from _records(root / entry.name)


def _entries(root: Path) -> list[DirEntry]:
    """The folder's entries as the layout sees them (a symlink is never followed)."""
    found = []
    with os.scandir(root) as scan:
        for item in scan:
            if item.is_symlink():
                kind, mode = "symlink", "120000"
            elif item.is_dir(follow_symlinks=False):
                kind, mode = "dir", "040000"
            elif item.is_file(follow_symlinks=False):
                executable = os.access(item.path, os.X_OK)
                kind, mode = "file", "100755" if executable else "100644"
            else:
                kind, mode = "special file", "?"
            found.append(DirEntry(item.name, str(Path(root.name, item.name)), "", 0, kind, mode))
    return found


#: A migration manifest is a few hundred bytes; more is not one.
_MANIFEST_LIMIT = 64 * 1024


def _migrated(manifest: Path) -> str | None:
    """The blob the manifest says was migrated; None when it cannot be read or does not say."""
    try:
        with manifest.open("rb") as handle:
            return manifest_source_sha(handle.read(_MANIFEST_LIMIT))
    except OSError:
        return None


def _entry_of(path: Path) -> DirEntry:
    """``path`` as the API would list it: its git blob sha, streamed (a file over
    ``MAX_FILE_BYTES`` cannot be one GitHub holds: it gets no sha)."""
    size = path.stat().st_size
    sha = ""
    if size <= MAX_FILE_BYTES:
        digest = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        sha = digest.hexdigest()
    return DirEntry(path.name, str(path), sha, size, "file")


def _records(path: Path) -> Iterator[dict[str, Any]]:
    try:
        # No link followed; a FIFO is not waited on (O_NONBLOCK), it is not a regular file.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise OSError(exc.errno, f"cannot read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            logger.warning(
                "gitjsonl: %s: %s bytes, more than any file GitHub holds (%s); not read",
                path,
                f"{info.st_size:,}",
                f"{MAX_FILE_BYTES:,}",
            )
            return
        yield from _decoded(path, _bounded_lines(handle, MAX_FILE_BYTES))


def _bounded_lines(handle: Any, limit: int) -> Iterator[bytes]:
    """The lines of ``handle``, ending past ``limit`` bytes (a file that grows as it is read)."""
    left = limit
    while left >= 0:
        line = handle.readline(left + 1)
        if not line:
            return
        left -= len(line)
        yield line


def _decoded(path: Path, lines: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    for line in decode_lines(lines):
        if line.record is None:
            logger.warning(
                "gitjsonl: skipping corrupt line %s:%d: %s", path, line.number, line.problem
            )
            continue
        yield line.record
