"""``migrate --recover-history`` at scale: from a clone, paced against the rate limit, resumable."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import MigrationError
from gitjsonl._github import Credentials, GitHubRepo, RateBudget
from gitjsonl._migrate import migrate
from gitjsonl._migrate.history import FileVersion, HistoryWalk, recover_history
from gitjsonl._migrate.sources import PrimaryPacer, wait_for_reset
from gitjsonl.testing import LocalHub

REPO = "owner/repo"
SRC = "data/interactions.jsonl"
DEST = "data/interactions"


def jsonl(*ids: int) -> bytes:
    return b"".join(json.dumps({"id": i}).encode() + b"\n" for i in ids)


#: A clobbered history: appends, an overwrite, a deletion and re-creation, a revert.
CONTENTS: list[bytes | None] = [
    jsonl(1),
    jsonl(1, 2),
    b"\n" + jsonl(3),
    jsonl(3, 4),
    None,
    jsonl(5),
    jsonl(5, 6),
    jsonl(3, 4),
    b"\n" + jsonl(7),
    jsonl(7, 8),
]


def seed(hub: LocalHub) -> list[str]:
    return [hub.seed_commit(REPO, {SRC: content}) for content in CONTENTS]


def github(hub: LocalHub) -> GitHubRepo:
    return GitHubRepo(REPO, Credentials(hub.url, hub.token))


def versions() -> list[FileVersion]:
    return [FileVersion(f"c{i}", "2024-01-01", c) for i, c in enumerate(CONTENTS)]


def reads(hub: LocalHub, start: int, *, listings_only: bool = False) -> int:
    """Reads since ``start``: commit listings, and (unless ``listings_only``) trees and blobs."""
    kinds = () if listings_only else ("/git/trees/", "/git/blobs/")
    return sum(
        1
        for r in hub.requests[start:]
        if r.method == "GET"
        and (r.path.endswith(f"{REPO}/commits") or any(k in r.path for k in kinds))
    )


class TestHistoryWalk:
    @pytest.mark.parametrize("stop", range(len(CONTENTS) + 1))
    def test_a_walk_saved_and_resumed_anywhere_finds_what_one_walk_finds(self, stop: int) -> None:
        """Stopped after any version, saved as JSON and resumed: recover_history's answer."""
        walk = HistoryWalk()
        for version in versions()[:stop]:
            walk.feed(version)
        resumed = HistoryWalk.from_state(json.loads(json.dumps(walk.state())))
        assert resumed.versions == stop
        for version in versions()[stop:]:
            resumed.feed(version)
        assert resumed.finish() == recover_history(versions())

    @pytest.mark.parametrize(
        ("contents", "lines", "overwrites"),
        [
            ([b'{"a":1}', b'{"a":1}\n{"b":2}\n'], [b'{"a":1}\n', b'{"b":2}\n'], 0),
            ([b'{"a":1}\n', b'{"a":1}\n\n{"b":2}\n'], [b'{"a":1}\n', b'{"b":2}\n'], 0),
            ([b'{"a":1}\n{"b"', b'{"a":1}\n{"b":2}\n'], [b'{"a":1}\n', b'{"b"\n', b'{"b":2}\n'], 1),
            ([b"", b'{"a":1}\n', b'{"a":1}\n'], [b'{"a":1}\n'], 0),
        ],
        ids=["torn-then-completed", "blank-line-appended", "torn-then-different", "from-empty"],
    )  # fmt: skip
    def test_appends_read_only_their_new_bytes_and_agree_with_a_full_read(
        self, contents: list[bytes], lines: list[bytes], overwrites: int
    ) -> None:
        """The append shortcut gives what reading every version in full gives, torn lines too."""
        fed = [FileVersion(f"c{i}", "d", c) for i, c in enumerate(contents)]
        walk = HistoryWalk()
        for version in fed:
            walk.feed(version)
        slow = HistoryWalk()
        for version in fed:  # a resumed walk has no previous bytes: it reads in full
            slow = HistoryWalk.from_state(slow.state())
            slow.feed(version)
        assert walk.finish() == slow.finish()
        assert walk.finish().lines == lines
        assert len(walk.finish().overwrites) == overwrites

    def test_bytes_that_are_not_utf8_survive_a_save(self) -> None:
        """A line that is not UTF-8 comes back byte for byte after a save."""
        walk = HistoryWalk()
        walk.feed(FileVersion("c0", "d", b'{"a":"\xff"}\n'))
        again = HistoryWalk.from_state(json.loads(json.dumps(walk.state())))
        assert again.finish().lines == [b'{"a":"\xff"}\n']

    def test_the_last_blob_survives_a_save_and_a_walk_saved_without_it_is_refused(self) -> None:
        """The blob the walk ended on is saved (it is checked against GitHub's); older saves
        lack it and start afresh."""
        walk = HistoryWalk()
        walk.feed(FileVersion("c0", "d", b"{}\n", "a" * 40))
        state = json.loads(json.dumps(walk.state()))
        assert HistoryWalk.from_state(state).last_blob == "a" * 40
        walk.feed(FileVersion("c1", "d", None))
        assert HistoryWalk.from_state(walk.state()).last_blob is None
        del state["last_blob"]
        with pytest.raises(ValueError, match="walk"):
            HistoryWalk.from_state(state)
        with pytest.raises(ValueError, match="sha"):
            HistoryWalk.from_state({**walk.state(), "last_blob": "../x"})

    @pytest.mark.parametrize(
        "state",
        [
            {},
            {"lines": ["a"], "parents": [5], "previous": None, "deleted_at": None,
             "overwrites": [], "last_lost_by": [], "versions": 1},
            {"lines": ["a"], "parents": [-1], "previous": 9, "deleted_at": None,
             "overwrites": [], "last_lost_by": [], "versions": 1},
            {"lines": ["a"], "parents": [-1], "previous": 0, "deleted_at": None,
             "overwrites": [], "last_lost_by": [[0, 3]], "versions": 1},
        ],
        ids=["empty", "bad-parent", "bad-previous", "bad-loss"],
    )  # fmt: skip
    def test_a_state_that_is_not_a_walk_is_refused(self, state: dict[str, Any]) -> None:
        """A progress file that was not written by a walk is a ValueError, never a wrong answer."""
        with pytest.raises(ValueError, match=r"walk|trie|range"):
            HistoryWalk.from_state(state)


