"""What a writer may build on, and the proof it needs: the links, the heads, pure.

A writer on this host leaves a ``Link`` for each commit it made (the commit,
the one it built on, the tree, its log's newest segment and folder). The next
writer catches up along them (``catch_up``) instead of reading the branch,
which may lag. Nothing here does I/O: the turn (``_turn``) stores the chain,
the protocol (``_protocol``) decides what of it to trust:

- a link is followed only from a head the writer holds (its own commit, or a
  read the branch proved);
- the pending link (a ref update sent and never answered) is the chain's last
  link only when it was sent on the chain's tip (``with_pending``);
- a link the branch contradicts goes with the links after it (``dropped``)
  and is never followed again;
- a head another process left in the turn record (``head_from_json``) is used
  only when every tree of it hashes to the shas its link names.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._github import DirEntry
from ._gittree import rebuild_path, tree_sha

__all__ = [
    "CHAIN_LENGTH",
    "PENDING_LENGTH",
    "SHARED_HEADS",
    "SHARED_HEAD_BYTES",
    "TURN_FORMAT",
    "CatchUp",
    "Head",
    "Link",
    "catch_up",
    "chain_from_json",
    "chain_to_json",
    "dropped",
    "head_from_json",
    "head_to_json",
    "heads_from_json",
    "pending_below",
    "pending_from_json",
    "with_intended",
    "with_landed",
    "with_pending",
    "without",
]

#: Links kept per branch: how far behind a writer may be and still catch up without reading.
CHAIN_LENGTH = 32

#: Pending links kept in a turn record (each built on the one before, the first on the
#: chain's tip): ref updates sent and not yet answered, one on another.
PENDING_LENGTH = 8

#: Heads kept in a turn record (one per log path, the newest written last): the record
#: stays bounded however many logs share the branch (each head is bounded by
#: ``_commit.SHARED_HEAD_BYTES``); a path whose head fell out is read by the next writer.
SHARED_HEADS = 8

TURN_FORMAT = 2  # 2: segment_sha names the log folder's tree


@dataclass(frozen=True, slots=True)
class Link:
    """One commit a gitjsonl writer on this host made: built on ``base``, writing ``path``'s
    log, whose newest segment became number ``segment`` and whose folder became tree
    ``segment_sha``."""

    commit: str
    base: str
    tree: str
    path: str
    segment: int
    segment_sha: str


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What a writer learns from the chain: the newest commit, and its own segment there.

    ``exact``: every commit from the writer's head to ``commit`` is a link, so
    ``segment`` (the newest link that wrote the writer's path, or None when
    none did and its segment is unchanged) is all that changed for it. Else a
    commit nobody here made lies between: read the folder at ``commit``.
    """

    commit: str
    tree: str
    segment: Link | None
    exact: bool
    newer: tuple[Link, ...] = ()  # the links from the writer's head on, oldest first


def catch_up(chain: Sequence[Link], head: str, path: str) -> CatchUp | None:
    """Where ``head`` stands in ``chain`` (oldest first), as seen from ``path``'s log.

    None when nothing in the chain is newer than ``head``, or when ``head`` is
    not in it at all (then the chain says nothing about it).
    """
    start: int | None = None
    for index, link in enumerate(chain):
        if link.commit == head:
            start = index + 1
        elif link.base == head and start is None:
            start = index
    if start is None or start >= len(chain):
        return None
    newer = chain[start:]
    exact = newer[0].base == head and all(
        later.base == earlier.commit for earlier, later in itertools.pairwise(newer)
    )
    mine = [link for link in newer if link.path == path]
    tip = newer[-1]
    return CatchUp(tip.commit, tip.tree, mine[-1] if mine else None, exact, tuple(newer))


def without(chain: Sequence[Link], commit: str) -> tuple[Link, ...]:
    """``chain`` cut before the link to ``commit`` (whole when no link is to it)."""
    links = tuple(chain)
    for index, link in enumerate(links):
        if link.commit == commit:
            return links[:index]
    return links


def dropped(
    chain: Sequence[Link], pending: Sequence[Link], commit: str
) -> tuple[tuple[Link, ...], tuple[Link, ...]]:
    """The chain and pending links once the link to ``commit`` is refuted: the links from it
    on are gone, and so are a pending link to it or built on what is gone, and those above."""
    kept = without(chain, commit)
    gone = {link.commit for link in chain[len(kept) :]} | {commit}
    left: list[Link] = []
    for link in pending:
        if link.commit in gone or link.base in gone:
            break
        left.append(link)
    return kept, tuple(left)


