"""The layout end to end on localhub: new files and compaction, foreign entries, answers checked."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from github.Requester import Requester

import gitjsonl
from gitjsonl import GitHubError
from gitjsonl._cli import main
from gitjsonl.testing import LocalHub
from tests.helpers import PATH, REPO, committed_records, history_is_linear, make_log, segment_files
from tests.test_localhub_openapi import _GitHubRequest, _openapi, openapi_checked

__all__ = ["openapi_checked"]

SEGMENT = 1600  # files under 100 bytes are small
FULLWIDTH = "\uff10" * 7 + "\uff12"  # 00000002 in fullwidth digits


def api(hub: LocalHub, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.request(
        method,
        f"{hub.url}/repos/{REPO}/{path}",
        json=body,
        headers={"Authorization": f"token {hub.token}"},
        timeout=10,
    )
    assert answer.status_code < 300, answer.text
    result: dict[str, Any] = answer.json()
    return result


def commit_entries(hub: LocalHub, entries: list[dict[str, Any]]) -> None:
    """Commit raw tree entries (a symlink, say) on main through the API."""
    head = api(hub, "GET", "git/ref/heads/main", {})["object"]["sha"]
    base = api(hub, "GET", f"git/commits/{head}", {})["tree"]["sha"]
    tree = api(hub, "POST", "git/trees", {"base_tree": base, "tree": entries})["sha"]
    commit = api(hub, "POST", "git/commits", {"message": "x", "tree": tree, "parents": [head]})
    api(hub, "PATCH", "git/refs/heads/main", {"sha": commit["sha"]})


def every_commit_holds_each_record_once(hub: LocalHub) -> None:
    """At every commit, the folder's files sorted by name are a prefix of the log, exactly."""
    final = b"".join(segment_files(hub).values())
    for commit in hub.git(REPO, "rev-list", "main").split():
        if PATH not in hub.git(REPO, "ls-tree", "-r", "--name-only", commit):
            continue
        data = b"".join(segment_files(hub, ref=commit).values())
        assert final.startswith(data), commit


