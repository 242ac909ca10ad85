"""Reading a log back through LogReader: the legacy-file lookup and following new records."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gitjsonl._github import Credentials, DirEntry, GitHubRepo
from gitjsonl._reader import RECENT_LINES, LogReader, _Position, find_file
from gitjsonl.testing import LocalHub

REPO = "owner/repo"
LOG = "data/log"


def jsonl(*ids: int) -> bytes:
    return b"".join(json.dumps({"id": i}).encode() + b"\n" for i in ids)


@pytest.fixture
def repo(localhub: LocalHub) -> Iterator[GitHubRepo]:
    github = GitHubRepo(REPO, Credentials(localhub.url, localhub.token))
    yield github
    github.close()


def reader(repo: GitHubRepo) -> LogReader:
    return LogReader(repo, path=LOG, branch=lambda: "main", legacy_path=f"{LOG}.jsonl")


def ids(records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records]


def remaining(hub: LocalHub) -> int:
    """The token's primary budget left, as localhub says (``GET /rate_limit`` is free)."""
    answer = requests.get(
        f"{hub.url}/rate_limit", headers={"Authorization": f"token {hub.token}"}, timeout=10
    )
    return int(answer.headers["x-ratelimit-remaining"])


def records(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i} for i in ids]


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


class TestFollowCostsNothingWhileIdle:
    def test_idle_polls_spend_no_primary_budget(self, localhub: LocalHub, repo: GitHubRepo) -> None:
        """After the tail, 20 polls of an unchanged branch leave x-ratelimit-remaining as it was."""
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1)})
        followed = reader(repo).follow(1, interval=0.01, max_polls=20)
        assert next(followed) == {"id": 1}
        before = remaining(localhub)
        assert list(followed) == []
        assert remaining(localhub) == before
        polls = [r for r in localhub.requests if r.path.endswith("/git/ref/heads/main")]
        assert sum(r.status == 304 for r in polls) == 20

    def test_a_new_commit_is_still_seen_at_the_next_poll(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """Conditional polls still see a commit: it is yielded within a second of landing."""
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1)})
        followed = reader(repo).follow(1, interval=0.05, max_polls=200)
        assert next(followed) == {"id": 1}
        landed = time.monotonic()
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 2)})
        assert next(followed) == {"id": 2}
        assert time.monotonic() - landed < 1.0