def pending_below(pending: Sequence[Link], base: str) -> tuple[Link, ...]:
    """The pending links a commit on ``base`` builds on: those up to the one to ``base``
    (none when no pending link is to it)."""
    for index, link in enumerate(pending):
        if link.commit == base:
            return tuple(pending[: index + 1])
    return ()


def with_intended(pending: Sequence[Link], link: Link) -> tuple[Link, ...]:
    """The turn's pending links once ``link``'s ref update is about to go: those it builds on,
    then it (a rival pending link, on the same base, can no longer land once ours does;
    should ours be refused, the turn puts back what it had)."""
    return (*pending_below(pending, link.base), link)[-PENDING_LENGTH:]


def with_landed(chain: Sequence[Link], pending: Sequence[Link], link: Link) -> tuple[Link, ...]:
    """The chain once ``link`` landed: the pending links it was built on (its landing proves
    them: a fast-forward from their commits) join the chain under it."""
    joined = [p for p in pending_below(pending, link.base) if p not in chain]
    return (*chain, *joined, link)[-CHAIN_LENGTH:]


def chain_to_json(chain: Sequence[Link], pending: Sequence[Link] = ()) -> dict[str, Any]:
    """A turn record: the chain, and the pending links (the newest as ``pending``, as
    records of every version have it; those it was built on as ``pending_under``)."""
    data: dict[str, Any] = {"format": TURN_FORMAT, "chain": [_row(x) for x in chain]}
    if pending:
        data["pending"] = _row(pending[-1])
        if len(pending) > 1:
            data["pending_under"] = [_row(x) for x in pending[:-1]]
    return data


def _row(x: Link) -> list[object]:
    return [x.commit, x.base, x.tree, x.path, x.segment, x.segment_sha]


def pending_from_json(data: dict[str, Any] | None) -> tuple[Link, ...]:
    """A turn record's pending links, oldest first; none for a torn or unknown record (or a
    ``pending_under`` that does not run up to ``pending``: the newest alone is kept)."""
    if not data or data.get("format") != TURN_FORMAT or data.get("pending") is None:
        return ()
    newest = chain_from_json({"format": TURN_FORMAT, "chain": [data["pending"]]})
    if len(newest) != 1:
        return ()
    under = data.get("pending_under")
    rows = under if isinstance(under, list) else []
    below = chain_from_json({"format": TURN_FORMAT, "chain": rows}) if rows else ()
    links = (*below, newest[0])
    if len(below) != len(rows) or any(
        later.base != earlier.commit for earlier, later in itertools.pairwise(links)
    ):
        return newest
    return links[-PENDING_LENGTH:]


def chain_from_json(data: dict[str, Any] | None) -> tuple[Link, ...]:
    """A turn file's chain; empty for a missing, torn or unknown file."""
    if not data or data.get("format") != TURN_FORMAT:
        return ()
    try:
        rows = data["chain"]
        return tuple(
            Link(str(c), str(b), str(t), str(p), int(n), str(s)) for c, b, t, p, n, s in rows
        )
    except (KeyError, TypeError, ValueError):
        return ()


def heads_from_json(data: dict[str, Any] | None) -> dict[str, tuple[str, object]]:
    """A turn record's heads: path -> (its folder's sha, the head as JSON, unproven)."""
    heads = data.get("heads") if data and data.get("format") == TURN_FORMAT else None
    if not isinstance(heads, dict):
        return {}
    return {
        path: (row[0], row[1])
        for path, row in heads.items()
        if isinstance(path, str) and isinstance(row, list) and len(row) == 2
        if isinstance(row[0], str)
    }


@dataclass(frozen=True, slots=True)
class Head:
    """What we know of the branch we build on: a commit, and the log's trees in it."""

    commit: str
    tree: str  # the commit's root tree
    folder: tuple[DirEntry, ...]  # the log folder's entries (empty: no folder yet)
    # The trees above the log folder, root first (``()``: that folder does not exist
    # yet; None: its entries are not known, e.g. after another log's commit).
    levels: tuple[tuple[DirEntry, ...] | None, ...]
    texts: Mapping[str, bytes]  # blob sha -> bytes, for the small files a batch may merge


