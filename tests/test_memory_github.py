"""MemoryGitHub: localhub's rules in memory, and the same answers as localhub."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import cast

import pytest

from gitjsonl._batch import Batch
from gitjsonl._commit import Committer
from gitjsonl._exceptions import (
    GitHubError,
    NotFastForward,
    NotFound,
    RateLimited,
    TransientError,
    ValidationFailed,
)
from gitjsonl._github import Credentials, GitHubRepo, git_blob_sha
from gitjsonl._gittree import tree_sha
from gitjsonl._retry import RetryPolicy
from gitjsonl._seam import GitHubSeam
from gitjsonl.testing import LocalHub, MemoryGitHub

from .helpers import REPO

LINE = b'{"id":1}\n'


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _committed(hub: MemoryGitHub, branch: str = "main") -> str:
    """A commit of one file on the branch's head, moved to by the branch; its sha."""
    head = hub.get_head(branch)
    tree = hub.post_tree(hub.get_commit(head).tree_sha, texts={"a.txt": LINE}, blobs={}, deletes=[])
    sha = hub.create_commit("one", tree.sha, [head])
    hub.update_ref(branch, sha)
    return sha


def _committer(seam: GitHubSeam, sleep: Callable[[float], None]) -> Committer:
    """Today's Committer on ``seam`` (typed for the HTTP seam until it takes GitHubSeam)."""
    return Committer(
        cast("GitHubRepo", seam),
        path="logs/chat",
        branch="main",
        segment_bytes=64_000,
        policy=RetryPolicy(),
        budget=None,
        sleep=sleep,
        writer_id="w",
        rng=random.Random(0),
    )


class TestObjects:
    def test_blobs_and_trees_are_named_as_git_names_them(self) -> None:
        """A blob's sha is git's, and a tree's the sha git computes from its entries."""
        hub = MemoryGitHub()
        assert hub.create_blob(LINE) == git_blob_sha(LINE)
        root = hub.get_commit(hub.get_head("main")).tree_sha
        made = hub.post_tree(root, texts={"logs/chat/00000001.jsonl": LINE}, blobs={}, deletes=[])
        assert made.sha == tree_sha(made.entries)
        folder = hub.read_folder(hub.get_head("main"), "logs/chat")
        assert folder.entries is None  # not committed yet: the branch still has no folder
        listed = hub.tree_entries(made.entries[0].sha, "logs")
        assert [e.name for e in listed] == ["chat"]

    def test_deleting_an_absent_path_is_refused(self) -> None:
        """GitHub refuses a tree deleting a path its base does not hold (422)."""
        hub = MemoryGitHub()
        root = hub.get_commit(hub.get_head("main")).tree_sha
        with pytest.raises(ValidationFailed):
            hub.post_tree(root, texts={}, blobs={}, deletes=["nope.txt"])

    def test_a_missing_blob_is_not_found(self) -> None:
        """Reading a blob nobody wrote is a 404."""
        with pytest.raises(NotFound):
            MemoryGitHub().get_blob("0" * 40)


