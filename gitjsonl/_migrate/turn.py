"""Where a migration's commit goes on a branch the writers here take turns on (pure).

A migration reads the branch once (head, source, destination), which may lag
behind writes; by the time it commits, a ``Log`` of this host (or, with a
coordinator, of any host) may have moved the branch on. Within the branch's
turn the chain of links (``_turn``) names those commits exactly, so the
migration builds on the chain's tip instead of racing it, provided the
commits since its head left what it planned from alone: no link between
wrote a folder holding, or inside, the destination or the source, and no
commit nobody here made lies between (``catch_up``'s ``exact``). Otherwise
the tip is still the newest commit known: the migration plans again from a
read of it (by sha, never stale). A head the chain does not hold leaves the
chain silent: the migration builds on what it read, as without turns, and
the fast-forward check keeps the branch whole.

The link the migration leaves names the destination's folder, so that a
writer of another path catches up to the migration's commit without a read,
and a writer of the destination, knowing nothing of that folder's new state,
reads it. A commit that also removes a source outside the destination leaves
no link (one link names one folder).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gitjsonl._chain import Link, catch_up
from gitjsonl._github import DirEntry
from gitjsonl._gittree import tree_sha
from gitjsonl._segments import segment_number

__all__ = ["Base", "destination_link", "migration_base"]

#: A folder sha for a destination whose new tree cannot be computed: matches no log's state.
UNKNOWN_FOLDER = ""


@dataclass(frozen=True, slots=True)
class Base:
    """The commit a migration builds on: ``tree`` its root tree (None: read it), and
    ``replan`` when the destination or source may differ there from what was planned."""

    commit: str
    tree: str | None = None
    replan: bool = False


def migration_base(chain: Sequence[Link], head: str, *, destination: str, source: str) -> Base:
    """Where a migration planned at ``head``, writing the folder ``destination`` (and
    deleting or keeping the file ``source``), commits within the turn whose links are
    ``chain`` (oldest first).

    The turn's pending link is left out: a migration's retry trusts a manifest
    naming its batch at the commit it plans from, so that commit must be on the
    branch. A pending update it ignores costs at most one refused update.
    """
    found = catch_up(chain, head, destination)
    if found is None:
        return Base(head)
    touched = (destination, source)
    if found.exact and not any(_overlap(x.path, path) for x in found.newer for path in touched):
        return Base(found.commit, found.tree)
    return Base(found.commit, replan=True)


def _overlap(a: str, b: str) -> bool:
    """Is one of two repository paths the other, or inside it?"""
    a, b = a.strip("/"), b.strip("/")
    return a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/")


def destination_link(
    *,
    commit: str,
    base: str,
    tree: str,
    destination: str,
    folder: Sequence[DirEntry],
    files: Mapping[str, str | None],
) -> Link | None:
    """The link a migration's commit leaves: ``folder`` is the destination's entries it
    planned from, ``files`` the paths its tree set to a blob sha (None: deleted).

    None when the commit also wrote outside the destination (``--remove-source`` of a
    source beside it): a link names one log's folder, and a writer beside the source,
    told only of the destination, would build on a stale tree of the source's folder.
    Without a link every writer learns of the commit as of any other: one refused
    update, then a read.

    Its segment is the newest segment file the commit wrote under the
    destination, and its folder sha the destination's new tree, computed (the
    tree API writes each path as a ``100644`` blob); ``UNKNOWN_FOLDER`` when a
    path written lies deeper inside the destination, or an entry is one git
    could not hold.
    """
    prefix = f"{destination.strip('/')}/"
    if any(not path.startswith(prefix) for path in files):
        return None
    entries = {entry.name: entry for entry in folder}
    newest = 0
    known = True
    for path, sha in files.items():
        if not path.startswith(prefix):
            continue
        name = path[len(prefix) :]
        if "/" in name:
            known = False
        elif sha is None:
            entries.pop(name, None)
        else:
            entries[name] = DirEntry(name, path, sha, 0, "file", "100644")
            newest = max(newest, segment_number(name) or 0)
    folder_sha = UNKNOWN_FOLDER
    if known:
        with contextlib.suppress(ValueError):  # an entry git could not hold
            folder_sha = tree_sha(entries.values())
    return Link(commit, base, tree, destination.strip("/"), newest, folder_sha)
