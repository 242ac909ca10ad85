"""The coordinator (Redis): every host on a token shares one budget and takes turns.

Against a real ``redis-server`` started on a free loopback port (``redis_support``),
the scripts included: no fake Redis.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gitjsonl._redis
from gitjsonl import Log, Pacing
from gitjsonl._budget import budget_for
from gitjsonl._chain import Link
from gitjsonl._exceptions import RateLimited
from gitjsonl._github import Credentials
from gitjsonl._pacing import share_of
from gitjsonl._redact import scrub_url
from gitjsonl._redis import (
    Coordinator,
    CoordinatorDown,
    RedisTurns,
    check_coordinator_url,
    host_share,
    split_prefix,
)
from gitjsonl._turn import BranchTurns

from .helpers import PATH, REPO, committed_records
from .redis_support import RedisServer, free_port, redis_server

__all__ = ["redis_server"]

PACING = Pacing(per_minute=12, per_hour=100, minute=60.0, hour=3600.0)
TOKEN = "ghp_" + "x" * 36


def two_hosts(url: str, tmp_path: Path) -> tuple[Any, Any]:
    """Two budgets on one token, as two hosts (separate ledger folders) sharing ``url``."""
    return tuple(  # type: ignore[return-value]
        # Each host its own client, as in its own process.
        budget_for(
            PACING,
            Credentials("https://api.github.com", TOKEN),
            directory=tmp_path / f"host{n}",
            coordinator=Coordinator(url),
        )
        for n in range(2)
    )


class TestUrls:
    def test_redis_and_rediss_urls_are_taken_others_refused(self) -> None:
        """redis:// and rediss:// URLs with a host pass; any other scheme is a ValueError."""
        assert check_coordinator_url("redis://:pw@h:6380/2") == "redis://:pw@h:6380/2"
        assert check_coordinator_url("rediss://h/0") == "rediss://h/0"
        for bad in ("http://h", "redis://", "h:6379", "redis://h:port"):
            with pytest.raises(ValueError, match="coordinator"):
                check_coordinator_url(bad)

    def test_the_password_is_never_shown(self) -> None:
        """scrub_url() hides a URL's user information, and a refused URL's message does too."""
        assert scrub_url("redis://user:s3cret@h:1/0") == "redis://***@h:1/0"
        assert scrub_url("rediss://:s3cret@h/0") == "rediss://***@h/0"
        with pytest.raises(ValueError, match="coordinator") as caught:
            check_coordinator_url("http://:s3cret@h")
        assert "s3cret" not in str(caught.value)

    def test_prefix_is_gitjsonls_query_parameter(self) -> None:
        """?prefix= names the keys' prefix and is taken off the URL redis-py is given."""
        assert split_prefix("redis://h/0?prefix=app:") == ("redis://h/0", "app:")
        assert split_prefix("redis://h/0") == ("redis://h/0", "gitjsonl:")

    def test_environment_names_the_coordinator_when_none_is_given(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$GITJSONL_COORDINATOR is the Log's coordinator when coordinator= is not given."""
        from gitjsonl._config import coordinator_from

        monkeypatch.setenv("GITJSONL_COORDINATOR", "redis://h:1/0")
        assert coordinator_from(None) is None
        from gitjsonl._config import DEFAULT

        assert coordinator_from(DEFAULT) == "redis://h:1/0"


class TestSharedBudget:
    def test_a_reservation_on_one_host_counts_on_the_other(
        self, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """Writes reserved by one host's budget are in the other host's window at once."""
        one, two = two_hosts(redis_server.url, tmp_path)
        token, wait = one.reserve(5)
        assert token is not None
        assert wait == 0
        one.settle(token, 5)
        assert two.stats().last_minute == 5
        assert two.stats().shared == "hosts"
        # 12 a minute: 5 spent, 8 more do not fit on the other host either.
        token, wait = two.reserve(8)
        assert token is None
        assert wait > 0

    def test_a_limit_answer_on_one_host_pauses_every_host(
        self, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A secondary-limit answer learned on one host halves and pauses the other's budget."""
        one, two = two_hosts(redis_server.url, tmp_path)
        error = RateLimited(
            "You have exceeded a secondary rate limit.", status=403, retry_after=30.0
        )
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            two.stats()  # the other host has seen the budget before the answer
            one.learn(error)
            stats = two.stats()
            two.stats()
        assert stats.paused_for > 25
        assert stats.allowance == pytest.approx(0.5, abs=0.01)
        assert stats.limited == 1
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2, warnings
        assert "on every host" in warnings[0]
        assert "another host" in warnings[1]

    def test_while_redis_fails_each_host_paces_on_its_share_of_the_writers(
        self, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """Hosts that fall back to their own ledgers keep, together, about one budget: each
        paces at its part of the writers Redis last saw (a quarter, a quarter, a half)."""
        hosts = [
            budget_for(
                PACING,
                Credentials("https://api.github.com", TOKEN),
                directory=tmp_path / f"host{n}",
                coordinator=Coordinator(redis_server.url),
            )
            for n in (0, 1, 2, 2)  # the third host runs two writers
        ]
        for budget in hosts:
            budget.stats()  # each writer counted once
        for budget in hosts:
            budget.stats()  # and each sees the others
        assert [b.paced() for b in hosts] == [PACING] * 4  # Redis answers: the whole budget
        redis_server.kill()
        for budget in hosts:
            assert budget.delay(1) == 0.0  # the host ledger decides now
        assert [b.store.shared for b in hosts] == ["host"] * 4
        per_minute = [b.paced().per_minute for b in hosts]
        assert per_minute == [3, 3, 6, 6]  # 12 a minute: a quarter, a quarter, a half
        # The first host's share of 12 a minute is 3: a 4th write waits, on its ledger.
        token, _ = hosts[0].reserve(3)
        assert token is not None
        assert hosts[0].reserve(1)[0] is None
        assert hosts[1].reserve(3)[0] is not None  # the second host has its own 3

    def test_a_host_is_named_by_its_folder_not_its_hostname(self, tmp_path: Path) -> None:
        """Containers share hostnames and folder paths; each budget folder names its host
        once, at random, and keeps the name (a torn file gets a new one)."""
        from gitjsonl import _ledger

        one, again, other = (_ledger.host_id(tmp_path / name) for name in ("a", "a", "b"))
        assert one == again != other
        (tmp_path / "a" / "host-id.json").write_text('{"id": "../../etc"}')
        assert _ledger.host_id(tmp_path / "a") not in (one, "../../etc")

    def test_the_first_decision_back_on_redis_is_on_the_whole_budget(
        self, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The coordinator counts as down until its first call back returns: the decision
        that call makes, on the token's state in Redis, keeps the whole budget, not the
        host's share of it (which would make the writer sleep while the token has room)."""
        monkeypatch.setattr(gitjsonl._redis, "RETRY_EVERY", 0.0)
        one, two = two_hosts(redis_server.url, tmp_path)
        one.stats(), two.stats(), one.stats()  # two hosts counted: a half each
        one.store.coordinator._failed("a moment's outage")  # Redis itself keeps everything
        assert one.paced().per_minute == 6
        seen: list[int] = []
        one.store.update(lambda state: seen.append(one.paced().per_minute) or state)
        assert seen == [12]
        assert one.store.shared == "hosts"

    def test_what_hosts_spent_while_redis_failed_is_handed_back_when_it_answers(
        self, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Redis restarted empty learns each host's writes of the outage (once, however many
        decisions hand them back), so the hosts' next minute does not spend them again."""
        import gitjsonl._redis as module

        monkeypatch.setattr(module, "RETRY_EVERY", 0.0)
        one, two = two_hosts(redis_server.url, tmp_path)
        one.stats(), two.stats()
        redis_server.kill()
        for budget, writes in ((one, 2), (two, 1)):
            token, _ = budget.reserve(writes)
            assert token is not None
            budget.settle(token, writes)
            assert budget.store.shared == "host"
        redis_server.start()
        assert one.delay(1) == 0.0  # back on Redis: hands the first host's writes over
        assert one.store.shared == "hosts"
        assert one.stats().last_minute == 2
        two.delay(1)
        one.delay(1)  # a second hand-back of the same writes counts nothing
        assert one.stats().last_minute == two.stats().last_minute == 3

    def test_writes_handed_back_look_no_older_than_they_are(
        self, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A starved host that reads Redis's answer seconds late still hands its outage
        writes back stamped no earlier than it did them (else they leave the windows early)."""
        import gitjsonl._redis as module

        monkeypatch.setattr(module, "RETRY_EVERY", 0.0)
        one, _ = two_hosts(redis_server.url, tmp_path)
        one.stats()
        redis_server.kill()
        token, _ = one.reserve(2)
        assert token is not None
        one.settle(token, 2)
        (done,) = [s.time for s in one.store.read().spent if s.id == token]
        redis_server.start()
        real, late = time.time, [0.0]
        monkeypatch.setattr(time, "time", lambda: real() + late[0])
        script = one.store.coordinator.script

        def answered_late(*args: Any, **kwargs: Any) -> Any:
            answer = script(*args, **kwargs)
            late[0] += 5.0  # read five seconds after Redis answered
            return answer

        monkeypatch.setattr(one.store.coordinator, "script", answered_late)
        one.delay(1)  # back on Redis: hands the outage's writes over
        assert one.store.shared == "hosts"
        (handed,) = [s.time for s in one.store.read().spent if s.id == token]
        assert handed >= done

    def test_hosts_back_on_redis_spend_their_part_until_every_writer_is_back(
        self, redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After Redis restarts empty, the first host back paces on its part of the budget
        while the other, not back yet, still paces on its host (its writes not handed back),
        and on the whole budget once both are back."""
        import gitjsonl._redis as module

        monkeypatch.setattr(module, "RETRY_EVERY", 0.0)
        one, two = two_hosts(redis_server.url, tmp_path)
        one.stats(), two.stats(), one.stats()  # two hosts counted: a half each
        redis_server.kill()
        for budget in (one, two):
            token, _ = budget.reserve(1)
            assert token is not None
            budget.settle(token, 1)
        redis_server.start()
        one.delay(1)  # back on Redis, alone
        assert one.store.shared == "hosts"
        assert one.paced().per_minute == 6
        two.delay(1)
        one.delay(1)
        assert one.paced().per_minute == two.paced().per_minute == 12

    def test_the_clock_is_redis(self, redis_server: RedisServer, tmp_path: Path) -> None:
        """A host whose clock runs an hour ahead stamps its writes on Redis's clock."""
        one, _ = two_hosts(redis_server.url, tmp_path)
        real = time.time
        skewed = pytest.MonkeyPatch()
        skewed.setattr(time, "time", lambda: real() + 3600)
        try:
            token, _ = one.reserve(3)
            stamp = one.store.read().spent[-1].time
        finally:
            skewed.undo()
        assert token is not None
        assert abs(stamp - real()) < 5

    def test_keys_are_hashed_prefixed_and_expire(
        self, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """Every key holds the prefix and no token, and every key has a TTL."""
        import redis

        url = redis_server.url + "?prefix=t1:"
        one, _ = two_hosts(url, tmp_path)
        token, _ = one.reserve(1)
        assert token is not None
        turns = BranchTurns(
            Credentials("https://api.github.com", TOKEN),
            repo="o/r",
            directory=None,
            coordinator=Coordinator(url),
        )
        with turns.get("main").take() as taken:
            taken.add(Link("c" * 40, "b" * 40, "t" * 40, "data", 1, "s" * 40), object())
        client = redis.Redis.from_url(redis_server.url)
        keys = [k.decode() for k in client.keys("*")]
        assert keys
        assert all(k.startswith("t1:") for k in keys)
        assert not any(TOKEN in k or "o/r" in k for k in keys)
        assert all(client.pttl(k) > 0 for k in keys), {k: client.pttl(k) for k in keys}


def overwritten_after(url: str, between: Callable[[], None]) -> Any:
    """The turn record after an older holder, past ``between``, and a newer one both save."""
    older, newer = (RedisTurns(Coordinator(url), "k") for _ in range(2))
    with older.held(1.0) as first:
        assert first is not None
        between()
        with newer.held(1.0) as second:
            assert second is not None
            assert second.fence > first.fence
            second.save({"by": "newer"})
        first.save({"by": "older"})
    with newer.held(1.0) as third:
        assert third is not None
        return third.record


class TestHostShare:
    @pytest.mark.parametrize(
        ("writers", "mine", "share"),
        [
            (4, 1, 0.25),
            (4, 2, 0.5),
            (3, 3, 1.0),
            (0, 0, 1.0),  # nobody seen yet: pacing alone, as before a coordinator
            (2, 5, 1.0),  # more on the host than in all: the counts say nothing
            (True, 1, 1.0),
        ],
    )
    def test_a_hosts_share_is_its_writers_among_the_tokens(
        self, writers: Any, mine: Any, share: float
    ) -> None:
        assert host_share(writers, mine) == share

    def test_counts_of_the_wrong_kind_are_nonsense(self) -> None:
        """An answer that is not a count is a malformed answer (the coordinator falls back)."""
        with pytest.raises(ValueError, match="nonsense"):
            host_share(b"4", 1)

    def test_a_share_cuts_every_budget_and_keeps_one_write(self) -> None:
        """share_of scales both windows' budgets, never to nothing; a share of 1 or NaN
        (nothing known) is the whole pacing."""
        assert share_of(PACING, 0.25) == Pacing(per_minute=3, per_hour=25, minute=60.0)
        assert share_of(PACING, 0.0) == Pacing(per_minute=1, per_hour=1, minute=60.0)
        assert share_of(PACING, 1.0) is PACING
        assert share_of(PACING, float("nan")) is PACING


class TestTurns:
    def test_a_holder_that_dies_mid_update_leaves_its_pending_link_to_the_next_host(
        self, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The link a ref update would make is in Redis before the update goes: a holder that
        never comes back (its lease runs out) leaves the next host knowing the commit may
        have landed, as a host's turn file does."""
        import gitjsonl._redis as module

        monkeypatch.setattr(module, "TURN_LEASE", 0.2)
        who = Credentials("https://api.github.com", TOKEN)
        link = Link("c" * 40, "b" * 40, "t" * 40, "data", 1, "s" * 40)

        def host() -> BranchTurns:
            return BranchTurns(
                who, repo="o/r", directory=None, coordinator=Coordinator(redis_server.url)
            )

        dying, next_host = host(), host()
        with dying.get("main").take() as taken:
            taken.intend(link)  # ... and the ref update is sent; no answer, ever
            time.sleep(0.3)
            with next_host.get("main").take(wait=5.0) as after:
                assert after.pending == (link,)

    def test_a_lease_that_ran_out_cannot_overwrite_the_record(
        self, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A holder whose lease expired and was granted again leaves the record to the newer."""
        import gitjsonl._redis as module

        monkeypatch.setattr(module, "TURN_LEASE", 0.2)
        assert overwritten_after(redis_server.url, lambda: time.sleep(0.3)) == {"by": "newer"}

    def test_a_lease_from_before_a_restart_cannot_overwrite_the_record(
        self, redis_server: RedisServer
    ) -> None:
        """After Redis restarts empty, new grants are fenced past every earlier one: a holder
        from before the restart cannot write the record."""

        def restart() -> None:
            redis_server.kill()
            redis_server.start()

        assert overwritten_after(redis_server.url, restart) == {"by": "newer"}

    def test_a_held_lease_makes_the_other_host_wait(self, redis_server: RedisServer) -> None:
        """While one host holds the turn, another is refused it until the wait runs out."""
        one, two = (RedisTurns(Coordinator(redis_server.url), "k") for _ in range(2))
        with one.held(1.0) as lease:
            assert lease is not None
            started = time.monotonic()
            with two.held(0.3) as other:
                assert other is None
            assert time.monotonic() - started >= 0.3


class TestLeaseBound:
    def test_a_lease_planted_with_a_days_expiry_holds_nobody_past_a_lease(
        self, redis_server: RedisServer
    ) -> None:
        """A lease key set to last a day (not by a grant) is taken over at once: a dead or
        forged holder costs at most one lease, whatever the store says."""
        import redis

        coordinator = Coordinator(redis_server.url)
        client = redis.Redis.from_url(redis_server.url)
        client.set(coordinator.key("turn", "k", "lease"), "1", px=24 * 3600 * 1000)
        started = time.monotonic()
        with RedisTurns(coordinator, "k").held(gitjsonl._redis.TURN_LEASE) as lease:
            assert lease is not None
        assert time.monotonic() - started < gitjsonl._redis.TURN_LEASE / 2
        client.close()


def encodings(marker: bytes) -> list[bytes]:
    """``marker`` as it would show in a value: as is, or inside base64 at any alignment."""
    import base64

    found = [marker]
    for skip in range(3):
        rest = marker[skip:]
        found.append(base64.b64encode(rest[: len(rest) // 3 * 3]))
    return found


def redis_dump(url: str) -> bytes:
    """Every string, hash value and set member in the Redis at ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    dump = b""
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"string":
            dump += client.get(key) or b""
        elif kind == b"hash":
            dump += b"".join(client.hvals(key))
        elif kind == b"zset":
            dump += b"".join(client.zrange(key, 0, -1))
    client.close()
    return dump


class TestNoRecordsOutsideGitHub:
    @pytest.mark.parametrize("shared", ["redis", "host"])
    def test_no_record_text_is_kept_in_redis_or_in_host_files(
        self, localhub: Any, redis_server: RedisServer, tmp_path: Path, shared: str
    ) -> None:
        """Records go to GitHub and the spool only: neither Redis nor the host's turn and
        budget files hold any of their text, plain or base64."""
        marker = b"do-not-keep-" + b"m" * 48
        with Log(
            REPO,
            path=PATH,
            token=localhub.token,
            api_url=localhub.url,
            budget_dir=tmp_path / "host",
            coordinator=redis_server.url if shared == "redis" else None,
            pacing=None,
        ) as log:
            for n in range(3):
                log.append({"n": n, "text": marker.decode()})
                log.flush(timeout=30)
        assert [r["n"] for r in committed_records(localhub)] == [0, 1, 2]
        files = b"".join(p.read_bytes() for p in (tmp_path / "host").rglob("*") if p.is_file())
        dump = redis_dump(redis_server.url)
        for form in encodings(marker):
            assert form not in files
            assert form not in dump

    def test_a_turn_record_keeps_a_bounded_number_of_small_heads(self, tmp_path: Path) -> None:
        """However many logs write a branch, and however big a folder, the turn record stays
        bounded: a few heads are kept, and a head too big to share is not shared."""
        from gitjsonl._chain import (
            CHAIN_LENGTH,
            SHARED_HEAD_BYTES,
            SHARED_HEADS,
            Head,
            head_to_json,
        )
        from gitjsonl._github import DirEntry
        from gitjsonl._turn import Turn

        file = tmp_path / "turn.json"
        turn = Turn(file)
        writes = CHAIN_LENGTH + SHARED_HEADS
        for n in range(writes):
            with turn.take() as taken:
                link = Link(f"{n:040x}", f"{n - 1:040x}", "t" * 40, f"log{n}", 1, "s" * 40)
                taken.add(link, object(), shared={"commit": link.commit, "pad": "x" * 1000})
        size = file.stat().st_size
        with turn.take() as taken:
            assert len(taken.chain) == CHAIN_LENGTH
        record = json.loads(file.read_text())
        assert len(record["heads"]) == SHARED_HEADS
        assert f"log{writes - 1}" in record["heads"]
        assert size < SHARED_HEADS * 2000 + CHAIN_LENGTH * 400
        big = tuple(
            DirEntry(f"{n:08d}.jsonl", f"data/{n:08d}.jsonl", "b" * 40, 10, "file")
            for n in range(1, 2000)
        )
        assert head_to_json(Head("c" * 40, "t" * 40, big, ((),), {})) is None
        assert SHARED_HEAD_BYTES < 100 * 1024


class TestFaults:
    def test_unreachable_at_start_writes_everything_with_one_warning(
        self, localhub: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A coordinator nobody answers: every record lands, one WARNING, the host's budget."""
        url = f"redis://127.0.0.1:{free_port()}/0"
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            log = Log(
                REPO,
                path=PATH,
                token=localhub.token,
                api_url=localhub.url,
                budget_dir=tmp_path,
                coordinator=url,
                flush_interval=0.05,
            )
            for i in range(20):
                log.append({"i": i})
                if i % 5 == 4:
                    log.flush(timeout=30)
            stats = log.stats()
            log.close(timeout=30)
        assert [r["i"] for r in committed_records(localhub)] == list(range(20))
        warnings = [r for r in caplog.records if "coordinator" in r.getMessage()]
        assert len(warnings) == 1
        assert stats.budget is not None
        assert stats.budget.shared == "host"

    def test_every_call_is_bounded_by_the_socket_timeout(self) -> None:
        """A Redis that accepts but never answers costs about a second, not the HTTP timeout."""
        import socket

        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            coordinator = Coordinator(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
            started = time.monotonic()
            with pytest.raises(CoordinatorDown):
                coordinator.call(lambda r: r.script("load", ["a", "b"], ["w", 60]))
            assert time.monotonic() - started < 3
            # Tried again only after RETRY_EVERY: at once, Redis is not even asked.
            asked: list[object] = []
            with pytest.raises(CoordinatorDown):
                coordinator.call(asked.append)
            assert asked == []


class TestVisible:
    def test_doctor_names_the_coordinator_its_version_and_writers(
        self,
        localhub: Any,
        redis_server: RedisServer,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """doctor --coordinator prints a line: reachable, Redis's version, round trip, writers."""
        from gitjsonl._cli import main

        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        writer = budget_for(
            PACING,
            Credentials(localhub.url, localhub.token),
            directory=None,
            coordinator=Coordinator(redis_server.url),
        )
        assert writer.reserve(1)[0] is not None  # one writer on the token, seen just now
        code = main(
            ["--repo", REPO, "--api-url", localhub.url, "--coordinator", redis_server.url, "doctor"]
        )
        out = capsys.readouterr().out
        line = next(x for x in out.splitlines() if "coordinator" in x)
        assert code == 0, out
        assert "Redis " in line
        assert "round trip" in line
        assert "1 writer(s) sharing the token now" in line

    def test_doctor_says_when_the_coordinator_does_not_answer(
        self, localhub: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unreachable coordinator is a ✗ line with advice, its password hidden; writing is
        still ready (the host's ledger serves)."""
        from gitjsonl._cli import main

        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
        code = main(["--repo", REPO, "--api-url", localhub.url, "--coordinator", url, "doctor"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "does not answer" in out
        assert "s3cret" not in out

    def test_stats_say_the_budget_lives_on_every_host(
        self, localhub: Any, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """A Log with a coordinator that answers reports its budget as shared by "hosts"."""
        log = Log(
            REPO,
            path=PATH,
            token=localhub.token,
            api_url=localhub.url,
            budget_dir=tmp_path,
            coordinator=redis_server.url,
        )
        try:
            log.append({"i": 1})
            log.flush(timeout=30)
            stats = log.stats()
        finally:
            log.close(timeout=30)
        assert stats.budget is not None
        assert stats.budget.shared == "hosts"
        assert stats.budget.last_minute >= 3


class TestHeadAcrossHosts:
    def test_the_next_host_builds_on_the_record_without_reading(
        self, localhub: Any, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """After another host's batch, a host catches up from the turn record: its next batch
        reads nothing of the branch (no ref, tree, contents or blob read) and lands."""
        logs = [
            Log(
                REPO,
                path=PATH,
                token=localhub.token,
                api_url=localhub.url,
                budget_dir=tmp_path / f"host{n}",
                coordinator=redis_server.url,
                pacing=None,
            )
            for n in range(2)
        ]
        try:
            for n, log in enumerate([*logs, *logs]):
                if n == 3:
                    before = len(localhub.requests)
                log.append({"n": n})
                log.flush(timeout=30)
            reads = [r for r in localhub.requests[before:] if r.method == "GET"]
        finally:
            for log in logs:
                log.close(timeout=30)
        assert [r["n"] for r in committed_records(localhub)] == [0, 1, 2, 3]
        # The small file the other host rewrote is read by its sha (a turn record carries
        # no record's text); nothing of the branch (no ref, tree or contents read).
        branch_reads = [r for r in reads if "/git/blobs/" not in r.path]
        assert branch_reads == [], [r.path for r in branch_reads]
        assert len(reads) <= 1, [r.path for r in reads]

    def test_a_forged_head_in_the_record_is_never_built_on(self) -> None:
        """A record's head whose folder does not hash to its link's folder sha is refused."""
        from gitjsonl._chain import Head, head_from_json, head_to_json
        from gitjsonl._github import DirEntry, git_blob_sha
        from gitjsonl._gittree import rebuild_path, tree_sha

        text = b'{"i":1}\n'
        folder = (DirEntry("00000001.jsonl", "data/00000001.jsonl", git_blob_sha(text), 8, "file"),)
        trees = rebuild_path(("data",), ((),), folder)
        assert trees.shas[0] is not None
        head = Head("c" * 40, trees.shas[0], folder, ((),), {git_blob_sha(text): text})
        data = head_to_json(head)
        assert head_from_json(data, ("data",), tree_sha(folder)) == Head(
            "c" * 40, trees.shas[0], folder, ((),), {}
        )
        assert head_from_json(data, ("data",), "0" * 40) is None
        assert isinstance(data, dict)
        assert head_from_json({**data, "tree": "1" * 40}, ("data",), tree_sha(folder)) is None


class TestDroppedConnection:
    def test_a_connection_redis_dropped_is_made_again_without_falling_back(
        self, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Redis closing an idle client's connection costs one reconnect, not a WARNING."""
        import redis

        one, _ = two_hosts(redis_server.url, tmp_path)
        assert one.reserve(1)[0] is not None
        redis.Redis.from_url(redis_server.url).client_kill_filter(_type="normal", skipme=True)
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            token, _ = one.reserve(1)
        assert token is not None
        assert caplog.records == []
        assert one.stats().shared == "hosts"


class TestNonsense:
    def test_a_server_answering_nonsense_is_fallen_back_from(
        self, localhub: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A "Redis" that answers +OK to everything: one WARNING, every record lands once."""
        import socket
        import threading

        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)

        def serve() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

        def answer(conn: socket.socket) -> None:
            with conn:
                while conn.recv(65536):
                    conn.sendall(b"+OK\r\n")

        threading.Thread(target=serve, daemon=True).start()
        try:
            with caplog.at_level(logging.WARNING, logger="gitjsonl"):
                log = Log(
                    REPO,
                    path=PATH,
                    token=localhub.token,
                    api_url=localhub.url,
                    budget_dir=tmp_path,
                    coordinator=f"redis://127.0.0.1:{server.getsockname()[1]}/0",
                )
                for i in range(10):
                    log.append({"i": i})
                log.flush(timeout=30)
                log.close(timeout=30)
        finally:
            server.close()
        assert [r["i"] for r in committed_records(localhub)] == list(range(10))
        assert len([r for r in caplog.records if "coordinator" in r.getMessage()]) == 1

    def test_a_hostile_budget_in_redis_is_repaired_not_obeyed(
        self, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """A budget state in Redis pausing for 1e308 s, or not JSON at all, never stops writes
        for more than GitHub's longest advised wait."""
        import redis

        one, _ = two_hosts(redis_server.url, tmp_path)
        client = redis.Redis.from_url(redis_server.url)
        token, _ = one.reserve(1)
        assert token is not None
        (key,) = client.keys("gitjsonl:budget:*")
        client.hset(key, "state", '{"format": 1, "blocked_until": 1e308, "allowance": -5}')
        _, wait = one.reserve(1)
        assert wait <= 3600
        client.hset(key, "state", "\xff not json")
        token, wait = one.reserve(1)
        assert token is not None
        assert wait == 0


class TestStatsCommand:
    def test_stats_command_reads_the_budget_from_the_coordinator(
        self,
        localhub: Any,
        redis_server: RedisServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """gitjsonl stats --coordinator shows the writes every host spent, from Redis."""
        from gitjsonl._cli import main

        log = Log(
            REPO,
            path=PATH,
            token=localhub.token,
            api_url=localhub.url,
            budget_dir=tmp_path / "elsewhere",
            coordinator=redis_server.url,
        )
        log.append({"i": 1})
        log.flush(timeout=30)
        log.close(timeout=30)
        time.sleep(1.0)  # the hub's reads lag behind its writes, as GitHub's do
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        args = ["--repo", REPO, "--api-url", localhub.url, "--coordinator", redis_server.url]
        assert main([*args, "stats"]) == 0
        out = capsys.readouterr().out
        assert "(every host)" in out, out