class TestFromClone:
    def test_a_clone_gives_the_same_recovery_without_history_requests(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """--from-clone recovers exactly what the API walk does, with no request for history."""
        api_hub: LocalHub = localhub_factory(initial_commit=True)
        clone_hub: LocalHub = localhub_factory(initial_commit=True)
        plain_hub: LocalHub = localhub_factory(initial_commit=True)
        for hub in (api_hub, clone_hub, plain_hub):
            seed(hub)
        by_api = migrate(github(api_hub), source=SRC, destination=DEST, recover=True, dry_run=True)
        migrate(github(plain_hub), source=SRC, destination=DEST)  # no history read at all
        plain = reads(plain_hub, 0)
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(clone_hub.git_dir(REPO)), str(clone)], check=True)
        start = len(clone_hub.requests)
        by_clone = migrate(
            github(clone_hub), source=SRC, destination=DEST, recover=True, from_clone=clone
        )
        assert reads(clone_hub, start, listings_only=True) == 0
        assert reads(clone_hub, start) <= plain  # not one read more than a plain migration
        assert by_api.recovery is not None
        assert by_clone.recovery is not None
        assert by_clone.recovery.lines == by_api.recovery.lines
        assert [o.records_recovered for o in by_clone.recovery.overwrites] == [
            o.records_recovered for o in by_api.recovery.overwrites
        ]
        assert by_clone.ok

    def test_a_clone_behind_the_branch_is_refused_with_how_to_fetch(
        self, localhub: LocalHub, tmp_path: Path
    ) -> None:
        """A clone that lacks the branch's head on GitHub is a MigrationError naming git fetch."""
        localhub.seed_commit(REPO, {SRC: jsonl(1)})
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(localhub.git_dir(REPO)), str(clone)], check=True)
        localhub.seed_commit(REPO, {SRC: jsonl(1, 2)})
        with pytest.raises(MigrationError, match="fetch"):
            migrate(github(localhub), source=SRC, destination=DEST, recover=True, from_clone=clone)

    def test_a_folder_that_is_not_a_clone_is_refused(
        self, localhub: LocalHub, tmp_path: Path
    ) -> None:
        """--from-clone on a plain folder is a MigrationError."""
        localhub.seed_commit(REPO, {SRC: jsonl(1)})
        with pytest.raises(MigrationError, match="not a git clone"):
            migrate(
                github(localhub), source=SRC, destination=DEST, recover=True, from_clone=tmp_path
            )


