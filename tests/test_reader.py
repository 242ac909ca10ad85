"""Reading a log back through LogReader: the legacy-file lookup and following new records."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

from gitjsonl import _http
from gitjsonl._answers import AnswerShapeError, graphql_blob_texts
from gitjsonl._github import GRAPHQL_BLOBS_PER_QUERY, Credentials, DirEntry, GitHubRepo
from gitjsonl._reader import (
    ASSUMED_RECORD_BYTES,
    RECENT_LINES,
    LogReader,
    _Position,
    find_file,
    graphql_groups,
    plan_reads,
)
from gitjsonl.testing import Fault, LocalHub

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


def seed_segments(hub: LocalHub, files: int, per: int) -> None:
    """A log of ``files`` segment files of ``per`` records each, ids 0 on, in one commit."""
    hub.seed_commit(
        REPO,
        {
            f"{LOG}/{number + 1:08d}.jsonl": jsonl(*range(number * per, (number + 1) * per))
            for number in range(files)
        },
    )


def sent(hub: LocalHub, since: int) -> list[tuple[str, str]]:
    """The requests since the ``since``-th: method and the path's kind (blob reads as one)."""
    kinds = []
    for record in hub.requests[since:]:
        path = "/git/blobs" if "/git/blobs/" in record.path else record.path
        kinds.append((record.method, path))
    return kinds


class TestPlanReads:
    def test_the_first_round_reads_the_newest_files_holding_n_records_of_the_assumed_size(
        self,
    ) -> None:
        """tail(500) first reads the newest files until they hold 500 records of 3 KB."""
        assert plan_reads([80_000] * 40, 500, ASSUMED_RECORD_BYTES) == 20

    def test_one_file_at_least(self) -> None:
        """Even for no record (follow's start), the newest file is read."""
        assert plan_reads([80_000] * 3, 0, ASSUMED_RECORD_BYTES) == 1

    def test_a_round_stays_within_one_querys_budget(self) -> None:
        """No more bytes than GRAPHQL_BYTES_PER_QUERY (large files included: memory), nor
        more text files than GRAPHQL_BLOBS_PER_QUERY, but one file whatever its size."""
        assert plan_reads([300_000] * 10, 10_000, 4096) == 6
        assert plan_reads([10] * 500, 10_000, math.inf) == GRAPHQL_BLOBS_PER_QUERY
        assert plan_reads([600_000] * 3 + [10] * 200, 10_000, math.inf) == 3 + 100
        assert plan_reads([5_000_000, 10], 10_000, 4096) == 1

    def test_groups_leave_large_files_to_rest_and_cut_at_the_budget(self) -> None:
        """Files of 512,000 bytes or more are in no query; the rest fill queries in order."""
        entries = [
            DirEntry(f"{i}", f"{i}", f"{i:040x}", size, "file")
            for i, size in enumerate([512_000] + [500_000] * 5 + [10])
        ]
        assert [[e.name for e in group] for group in graphql_groups(entries)] == [
            ["1", "2", "3", "4"],
            ["5", "6"],
        ]


class TestGraphqlAnswers:
    aliases: ClassVar[dict[str, str]] = {"f0": "a" * 40, "f1": "b" * 40}

    def test_whole_texts_are_kept_by_sha(self) -> None:
        """Entries with a whole text come back by their blob's sha; the others are left out."""
        answer = {
            "data": {
                "repository": {
                    "f0": {"text": "x\n", "isTruncated": False, "byteSize": 2},
                    "f1": {"text": "y", "isTruncated": True, "byteSize": 9},
                }
            }
        }
        assert graphql_blob_texts(answer, self.aliases, max_chars=10) == {"a" * 40: "x\n"}

    @pytest.mark.parametrize(
        "entry",
        [
            None,
            [],
            {"text": None, "isTruncated": False},  # binary
            {"text": 5, "isTruncated": False},
            {"text": "x"},  # isTruncated missing
            {"text": "x", "isTruncated": "false"},
            {"text": "x" * 11, "isTruncated": False},  # longer than any whole text
        ],
    )
    def test_an_entry_of_another_shape_is_left_to_rest(self, entry: Any) -> None:
        """A null, binary, mistyped or oversized entry is no text: the caller reads it by REST."""
        answer = {"data": {"repository": {"f0": entry}}}
        assert graphql_blob_texts(answer, self.aliases, max_chars=10) == {}

    @pytest.mark.parametrize(
        "answer",
        [
            None,
            [],
            {"data": None},
            {"data": {"repository": None}},
            {"data": {"repository": []}},
            {"data": {"repository": {"f0": None, "f9": {"text": "x", "isTruncated": False}}}},
        ],
    )
    def test_an_answer_not_to_the_query_is_refused(self, answer: Any) -> None:
        """An answer without data.repository, or with aliases not asked, is refused whole."""
        with pytest.raises(AnswerShapeError):
            graphql_blob_texts(answer, self.aliases, max_chars=10)