class TestFollowAfterAForcePush:
    def test_a_branch_moved_back_warns_once_and_shows_what_is_appended_next(
        self, localhub: LocalHub, repo: GitHubRepo, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Force-moved back to an older commit: one WARNING, then records appended after it."""
        old = localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1)})
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 2, 3)})
        followed = reader(repo).follow(3, interval=0.05, max_polls=40)
        assert ids([next(followed) for _ in range(3)]) == [1, 2, 3]
        localhub.git(REPO, "update-ref", "refs/heads/main", old)  # someone force-pushed
        time.sleep(0.3)
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 20)})
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            assert next(followed) == {"id": 20}
        warnings = [r for r in caplog.records if "rewritten" in r.getMessage()]
        assert len(warnings) == 1

    def test_a_rewritten_segment_shows_the_records_from_where_it_differs(
        self, localhub: LocalHub, repo: GitHubRepo, caplog: pytest.LogCaptureFixture
    ) -> None:
        """History replaced by other records: those from the first that differs are shown."""
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1)})
        localhub.seed_commit(REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 2)})
        followed = reader(repo).follow(2, interval=0.05, max_polls=40)
        assert ids([next(followed), next(followed)]) == [1, 2]
        other = localhub.seed_commit(
            REPO, {f"{LOG}/00000001.jsonl": jsonl(1, 7, 8)}, branch="other"
        )
        localhub.git(REPO, "update-ref", "refs/heads/main", other)
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            assert ids([next(followed), next(followed)]) == [7, 8]
        assert sum("rewritten" in r.getMessage() for r in caplog.records) == 1


class TestPosition:
    """``_Position``: where follow continues, over files given as (offset, entry, bytes)."""

    @staticmethod
    def window(*files: bytes, start: int = 0) -> list[tuple[int, DirEntry, bytes]]:
        out, at = [], start
        for number, data in enumerate(files, 1):
            name = f"{number:08d}.jsonl"
            entry = DirEntry(name, f"{LOG}/{name}", "0" * 40, len(data), "file")
            out.append((at, entry, data))
            at += len(data)
        return out

    def test_records_appended_after_what_was_shown_continue_it(self) -> None:
        """A snapshot that still holds the last line shown where it was: no rewrite."""
        shown = self.window(jsonl(1, 2))
        position = _Position.at(len(jsonl(1, 2)), shown)
        later = self.window(jsonl(1, 2, 3), jsonl(4))
        assert position.continued_by(later)
        after = position.shown(later)
        assert after.done == len(jsonl(1, 2, 3, 4))

    def test_files_merged_under_it_are_not_a_rewrite(self) -> None:
        """A compaction (two files become one, same bytes) leaves follow where it was."""
        position = _Position.at(len(jsonl(1, 2)), self.window(jsonl(1), jsonl(2)))
        assert position.continued_by(self.window(jsonl(1, 2, 3)))

    def test_fewer_bytes_than_shown_is_a_rewrite_resumed_after_what_still_stands(self) -> None:
        """Moved back to record 1 of 3 shown: a rewrite, continued after record 1."""
        position = _Position.at(len(jsonl(1, 2, 3)), self.window(jsonl(1, 2, 3)))
        back = self.window(jsonl(1))
        assert not position.continued_by(back)
        assert position.rewound(back, total=len(jsonl(1))).done == len(jsonl(1))

    def test_a_changed_record_shows_from_there(self) -> None:
        """History that differs from record 2 on: follow continues after record 1."""
        position = _Position.at(len(jsonl(1, 2, 3)), self.window(jsonl(1, 2, 3)))
        other = self.window(jsonl(1, 5, 6, 7))
        assert not position.continued_by(other)
        assert position.rewound(other, total=len(jsonl(1, 5, 6, 7))).done == len(jsonl(1))

    def test_nothing_remembered_still_standing_resumes_at_the_new_end(self) -> None:
        """No remembered line is where it was: nothing of the new history is shown again."""
        position = _Position.at(len(jsonl(9)), self.window(jsonl(9)))
        other = self.window(jsonl(5, 6))
        assert position.rewound(other, total=len(jsonl(5, 6))).done == len(jsonl(5, 6))

    def test_only_the_last_lines_are_remembered(self) -> None:
        """Memory stays bounded however long follow runs: at most RECENT_LINES lines."""
        many = jsonl(*range(RECENT_LINES * 2))
        position = _Position.at(len(many), self.window(many))
        assert len(position.recent) == RECENT_LINES


class TestMissingRepository:
    @pytest.mark.parametrize("branch", [None, "main"])
    def test_a_log_on_a_missing_repository_names_it_and_the_api_url(
        self, localhub: LocalHub, branch: str | None
    ) -> None:
        """A tail, a read and a flush on a repository that does not exist say which one,
        at which API URL, and the likely causes, not a bare 404."""
        import gitjsonl

        from .helpers import make_log

        with make_log(localhub, repo="owner/nope", branch=branch) as log:
            for action in (lambda: log.tail(5), lambda: list(log.records())):
                with pytest.raises(gitjsonl.NotFound) as raised:
                    action()
                message = str(raised.value)
                assert "owner/nope" in message
                assert localhub.url in message
                assert "typo" in message
                assert "private" in message
            log.append({"n": 1})
            with pytest.raises(gitjsonl.GitJsonlError, match=r"repository owner/nope not found"):
                log.flush(timeout=10)
            with pytest.raises(gitjsonl.NotFound, match=r"repository owner/nope not found"):
                log.close(timeout=10)  # the record it could not commit, and why
