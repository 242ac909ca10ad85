"""``gitjsonl migrate --coordinator``: the migration pays from the budget every host shares.

Against localhub and a real ``redis-server`` (``redis_support``). Each "host"
is its own budget folder: the CLI's is ``$XDG_CACHE_HOME/gitjsonl``, a
``Log``'s its ``budget_dir``. A migration's commit takes the branch's turn
with the ``Log``s writing it (the host's turn file, and Redis's across hosts),
so a ``Log`` appending to another path of the branch meanwhile never makes it
lose a race, and it never makes the ``Log`` lose one.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import Log
from gitjsonl._chain import chain_from_json
from gitjsonl._cli import main
from gitjsonl._segments import MANIFEST_NAME
from gitjsonl.testing import Fault, LocalHub

from .helpers import REPO, committed_records, history_is_linear
from .redis_support import RedisServer, free_port, redis_server

__all__ = ["redis_server"]

SRC = "data/interactions.jsonl"
DEST = "data/interactions"
OTHER = "data/events"
SEGMENT_BYTES = 1000


def legacy_records(count: int = 40) -> list[dict[str, Any]]:
    return [{"id": i, "text": "x" * 40} for i in range(count)]


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def cli(hub: LocalHub, *args: str) -> int:
    return main(["--repo", REPO, "--api-url", hub.url, *args])


@pytest.fixture
def hosts(localhub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for the hosts' budgets: the CLI runs on host A (``host-a/gitjsonl``)."""
    monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "host-a"))
    return tmp_path


