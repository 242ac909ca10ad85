"""Exactly once where the newest layers broke it (issue 23): trust only what the branch proves.

Against localhub (and a real ``redis-server`` on a free port for the hosts' turns):

- a ref update refused after another host built on its pending commit *landed*;
- an operator's reset is never undone along the turn's chain;
- a link the branch contradicts is dropped after one refusal, never followed again.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import Log
from gitjsonl.testing import Fault
from gitjsonl.testing._faults import Gate

from .helpers import PATH, REPO, FakeClock, committed_records, history_is_linear, make_log
from .redis_support import RedisServer, redis_server

__all__ = ["redis_server"]


def host(hub: Any, url: str, folder: Path, **options: Any) -> Log:
    """A Log as one host of many sees it: its own budget folder, the shared coordinator."""
    return Log(
        REPO,
        path=PATH,
        token=hub.token,
        api_url=hub.url,
        budget_dir=folder,
        coordinator=url,
        pacing=None,
        flush_interval=0.05,
        **options,
    )


def turn_record_key(url: str) -> bytes:
    """The one turn record (not a lease or a fence) in the Redis at ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = [k for k in client.scan_iter(match="gitjsonl:turn:*") if k.count(b":") == 2]
    finally:
        client.close()
    assert len(keys) == 1, keys
    return keys[0]


def edit_turn_record(url: str, change: Any) -> None:
    """Rewrite the turn record in Redis as ``change(record)`` returns it (an attacker's edit)."""
    import redis

    key = turn_record_key(url)
    client = redis.Redis.from_url(url)
    try:
        record = json.loads(client.get(key) or b"{}")
        client.set(key, json.dumps(change(record)), px=3600_000)
    finally:
        client.close()


def read_turn_record(url: str) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        data: dict[str, Any] = json.loads(client.get(turn_record_key(url)) or b"{}")
    finally:
        client.close()
    return data


class TestAcrossHosts:
    @pytest.mark.parametrize("waits", ["real", "instant"])
    def test_a_refused_update_another_host_built_on_landed_and_is_not_sent_again(
        self,
        localhub: Any,
        redis_server: RedisServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        waits: str,
    ) -> None:
        """Host A's lease runs out while its ref update is in flight; host B builds on A's
        pending commit; A's update is then refused, yet its batch is on the branch once
        (also when A's retries cannot wait out the reads' lag)."""
        import gitjsonl._redis

        monkeypatch.setattr(gitjsonl._redis, "TURN_LEASE", 0.3)
        options: dict[str, Any] = {}
        if waits == "instant":
            clock = FakeClock()
            options = {"sleep": clock.sleep, "clock": clock.time}
            localhub.read_lag = 1.0  # A reads the branch as before B's commit, many times
        a = host(localhub, redis_server.url, tmp_path / "a", **options)
        b = host(localhub, redis_server.url, tmp_path / "b")
        try:
            for log, name in ((a, "a"), (b, "b")):
                log.append({"w": name, "i": 0})
                log.flush(timeout=30)
            gate = Gate()
            localhub.add_fault(
                Fault(method="PATCH", path=r"/git/refs/", action="hold", gate=gate, delay=60)
            )
            for i in (1, 2, 3):
                a.append({"w": "a", "i": i})
            flushed = threading.Thread(target=a.flush, kwargs={"timeout": 60})
            flushed.start()
            assert gate.wait_reached(30), "host A's ref update never went out"
            # A's lease runs out while its update is held; B takes the turn and builds on
            # A's pending commit (its own update is not held: the fault fired once).
            b.append({"w": "b", "i": 1})
            b.flush(timeout=30)
            gate.open()
            flushed.join(timeout=60)
            assert not flushed.is_alive()
            a.flush(timeout=30)
        finally:
            gate_open = locals().get("gate")
            if isinstance(gate_open, Gate):
                gate_open.open()
            a.close(timeout=30)
            b.close(timeout=30)
        records = [(r["w"], r["i"]) for r in committed_records(localhub)]
        assert sorted(records) == [("a", 0), ("a", 1), ("a", 2), ("a", 3), ("b", 0), ("b", 1)]
        assert history_is_linear(localhub)
        assert a.stats().conflicts_retried >= 1, "A's update was never refused: proves nothing"


class TestAnOperatorsReset:
    def test_a_fresh_writer_does_not_bring_back_what_a_reset_removed(
        self, localhub: Any, tmp_path: Path
    ) -> None:
        """The branch is reset to drop records 2-3; a fresh writer of this host builds on
        the reset branch, never along the turn's chain past it."""
        budget = tmp_path / "budget"
        first = make_log(localhub, budget_dir=budget)
        heads = []
        for i in (1, 2, 3):
            first.append({"id": i})
            first.flush(timeout=30)
            heads.append(localhub.git(REPO, "rev-parse", "main").strip())
        first.close(timeout=30)
        localhub.git(REPO, "update-ref", "refs/heads/main", heads[0])
        localhub.read_lag = 0  # the reset has settled: every read shows it
        fresh = make_log(localhub, budget_dir=budget)
        fresh.append({"id": 4})
        fresh.flush(timeout=60)
        fresh.close(timeout=30)
        assert [r["id"] for r in committed_records(localhub)] == [1, 4]
        assert history_is_linear(localhub)


class TestTrustWithoutProof:
    @pytest.mark.parametrize("planted", ["unknown", "off-branch"])
    def test_a_planted_link_costs_one_refusal_and_is_dropped(
        self, localhub: Any, redis_server: RedisServer, tmp_path: Path, planted: str
    ) -> None:
        """A link planted in the turn record (a commit the branch does not hold) is followed
        at most once: the batch lands at its first flush, and the link leaves the record."""
        log = host(localhub, redis_server.url, tmp_path / "a")
        try:
            log.append({"id": 1})
            log.flush(timeout=30)
            head = localhub.git(REPO, "rev-parse", "main").strip()
            if planted == "unknown":
                commit, tree = "f" * 40, "e" * 40
            else:  # a real commit beside the branch: what is built on it is refused
                tree = localhub.git(REPO, "rev-parse", "main^{tree}").strip()
                identity = ("-c", "user.name=op", "-c", "user.email=op@example.invalid")
                commit = localhub.git(
                    REPO, *identity, "commit-tree", tree, "-p", f"{head}~1", "-m", "beside"
                ).strip()

            def plant(record: dict[str, Any]) -> dict[str, Any]:
                record["chain"].append([commit, head, tree, PATH, 1, "d" * 40])
                return record

            edit_turn_record(redis_server.url, plant)
            log.append({"id": 2})
            log.flush(timeout=60)
            stats = log.stats()
        finally:
            log.close(timeout=30)
        assert [r["id"] for r in committed_records(localhub)] == [1, 2]
        assert stats.failures == 0
        chain = read_turn_record(redis_server.url)["chain"]
        assert commit not in [row[0] for row in chain]
