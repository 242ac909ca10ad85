"""Reading a log from a checkout (a clone of the repository), without a token or a request.

For training jobs and scripts that read a clone rather than the API: the same
layout rules as the API reader (``_segments.list_log``: only names the layout
writes, only plain files, never a symlink), the same judge of a line
(``_records.decode_lines``, as ``verify``), and the legacy single file
(``<folder>.jsonl``) first unless a migration manifest says it is already in
the segments.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._github import DirEntry
from ._reader import warn_ignored
from ._records import decode_lines
from ._segments import MANIFEST_NAME, list_log

__all__ = ["read_checkout"]

logger = logging.getLogger("gitjsonl")


def read_checkout(folder: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every record of the log whose folder is ``folder`` in a checkout, in append order.

    One file in memory at a time. Corrupt lines are skipped with a warning (as
    ``tail`` and ``records`` do); entries named like segments that are not the
    log's (another name, a folder, a symlink) are ignored with one warning.
    Raises ``FileNotFoundError`` when neither the folder nor a legacy file exists.
    """
    root = Path(folder)
    legacy = root.with_name(root.name + ".jsonl")
    if not root.is_dir() and not legacy.is_file():
        raise FileNotFoundError(f"no log at {root}: neither a folder nor {legacy.name}")
    entries = _entries(root) if root.is_dir() else []
    migrated = any(e.name == MANIFEST_NAME and e.type == "file" for e in entries)
    if legacy.is_file() and not legacy.is_symlink() and not migrated:
        yield from _records(legacy)
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


def _records(path: Path) -> Iterator[dict[str, Any]]:
    for line in decode_lines(path.read_bytes()):
        if line.record is None:
            logger.warning(
                "gitjsonl: skipping corrupt line %s:%d: %s", path, line.number, line.problem
            )
            continue
        yield line.record