#: Bytes of JSON a head may take in a turn record; past this (a folder of many files) the
#: next writer elsewhere reads the folder instead. A record keeps a few heads (``_turn``).
SHARED_HEAD_BYTES = 32 * 1024


def _entry_to_json(entry: DirEntry) -> list[object]:
    return [entry.name, entry.path, entry.sha, entry.size, entry.type, entry.mode]


def _entry_from_json(row: object) -> DirEntry:
    if not isinstance(row, list) or len(row) != 6:
        raise ValueError("not a tree entry")
    name, path, sha, size, kind, mode = row
    if not all(isinstance(v, str) for v in (name, path, sha, kind, mode)):
        raise ValueError("not a tree entry")
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError("not a tree entry")
    return DirEntry(name, path, sha, size, kind, mode)


def head_to_json(head: Head) -> dict[str, object] | None:
    """``head`` for the turn record, so that a writer on another host builds on it without
    reading the branch; None when it is too big to carry (``SHARED_HEAD_BYTES``).

    Trees only, never a record's text: the small files' bytes stay in this process, and a
    writer elsewhere reads them by sha (``Committer._with_texts``)."""
    data: dict[str, object] = {
        "commit": head.commit,
        "tree": head.tree,
        "folder": [_entry_to_json(e) for e in head.folder],
        "levels": [None if x is None else [_entry_to_json(e) for e in x] for x in head.levels],
    }
    if len(json.dumps(data, separators=(",", ":"))) > SHARED_HEAD_BYTES:
        return None
    return data


def head_from_json(data: object, parts: tuple[str, ...], folder_sha: str) -> Head | None:
    """A turn record's head (without texts), or None unless every tree of it is proven: the
    folder's entries hash to ``folder_sha`` (the link's), the levels to the root tree."""
    if not isinstance(data, dict):
        return None
    try:
        commit, tree = data["commit"], data["tree"]
        if not isinstance(commit, str) or not isinstance(tree, str):
            return None
        folder = tuple(map(_entry_from_json, data["folder"]))
        levels = tuple(
            None if x is None else tuple(map(_entry_from_json, x)) for x in data["levels"]
        )
        if len(levels) != len(parts) or tree_sha(folder) != folder_sha:
            return None
        root = rebuild_path(parts, levels, folder).shas[0]
    except (KeyError, TypeError, ValueError):
        return None
    if root is not None and root != tree:
        return None
    return Head(commit, tree, folder, levels, {})


def with_pending(chain: Sequence[Link], pending: Sequence[Link]) -> tuple[Link, ...]:
    """The chain a writer catches up along: with the turn's pending links at its end, as far
    as they run on from the chain's tip (an empty chain: from whatever the first names).

    Each update may have landed without its writer saying so (its answer lost, or the
    writer killed before it left the link): a writer at the tip builds on it. The guess
    is proven like any link (the writer's own head must be its base, or in the chain
    below it), and a wrong one costs one refused update, never a duplicate: a commit on
    a pending one is a fast-forward only while the branch is at it or below it, and then
    it carries the pending batches, once (a writer leaves its update pending only while
    it, or a restart from its spool, settles that same commit, which finds the batch
    under ours). A pending link sent on an older commit says nothing: the chain has
    moved on past it, so it can never land. One sent on a commit the chain does not
    hold (another host's, read by its writer: newer than the chain, since every link
    added clears the pending ones) is kept for a writer whose head is that commit
    (found by ``./dev sim``: two writers of one host, both at a commit another host
    made, raced). Pending links built on pending links (a
    writer built on one, and its own answer was lost too) are kept in order, so the
    next writer still finds its way up (found by ``./dev sim``: the turn forgot the one
    below, and the next writer raced the one above).
    """
    links = list(chain)
    known = {link.commit for link in links}
    below = known | {link.base for link in links}  # what the chain holds or moved past
    tip = links[-1].commit if links else None
    for index, link in enumerate(pending):
        if link.commit in known:
            continue
        if tip is not None and link.base != tip and (index > 0 or link.base in below):
            break
        links.append(link)
        known.add(link.commit)
        tip = link.commit
    return tuple(links)
