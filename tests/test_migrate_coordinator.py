"""``gitjsonl migrate --coordinator``: the migration pays from the budget every host shares.

Against localhub and a real ``redis-server`` (``redis_support``). Each "host"
is its own budget folder: the CLI's is ``$XDG_CACHE_HOME/gitjsonl``, a
``Log``'s its ``budget_dir``. A migration does not take the branch's turn (it
builds one commit on the head it reads and fast-forwards the branch to it), so
a ``Log`` appending to the same branch meanwhile races it, and the
fast-forward check alone keeps both logs whole.
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
from gitjsonl._cli import main
from gitjsonl._segments import MANIFEST_NAME
from gitjsonl.testing import Fault, LocalHub

from .helpers import REPO, WRITES, committed_records, history_is_linear
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


def write_requests(hub: LocalHub, start: int = 0) -> int:
    return sum(1 for r in hub.requests[start:] if r.method in WRITES)


def migrate_commits(hub: LocalHub) -> list[str]:
    """Every migration commit the repository holds, on the branch or not (lost races)."""
    objects = hub.git(REPO, "cat-file", "--batch-all-objects", "--batch-check").splitlines()
    shas = [line.split()[0] for line in objects if line.split()[1] == "commit"]
    return [
        sha
        for sha in shas
        if hub.git(REPO, "log", "-1", "--format=%s", sha).startswith("gitjsonl: migrate ")
    ]


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


class TestMigrateBesideALog:
    def test_a_log_appending_to_the_branch_during_migrate_loses_nothing(
        self,
        localhub: LocalHub,
        redis_server: RedisServer,
        hosts: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A Log on another host commits to another path of the branch while the migration
        is between reading the head and updating the ref: the migration loses that race,
        builds again and lands once; both logs hold every record exactly once, the history
        is linear, and Redis counts the writes of both."""
        records = legacy_records()
        localhub.seed_commit(REPO, {SRC: jsonl(records)})
        start = len(localhub.requests)
        log = host_b_log(localhub, hosts, redis_server, OTHER, flush_interval=0.05)
        codes: list[int] = []
        try:
            log.append({"n": 0})
            log.flush(timeout=30)
            # The migration's first upload stalls for a second after it read the head: the
            # Log's commits meanwhile move the branch under it.
            localhub.add_fault(
                Fault(method="POST", path=r"/git/blobs$", action="latency", delay=1.0)
            )
            migration = threading.Thread(
                target=lambda: codes.append(
                    cli(
                        localhub,
                        "--coordinator",
                        redis_server.url,
                        "migrate",
                        "--segment-bytes",
                        str(SEGMENT_BYTES),
                    )
                )
            )
            migration.start()
            for n in range(1, 9):
                log.append({"n": n})
                log.flush(timeout=30)
                time.sleep(0.15)
            migration.join(timeout=120)
            assert not migration.is_alive()
            # Built on its own last commit, the Log's next batch loses to the migration.
            log.append({"n": 9})
            log.flush(timeout=30)
            stats = log.stats()
        finally:
            log.close(timeout=30)
        out, err = capsys.readouterr()

        assert codes == [0], err
        assert "Verified" in out
        assert migrated(localhub) == records
        assert [r["n"] for r in committed_records(localhub, OTHER)] == list(range(10))
        assert history_is_linear(localhub)
        localhub.fsck(REPO)
        landed = re.search(r"Committed ([0-9a-f]{40}) on main", out)
        assert landed is not None
        made = migrate_commits(localhub)
        assert landed.group(1) in made
        assert len(made) >= 2, "the migration never lost a race to the Log"
        on_branch = set(localhub.git(REPO, "rev-list", "main").split())
        assert [sha for sha in made if sha in on_branch] == [landed.group(1)]
        assert stats.conflicts_retried >= 1
        budget = budget_figures(localhub, capsys, "--coordinator", redis_server.url)
        assert budget["last_minute"] == write_requests(localhub, start)
        print(
            f"migration commits made {len(made)} (1 landed); Log lost {stats.conflicts_retried} "
            f"race(s); {budget['last_minute']} writes counted in Redis"
        )
