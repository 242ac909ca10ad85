"""Git tree objects computed locally: what GitHub must answer for a tree we asked it to make.

A batch's tree is created with its files' text inline (``tree[].content``), so
GitHub writes the blobs itself; what it stored is checked against the tree sha
git would give the same entries. A tree object is ``tree <len>\\0`` followed by
one ``<mode> <name>\\0<20-byte sha>`` per entry, sorted by name as bytes, a
folder compared as if its name ended in ``/``; its id is the SHA-1 of that.
Rebuilding the trees along the log's path, from the folder up to the root,
from entries already known (our own last commit, or the listings a cold start
reads anyway) gives the root tree's sha without a request.

Everything here is a function over plain values: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._github import DirEntry

__all__ = ["TREE_MODE", "PathTrees", "is_folder", "rebuild_path", "tree_sha"]

#: The mode the Trees API writes for a folder (git's own objects say ``40000``).
TREE_MODE = "040000"


def is_folder(entry: DirEntry) -> bool:
    return entry.mode in (TREE_MODE, "40000")


def _sort_key(entry: DirEntry) -> bytes:
    name = entry.name.encode("utf-8", "surrogateescape")
    return name + b"/" if is_folder(entry) else name


def tree_sha(entries: Iterable[DirEntry]) -> str:
    """The object id git gives a tree holding ``entries`` (their name, mode and sha).

    Raises ``ValueError`` for an entry git could not hold (a sha that is not 40
    hex digits, an unknown mode): such an answer is never built on.
    """
    body = bytearray()
    for entry in sorted(entries, key=_sort_key):
        mode = "40000" if is_folder(entry) else entry.mode
        if mode not in ("100644", "100755", "120000", "160000", "40000"):
            raise ValueError(f"tree entry {entry.name!r} has mode {entry.mode!r}")
        try:
            raw = bytes.fromhex(entry.sha)
        except ValueError:
            raw = b""
        if len(raw) != 20:
            raise ValueError(f"tree entry {entry.name!r} has sha {entry.sha!r}")
        body += f"{mode} ".encode() + entry.name.encode("utf-8", "surrogateescape") + b"\0" + raw
    digest = hashlib.sha1(b"tree %d\0" % len(body), usedforsecurity=False)
    digest.update(body)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PathTrees:
    """The trees from the root down to a log folder, after a change to the folder.

    ``shas[i]`` is the tree at the first ``i`` parts of the path (``shas[0]``
    the root, ``shas[-1]`` the folder); ``levels[i]`` its entries. Both are
    None above the first level whose entries were not known.
    """

    shas: tuple[str | None, ...]
    levels: tuple[tuple[DirEntry, ...] | None, ...]


def rebuild_path(
    parts: Sequence[str],
    above: Sequence[tuple[DirEntry, ...] | None],
    folder: Sequence[DirEntry],
) -> PathTrees:
    """The trees along ``parts`` once the folder holds ``folder``, bottom-up.

    ``above[i]`` are the entries of the tree at ``parts[:i]`` before the
    change (``()`` for a level that does not exist yet, ``None`` when they are
    not known); each level keeps its entries and points at the new sha of the
    level below. A level left empty disappears, as git drops empty folders.
    """
    if len(above) != len(parts):
        raise ValueError("one level of entries per part of the path")
    shas: list[str | None] = [None] * (len(parts) + 1)
    shas[-1] = tree_sha(folder) if folder else None
    levels: list[tuple[DirEntry, ...] | None] = [None] * len(parts)
    levels.append(tuple(folder))
    for index in reversed(range(len(parts))):
        known = above[index]
        if known is None or (levels[index + 1] is None):
            break
        name = parts[index]
        kept = [entry for entry in known if entry.name != name]
        child = shas[index + 1]
        if child is not None:
            folder_path = "/".join(parts[: index + 1])
            kept.append(DirEntry(name, folder_path, child, 0, "dir", TREE_MODE))
        levels[index] = tuple(kept)
        shas[index] = tree_sha(kept)
    return PathTrees(tuple(shas), tuple(levels))
