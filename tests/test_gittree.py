"""Tree objects computed locally, as git computes them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitjsonl._github import DirEntry, git_blob_sha
from gitjsonl._gittree import TREE_MODE, rebuild_path, tree_sha

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/"}


def blob(name: str, data: bytes, mode: str = "100644") -> DirEntry:
    return DirEntry(name, name, git_blob_sha(data), len(data), "file", mode)


def folder(name: str, sha: str) -> DirEntry:
    return DirEntry(name, name, sha, 0, "dir", TREE_MODE)


def git_mktree(entries: list[DirEntry], where: Path) -> str:
    """The sha ``git mktree`` gives the same entries (git itself as the judge)."""
    subprocess.run(["git", "init", "-q", str(where)], check=True, env=ENV)
    text = "".join(
        f"{e.mode} {'tree' if e.mode == TREE_MODE else 'blob'} {e.sha}\t{e.name}\n" for e in entries
    )
    done = subprocess.run(
        ["git", "mktree", "--missing"],
        input=text.encode(),
        capture_output=True,
        check=True,
        cwd=where,
        env=ENV,
    )
    return done.stdout.decode().strip()


class TestTreeSha:
    def test_same_sha_as_git_with_folders_sorted_as_if_slashed(self, tmp_path: Path) -> None:
        """ "a" (a folder) sorts after "a-b" and "a.txt", as git sorts "a/"."""
        sub = tree_sha([blob("f", b"hi\n")])
        entries = [folder("a", sub), blob("a.txt", b"x\n"), blob("a-b", b"y\n")]
        assert tree_sha(entries) == git_mktree(entries, tmp_path)
        exe = [blob("run", b"#!/bin/sh\n", "100755"), blob("link", b"run", "120000")]
        assert tree_sha(exe) == git_mktree(exe, tmp_path)

    def test_empty_tree_is_gits_empty_tree(self) -> None:
        """No entries hash to git's well-known empty tree."""
        assert tree_sha([]) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

    def test_entry_git_could_not_hold_is_refused(self) -> None:
        """A hostile answer's entry (bad sha or mode) raises ValueError, never hashes."""
        with pytest.raises(ValueError, match="sha"):
            tree_sha([DirEntry("x", "x", "zz", 0, "file", "100644")])
        with pytest.raises(ValueError, match="mode"):
            tree_sha([DirEntry("x", "x", "0" * 40, 0, "file", "100600")])


class TestRebuildPath:
    def test_levels_are_rebuilt_bottom_up(self) -> None:
        """The root's sha follows from every level's entries and the new folder."""
        log = [blob("00000001.jsonl", b"{}\n")]
        other = blob("README.md", b"hello\n")
        trees = rebuild_path(("data", "log"), [(other,), ()], log)
        log_sha = tree_sha(log)
        data_sha = tree_sha([folder("log", log_sha)])
        assert trees.shas == (tree_sha([other, folder("data", data_sha)]), data_sha, log_sha)

    def test_unknown_level_stops_the_computation(self) -> None:
        """Above a level whose entries are not known, nothing is computed."""
        log = [blob("00000001.jsonl", b"{}\n")]
        trees = rebuild_path(("data", "log"), [None, ()], log)
        assert trees.shas[0] is None
        assert trees.levels[0] is None
        assert trees.shas[1] is not None
