"""Replays of the recorded conversations in ``cassettes/``: no server, no network, no waiting.

Each cassette pins the exact request sequence of a scenario (method, path,
query and body, each answer played once), so a change that adds, drops or
alters a request fails here. Re-record with ``python -m tests.record_cassettes``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed
from vcr.errors import CannotOverwriteExistingCassetteException

from gitjsonl import GitJsonlError
from gitjsonl._github import GitHubRepo
from tests import cassette_scenarios
from tests.cassette_scenarios import MISSING_REPO_NAME, SCENARIOS, Context
from tests.cassettes_support import (
    CASSETTE_DIR,
    PLACEHOLDER_BASE,
    cassette_path,
    deterministic_ids,
    use_cassette,
)
from tests.record_cassettes import INVALID_TOKEN, LOCAL_READ_TOKEN, LOCAL_WRITE_TOKEN

#: What a replay that departs from its cassette raises: vcrpy's refusal (raw, or
#: wrapped by the Log's flusher as an unexpected error), or the all-played check.
REPLAY_FAILURES = (CannotOverwriteExistingCassetteException, GitJsonlError, AssertionError)


def replay(name: str, path: Path | None = None) -> dict[str, Any]:
    """Run scenario ``name`` against its cassette (record mode "none"); every answer must play."""
    ctx = Context(
        name=name,
        api_url=PLACEHOLDER_BASE,
        token="replay-token",  # the Authorization header is not recorded
        repo="owner/repo",
        read_token="replay-read-token",
        bad_token="replay-bad-token",
        missing_repo=f"owner/{MISSING_REPO_NAME}",
    )
    with deterministic_ids(), use_cassette("none", path or cassette_path(name)) as cassette:
        outcome = SCENARIOS[name].run(ctx)
    unplayed = len(cassette) - cassette.play_count
    assert cassette.all_played, f"{unplayed} recorded request(s) were never made"
    return outcome


def numbers(records: list[dict[str, Any]]) -> list[int]:
    return [r["n"] for r in records]


class TestReplay:
    """One replay per scenario, asserting what a user of gitjsonl sees."""

    def test_bootstrap(self) -> None:
        """The first append into an empty repository commits both records."""
        out = replay("bootstrap")
        assert numbers(out["tail"]) == [1, 2]
        assert out["stats"]["committed"] == 2
        assert out["stats"]["batches"] == 1

    def test_appends(self) -> None:
        """A second writer appends two batches after what the first one left."""
        out = replay("appends")
        assert numbers(out["tail"]) == [1, 2, 3, 4, 5]
        assert out["stats"]["batches"] == 2
        assert out["stats"]["retries"] == 0

    def test_rotation(self) -> None:
        """Small segments: records spill into numbered segments, in order, none lost."""
        out = replay("rotation")
        assert numbers(out["tail"]) == list(range(1, 10))
        assert out["segments"] == [f"{n:08d}.jsonl" for n in range(1, 7)]
        assert out["stats"]["batches"] == 3

    def test_conflict(self) -> None:
        """A commit by another writer is kept, and our batch lands on top after one retry."""
        out = replay("conflict")
        assert numbers(out["tail"]) == [1, 2, 3, 4]
        assert out["other"] == ["notes.txt"]
        assert out["stats"]["conflicts_retried"] == 1
        assert out["stats"]["failures"] == 0

    def test_ambiguous(self) -> None:
        """A ref update answered with 502 that had landed is found; no record is duplicated."""
        out = replay("ambiguous")
        assert numbers(out["tail"]) == [1, 2, 3]
        assert out["stats"]["landed_after_error"] == 1
        assert out["stats"]["batches"] == 1

    def test_unauthorized(self) -> None:
        """A bad token: flush and close raise AuthenticationError, the record stays pending."""
        out = replay("unauthorized")
        assert (out["flush_error"], out["status"]) == ("AuthenticationError", 401)
        assert out["close_error"] == "AuthenticationError"
        assert out["stats"]["pending"] == 1

    def test_not_found(self) -> None:
        """A repository that does not exist: flush raises NotFound."""
        out = replay("not_found")
        assert (out["flush_error"], out["status"]) == ("NotFound", 404)
        assert out["stats"]["pending"] == 1

    def test_read_only(self) -> None:
        """A read-only token reads the tail but flush raises PermissionDenied."""
        out = replay("read_only")
        assert numbers(out["tail"]) == [1, 2]
        assert (out["flush_error"], out["status"]) == ("PermissionDenied", 403)
        assert out["stats"]["committed"] == 0

    def test_secondary_limit_retry_after(self) -> None:
        """A secondary limit with retry-after: wait exactly that long, then commit."""
        out = replay("secondary_limit_retry_after")
        assert numbers(out["tail"]) == [1, 2]
        assert out["stats"]["rate_limited"] == 1
        assert out["stats"]["failures"] == 0
        assert out["slept"] == [7.0]

    def test_secondary_limit_no_retry_after(self) -> None:
        """A secondary limit without retry-after: wait the default minute, then commit."""
        out = replay("secondary_limit_no_retry_after")
        assert numbers(out["tail"]) == [1, 2]
        assert out["stats"]["rate_limited"] == 1
        assert out["slept"] == [60.0]

    def test_tail_multi_segment(self) -> None:
        """tail(n) of a fresh Log reaches back across segments, oldest first."""
        out = replay("tail_multi_segment")
        assert numbers(out["tail_5"]) == [8, 9, 10, 11, 12]
        assert numbers(out["tail_all"]) == list(range(1, 13))

    def test_records_streaming(self) -> None:
        """records() yields every record of every segment in order."""
        out = replay("records_streaming")
        assert numbers([out["first"], *out["rest"]]) == list(range(1, 13))

    def test_migration(self) -> None:
        """The single-file log is migrated once, verified, then appended to."""
        out = replay("migration")
        assert out["ok"]
        assert out["committed"]
        assert (out["lines"], out["segments"]) == (5, 3)
        assert out["second_already_migrated"]
        assert numbers(out["tail"]) == [1, 2, 3, 4, 5, 6]
        assert [r["type"] for r in out["tail"]] == ["legacy"] * 5 + ["interaction"]

    def test_every_scenario_has_a_replay_test_and_a_cassette(self) -> None:
        """No scenario goes unreplayed and no cassette is left without a scenario."""
        tested = {name.removeprefix("test_") for name in dir(self) if name.startswith("test_")}
        assert set(SCENARIOS) <= tested
        assert {p.stem for p in CASSETTE_DIR.glob("*.yaml")} == set(SCENARIOS)


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(cassette_path(name).read_text(encoding="utf-8"))
    return data


APPENDS_INTERACTIONS = len(_load("appends")["interactions"])


class TestCassettesPinRequests:
    """A replay fails when the code makes one request fewer, one more, or a different one."""

    @pytest.mark.parametrize("index", range(APPENDS_INTERACTIONS))
    def test_deleting_any_interaction_fails(self, index: int, tmp_path: Path) -> None:
        """Without interaction ``index`` the request that needed it finds no answer."""
        data = _load("appends")
        del data["interactions"][index]
        path = tmp_path / "appends.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        with pytest.raises(REPLAY_FAILURES):
            replay("appends", path)

    def test_an_extra_request_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """One more GET per commit is a request the cassette never answered."""
        create_commit = GitHubRepo.create_commit

        def with_extra_read(self: GitHubRepo, *args: Any, **kwargs: Any) -> str:
            self.repository(fresh=True)  # GET /repos/{owner}/{repo}, never cached
            return create_commit(self, *args, **kwargs)

        monkeypatch.setattr(GitHubRepo, "create_commit", with_extra_read)
        with pytest.raises(REPLAY_FAILURES):
            replay("appends")

    def test_an_extra_record_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A different body (one record more per batch) matches no recorded request."""
        append_all = cassette_scenarios.append_all

        def one_more(log: Any, batch: list[dict[str, Any]]) -> None:
            append_all(log, [*batch, {"n": 0, "type": "extra"}])

        monkeypatch.setattr(cassette_scenarios, "append_all", one_more)
        with pytest.raises(REPLAY_FAILURES):
            replay("appends")

    def test_unmodified_cassette_replays(self, tmp_path: Path) -> None:
        """The yaml round trip used above does not by itself break a cassette."""
        path = tmp_path / "appends.yaml"
        path.write_text(yaml.safe_dump(_load("appends")), encoding="utf-8")
        assert numbers(replay("appends", path)["tail"]) == [1, 2, 3, 4, 5]


