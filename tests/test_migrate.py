"""``gitjsonl migrate`` against localhub: one commit, verified, idempotent, history recovered."""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from typing import Any

import pytest

from gitjsonl import Log, MigrationError
from gitjsonl._cli import main
from gitjsonl._github import Credentials, GitHubRepo
from gitjsonl._migrate import migrate
from gitjsonl._segments import MANIFEST_NAME
from gitjsonl.testing import LocalHub
from gitjsonl.testing._contents_baseline import ContentsApiLog

REPO = "owner/repo"
SRC = "data/interactions.jsonl"
DEST = "data/interactions"
MiB = 1024 * 1024


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def writes(hub: LocalHub) -> list[str]:
    return [f"{r.method} {r.path}" for r in hub.requests if r.method != "GET"]


def run(hub: LocalHub, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("GITHUB_TOKEN", hub.token)
    return main(["--repo", REPO, "--api-url", hub.url, *args])


def github(hub: LocalHub) -> GitHubRepo:
    return GitHubRepo(REPO, Credentials(hub.url, hub.token))


def segments_on_branch(hub: LocalHub) -> list[str]:
    names = hub.git(REPO, "ls-tree", "--name-only", "main", f"{DEST}/").split()
    return sorted(n for n in names if n.endswith(".jsonl"))


class TestModules:
    @pytest.mark.parametrize(
        "name", ["", ".plan", ".history", ".report", ".run", ".sources", ".turn"]
    )
    def test_all_is_sorted_and_complete(self, name: str) -> None:
        """Each module's __all__ is sorted and names only attributes it defines."""
        module = importlib.import_module(f"gitjsonl._migrate{name}")
        assert module.__all__ == sorted(module.__all__)
        assert all(hasattr(module, attribute) for attribute in module.__all__)


class TestLargeMigration:
    @pytest.mark.slow
    def test_20_mb_log_migrates_in_one_commit_and_verifies(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """20 MB become 1 MiB segments in one commit; verify is clean; a rerun is a no-op."""
        line = {"type": "interaction", "text": "x" * 180}
        source = b"".join(
            json.dumps({"id": i, **line}).encode() + b"\n" for i in range(20 * MiB // 215)
        )
        assert len(source) > 20 * 1000 * 1000
        localhub.seed_commit(REPO, {SRC: source, "README.md": b"# repo\n"})
        localhub.clear_requests()

        started = time.monotonic()
        assert run(localhub, monkeypatch, "migrate", "--from", SRC, "--to", DEST) == 0
        elapsed = time.monotonic() - started
        out = capsys.readouterr().out
        assert "Verified" in out
        methods = [r.method for r in localhub.requests]
        commits = [r for r in localhub.requests if r.path.endswith("/git/commits")]
        assert len(commits) == 1
        assert methods.count("PATCH") == 1
        assert sum(1 for r in localhub.requests if r.path.endswith("/git/trees")) == 1
        print(f"20 MB migration: {elapsed:.1f} s, {len(methods)} requests")

        names = segments_on_branch(localhub)
        parts = [localhub.read_file(REPO, name) or b"" for name in names]
        assert len(names) >= -(-len(source) // MiB)
        assert all(len(part) <= MiB for part in parts)
        back = b"".join(parts)
        assert hashlib.sha256(back).hexdigest() == hashlib.sha256(source).hexdigest()
        assert back.count(b"\n") == source.count(b"\n")
        manifest = json.loads(localhub.read_file(REPO, f"{DEST}/{MANIFEST_NAME}") or b"")
        assert manifest["sha256"] == hashlib.sha256(source).hexdigest()
        assert manifest["lines"] == source.count(b"\n")

        assert run(localhub, monkeypatch, "verify", "--path", DEST) == 0
        localhub.clear_requests()
        assert run(localhub, monkeypatch, "migrate", "--from", SRC, "--to", DEST) == 0
        assert "Already migrated" in capsys.readouterr().out
        assert writes(localhub) == []


class TestMigrate:
    def test_log_continues_the_migrated_sequence(self, localhub: LocalHub) -> None:
        """A Log on the destination appends after the migrated segments, and reads them first."""
        records = [{"id": i, "pad": "p" * 100} for i in range(30)]
        localhub.seed_commit(REPO, {SRC: jsonl(records)})
        result = migrate(github(localhub), source=SRC, destination=DEST, segment_bytes=1000)
        assert result.ok
        assert result.commit is not None
        count = len(segments_on_branch(localhub))
        with Log(
            REPO,
            path=DEST,
            api_url=localhub.url,
            token=localhub.token,
            pacing=None,
            segment_bytes=1000,  # as migrated: the full segments are never rewritten
        ) as log:
            log.append({"id": 30})
        time.sleep(localhub.read_lag)  # a second reader sees it once GitHub's reads catch up
        with Log(REPO, path=DEST, api_url=localhub.url, token=localhub.token, pacing=None) as log:
            assert [r["id"] for r in log.records()] == list(range(31))
        assert len(segments_on_branch(localhub)) in (count, count + 1)

    def test_dry_run_writes_nothing(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--dry-run prints the plan and sends no write request."""
        localhub.seed_commit(REPO, {SRC: jsonl([{"id": 1}, {"id": 2}])})
        localhub.clear_requests()
        assert run(localhub, monkeypatch, "migrate", "--from", SRC, "--dry-run") == 0
        out = capsys.readouterr().out
        assert "Dry run" in out
        assert "Nothing was written" in out
        assert writes(localhub) == []

    def test_remove_source_deletes_it_in_the_same_commit(self, localhub: LocalHub) -> None:
        """--remove-source drops the file in the migration commit; a rerun is still a no-op."""
        localhub.seed_commit(REPO, {SRC: jsonl([{"id": 1}])})
        result = migrate(github(localhub), source=SRC, destination=DEST, remove_source=True)
        assert result.removed_source
        assert localhub.read_file(REPO, SRC) is None
        assert localhub.git(REPO, "rev-list", "--count", "main").strip() == "2"
        again = migrate(github(localhub), source=SRC, destination=DEST)
        assert again.already_migrated

    def test_torn_and_bad_lines_are_kept_and_reported(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A non-JSON line and a torn last line stay in place and are listed in the report."""
        source = b'{"id": 1}\nnot json\n{"id": 3}\n{"id": 4, "cut'
        localhub.seed_commit(REPO, {SRC: source})
        assert run(localhub, monkeypatch, "migrate", "--from", SRC) == 0
        out = capsys.readouterr().out
        assert "not JSON" in out
        assert "torn" in out
        back = localhub.read_file(REPO, f"{DEST}/00000001.jsonl")
        assert back == source + b"\n"

    def test_refuses_foreign_segments_unless_forced(self, localhub: LocalHub) -> None:
        """Existing segments stop the migration; --force renumbers them after the migrated ones."""
        localhub.seed_commit(
            REPO,
            {SRC: jsonl([{"id": 1}, {"id": 2}]), f"{DEST}/00000001.jsonl": jsonl([{"id": 3}])},
        )
        with pytest.raises(MigrationError, match="--force"):
            migrate(github(localhub), source=SRC, destination=DEST)
        result = migrate(github(localhub), source=SRC, destination=DEST, force=True)
        assert result.shifted_segments == 1
        assert segments_on_branch(localhub) == [f"{DEST}/00000001.jsonl", f"{DEST}/00000002.jsonl"]
        with Log(REPO, path=DEST, api_url=localhub.url, token=localhub.token, pacing=None) as log:
            assert [r["id"] for r in log.records()] == [1, 2, 3]

    def test_force_over_segments_with_gaps_keeps_each_record_once(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--force over segments 1 and 3 (a gap) leaves the migrated segment, then the two
        existing ones renumbered 2 and 3: every record once, in order, and no old name left."""
        localhub.seed_commit(
            REPO,
            {
                SRC: jsonl([{"id": 1}]),
                f"{DEST}/00000001.jsonl": jsonl([{"id": 11}]),
                f"{DEST}/00000003.jsonl": jsonl([{"id": 12}]),
            },
        )
        assert run(localhub, monkeypatch, "migrate", "--from", SRC, "--force") == 0
        names = segments_on_branch(localhub)
        assert names == [f"{DEST}/{n:08d}.jsonl" for n in (1, 2, 3)]
        in_order = b"".join(localhub.read_file(REPO, name) or b"" for name in names)
        assert [json.loads(line)["id"] for line in in_order.splitlines()] == [1, 11, 12]
        with Log(REPO, path=DEST, api_url=localhub.url, token=localhub.token, pacing=None) as log:
            assert [r["id"] for r in log.records()] == [1, 11, 12]

    def test_force_leaves_a_folder_with_a_segment_name_alone(self, localhub: LocalHub) -> None:
        """A folder named like segment 1 is not replaced by a migrated segment: the migrated
        and the renumbered segments skip its number."""
        localhub.seed_commit(
            REPO,
            {
                SRC: jsonl([{"id": 1}]),
                f"{DEST}/00000001.jsonl/keep.txt": b"not a segment\n",
                f"{DEST}/00000002.jsonl": jsonl([{"id": 11}]),
            },
        )
        result = migrate(github(localhub), source=SRC, destination=DEST, force=True)
        assert result.ok, result.discrepancies
        assert localhub.read_file(REPO, f"{DEST}/00000001.jsonl/keep.txt") == b"not a segment\n"
        assert segments_on_branch(localhub) == [f"{DEST}/{n:08d}.jsonl" for n in (1, 2, 3)]
        with Log(REPO, path=DEST, api_url=localhub.url, token=localhub.token, pacing=None) as log:
            assert [r["id"] for r in log.records()] == [1, 11]

    def test_force_over_gaps_and_small_files_then_a_log_merges_them(
        self, localhub: LocalHub
    ) -> None:
        """After --force over a large segment and two small ones past a gap, a Log's next
        small batch merges the small ones as usual, and every record is read once."""
        large = jsonl([{"id": 11, "pad": "p" * 200}])
        localhub.seed_commit(
            REPO,
            {
                SRC: jsonl([{"id": 1}, {"id": 2}]),
                f"{DEST}/00000001.jsonl": large,
                f"{DEST}/00000004.jsonl": jsonl([{"id": 12}]),
                f"{DEST}/00000005.jsonl": jsonl([{"id": 13}]),
            },
        )
        result = migrate(github(localhub), source=SRC, destination=DEST, force=True)
        assert result.ok, result.discrepancies
        assert result.shifted_segments == 3
        assert segments_on_branch(localhub) == [f"{DEST}/{n:08d}.jsonl" for n in (1, 2, 3, 4)]
        time.sleep(localhub.read_lag)
        options: dict[str, Any] = {"api_url": localhub.url, "token": localhub.token}
        with Log(REPO, path=DEST, pacing=None, segment_bytes=320, **options) as log:
            log.append({"id": 14})
        assert len(segments_on_branch(localhub)) == 3  # 3 and 4 merged with the new record
        time.sleep(localhub.read_lag)
        with Log(REPO, path=DEST, pacing=None, **options) as log:
            assert [r["id"] for r in log.records()] == [1, 2, 11, 12, 13, 14]

    def test_missing_source_is_one_error_line(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A source that does not exist exits 3 with one error line and no traceback."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        assert run(localhub, monkeypatch, "migrate", "--from", SRC) == 3  # could not run
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [f"gitjsonl: error: {SRC} does not exist on branch main"]

    def test_changed_source_after_migration_is_refused(self, localhub: LocalHub) -> None:
        """A source that grew after its migration is not migrated a second time."""
        localhub.seed_commit(REPO, {SRC: jsonl([{"id": 1}])})
        migrate(github(localhub), source=SRC, destination=DEST)
        localhub.seed_commit(REPO, {SRC: jsonl([{"id": 1}, {"id": 2}])})
        with pytest.raises(MigrationError, match="changed since"):
            migrate(github(localhub), source=SRC, destination=DEST)

    def test_conflict_replans_on_the_new_head(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A commit landing mid-migration makes it re-read and commit on top, keeping both."""
        localhub.seed_commit(REPO, {SRC: jsonl([{"id": 1}])})
        repo = github(localhub)
        real = repo.update_ref
        calls: list[str] = []

        def racing_update(branch: str, sha: str) -> None:
            if not calls:
                localhub.seed_commit(REPO, {"other.txt": b"someone else\n"})
            calls.append(sha)
            real(branch, sha)

        monkeypatch.setattr(repo, "update_ref", racing_update)
        result = migrate(repo, source=SRC, destination=DEST, sleep=lambda _s: None)
        assert result.ok
        assert len(calls) == 2
        assert localhub.read_file(REPO, "other.txt") == b"someone else\n"
        assert localhub.read_file(REPO, f"{DEST}/00000001.jsonl") == jsonl([{"id": 1}])


def clobbering_history(hub: LocalHub, cycles: int = 3) -> list[dict[str, Any]]:
    """The old service's life: the file grows past 1 MB, then one append overwrites it.

    Growth is seeded with exactly the bytes the baseline writes (one commit per
    append, big records to keep the commit count low); every crossing of 1 MB
    and every overwrite is the real baseline algorithm talking to localhub.
    """
    expected: list[dict[str, Any]] = []
    text = ""
    with ContentsApiLog(hub.url, hub.token, REPO, path=SRC) as baseline:
        for cycle in range(cycles):
            n = 0
            while len(text) < 900_000:
                record = {"id": f"c{cycle}-grow-{n}", "pad": "g" * 90_000}
                text = text.rstrip("\n") + "\n" + json.dumps(record) + "\n"
                hub.seed_commit(REPO, {SRC: text.encode()}, message="Append interaction")
                expected.append(record)
                n += 1
            crossing = {"id": f"c{cycle}-cross", "pad": "c" * 200_000}
            assert baseline.append(crossing) == 200  # the file is now over 1 MB
            expected.append(crossing)
            for k in range(3):  # the first of these reads "" and overwrites the file
                record = {"id": f"c{cycle}-after-{k}"}
                assert baseline.append(record) == 200
                expected.append(record)
            text = (hub.read_file(REPO, SRC) or b"").decode()
    return expected


class TestRecoverHistory:
    @pytest.mark.slow
    def test_clobbered_log_is_recovered_to_the_full_sequence(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Three overwrites by the baseline are undone: every record, once, in append order."""
        # The baseline's overwrites are staged on a consistent server; lag would
        # only add conflicts (409s) to its GET-then-PUT, not overwrites.
        localhub.read_lag = 0.0
        expected = clobbering_history(localhub)
        final = (localhub.read_file(REPO, SRC) or b"").decode()
        assert len([x for x in final.splitlines() if x.strip()]) == 3  # what survived the last one

        assert run(localhub, monkeypatch, "migrate", "--from", SRC, "--recover-history") == 0
        out = capsys.readouterr().out
        assert "Verified" in out
        assert out.count("recovered") >= 3
        assert run(localhub, monkeypatch, "cat") == 0
        got = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
        assert got == [r["id"] for r in expected]
        assert run(localhub, monkeypatch, "verify") == 0

    def test_recovery_result_lists_each_overwrite(self, localhub: LocalHub) -> None:
        """Seeded overwrites show up one per commit in the result, with what each recovered."""
        commits = []
        for content in (
            jsonl([{"id": 1}]),
            jsonl([{"id": 1}, {"id": 2}]),
            b"\n" + jsonl([{"id": 3}]),
            jsonl([{"id": 3}, {"id": 4}]),
            b"\n" + jsonl([{"id": 5}]),
        ):
            commits.append(localhub.seed_commit(REPO, {SRC: content}))
        result = migrate(github(localhub), source=SRC, destination=DEST, recover=True)
        assert result.recovery is not None
        assert [o.commit for o in result.recovery.overwrites] == [commits[2], commits[4]]
        assert [o.records_recovered for o in result.recovery.overwrites] == [2, 2]
        back = localhub.read_file(REPO, f"{DEST}/00000001.jsonl") or b""
        assert [json.loads(x)["id"] for x in back.splitlines()] == [1, 2, 3, 4, 5]


class TestForceRenumbering:
    @pytest.mark.parametrize("existing", [{1, 3}, {2}, {1, 2, 5, 9}, {4, 5}])
    @pytest.mark.parametrize("migrated", [1, 3])
    def test_every_record_once_in_order(
        self, localhub: LocalHub, existing: set[int], migrated: int
    ) -> None:
        """Whatever the existing numbers: migrated records first, then the existing ones,
        each once, in consecutive segments, and the commit verifies."""
        files: dict[str, bytes | None] = {
            f"{DEST}/{n:08d}.jsonl": jsonl([{"id": 100 + n}]) for n in existing
        }
        files[SRC] = jsonl([{"id": i} for i in range(1, migrated + 1)])
        localhub.seed_commit(REPO, files)
        repo = github(localhub)
        result = migrate(repo, source=SRC, destination=DEST, force=True, segment_bytes=10)
        assert result.ok, result.discrepancies
        assert result.plan is not None
        assert len(result.plan.segments) == migrated
        names = segments_on_branch(localhub)
        assert names == [f"{DEST}/{n:08d}.jsonl" for n in range(1, migrated + len(existing) + 1)]
        in_order = b"".join(localhub.read_file(REPO, name) or b"" for name in names)
        expected = [*range(1, migrated + 1), *(100 + n for n in sorted(existing))]
        assert [json.loads(line)["id"] for line in in_order.splitlines()] == expected
        with Log(REPO, path=DEST, api_url=localhub.url, token=localhub.token, pacing=None) as log:
            assert [r["id"] for r in log.records()] == expected