class TestPacing:
    def test_below_the_reserve_the_walk_waits_for_the_reset(self) -> None:
        """Below the reserve the pacer saves the walk, then sleeps until the reset."""
        slept: list[float] = []
        saved: list[bool] = []
        said: list[str] = []
        budget = RateBudget(remaining=10, limit=5000, server_time=1000.0, reset=1600.0)
        pacer = PrimaryPacer(lambda: budget, sleep=slept.append, clock=lambda: 0.0, every=2)
        for _ in range(4):
            pacer.tick(said.append, lambda: saved.append(True))
        assert slept == [601.0, 601.0]
        assert saved == [True, True]
        assert "rate limit: 10 request(s) left" in said[0]

    def test_above_the_reserve_it_goes_on(self) -> None:
        """With the budget well above the reserve, nothing waits."""
        slept: list[float] = []
        budget = RateBudget(remaining=4000, limit=5000, server_time=None, reset=9e9)
        pacer = PrimaryPacer(lambda: budget, sleep=slept.append, every=1)
        for _ in range(5):
            pacer.tick(lambda _m: None, lambda: None)
        assert slept == []

    @pytest.mark.parametrize(
        ("budget", "wait"),
        [
            (RateBudget(0, 5000, 100.0, 400.0), 301.0),
            (RateBudget(0, 5000, 100.0, 50.0), 1.0),
            (RateBudget(0, 5000, 100.0, 1e12), 3700.0),
            (RateBudget(0, 5000, None, None), 60.0),
        ],
        ids=["ahead", "past", "absurd", "unknown"],
    )
    def test_the_wait_is_bounded(self, budget: RateBudget, wait: float) -> None:
        """The wait runs on the server's clock, at least a second, at most an hour and a bit."""
        assert wait_for_reset(budget, now=0.0) == wait


class Stop(Exception):
    pass


class TestResume:
    def test_a_walk_stopped_half_way_goes_on_where_it_stopped(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """An API walk stopped at commit 6 resumes there: fewer requests, the same records."""
        localhub: LocalHub = localhub_factory(initial_commit=True)
        twin: LocalHub = localhub_factory(initial_commit=True)
        seed(localhub)
        seed(twin)
        migrate(github(twin), source=SRC, destination=DEST, recover=True)
        full_walk = reads(twin, 0)

        def stop_at_six(message: str) -> None:
            if message.startswith("reading history 6/"):
                raise Stop

        with pytest.raises(Stop):
            migrate(
                github(localhub), source=SRC, destination=DEST, recover=True,
                progress=stop_at_six, progress_dir=tmp_path,
            )  # fmt: skip
        (saved,) = tmp_path.glob("migrate-*.json")
        assert json.loads(saved.read_text())["walk"]["versions"] == 5
        said: list[str] = []
        start = len(localhub.requests)
        result = migrate(
            github(localhub), source=SRC, destination=DEST, recover=True,
            progress=said.append, progress_dir=tmp_path,
        )  # fmt: skip
        assert any(m.startswith("resuming the history walk at commit 6/") for m in said)
        assert not any(m.startswith("reading history 1/") for m in said)
        assert result.recovery == recover_history(
            FileVersion(v.commit, v.date, v.content) for v in _api_versions(localhub)
        )
        assert reads(localhub, start) <= full_walk - 5 * 2  # five commits not read again
        assert not list(tmp_path.glob("migrate-*.json")), "the progress file outlived the migration"
        back = localhub.read_file(REPO, f"{DEST}/00000001.jsonl") or b""
        assert [json.loads(x)["id"] for x in back.splitlines()] == [1, 2, 3, 4, 5, 6, 7, 8]


def _api_versions(hub: LocalHub) -> list[FileVersion]:
    """The source at each seeded commit, read with git (what a full walk sees)."""
    shas = hub.git(REPO, "log", "--format=%H %cI", "--reverse", "main", "--", SRC).split("\n")
    out: list[FileVersion] = []
    for line in filter(None, shas):
        sha, date = line.split(" ")
        content = hub.read_file(REPO, SRC, ref=sha)
        out.append(FileVersion(sha, date, content))
    return out


class TestCommandLine:
    def test_migrate_from_a_clone_on_the_command_line(
        self,
        localhub: LocalHub,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`migrate --recover-history --from-clone DIR` recovers every record and verifies."""
        from gitjsonl._cli import main

        seed(localhub)
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(localhub.git_dir(REPO)), str(clone)], check=True)
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        args = ["--repo", REPO, "--api-url", localhub.url, "migrate", "--from", SRC]
        assert main([*args, "--recover-history", "--from-clone", str(clone)]) == 0
        assert "Verified" in capsys.readouterr().out
        back = localhub.read_file(REPO, f"{DEST}/00000001.jsonl") or b""
        assert [json.loads(x)["id"] for x in back.splitlines()] == [1, 2, 3, 4, 5, 6, 7, 8]

    def test_from_clone_without_recover_history_is_a_usage_error(
        self, localhub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--from-clone alone is refused (exit 2): it only feeds --recover-history."""
        from gitjsonl._cli import main

        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        args = ["--repo", REPO, "--api-url", localhub.url, "migrate", "--from", SRC]
        assert main([*args, "--from-clone", str(tmp_path)]) == 2