class TestRefs:
    def test_an_update_that_is_not_a_fast_forward_is_refused(self) -> None:
        """The ref update is a compare-and-swap: a commit off the head is refused."""
        hub = MemoryGitHub()
        start = hub.get_head("main")
        _committed(hub)
        sibling = hub.create_commit("other", hub.get_commit(start).tree_sha, [start])
        with pytest.raises(NotFastForward):
            hub.update_ref("main", sibling)

    def test_a_broken_compare_and_swap_accepts_it(self) -> None:
        """``cas=False`` is the control: the same update is accepted."""
        hub = MemoryGitHub(cas=False)
        start = hub.get_head("main")
        _committed(hub)
        sibling = hub.create_commit("other", hub.get_commit(start).tree_sha, [start])
        hub.update_ref("main", sibling)
        assert hub.head("main") == sibling

    def test_reads_naming_the_branch_lag_and_reads_by_sha_do_not(self) -> None:
        """Within ``read_lag`` a read of the branch sees its previous head; by sha, the new."""
        clock = Clock()
        hub = MemoryGitHub(clock=clock, read_lag=2.0)
        start = hub.get_head("main")
        clock.now += 10
        sha = _committed(hub)
        assert hub.get_head("main") == start
        assert hub.read_folder(sha, "").entries is not None
        assert next(c.sha for c in hub.iter_commits(sha)) == sha
        clock.now += 2.5
        assert hub.get_head("main") == sha

    def test_an_existing_ref_cannot_be_created_again(self) -> None:
        """Creating a branch that exists is a 422, as on GitHub."""
        hub = MemoryGitHub()
        with pytest.raises(ValidationFailed):
            hub.create_ref("main", hub.get_head("main"))

    def test_an_operator_reset_moves_the_branch_back(self) -> None:
        """``force_ref`` is a reset: the branch points where the operator says."""
        hub = MemoryGitHub()
        start = hub.get_head("main")
        _committed(hub)
        hub.force_ref("main", start)
        assert hub.get_head("main") == start


class TestFaults:
    def test_a_lost_answer_lands_and_raises_an_ambiguous_error(self) -> None:
        """ "lost": the ref moved, and the caller is told it may have."""
        hub = MemoryGitHub()
        start = hub.get_head("main")
        tree = hub.post_tree(
            hub.get_commit(start).tree_sha, texts={"a": LINE}, blobs={}, deletes=[]
        )
        sha = hub.create_commit("m", tree.sha, [start])
        hub.fail_next("update_ref", "lost")
        with pytest.raises(TransientError) as raised:
            hub.update_ref("main", sha)
        assert raised.value.ambiguous
        assert hub.head("main") == sha

    def test_a_dropped_write_does_not_land(self) -> None:
        """ "dropped": nothing carried out, and still ambiguous to the caller."""
        hub = MemoryGitHub()
        start = hub.get_head("main")
        sha = hub.create_commit("m", hub.get_commit(start).tree_sha, [start])
        hub.fail_next("update_ref", "dropped")
        with pytest.raises(TransientError) as raised:
            hub.update_ref("main", sha)
        assert raised.value.ambiguous
        assert hub.head("main") == start

    @pytest.mark.parametrize(
        ("fault", "error", "status"),
        [("5xx", TransientError, 502), ("429", RateLimited, 429), ("secondary", RateLimited, 403)],
    )
    def test_faults_are_gitjsonls_own_exceptions(
        self, fault: str, error: type[GitHubError], status: int
    ) -> None:
        """A fault is raised as the HTTP seam translates it; a read is never ambiguous."""
        hub = MemoryGitHub()
        hub.fail_next("get_head", fault)
        with pytest.raises(error) as raised:
            hub.get_head("main")
        assert raised.value.status == status
        assert not getattr(raised.value, "ambiguous", False)

    def test_a_fault_chooser_sees_every_call(self) -> None:
        """``faults(op)`` is asked before every call, and names what it meets."""
        seen: list[str] = []

        def chooser(op: str) -> str | None:
            seen.append(op)
            return "5xx" if op == "create_blob" else None

        hub = MemoryGitHub().client(faults=chooser)
        hub.get_head("main")
        with pytest.raises(TransientError):
            hub.create_blob(LINE)
        assert seen == ["get_head", "create_blob"]
        assert hub.writes == 1


class TestCommitter:
    def test_a_committer_commits_a_batch_in_three_writes(self) -> None:
        """Today's Committer runs on the in-memory seam: one batch, three writes, readable."""
        hub = MemoryGitHub()
        committer = _committer(hub, lambda seconds: None)
        committer.commit(Batch("ab" * 16, (LINE,), 1))
        before = hub.writes
        sha = committer.commit(Batch("cd" * 16, (LINE,), 2))
        assert hub.writes - before == 3
        names = sorted(e.name for e in hub.read_folder(sha, "logs/chat").entries or ())
        texts = [hub.file_at(sha, f"logs/chat/{n}") for n in names if n.endswith(".jsonl")]
        assert b"".join(t or b"" for t in texts) == LINE * 2