class TestGraphqlReads:
    def test_a_cold_tail_reads_its_files_in_one_query(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """tail(n) over ten small files: the listing and one GraphQL query, no blob read."""
        seed_segments(localhub, 10, 30)
        before = len(localhub.requests)
        assert ids(reader(repo).tail(250)) == list(range(50, 300))
        assert sent(localhub, before) == [
            ("GET", f"/repos/{REPO}/git/trees/main:{LOG}"),
            ("POST", "/graphql"),
        ]

    def test_a_second_query_when_the_first_held_too_few(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """Records larger than assumed: a second query reads what the first fell short of."""
        big = [{"id": i, "text": "x" * 8000} for i in range(120)]
        files = {
            f"{LOG}/{n + 1:08d}.jsonl": b"".join(
                json.dumps(r).encode() + b"\n" for r in big[n * 10 : (n + 1) * 10]
            )
            for n in range(12)
        }
        localhub.seed_commit(REPO, files)
        before = len(localhub.requests)
        assert ids(reader(repo).tail(100)) == list(range(20, 120))
        assert sent(localhub, before)[1:] == [("POST", "/graphql")] * 2

    def test_records_reads_a_querys_worth_at_a_time(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """records() gives every record in order, the files read in queries, not one by one."""
        seed_segments(localhub, 30, 10)
        before = len(localhub.requests)
        assert ids(reader(repo).records()) == list(range(300))
        assert sent(localhub, before).count(("POST", "/graphql")) == 1
        assert ("GET", "/git/blobs") not in sent(localhub, before)

    def test_stats_and_verify_read_the_files_in_queries(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """inspect_log (stats, verify) reads every file, in order, in one query for 30 files."""
        from gitjsonl._inspect import inspect_log, total_records

        seed_segments(localhub, 30, 10)
        before = len(localhub.requests)
        found = inspect_log(repo, path=LOG, branch="main")
        assert total_records(found) == 300
        assert [entry.name for entry, _ in found.segments][:2] == [
            "00000001.jsonl",
            "00000002.jsonl",
        ]
        assert ("GET", "/git/blobs") not in sent(localhub, before)
        assert sent(localhub, before).count(("POST", "/graphql")) == 1

    @pytest.mark.parametrize(
        "failure", ["off", "errors", "malformed", "dropped", "401", "too large"]
    )
    def test_a_failing_endpoint_is_left_for_rest_with_one_warning(
        self,
        localhub: LocalHub,
        repo: GitHubRepo,
        failure: str,
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """GraphQL off (404), an errors answer, a malformed one, a dropped connection, a
        401 or an answer past its cap: the same records through REST, one WARNING, and
        GraphQL not asked again."""
        if failure == "too large":
            monkeypatch.setattr(_http, "GRAPHQL_ANSWER_CAP", 200)
        elif failure == "off":
            localhub.graphql.enabled = False
        elif failure == "errors":
            localhub.graphql.max_aliases = 1
        elif failure == "malformed":
            localhub.add_fault(Fault(method="POST", path="/graphql", status=200, message="hi"))
        elif failure == "dropped":
            localhub.add_fault(Fault(method="POST", path="/graphql", action="drop"))
        else:
            localhub.add_fault(Fault(method="POST", path="/graphql", status=401))
        seed_segments(localhub, 5, 10)
        log = reader(repo)
        before = len(localhub.requests)
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            assert ids(log.tail(30)) == list(range(20, 50))
            assert ids(log.records()) == list(range(50))
        assert sent(localhub, before).count(("POST", "/graphql")) == 1
        warned = [r for r in caplog.records if "GraphQL" in r.getMessage()]
        assert len(warned) == 1, warned

    def test_a_truncated_text_is_read_through_rest(
        self, localhub: LocalHub, repo: GitHubRepo
    ) -> None:
        """A text GitHub cut short (isTruncated) is read whole through the blob API."""
        seed_segments(localhub, 4, 10)
        localhub.graphql.text_limit = 50  # every file is longer: each is cut
        before = len(localhub.requests)
        assert ids(reader(repo).tail(40)) == list(range(40))
        assert sent(localhub, before).count(("GET", "/git/blobs")) == 4

    def test_a_text_that_is_not_the_blob_is_read_through_rest(
        self, localhub: LocalHub, repo: GitHubRepo, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A text whose bytes do not hash to the blob's sha is never records: REST reads it."""
        from gitjsonl.testing import _graphql

        whole = _graphql.blob_fields

        def altered(data: bytes, oid: str, fields: tuple[str, ...], limit: int) -> dict[str, Any]:
            answer = whole(data, oid, fields, limit)
            if b'"id": 12}' in data:
                answer["text"] = answer["text"].replace('"id": 12}', '"id": 99}')
            return answer

        monkeypatch.setattr(_graphql, "blob_fields", altered)
        seed_segments(localhub, 4, 10)
        before = len(localhub.requests)
        assert ids(reader(repo).tail(40)) == list(range(40))
        assert sent(localhub, before).count(("GET", "/git/blobs")) == 1

    def test_without_a_token_graphql_is_never_asked(self, localhub: LocalHub) -> None:
        """GraphQL has no anonymous access: a reader without a token reads through REST."""
        localhub.set_visibility(REPO, "public")
        seed_segments(localhub, 3, 10)
        anonymous = GitHubRepo(REPO, Credentials(localhub.url, None))
        try:
            assert ids(reader(anonymous).tail(30)) == list(range(30))
        finally:
            anonymous.close()
        assert ("POST", "/graphql") not in sent(localhub, 0)
