"""Editing git trees by path, the way POST /git/trees and PUT /contents do.

A :class:`TreeBuilder` loads only the subtrees a change touches, and on
:meth:`TreeBuilder.write` rewrites only those; untouched subtrees keep their
sha. Nothing is written to the object store before ``write``, so a request
that fails validation half-way leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._gitstore import GitRepo
from ._names import valid_path

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class TreeEditError(Exception):
    """A change could not be applied (e.g. deleting a path that does not exist)."""


@dataclass
class _Leaf:
    mode: str
    type: str
    sha: str | None
    data: bytes | None = None


@dataclass
class _Node:
    sha: str | None
    entries: dict[str, _Leaf | _Node] | None = None
    dirty: bool = False


class TreeBuilder:
    """Applies path edits on top of an optional base tree."""

    def __init__(self, repo: GitRepo, base_tree: str | None) -> None:
        self._repo = repo
        self._root = _Node(base_tree, None if base_tree else {}, dirty=base_tree is None)

    def _children(self, node: _Node) -> dict[str, _Leaf | _Node]:
        if node.entries is None:
            assert node.sha is not None
            node.entries = {
                entry.path: _Leaf(entry.mode, entry.type, entry.sha)
                for entry in self._repo.ls_tree(node.sha)
            }
        return node.entries

    def _walk(self, parts: list[str], *, create: bool) -> _Node | None:
        node = self._root
        for part in parts:
            children = self._children(node)
            child = children.get(part)
            if isinstance(child, _Leaf) and child.type == "tree" and child.data is None:
                child = _Node(child.sha)
                children[part] = child
            if not isinstance(child, _Node):
                if not create:
                    return None
                child = _Node(None, {})
                children[part] = child
            node = child
        return node

    def _mark_dirty(self, parts: list[str]) -> None:
        node = self._root
        node.dirty = True
        for part in parts:
            child = self._children(node).get(part)
            if not isinstance(child, _Node):
                return
            child.dirty = True
            node = child

    def set(
        self, path: str, mode: str, kind: str, sha: str | None = None, data: bytes | None = None
    ) -> None:
        """Put an entry at ``path``, creating intermediate trees.

        A path ``git fsck --strict`` would reject raises ValueError: callers answer
        422 before this, and this is the backstop that keeps such trees unwritten.
        """
        if not valid_path(path, mode):
            raise ValueError(f"malformed tree path {path!r}")
        *parents, name = path.split("/")
        node = self._walk(parents, create=True)
        assert node is not None
        if kind == "tree" and sha is not None:
            self._children(node)[name] = _Node(sha)
        else:
            self._children(node)[name] = _Leaf(mode, kind, sha, data)
        self._mark_dirty(parents)

    def delete(self, path: str) -> None:
        """Remove ``path``; raises :class:`TreeEditError` when it does not exist."""
        *parents, name = path.split("/")
        node = self._walk(parents, create=False)
        if node is None or name not in self._children(node):
            raise TreeEditError(path)
        del self._children(node)[name]
        self._mark_dirty(parents)

    def get(self, path: str) -> tuple[str, str, str] | None:
        """Return ``(mode, type, sha)`` of an existing (unmodified) entry."""
        *parents, name = path.split("/")
        node = self._walk(parents, create=False)
        if node is None:
            return None
        child = self._children(node).get(name)
        if isinstance(child, _Leaf) and child.sha is not None:
            return child.mode, child.type, child.sha
        if isinstance(child, _Node) and child.sha is not None and not child.dirty:
            return "040000", "tree", child.sha
        return None

    def write(self) -> str:
        """Write the changed trees (and inline blobs) and return the root tree sha."""
        return self._write(self._root) or self._repo.write_tree([])

    def _write(self, node: _Node) -> str | None:
        if not node.dirty and node.sha is not None:
            return node.sha
        rows: list[tuple[str, str, str, str]] = []
        for name, child in self._children(node).items():
            if isinstance(child, _Node):
                sha = self._write(child)
                if sha is not None and sha != EMPTY_TREE:
                    rows.append(("040000", "tree", sha, name))
            else:
                sha = child.sha
                if child.data is not None:
                    sha = self._repo.write_blob(child.data)
                assert sha is not None
                rows.append((child.mode, child.type, sha, name))
        if not rows:
            return None
        return self._repo.write_tree(rows)
