"""gitjsonl._migrate.turn: where a migration's commit goes in the branch's turn (pure)."""

from __future__ import annotations

from gitjsonl._chain import Link
from gitjsonl._github import DirEntry
from gitjsonl._gittree import tree_sha
from gitjsonl._migrate.turn import UNKNOWN_FOLDER, Base, destination_link, migration_base

DEST = "data/interactions"
SRC = "data/interactions.jsonl"


def sha(n: int) -> str:
    return f"{n:040x}"


def link(commit: int, base: int, path: str = "data/events") -> Link:
    return Link(sha(commit), sha(base), sha(1000 + commit), path, 1, sha(2000 + commit))


def base_of(chain: list[Link], head: int) -> Base:
    return migration_base(chain, sha(head), destination=DEST, source=SRC)


def entry(name: str, blob: int, mode: str = "100644") -> DirEntry:
    kind = "dir" if mode == "040000" else "file"
    return DirEntry(name, f"{DEST}/{name}", sha(blob), 10, kind, mode)


class TestMigrationBase:
    def test_a_head_the_chain_does_not_hold_is_built_on_as_read(self) -> None:
        """The chain says nothing of a head it does not hold (another repository, a
        ledger too short): the migration builds on what it read."""
        assert base_of([link(2, 1), link(3, 2)], head=9) == Base(sha(9))

    def test_a_head_at_the_chains_tip_is_built_on_as_read(self) -> None:
        """Nothing newer than the head is known: the tree is read from it."""
        assert base_of([link(2, 1), link(3, 2)], head=3) == Base(sha(3))

    def test_a_stale_head_moves_to_the_tip_when_only_other_logs_wrote(self) -> None:
        """A read head (or the base of the first link: the commit a Log read) below
        commits of a Log of another path: the migration builds on the tip, with its tree,
        and plans nothing again (its destination and source are as it read them)."""
        chain = [link(2, 1), link(3, 2), link(4, 3, path="data/other")]
        assert base_of(chain, head=2) == Base(sha(4), sha(1004))
        assert base_of(chain, head=1) == Base(sha(4), sha(1004))

    def test_a_link_of_the_destination_or_source_makes_it_plan_again_at_the_tip(self) -> None:
        """A writer of the destination, of a folder holding it or the source, or of one
        inside the destination may have changed what was planned: plan again at the tip."""
        for path in (DEST, "data", f"{DEST}/sub", SRC, "/data/interactions/"):
            chain = [link(2, 1), link(3, 2, path=path), link(4, 3)]
            assert base_of(chain, head=2) == Base(sha(4), replan=True), path

    def test_a_path_that_only_starts_like_the_destination_does_not_overlap(self) -> None:
        """``data/interactions-old`` is neither the destination nor a folder around it."""
        chain = [link(2, 1), link(3, 2, path="data/interactions-old")]
        assert base_of(chain, head=2) == Base(sha(3), sha(1003))

    def test_a_commit_nobody_here_made_makes_it_plan_again_at_the_tip(self) -> None:
        """A link built on a commit the chain does not name (a writer on another host):
        what changed in between is unknown, so the migration plans again at the tip."""
        chain = [link(2, 1), link(4, 3)]
        assert base_of(chain, head=2) == Base(sha(4), replan=True)


class TestDestinationLink:
    def test_a_commit_that_removes_a_source_beside_the_destination_leaves_no_link(
        self,
    ) -> None:
        """A link names one folder: told only of the destination, a writer beside the
        removed source would build on a stale tree of its folder. No link: it reads."""
        files: dict[str, str | None] = {f"{DEST}/00000001.jsonl": sha(11), SRC: None}
        got = destination_link(
            commit=sha(7), base=sha(6), tree=sha(8), destination=DEST, folder=[], files=files
        )
        assert got is None

    def test_the_link_names_the_destinations_new_tree_and_newest_segment(self) -> None:
        """Migrated segments and renumbered existing ones set: the folder's sha is git's
        for the entries it now holds, and the segment the newest number written."""
        folder = [entry("00000001.jsonl", 1), entry("README.md", 2), entry("sub", 3, "040000")]
        files: dict[str, str | None] = {
            f"{DEST}/00000001.jsonl": sha(11),
            f"{DEST}/00000002.jsonl": sha(12),
            f"{DEST}/00000003.jsonl": sha(1),  # the existing segment, renumbered
            f"{DEST}/_manifest.json": sha(13),
        }
        got = destination_link(
            commit=sha(7),
            base=sha(6),
            tree=sha(8),
            destination=f"/{DEST}/",
            folder=folder,
            files=files,
        )
        expected = tree_sha(
            [
                DirEntry("00000001.jsonl", "", sha(11), 0, "file", "100644"),
                DirEntry("00000002.jsonl", "", sha(12), 0, "file", "100644"),
                DirEntry("00000003.jsonl", "", sha(1), 0, "file", "100644"),
                DirEntry("README.md", "", sha(2), 0, "file", "100644"),
                DirEntry("_manifest.json", "", sha(13), 0, "file", "100644"),
                DirEntry("sub", "", sha(3), 0, "dir", "040000"),
            ]
        )
        assert got == Link(sha(7), sha(6), sha(8), DEST, 3, expected)

    def test_a_source_inside_the_destination_is_deleted_from_its_tree(self) -> None:
        """A source that is a file of the destination, removed by the migration, is not
        in the folder's new tree."""
        folder = [entry("old.jsonl", 1)]
        files: dict[str, str | None] = {
            f"{DEST}/00000001.jsonl": sha(11),
            f"{DEST}/old.jsonl": None,
        }
        got = destination_link(
            commit=sha(7), base=sha(6), tree=sha(8), destination=DEST, folder=folder, files=files
        )
        only = DirEntry("00000001.jsonl", "", sha(11), 0, "file", "100644")
        assert (got.segment, got.segment_sha) == (1, tree_sha([only]))

    def test_a_path_deeper_inside_the_destination_leaves_its_tree_unknown(self) -> None:
        """A file written in a folder of the destination changes a tree the migration did
        not read: the link's folder sha matches no log's state, so its writers read it."""
        files: dict[str, str | None] = {
            f"{DEST}/00000001.jsonl": sha(11),
            f"{DEST}/sub/old.jsonl": None,
        }
        got = destination_link(
            commit=sha(7), base=sha(6), tree=sha(8), destination=DEST, folder=[], files=files
        )
        assert (got.segment, got.segment_sha) == (1, UNKNOWN_FOLDER)