def _table(repo: GitHubSeam, rename: Callable[[str], str]) -> list[object]:
    """The same operations on either seam: what each answered, or the error class it raised."""
    rows: list[object] = []

    def row(call: Callable[[], object]) -> object:
        try:
            value = call()
        except GitHubError as exc:
            rows.append(type(exc).__name__)
            return None
        rows.append(value)
        return value

    head = repo.get_head("main")
    root = repo.get_commit(head).tree_sha
    row(lambda: root)
    row(lambda: repo.create_blob(b"\xff\x00 binary"))
    one = cast(
        "object",
        row(
            lambda: repo.post_tree(
                root, texts={"logs/chat/00000001.jsonl": LINE}, blobs={}, deletes=[]
            )
        ),
    )
    tree = getattr(one, "sha", "")
    two = row(
        lambda: (
            repo.post_tree(
                tree,
                texts={"logs/chat/00000002.jsonl": LINE * 2},
                blobs={},
                deletes=["logs/chat/00000001.jsonl"],
            ).sha
        )
    )
    row(lambda: repo.post_tree(root, texts={}, blobs={}, deletes=["nope.txt"]))
    commit = str(row(lambda: repo.create_commit("one", tree, [head])))
    rows[-1] = rename(commit)
    row(lambda: repo.get_commit(commit).tree_sha)
    row(lambda: repo.update_ref("main", commit))
    sibling = str(repo.create_commit("two", str(two), [head]))
    row(lambda: repo.update_ref("main", sibling))
    row(lambda: repo.update_ref("main", "0" * 40))
    row(lambda: repo.create_ref("main", head))
    row(
        lambda: [
            (e.name, e.sha, e.size, e.type, e.mode)
            for e in repo.read_folder(commit, "logs/chat").entries or ()
        ]
    )
    row(lambda: repo.get_blob("1" * 40))
    return rows


class TestAgreesWithLocalhub:
    def test_the_same_operations_give_the_same_shas_and_refusals(self, localhub: LocalHub) -> None:
        """On one table of operations MemoryGitHub and localhub (over HTTP) answer alike."""
        localhub.seed_commit(REPO, {"README.md": b"x\n"})
        repo = GitHubRepo(REPO, Credentials(localhub.url, localhub.token))
        memory = MemoryGitHub(REPO)
        memory.put_file("README.md", "seed", b"x\n", branch="main")
        try:
            names: dict[str, str] = {}
            over_http = _table(repo, lambda sha: names.setdefault(sha, "commit"))
            in_memory = _table(memory, lambda sha: names.setdefault(sha, "commit"))
        finally:
            repo.close()
        assert in_memory == over_http
        assert "NotFastForward" in in_memory
        assert "ValidationFailed" in in_memory


class TestFoundBySimulation:
    """Defects ./dev sim found (seeds 1409, 4537 and 14887), pinned without the scheduler."""

    def test_a_landed_batch_is_not_sent_again_when_the_read_after_it_fails(self) -> None:
        """A lost answer, a race on top, then a 5xx reading the head: the batch is there once."""
        hub = MemoryGitHub()
        moved = False

        def sleep(seconds: float) -> None:
            nonlocal moved
            if not moved:  # between the lost answer and its retry: another writer commits
                moved = True
                hub.foreign_commit("main", "notes/other.txt", b"x\n", "someone else")
                hub.fail_next("read_folder", "5xx")

        committer = _committer(hub, sleep)
        committer.commit(Batch("ab" * 16, (b'{"s":1}\n',), 1))
        hub.fail_next("update_ref", "lost")
        sha = committer.commit(Batch("cd" * 16, (b'{"s":2}\n',), 2))
        names = sorted(e.name for e in hub.read_folder(sha, "logs/chat").entries or ())
        text = b"".join(hub.file_at(sha, f"logs/chat/{n}") or b"" for n in names)
        assert text.count(b'{"s":2}') == 1
