"""Reading a log back through LogReader: the legacy-file lookup and following new records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gitjsonl._github import GitHubRepo
from gitjsonl._reader import LogReader, find_file
from gitjsonl.testing import LocalHub

REPO = "owner/repo"
LOG = "data/log"


def jsonl(*ids: int) -> bytes:
    return b"".join(json.dumps({"id": i}).encode() + b"\n" for i in ids)


@pytest.fixture
def repo(localhub: LocalHub) -> Iterator[GitHubRepo]:
    github = GitHubRepo(REPO, token=localhub.token, api_url=localhub.url)
    yield github
    github.close()


def reader(repo: GitHubRepo) -> LogReader:
    return LogReader(repo, path=LOG, branch=lambda: "main", legacy_path=f"{LOG}.jsonl")


def ids(records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records]


class TestFindFile:
    def test_finds_a_file_by_its_path(self, localhub: LocalHub, repo: GitHubRepo) -> None:
        """The entry of an existing file carries its path, blob sha and size."""
        head = localhub.seed_commit(REPO, {f"{LOG}.jsonl": jsonl(1)})
        entry = find_file(repo, f"/{LOG}.jsonl", head)
        assert entry is not None
        assert (entry.path, entry.size) == (f"{LOG}.jsonl", len(jsonl(1)))
        assert repo.get_blob(entry.sha) == jsonl(1)

    def test_a_missing_file_or_folder_is_none(self, localhub: LocalHub, repo: GitHubRepo) -> None:
        """No file at the path, a folder of that name, or no parent folder: None."""
        head = localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1)})
        assert find_file(repo, f"{LOG}.jsonl", head) is None
        assert find_file(repo, LOG, head) is None
        assert find_file(repo, "nowhere/x.jsonl", head) is None


class TestFollow:
    def test_tail_then_each_later_record_once(self, localhub: LocalHub, repo: GitHubRepo) -> None:
        """The last n records come first, then records committed later, none twice."""
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 2)})
        followed = reader(repo).follow(1, interval=0.05, max_polls=3)
        assert next(followed) == {"id": 2}
        localhub.seed_commit(
            REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 2, 3), f"{LOG}/00000002.jsonl": jsonl(4)}
        )
        assert ids(followed) == [3, 4]

    def test_the_tail_includes_the_legacy_file_as_tail_does(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """When the segments hold fewer than n records, the unmigrated file comes first."""
        localhub.seed_commit(
            REPO, {f"{LOG}.jsonl": b"\n" + jsonl(0), f"{LOG}/00000001.jsonl": jsonl(1)}
        )
        log = reader(repo)
        assert ids(log.follow(5, interval=0.01, max_polls=0)) == ids(log.tail(5)) == [0, 1]

    def test_zero_records_then_only_new_ones(self, localhub: LocalHub, repo: GitHubRepo) -> None:
        """With n == 0 nothing old is yielded, yet records appended later are."""
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1)})
        followed = reader(repo).follow(0, interval=0.05, max_polls=5)
        timer = threading.Timer(
            0.1, lambda: localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 2)})
        )
        timer.start()
        try:
            assert ids(followed) == [2]
        finally:
            timer.join()

    def test_a_set_stop_event_ends_it(self, localhub: LocalHub, repo: GitHubRepo) -> None:
        """Setting stop ends following at the next wait, however many polls were allowed."""
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1)})
        stop = threading.Event()
        followed = reader(repo).follow(1, interval=30, stop=stop)
        assert next(followed) == {"id": 1}
        stop.set()
        assert list(followed) == []
