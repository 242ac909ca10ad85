"""``GitHubRepo.read_head``: the conditional re-read of a branch head (PyGithub's ``update()``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gitjsonl import NotFound
from gitjsonl._github import Credentials, GitHubRepo, Head
from gitjsonl.testing import LocalHub

REPO = "owner/repo"


@pytest.fixture
def repo(localhub: LocalHub) -> Iterator[GitHubRepo]:
    github = GitHubRepo(REPO, Credentials(localhub.url, localhub.token))
    yield github
    github.close()


def head_reads(hub: LocalHub) -> list[int]:
    return [r.status for r in hub.requests if r.path.endswith("/git/ref/heads/main")]


class TestReadHead:
    def test_a_first_read_gives_the_head_and_its_validators(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """Without a known head: one plain read, the sha, an ETag and a Last-Modified."""
        sha = localhub.seed_commit(REPO, {"a.txt": b"1"})
        head = repo.read_head("main")
        assert head.sha == sha
        assert head.etag
        assert head.last_modified
        assert head_reads(localhub) == [200]

    def test_an_unchanged_head_comes_back_as_it_was(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """Given the known head of an unmoved branch: GitHub says 304, the same Head returns."""
        localhub.seed_commit(REPO, {"a.txt": b"1"})
        known = repo.read_head("main")
        assert repo.read_head("main", known) is known
        assert head_reads(localhub) == [200, 304]

    def test_a_moved_head_is_read_with_new_validators(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """After a commit the conditional read answers 200: the new sha and a new ETag."""
        localhub.seed_commit(REPO, {"a.txt": b"1"})
        known = repo.read_head("main")
        sha = localhub.seed_commit(REPO, {"a.txt": b"2"})
        moved = repo.read_head("main", known)
        assert (moved.sha, moved.etag != known.etag) == (sha, True)

    def test_a_known_head_without_validators_is_read_plainly(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """A Head with no ETag or date (a server that sent none): an ordinary 200 read."""
        sha = localhub.seed_commit(REPO, {"a.txt": b"1"})
        assert repo.read_head("main", Head(sha)).sha == sha
        assert head_reads(localhub) == [200]

    def test_a_missing_branch_is_not_found(self, localhub: LocalHub, repo: GitHubRepo) -> None:
        """A branch that does not exist: NotFound, as get_head raises."""
        localhub.seed_commit(REPO, {"a.txt": b"1"})
        with pytest.raises(NotFound):
            repo.read_head("nope")