class TestCompaction:
    def test_small_batches_stay_few_files_and_every_commit_is_whole(
        self, localhub: LocalHub
    ) -> None:
        """Small batches add files; a run of them is merged with a batch in one commit, so
        at most MAX_RUN small files stand at the end and every commit holds each record once."""
        with make_log(localhub, segment_bytes=SEGMENT) as log:
            for batch in range(30):
                log.append({"b": batch})
                log.flush(timeout=30)
        files = segment_files(localhub)
        small = [name for name, data in files.items() if len(data) < SEGMENT // 16]
        assert len(small) <= 4
        assert [r["b"] for r in committed_records(localhub)] == list(range(30))
        assert all(len(data) <= SEGMENT for data in files.values())
        every_commit_holds_each_record_once(localhub)
        assert history_is_linear(localhub)

    def test_a_cold_log_continues_the_layout(self, localhub: LocalHub) -> None:
        """A new Log reads the small files at the end and merges them like the last one would."""
        for batch in range(9):
            with make_log(localhub, segment_bytes=SEGMENT) as log:
                log.append({"b": batch})
        assert [r["b"] for r in committed_records(localhub)] == list(range(9))
        assert len(segment_files(localhub)) <= 4
        every_commit_holds_each_record_once(localhub)

    def test_an_old_layouts_partly_full_segment_is_continued(self, localhub: LocalHub) -> None:
        """Today's layout (a last segment that grew in place) is read and appended to as it is."""
        old = b"".join(b'{"old":%d}\n' % i for i in range(50))
        localhub.seed_commit(REPO, {f"{PATH}/00000001.jsonl": old})
        with make_log(localhub) as log:
            log.append({"new": 1})
        assert segment_files(localhub) == {
            "00000001.jsonl": old,  # never rewritten to add to it
            "00000002.jsonl": b'{"new":1}\n',
        }

    def test_follow_sees_each_record_once_across_compactions(self, localhub: LocalHub) -> None:
        """tail -f keeps its place by bytes: files merged under it yield nothing twice."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        with make_log(localhub, segment_bytes=SEGMENT) as log:
            log.append({"b": -1})
            log.flush(timeout=30)
            follow = log._reader.follow(1, interval=0.02, max_polls=2000)
            assert next(follow) == {"b": -1}  # the generator's snapshot is taken here
            got = []
            for batch in range(12):
                log.append({"b": batch})
                log.flush(timeout=30)
                got.append(next(follow))
        assert [r["b"] for r in got] == list(range(12))


class TestForeignEntries:
    def test_names_the_layout_does_not_write_are_ignored_and_reported(
        self,
        localhub: LocalHub,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Fullwidth and 4,301-digit names are not read (one warning); a folder and a symlink
        named like segments are never read or replaced, and verify reports all four."""
        localhub.seed_commit(
            REPO,
            {
                f"{PATH}/00000001.jsonl": b'{"id":1}\n',
                f"{PATH}/{FULLWIDTH}.jsonl": b'{"id":"fullwidth"}\n',
                f"{PATH}/{'1' * 4301}.jsonl": b'{"id":"long"}\n',
                f"{PATH}/00000002.jsonl/notes.txt": b"mine\n",
            },
        )
        commit_entries(
            localhub,
            [
                {
                    "path": f"{PATH}/00000003.jsonl",
                    "mode": "120000",
                    "type": "blob",
                    "content": "/etc/passwd",
                }
            ],
        )
        with caplog.at_level(logging.WARNING, logger="gitjsonl"), make_log(localhub) as log:
            log.append({"id": 2})
            log.flush(timeout=30)
            assert [r["id"] for r in log.tail(10)] == [1, 2]
            log.tail(10)
        assert localhub.read_file(REPO, f"{PATH}/00000002.jsonl/notes.txt") == b"mine\n"
        assert localhub.read_file(REPO, f"{PATH}/00000004.jsonl") == b'{"id":2}\n'
        ignored = [r for r in caplog.records if "ignored" in r.getMessage()]
        assert len(ignored) == 2  # once each, not once per read
        capsys.readouterr()
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        assert main(["--repo", REPO, "--api-url", localhub.url, "verify"]) == 1
        report = capsys.readouterr()
        text = report.out + report.err
        assert "not a segment name gitjsonl writes" in text
        assert "a dir (mode 040000), not a plain file" in text
        assert "a symlink (mode 120000), not a plain file" in text


class TestAnswersChecked:
    @staticmethod
    def lie(
        monkeypatch: pytest.MonkeyPatch,
        verb: str,
        suffix: str,
        mutate: Callable[[dict[str, Any]], None],
        times: int = 1,
    ) -> list[int]:
        """Make the next ``times`` answers to ``verb ...suffix`` differ (a server that lies)."""
        told = [0]
        original = Requester.requestJsonAndCheck
        original_blob = Requester.requestMemoryBlobAndCheck

        def alter(data: Any) -> Any:
            if told[0] < times and isinstance(data, dict):
                told[0] += 1
                mutate(data)
            return data

        def json_and_check(self: Requester, method: str, url: str, *a: Any, **k: Any) -> Any:
            headers, data = original(self, method, url, *a, **k)
            if method == verb and suffix in url:
                data = alter(data)
            return headers, data

        def blob_and_check(self: Requester, method: str, url: str, *a: Any, **k: Any) -> Any:
            headers, data = original_blob(self, method, url, *a, **k)
            if method == verb and suffix in url:
                data = alter(data)
            return headers, data

        monkeypatch.setattr(Requester, "requestJsonAndCheck", json_and_check)
        monkeypatch.setattr(Requester, "requestMemoryBlobAndCheck", blob_and_check)
        return told

    def test_a_tree_answer_other_than_sent_commits_nothing(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A tree answer naming another sha is a GitHubError before any commit; the records
        stay pending and land once when the server tells the truth."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            log.flush(timeout=30)
            before = localhub.git(REPO, "rev-parse", "main").strip()

            def other_sha(data: dict[str, Any]) -> None:
                data["sha"] = "1" * 40

            told = self.lie(monkeypatch, "POST", "/git/trees", other_sha)
            log.append({"id": 2})
            with pytest.raises(GitHubError, match="not what was sent"):
                log.flush(timeout=30)
            assert told == [1]
            assert localhub.git(REPO, "rev-parse", "main").strip() == before
            log.flush(timeout=30)
        assert committed_records(localhub) == [{"id": 1}, {"id": 2}]

    def test_a_commit_answer_naming_the_parent_is_refused(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A commit answer whose tree or parents are not ours is never counted as committed."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            log.flush(timeout=30)

            def no_parents(data: dict[str, Any]) -> None:
                data["parents"] = []

            self.lie(monkeypatch, "POST", "/git/commits", no_parents)
            log.append({"id": 2})
            with pytest.raises(GitHubError, match="not the commit asked for"):
                log.flush(timeout=30)
            log.flush(timeout=30)
        assert committed_records(localhub) == [{"id": 1}, {"id": 2}]

    def test_a_ref_answer_naming_another_sha_is_settled_exactly_once(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A 200 to the ref update naming another commit is not taken as success: it is
        settled like a lost answer, and the batch is on the branch once."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            log.flush(timeout=30)

            def other_object(data: dict[str, Any]) -> None:
                data["object"] = {"sha": "2" * 40}

            self.lie(monkeypatch, "PATCH", "/git/refs/", other_object)
            log.append({"id": 2})
            log.flush(timeout=30)
            assert log.stats().landed_after_error == 1
        assert committed_records(localhub) == [{"id": 1}, {"id": 2}]

    def test_a_blob_answer_missing_a_line_is_never_built_on(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A small file read back without its first line is an error, not the next base."""
        localhub.seed_commit(REPO, {f"{PATH}/00000001.jsonl": b'{"id":1}\n{"id":2}\n'})

        def first_line_gone(data: dict[str, Any]) -> None:
            # A consistent lie (the size agrees), so only the sha can tell.
            data["content"] = "eyJpZCI6Mn0K"  # base64 of {"id":2}\n
            data["size"] = 9

        self.lie(monkeypatch, "GET", "/git/blobs/", first_line_gone, times=100)
        with make_log(localhub, segment_bytes=SEGMENT) as log:
            with pytest.raises(GitHubError, match="not that blob"):
                log.tail(5)
            for i in range(3, 6):
                log.append({"id": i})
                with pytest.raises(GitHubError, match="not that blob"):
                    log.flush(timeout=30)
            monkeypatch.undo()
            log.flush(timeout=30)
        assert [r["id"] for r in committed_records(localhub)] == [1, 2, 3, 4, 5]


class TestCheckout:
    def test_read_checkout_matches_the_api_reader(self, localhub: LocalHub, tmp_path: Path) -> None:
        """A clone's folder reads as the log: legacy file first, then the segments in order."""
        localhub.seed_commit(REPO, {f"{PATH}.jsonl": b'{"id":0}\n'})
        with make_log(localhub, segment_bytes=SEGMENT) as log:
            for i in range(1, 8):
                log.append({"id": i})
                log.flush(timeout=30)
            expected = list(log.records())
        clone = tmp_path / "clone"
        localhub.git(REPO, "worktree", "add", "--detach", str(clone), "main")
        assert list(gitjsonl.read_checkout(clone / PATH)) == expected
        assert [r["id"] for r in expected] == list(range(8))

    def test_cat_checkout_needs_no_token(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """gitjsonl cat --checkout DIR prints the records with no repository, token or request."""
        folder = tmp_path / "log"
        folder.mkdir()
        (folder / "00000001.jsonl").write_bytes(b'{"a":1}\n')
        (folder / "00000002.jsonl").write_bytes(b'{"a":2}\nnot json\n')
        (folder / "00000003.jsonl").symlink_to(folder / "00000001.jsonl")
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
        assert main(["cat", "--checkout", str(folder)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [json.loads(line) for line in out] == [{"a": 1}, {"a": 2}]


class TestTreeListingChecked:
    def test_a_listing_without_its_entries_is_an_error_not_an_empty_folder(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A tree answer missing its "tree" key never makes the writer start segment 1 again."""
        localhub.seed_commit(REPO, {f"{PATH}/00000001.jsonl": b'{"id":1}\n'})

        def no_entries(data: dict[str, Any]) -> None:
            data.pop("tree", None)

        TestAnswersChecked.lie(monkeypatch, "GET", "/git/trees/", no_entries, times=1000)
        with make_log(localhub) as log:
            log.append({"id": 2})
            # Refused where the answer enters (_answers) or where it is read (_github).
            with pytest.raises(GitHubError, match=r"entries missing|tree = None"):
                log.flush(timeout=30)
            monkeypatch.undo()
            log.flush(timeout=30)
        assert committed_records(localhub) == [{"id": 1}, {"id": 2}]


class TestTreeCheckFallback:
    @staticmethod
    def forget_levels(log: gitjsonl.Log) -> None:
        """As after another process's commit to another log: the trees above are unknown."""
        committer = log._committer
        head = committer.head
        assert head is not None
        committer.protocol.head = dataclasses.replace(head, levels=(None,) * len(head.levels))

    def test_unknown_levels_cost_one_read_of_a_tree_by_sha(self, localhub: LocalHub) -> None:
        """Without the trees above the folder, the answer's listing is hashed and followed
        down: one GET of the `data` tree by sha, then batches are local again."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            log.flush(timeout=30)
            self.forget_levels(log)
            for i in (2, 3):
                start = len(localhub.requests)
                log.append({"id": i})
                log.flush(timeout=30)
                gets = [r.path for r in localhub.requests[start:] if r.method == "GET"]
                assert len(gets) == (1 if i == 2 else 0), gets
        assert committed_records(localhub) == [{"id": 1}, {"id": 2}, {"id": 3}]

    def test_a_listing_that_does_not_hash_to_its_sha_is_refused(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On the fallback path, a tree answer whose entries are not its sha is a GitHubError."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            log.flush(timeout=30)
            self.forget_levels(log)

            def other_entries(data: dict[str, Any]) -> None:
                planted = {
                    "path": "planted",
                    "mode": "100644",
                    "type": "blob",
                    "sha": "0" * 40,
                    "size": 0,
                }
                data["tree"] = [*data["tree"], planted]

            TestAnswersChecked.lie(monkeypatch, "POST", "/git/trees", other_entries)
            log.append({"id": 2})
            with pytest.raises(GitHubError, match="not what was sent"):
                log.flush(timeout=30)
            log.flush(timeout=30)
        assert committed_records(localhub) == [{"id": 1}, {"id": 2}]


class TestShapes:
    def test_requests_and_answers_match_githubs_openapi_description(
        self, localhub: LocalHub, request: pytest.FixtureRequest
    ) -> None:
        """Trees with content entries, sha: null deletions and a base64 blob, and every answer,
        validate against GitHub's OpenAPI description (tests/openapi/); no 422 is ever drawn."""
        seen: list[Any] = request.getfixturevalue("openapi_checked")
        localhub.seed_commit(REPO, {f"{PATH}/00000001.jsonl": b'{"id":0}\n\xff\n'})
        with make_log(localhub, segment_bytes=SEGMENT) as log:
            for batch in range(8):
                log.append({"b": batch, "text": 'a "quoted" word'})
                log.flush(timeout=30)
        bodies = [r for r, _ in seen if r.method == "POST" and "/git/trees" in r.url]
        for sent in bodies:  # our hand-built bodies, as the description says a request is
            _openapi().validate_request(_GitHubRequest(sent, "/repos/{owner}/{repo}/git/trees"))
        assert any(b'"sha":null' in (r.body or b"") for r in bodies)
        assert any(b'"content":' in (r.body or b"") for r in bodies)
        assert any("/git/blobs" in r.url for r, _ in seen)
        assert not [r for r in localhub.requests if r.status == 422]


class TestColdTail:
    @staticmethod
    def record(i: int) -> dict[str, Any]:
        return {"type": "interaction", "session_id": f"s{i % 7}", "n": i, "text": "x" * 420}

    def test_a_cold_tail_after_a_trickle_costs_at_most_eight_requests(
        self, localhub: LocalHub
    ) -> None:
        """After each of 40 batches of 30 records of ~500 bytes (15 KB a batch, 1 MiB
        segments), a fresh Log's tail(500) costs at most 8 requests and is the true tail."""
        localhub.read_lag = 0  # what is counted here is requests, not the wait for reads
        worst = 0
        with make_log(localhub) as log:
            for batch in range(40):
                for i in range(batch * 30, (batch + 1) * 30):
                    log.append(self.record(i))
                log.flush(timeout=30)
                before = len(localhub.requests)
                with make_log(localhub) as cold:
                    tail = cold.tail(500)
                    spent = len(localhub.requests) - before
                worst = max(worst, spent)
                want = list(range(max(0, (batch + 1) * 30 - 500), (batch + 1) * 30))
                assert [r["n"] for r in tail] == want
        assert worst <= 8, worst

    @pytest.mark.parametrize("writers", [1, 3])
    def test_an_app_trickle_of_1_to_2_kb_records_with_bursts(
        self, localhub: LocalHub, writers: int
    ) -> None:
        """The records apps write (1-2 KB, a few a batch, a burst of 50 now and then, 1 MiB
        segments), by one Log or three writing in turn: a cold tail(500) is the true tail
        for at most 3 requests (the listing, the files in one GraphQL query, the legacy
        file's lookup while the log is short), where reading the files one by one cost up
        to 18; no small file is left behind a large one (a burst used to leave the small
        run there, never merged)."""
        import random
        from contextlib import ExitStack

        from gitjsonl._segments import small_bytes

        localhub.read_lag = 0
        rng = random.Random(26)
        sent, worst, posts = 0, 0, set()
        with ExitStack() as stack:
            logs = [
                stack.enter_context(make_log(localhub, segment_bytes=1024 * 1024))
                for _ in range(writers)
            ]
            for batch in range(1, 121):
                log = logs[batch % writers]
                count = 50 if batch % 40 == 0 else rng.randint(2, 6)
                for _ in range(count):
                    size = rng.randint(1024, 2048) - 40
                    log.append({"n": sent, "text": "é" * (size // 2)})  # 2 bytes a char
                    sent += 1
                log.flush(timeout=30)
                if batch % 10:
                    continue
                before = len(localhub.requests)
                with make_log(localhub) as cold:
                    tail = cold.tail(500)
                spent = localhub.requests[before:]
                worst = max(worst, len(spent))
                posts.update(r.path for r in spent if r.method == "POST")
                assert [r["n"] for r in tail] == list(range(max(0, sent - 500), sent))
        sizes = [len(data) for data in segment_files(localhub).values()]
        large = [i for i, size in enumerate(sizes) if size >= small_bytes(1024 * 1024)]
        assert [s for s in sizes[: large[-1]] if s < small_bytes(1024 * 1024)] == [], sizes
        assert len(sizes) > 10  # the tail spans many files
        assert posts == {"/graphql"}
        assert worst <= 3, worst

    def test_a_server_refusing_the_tree_ish_path_form_is_read_level_by_level(
        self, localhub: LocalHub
    ) -> None:
        """Where git/trees/<ref>:<path> answers 404 or 422, the folder is listed level by
        level instead: the same records, a few requests more."""
        from gitjsonl.testing import Fault

        localhub.read_lag = 0
        with make_log(localhub) as log:
            for i in range(5):
                log.append({"n": i})
            log.flush(timeout=30)
        localhub.add_fault(Fault(method="GET", path=r"/git/trees/[^/?]+:", status=404, times=None))
        with make_log(localhub) as cold:
            assert [r["n"] for r in cold.tail(3)] == [2, 3, 4]
            assert [r["n"] for r in cold.records()] == [0, 1, 2, 3, 4]
        refused = [r for r in localhub.requests if ":" in r.path and r.status == 404]
        assert refused, "the tree-ish form was tried first"