@pytest.fixture(params=["flag", "environment"])
def coordinator_args(
    request: pytest.FixtureRequest, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """How migrate is told of the coordinator: --coordinator, or $GITJSONL_COORDINATOR."""
    if request.param == "environment":
        monkeypatch.setenv("GITJSONL_COORDINATOR", redis_server.url)
        return []
    return ["--coordinator", redis_server.url]


def host_ledgers(hosts: Path) -> list[Path]:
    """The budget ledger files the CLI's host (A) holds."""
    return list((hosts / "host-a" / "gitjsonl").glob("budget-*.json"))


def budget_figures(hub: LocalHub, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """The ``budget`` figures ``gitjsonl stats --json`` prints (None: no ledger, no Redis)."""
    capsys.readouterr()
    assert cli(hub, "stats", "--json", "--path", DEST, *args) == 0
    return json.loads(capsys.readouterr().out)["budget"]


def host_b_log(hub: LocalHub, hosts: Path, redis: RedisServer, path: str, **options: Any) -> Log:
    """A Log on host B (its own budget folder), sharing the token and the coordinator."""
    return Log(
        REPO,
        path=path,
        token=hub.token,
        api_url=hub.url,
        budget_dir=hosts / "host-b",
        coordinator=redis.url,
        **options,
    )


def a_log(hub: LocalHub, path: str, **options: Any) -> Log:
    """A Log of ``path`` on the token; where its host is, ``options`` say (``budget_dir``)."""
    return Log(REPO, path=path, token=hub.token, api_url=hub.url, **options)


def write_requests(hub: LocalHub, start: int = 0) -> int:
    return sum(1 for r in hub.requests[start:] if r.write)


def migrate_commits(hub: LocalHub) -> list[str]:
    """Every migration commit the repository holds, on the branch or not (lost races)."""
    objects = hub.git(REPO, "cat-file", "--batch-all-objects", "--batch-check").splitlines()
    shas = [line.split()[0] for line in objects if line.split()[1] == "commit"]
    return [
        sha
        for sha in shas
        if hub.git(REPO, "log", "-1", "--format=%s", sha).startswith("gitjsonl: migrate ")
    ]


def hub_manifest(hub: LocalHub, commit: str) -> str:
    return hub.git(REPO, "show", f"{commit}:{DEST}/{MANIFEST_NAME}")


def migrated(hub: LocalHub) -> list[dict[str, Any]]:
    """The records under DEST, checked against the manifest the migration left."""
    manifest = json.loads(hub.read_file(REPO, f"{DEST}/{MANIFEST_NAME}") or b"{}")
    assert manifest["source"] == SRC
    assert len(manifest["segments"]) > 1  # the migration really uploaded several blobs
    return committed_records(hub, DEST)


class TestSharedBudget:
    def test_migrate_pays_from_redis_and_another_host_sees_it(
        self,
        localhub: LocalHub,
        redis_server: RedisServer,
        hosts: Path,
        capsys: pytest.CaptureFixture[str],
        coordinator_args: list[str],
    ) -> None:
        """migrate with a coordinator (--coordinator or $GITJSONL_COORDINATOR) migrates the log
        and counts every write it sent in the budget Redis holds, not in a ledger of its host;
        a Log on another host sharing the token sees those writes before its own."""
        records = legacy_records()
        localhub.seed_commit(REPO, {SRC: jsonl(records)})
        start = len(localhub.requests)

        code = cli(localhub, *coordinator_args, "migrate", "--segment-bytes", str(SEGMENT_BYTES))
        out, err = capsys.readouterr()
        sent = write_requests(localhub, start)

        assert code == 0, err
        assert "Verified" in out
        assert "warning" not in err
        assert migrated(localhub) == records
        assert history_is_linear(localhub)
        budget = budget_figures(localhub, capsys, "--coordinator", redis_server.url)
        assert budget["shared"] == "hosts"
        assert budget["last_minute"] == sent
        assert host_ledgers(hosts) == []

        with host_b_log(localhub, hosts, redis_server, DEST, segment_bytes=SEGMENT_BYTES) as other:
            seen = other.stats().budget
            other.append({"id": len(records)})
            other.flush(timeout=30)
        assert seen is not None
        assert seen.shared == "hosts"
        assert seen.last_minute == sent
        assert [r["id"] for r in committed_records(localhub, DEST)] == list(range(len(records) + 1))
        budget = budget_figures(localhub, capsys, "--coordinator", redis_server.url)
        assert budget["last_minute"] == write_requests(localhub, start)


class TestCoordinatorDown:
    def test_unreachable_coordinator_migrates_with_one_warning_on_the_host_ledger(
        self, localhub: LocalHub, hosts: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A coordinator nobody listens on: the migration completes and verifies, the CLI warns
        once that the coordinator failed, and every write is counted in the host's ledger."""
        records = legacy_records()
        localhub.seed_commit(REPO, {SRC: jsonl(records)})
        nobody = f"redis://127.0.0.1:{free_port()}/0"
        start = len(localhub.requests)

        code = cli(
            localhub, "--coordinator", nobody, "migrate", "--segment-bytes", str(SEGMENT_BYTES)
        )
        out, err = capsys.readouterr()
        sent = write_requests(localhub, start)

        assert code == 0, err
        assert "Verified" in out
        warnings = err.splitlines()
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith("gitjsonl: warning: the coordinator ")
        assert "failed" in warnings[0]
        assert migrated(localhub) == records
        assert len(host_ledgers(hosts)) == 1
        budget = budget_figures(localhub, capsys)
        assert budget["shared"] == "host"
        assert budget["last_minute"] == sent


@pytest.fixture(params=["host", "hosts"])
def beside(
    request: pytest.FixtureRequest, localhub: LocalHub, hosts: Path
) -> tuple[list[str], dict[str, Any]]:
    """Where the Log beside the migration runs: on the CLI's host (its budget folder, no
    coordinator), or on host B with the coordinator both are given. (CLI args, Log options)"""
    if request.param == "host":
        return [], {"budget_dir": hosts / "host-a" / "gitjsonl"}
    redis: RedisServer = request.getfixturevalue("redis_server")
    return ["--coordinator", redis.url], {
        "budget_dir": hosts / "host-b",
        "coordinator": redis.url,
    }


class TestMigrateBesideALog:
    def test_a_log_appending_to_the_branch_during_migrate_races_nobody(
        self,
        localhub: LocalHub,
        hosts: Path,
        capsys: pytest.CaptureFixture[str],
        beside: tuple[list[str], dict[str, Any]],
    ) -> None:
        """A Log on the same host (or on another, sharing a coordinator) commits to another
        path of the branch more often than reads of the branch lag, all through a migration:
        the migration takes the branch's turn and builds on the Log's newest commit, so it
        makes one commit and it lands; the Log's next batch builds on the migration's
        commit. Neither loses a race, both logs hold every record exactly once, the history
        is linear, and the shared budget counts the writes of both."""
        args, options = beside
        records = legacy_records()
        localhub.seed_commit(REPO, {SRC: jsonl(records)})
        start = len(localhub.requests)
        log = a_log(localhub, OTHER, flush_interval=0.05, **options)
        codes: list[int] = []
        appended = 0
        try:
            log.append({"n": appended})
            log.flush(timeout=30)
            appended += 1
            # Every read of the branch now sees it as it was half a second ago, and the Log
            # commits every few tenths of a second: whatever head the migration reads is
            # stale by the time it commits (its uploads stall, too).
            localhub.read_lag = 0.5
            localhub.add_fault(
                Fault(method="POST", path=r"/git/blobs$", action="latency", delay=0.3)
            )
            migration = threading.Thread(
                target=lambda: codes.append(
                    cli(localhub, *args, "migrate", "--segment-bytes", str(SEGMENT_BYTES))
                )
            )
            migration.start()
            while migration.is_alive() and appended < 60:
                log.append({"n": appended})
                log.flush(timeout=30)
                appended += 1
                time.sleep(0.05)
            migration.join(timeout=120)
            assert not migration.is_alive()
            # A Log of the destination, whose folder the migration's link says nothing of:
            # it reads it (records follow the migrated ones), then the other Log goes on.
            with a_log(localhub, DEST, segment_bytes=SEGMENT_BYTES, **options) as dest:
                dest.append({"id": len(records)})
                dest.flush(timeout=30)
                dest_races = dest.stats().conflicts_retried
            log.append({"n": appended})
            log.flush(timeout=30)
            appended += 1
            stats = log.stats()
        finally:
            log.close(timeout=30)
        out, err = capsys.readouterr()

        assert codes == [0], err
        assert "Verified" in out
        assert migrated(localhub) == [*records, {"id": len(records)}]
        assert [r["n"] for r in committed_records(localhub, OTHER)] == list(range(appended))
        assert history_is_linear(localhub)
        localhub.fsck(REPO)
        landed = re.search(r"Committed ([0-9a-f]{40}) on main", out)
        assert landed is not None
        sha = landed.group(1)
        made = migrate_commits(localhub)
        assert made == [sha], f"the migration lost {len(made) - 1} race(s)"
        assert stats.conflicts_retried == 0, "the Log lost a race"
        assert dest_races == 0, "the destination's Log lost a race"
        turn_files = list((hosts / "host-a" / "gitjsonl").glob("turn-*.json"))
        if not args:
            # The link the migration left names its commit and its folder's tree exactly.
            (turn_file,) = turn_files
            chain = chain_from_json(json.loads(turn_file.read_text()))
            (link,) = [x for x in chain if x.commit == sha]
            folder = localhub.git(REPO, "rev-parse", f"{sha}:{DEST}").strip()
            assert (link.path, link.segment_sha) == (DEST, folder)
            assert link.segment == len(json.loads(hub_manifest(localhub, sha))["segments"])
        else:
            assert turn_files == []  # the turn was Redis's
        # The race was there to lose: the Log committed while the migration ran, on both
        # sides of the migration's commit, which went on the Log's newest commit.
        below = localhub.git(REPO, "rev-list", "--count", f"{sha}^").strip()
        above = localhub.git(REPO, "rev-list", "--count", f"{sha}..main").strip()
        assert int(below) >= 4
        assert int(above) >= 1
        localhub.read_lag = 0.0
        budget = budget_figures(localhub, capsys, *args)
        assert budget["last_minute"] == write_requests(localhub, start)
        print(
            f"Log made {appended} commits ({below} below the migration's); migration made "
            f"{len(made)} commit(s); {budget['last_minute']} writes counted"
        )


class TestMigrateTurnOnFailure:
    @pytest.mark.parametrize("fault", ["refused", "answer lost"])
    def test_a_failed_ref_update_leaves_the_turn_to_the_log(
        self, localhub: LocalHub, hosts: Path, capsys: pytest.CaptureFixture[str], fault: str
    ) -> None:
        """The migration's ref update is refused (it never lands), or lands with its answer
        lost: the turn is let go either way (the Log's next flush does not wait for it),
        the migration lands once, and the Log of the same host builds on the branch as it
        is, losing no race: not on a refused commit, and on one whose answer was lost."""
        localhub.read_lag = 0.0  # the retry reads the branch as the lost answer left it
        records = legacy_records()
        localhub.seed_commit(REPO, {SRC: jsonl(records)})
        log = a_log(localhub, OTHER, budget_dir=hosts / "host-a" / "gitjsonl")
        try:
            log.append({"n": 0})
            log.flush(timeout=30)
            if fault == "refused":
                update = Fault(
                    method="PATCH",
                    path=r"/git/refs/",
                    status=422,
                    message="Update is not a fast forward",
                )
            else:
                update = Fault(method="PATCH", path=r"/git/refs/", action="drop_after")
            localhub.add_fault(update)
            code = cli(localhub, "migrate", "--segment-bytes", str(SEGMENT_BYTES))
            log.append({"n": 1})
            log.flush(timeout=10)  # a turn never let go would hold it for a minute
            stats = log.stats()
        finally:
            log.close(timeout=30)
        out, err = capsys.readouterr()

        assert code == 0, err
        assert "Verified" in out
        assert migrated(localhub) == records
        assert [r["n"] for r in committed_records(localhub, OTHER)] == [0, 1]
        assert history_is_linear(localhub)
        updates = [r.status for r in localhub.requests if r.method == "PATCH"]
        assert updates == ([200, 422, 200, 200] if fault == "refused" else [200, 0, 200])
        on_branch = set(localhub.git(REPO, "rev-list", "main").split())
        assert len([sha for sha in migrate_commits(localhub) if sha in on_branch]) == 1
        assert stats.conflicts_retried == 0