#: Anything that looks like a credential (any case), this machine, or a local path.
FORBIDDEN = [
    *(
        re.compile(pattern, re.IGNORECASE)
        for pattern in (
            r"ghp_",
            r"github_pat_",
            r"gho_",
            r"ghs_",
            r"ghu_",
            r"ghr_",
            r"bearer\s+\S",
            r"^\s*authorization:",
            r"\btoken\s+[A-Za-z0-9_\-]{8,}",
            r"127\.0\.0\.1",
            r"localhost",
        )
    ),
    # Case-sensitive: GitHub's own URLs hold "/users/".
    *(re.compile(p) for p in (r"/work/", r"/tmp/", r"/home/", r"/Users/", r"/root/")),
    *(re.compile(re.escape(t)) for t in (LOCAL_WRITE_TOKEN, LOCAL_READ_TOKEN, INVALID_TOKEN)),
]


def leaks(text: str) -> list[str]:
    return [
        f"line {number}: {pattern.pattern}"
        for number, line in enumerate(text.splitlines(), start=1)
        for pattern in FORBIDDEN
        if pattern.search(line)
    ]


class TestCassettesAreClean:
    """Cassettes hold no credential, no host or port of the recording machine, no local path."""

    @pytest.mark.parametrize("path", sorted(CASSETTE_DIR.iterdir()), ids=lambda p: p.name)
    def test_no_secrets_hosts_or_paths(self, path: Path) -> None:
        """Every file in cassettes/ passes the scan."""
        assert leaks(path.read_text(encoding="utf-8")) == []

    @pytest.mark.parametrize(
        "planted",
        [
            "string: ghp_" + "a" * 36,
            "      Authorization:\n      - token abcdefgh12345678",
            "uri: http://127.0.0.1:8123/repos/owner/repo",
            "body: /tmp/localhub-x/owner/repo.git",
        ],
    )
    def test_the_scan_finds_what_it_looks_for(self, planted: str) -> None:
        """A planted token, host or path is reported."""
        assert leaks(planted)

    def test_cassettes_are_small(self) -> None:
        """All cassettes together stay well under 2 MB."""
        total = sum(p.stat().st_size for p in CASSETTE_DIR.iterdir())
        assert total < 2 * 1024 * 1024
