"""gitjsonl.Log against a localhub that behaves as GitHub really does (issue 10).

Lagging reads, ref updates that land but answer 502 or land late, folders past
1,000 entries, GitHub's transient 422s, secondary limits as 403 or 429, moved
repositories and a writer that keeps losing races. Every outcome is read back
with git itself: each id exactly once, in order, linear history, fsck clean.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import gitjsonl
from gitjsonl import Log, RetryPolicy
from gitjsonl.testing import Fault, LocalHub

from .helpers import PATH, REPO, FakeClock, history_is_linear, make_log

Factory = Callable[..., LocalHub]

#: Real sleeps, short waits: read lag is wall-clock, so retries must really wait it out.
QUICK = RetryPolicy(
    initial_wait=0.05, max_wait=0.5, conflict_wait=0.01, max_conflict_wait=0.2, max_total_wait=60
)

REF_UPDATE = r"/git/refs/"
LANDED_BUT_502 = Fault(method="PATCH", path=REF_UPDATE, action="error_after", status=502)


def _records(hub: LocalHub, repo: str = REPO, ref: str = "main") -> list[dict[str, Any]]:
    """Every record of the log at ``ref`` of ``repo``, in order, read with git."""
    listing = hub.git(repo, "ls-tree", "--name-only", f"{ref}:{PATH}").split()
    names = sorted((n for n in listing if n.endswith(".jsonl")), key=lambda n: int(n[:-6]))
    data = b"".join(hub.read_file(repo, f"{PATH}/{name}", ref=ref) or b"" for name in names)
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _duplicates(values: list[Any]) -> dict[Any, int]:
    """Values seen more than once, with their counts."""
    return {v: n for v, n in collections.Counter(values).items() if n > 1}


def _assert_sound(hub: LocalHub, repo: str = REPO) -> None:
    """History is linear and ``git fsck --strict`` is clean."""
    assert hub.git(repo, "rev-list", "--merges", "main").strip() == ""
    hub.fsck(repo)


def _aged_hub(factory: Factory, **kwargs: Any) -> LocalHub:
    """A hub whose repository was created with a commit before the test: its branch does not lag.

    A branch made a moment ago reads as missing while reads lag
    (``TestFreshRepository`` covers that); these tests start from an old one.
    """
    return factory(repos=(REPO,), initial_commit=True, **kwargs)


def _warm(log: Log, record: dict[str, Any]) -> None:
    """Commit a first record before read lag is on, so the log has a known head."""
    log.append(record)
    log.flush(timeout=30)


def _foreign_writer(hub: LocalHub, stop: threading.Event, count: list[int], every: float) -> None:
    """Someone else committing other files on the same branch until ``stop``."""
    while not stop.is_set():
        try:
            hub.seed_commit(REPO, {f"other/{count[0]}.txt": b"x\n"}, message="foreign")
            count[0] += 1
        except RuntimeError:  # the branch moved under us: try again
            pass
        stop.wait(every)


class TestDuplicatesUnderReadLag:
    @pytest.mark.parametrize("run", range(6))
    def test_landed_update_answering_502_is_not_recommitted(
        self, localhub_factory: Factory, run: int
    ) -> None:
        """A ref update that lands but answers 502, with reads 1 s stale: ids [0, 1, 2]."""
        hub = _aged_hub(localhub_factory)
        with make_log(hub) as log:
            _warm(log, {"id": 0})
            hub.read_lag = 1.0
            hub.add_fault(LANDED_BUT_502)
            log.append({"id": 1})
            log.flush(timeout=30)
            log.append({"id": 2})
            log.flush(timeout=30)
            assert log.stats().landed_after_error == 1
        assert [r["id"] for r in _records(hub)] == [0, 1, 2]
        _assert_sound(hub)

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_two_writers_lag_and_landed_502s(self, localhub_factory: Factory, seed: int) -> None:
        """Two writers racing, 0.5-1.5 s of read lag, landed 502s: each id once, in order."""
        rng = random.Random(seed)
        hub = _aged_hub(localhub_factory, seed=seed)
        logs = [make_log(hub, retry=QUICK, sleep=time.sleep, segment_bytes=600) for _ in range(2)]
        try:
            for w, log in enumerate(logs):
                _warm(log, {"w": w, "i": -1})
            hub.read_lag = rng.uniform(0.5, 1.5)
            hub.add_fault(
                Fault(
                    method="PATCH",
                    path=REF_UPDATE,
                    action="error_after",
                    status=502,
                    probability=0.4,
                    times=3,
                )
            )

            errors: list[BaseException] = []

            def write(w: int) -> None:
                try:
                    for i in range(12):
                        logs[w].append({"w": w, "i": i})
                        if i % 3 == 2:
                            logs[w].flush(timeout=60)
                except gitjsonl.GitJsonlError as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
        finally:
            for log in logs:
                log.close(timeout=60)  # a test of faults, not of the shutdown deadline
        records = _records(hub)
        assert _duplicates([(r["w"], r["i"]) for r in records]) == {}
        for w in range(2):
            assert [r["i"] for r in records if r["w"] == w] == list(range(-1, 12))
        _assert_sound(hub)


class TestFreshRepository:
    @pytest.mark.parametrize("readme", [True, False], ids=["readme-just-pushed", "empty"])
    def test_first_flush_while_the_new_branch_still_reads_as_missing(
        self, localhub_factory: Factory, readme: bool
    ) -> None:
        """A branch made a moment ago, under 1 s of read lag: the first flush() succeeds."""
        hub = localhub_factory(repos=(REPO,), read_lag=1.0)
        if readme:
            hub.seed_commit(REPO, {"README.md": b"# repo\n"}, message="Initial commit")
        with make_log(hub, retry=QUICK, sleep=time.sleep) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            log.append({"id": 1})
        assert [r["id"] for r in _records(hub)] == [0, 1]
        _assert_sound(hub)


class TestLateLandingRefUpdate:
    @pytest.mark.parametrize("times", [1, 3])
    def test_update_landing_after_the_client_timeout(
        self, localhub_factory: Factory, times: int
    ) -> None:
        """A PATCH that lands 1.4 s later, past timeout=1, is committed exactly once."""
        hub = _aged_hub(localhub_factory)
        # Real backoff: the retry must come after the late update has landed.
        with make_log(hub, timeout=1, sleep=time.sleep) as log:
            for i in range(10):
                log.append({"id": i})
            log.flush(timeout=30)
            hub.add_fault(
                Fault(method="PATCH", path=REF_UPDATE, action="latency", delay=1.4, times=times)
            )
            for i in range(10, 20):
                log.append({"id": i})
            log.flush(timeout=60)
            for i in range(20, 30):
                log.append({"id": i})
            log.flush(timeout=60)
            time.sleep(1.5)  # every late update has landed by now
            for i in range(30, 40):
                log.append({"id": i})
        assert [r["id"] for r in _records(hub)] == list(range(40))
        _assert_sound(hub)


SEGMENTS = 1005


def _grown_log(hub: LocalHub, *, manifest: bool = False) -> None:
    """Another writer's log of SEGMENTS one-record segments, committed at once with git."""
    files: dict[str, bytes | None] = {
        f"{PATH}/{n:08d}.jsonl": json.dumps({"id": n - 1}).encode() + b"\n"
        for n in range(1, SEGMENTS + 1)
    }
    if manifest:
        # Migrated: the legacy file must no longer be read. The manifest sorts
        # after every segment, the first entry a capped listing would lose.
        files[f"{PATH}.jsonl"] = b'{"id": "legacy"}\n'
        files[f"{PATH}/_gitjsonl.json"] = json.dumps({"migrated_from": f"{PATH}.jsonl"}).encode()
    hub.seed_commit(REPO, files, message="another writer")
    time.sleep(hub.read_lag)  # grown a while ago: every read sees it


class TestPastAThousandSegments:
    def test_appends_overwrite_nothing(self, localhub: LocalHub) -> None:
        """With 1,005 segments, new batches go after the last one; every old file is intact."""
        assert localhub.contents_listing_cap == 1000
        _grown_log(localhub)
        names = [f"{n:08d}.jsonl" for n in (999, 1000, 1001, SEGMENTS)]
        before = {name: localhub.read_file(REPO, f"{PATH}/{name}") for name in names}
        with make_log(localhub, segment_bytes=40) as log:
            for i in range(SEGMENTS, SEGMENTS + 20):
                log.append({"id": i})
                if i % 5 == 0:
                    log.flush(timeout=30)
        for name, data in before.items():
            after = localhub.read_file(REPO, f"{PATH}/{name}")
            assert data is not None
            assert after is not None
            # The active segment may grow; no segment loses a byte.
            assert after.startswith(data) if name == names[-1] else after == data
        assert [r["id"] for r in _records(localhub)] == list(range(SEGMENTS + 20))
        _assert_sound(localhub)

    def test_tail_is_the_true_last_five(self, localhub: LocalHub) -> None:
        """tail(5) is the last five records past the 1,000th segment, before and after an append."""
        _grown_log(localhub)
        with make_log(localhub) as log:
            assert [r["id"] for r in log.tail(5)] == list(range(SEGMENTS - 5, SEGMENTS))
            log.append({"id": SEGMENTS})
            log.flush(timeout=30)
            assert [r["id"] for r in log.tail(5)] == list(range(SEGMENTS - 4, SEGMENTS + 1))

    @pytest.mark.slow
    def test_records_yield_every_segment_and_the_manifest_counts(self, localhub: LocalHub) -> None:
        """records() yields all 1,005 segments; a manifest sorted after them keeps legacy unread."""
        _grown_log(localhub, manifest=True)
        with make_log(localhub) as log:
            log.append({"id": SEGMENTS})
            log.flush(timeout=30)
            assert [r["id"] for r in log.records()] == list(range(SEGMENTS + 1))

    def test_a_restarted_writer_continues_the_sequence(self, localhub: LocalHub) -> None:
        """A second Log on a 1,005-segment log appends after the first one's segment."""
        _grown_log(localhub)
        for start in (SEGMENTS, SEGMENTS + 3):
            with make_log(localhub, segment_bytes=40) as log:
                for i in range(start, start + 3):
                    log.append({"id": i})
        assert [r["id"] for r in _records(localhub)] == list(range(SEGMENTS + 6))


TRANSIENT_422 = [
    ("PATCH", REF_UPDATE, "error", "Reference update failed"),
    ("PATCH", REF_UPDATE, "error_after", "Reference update failed"),
    ("PATCH", REF_UPDATE, "error", "Reference cannot be updated"),
    ("POST", r"/git/trees$", "error", "Sorry, your request timed out"),
    ("POST", r"/git/trees$", "error", "base_tree is not a valid tree oid"),
]


class TestTransient422:
    @pytest.mark.parametrize(("method", "path", "action", "message"), TRANSIENT_422, ids=str)
    def test_retried_and_committed_once(
        self, localhub: LocalHub, method: str, path: str, action: str, message: str
    ) -> None:
        """GitHub's transient 422 is retried: flush() succeeds and each record lands once."""
        with make_log(localhub) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.add_fault(
                Fault(method=method, path=path, action=action, status=422, message=message)
            )
            for i in range(1, 10):
                log.append({"id": i})
            log.flush(timeout=30)
            stats = log.stats()
            assert stats.failures == 0
            assert stats.retries >= 1
        hits = [r for r in localhub.requests if r.status == 422]
        assert len(hits) == 1
        assert [r["id"] for r in _records(localhub)] == list(range(10))
        _assert_sound(localhub)


class TestSecondaryLimits:
    @pytest.mark.parametrize(
        ("status", "retry_after"), [(403, 7), (429, 7), (403, None), (429, None)]
    )
    def test_waited_out_not_failed(
        self, localhub: LocalHub, status: int, retry_after: int | None
    ) -> None:
        """A secondary limit as 403 or 429 is waited out (retry-after, else 60 s), not failed."""
        clock = FakeClock()
        with make_log(localhub, clock=clock.time, sleep=clock.sleep) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.add_fault(
                Fault(
                    method="POST", action="secondary_limit", status=status, retry_after=retry_after
                )
            )
            for i in range(1, 10):
                log.append({"id": i})
            log.flush(timeout=30)
            stats = log.stats()
            assert stats.rate_limited == 1
            assert stats.failures == 0
            assert (retry_after or 60) in [round(s) for s in clock.sleeps]
        assert [r.status for r in localhub.requests].count(status) == 1
        assert [r["id"] for r in _records(localhub)] == list(range(10))


NEW_NAME = "owner/renamed"


class TestMovedRepository:
    def test_followed_with_one_warning(
        self, localhub: LocalHub, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Renamed mid-run (branch= given): records land once under the new name; one warning."""
        with (
            caplog.at_level(logging.WARNING, logger="gitjsonl"),
            make_log(localhub, branch="main") as log,
        ):
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.rename_repo(REPO, NEW_NAME)
            for batch in range(3):
                for i in range(1 + batch * 5, 6 + batch * 5):
                    log.append({"id": i})
                log.flush(timeout=30)
            assert log.stats().failures == 0
            assert [r["id"] for r in log.tail(3)] == [13, 14, 15]
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert NEW_NAME in warnings[0].getMessage()
        assert [r["id"] for r in _records(localhub, NEW_NAME)] == list(range(16))
        _assert_sound(localhub, NEW_NAME)


class TestReadYourWrites:
    @pytest.mark.parametrize("read", ["tail", "records"])
    def test_reads_include_what_flush_committed(self, localhub_factory: Factory, read: str) -> None:
        """With reads 2 s stale, tail() and records() right after flush() show what it committed."""
        hub = _aged_hub(localhub_factory)
        with make_log(hub) as log:
            _warm(log, {"id": 0})
            hub.read_lag = 2.0
            log.append({"id": 1})
            log.flush(timeout=30)
            records = log.tail(2) if read == "tail" else list(log.records())
            assert [r["id"] for r in records] == [0, 1]


_TORTURE_WRITER = """
import json, sys, threading
import gitjsonl
api_url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
policy = gitjsonl.RetryPolicy(initial_wait=0.05, max_wait=0.5, conflict_wait=0.01,
                              max_conflict_wait=0.3, max_total_wait=60)
with gitjsonl.Log("owner/repo", path="data/interactions", api_url=api_url, token=token,
                  pacing=None, flush_interval=0.05, segment_bytes=2000, retry=policy) as log:
    def write(t):
        for i in range(RECORDS):
            log.append({"w": f"{name}-{t}", "i": i})
            if i % 10 == 9:
                log.flush(timeout=55)
    threads = [threading.Thread(target=write, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
stats = log.stats()
print(json.dumps({key: getattr(stats, key) for key in ("batches", "conflicts_retried",
                  "retries", "landed_after_error", "failures", "rate_limited")}))
"""
TORTURE_THREADS, TORTURE_RECORDS = 3, 60
FOREIGN_EVERY = 4.0


def _vary_lag(hub: LocalHub, stop: threading.Event, rng: random.Random) -> None:
    """Read lag drifting between 1 and 3 s, as GitHub's replicas catch up unevenly."""
    while not stop.is_set():
        hub.read_lag = rng.uniform(1.0, 3.0)
        stop.wait(0.5)


class TestTorture:
    @pytest.mark.slow
    def test_two_processes_lag_landed_502s_422s_and_a_foreign_committer(
        self, localhub_factory: Factory
    ) -> None:
        """Writers in 2 processes under 1-3 s of lag and every fault: each id once, in order."""
        hub = _aged_hub(localhub_factory, seed=10)
        faults = [
            Fault(method="PATCH", path=REF_UPDATE, action="error_after", status=502),
            Fault(method="PATCH", path=REF_UPDATE, status=422, message="Reference update failed"),
            Fault(
                method="PATCH", path=REF_UPDATE, status=422, message="Reference cannot be updated"
            ),
            Fault(
                method="POST",
                path=r"/git/trees$",
                status=422,
                message="Sorry, your request timed out",
            ),
            Fault(
                method="POST",
                path=r"/git/trees$",
                status=422,
                message="base_tree is not a valid tree oid",
            ),
        ]
        for fault, probability in zip(faults, [0.1, 0.03, 0.03, 0.03, 0.03], strict=True):
            hub.add_fault(dataclasses.replace(fault, probability=probability, times=None))
        stop, foreign = threading.Event(), [0]
        helpers = [
            threading.Thread(target=_foreign_writer, args=(hub, stop, foreign, FOREIGN_EVERY)),
            threading.Thread(target=_vary_lag, args=(hub, stop, random.Random(10))),
        ]
        for thread in helpers:
            thread.start()
        script = _TORTURE_WRITER.replace("RECORDS", str(TORTURE_RECORDS)).replace(
            "THREADS", str(TORTURE_THREADS)
        )
        started = time.monotonic()
        try:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", script, hub.url, hub.token, name],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for name in ("p1", "p2")
            ]
            outputs = [proc.communicate(timeout=100)[0] for proc in procs]
        finally:
            stop.set()
            for thread in helpers:
                thread.join()
        elapsed = time.monotonic() - started
        assert [proc.returncode for proc in procs] == [0, 0]
        stats = [json.loads(out.splitlines()[-1]) for out in outputs]
        records = _records(hub)
        assert _duplicates([(r["w"], r["i"]) for r in records]) == {}
        writers = [f"{p}-{t}" for p in ("p1", "p2") for t in range(TORTURE_THREADS)]
        for writer in writers:
            assert [r["i"] for r in records if r["w"] == writer] == list(range(TORTURE_RECORDS))
        assert len(records) == len(writers) * TORTURE_RECORDS
        assert foreign[0] > 0
        for n in range(foreign[0]):
            assert hub.read_file(REPO, f"other/{n}.txt") == b"x\n"
        fired = collections.Counter(r.status for r in hub.requests if r.status in (422, 502))
        assert fired[502] > 0, fired
        assert fired[422] > 0, fired
        assert all(s["failures"] == 0 for s in stats), stats
        assert history_is_linear(hub)
        _assert_sound(hub)
        assert elapsed < 60
        print(
            f"torture: {elapsed:.1f} s, {foreign[0]} foreign commits, faults {dict(fired)}, {stats}"
        )


class TestBoundedTime:
    def test_losing_every_race_reports_after_its_budget(self, localhub: LocalHub) -> None:
        """A batch refused as not fast-forward forever fails after max_total_wait, records kept."""
        clock = FakeClock()
        policy = RetryPolicy(max_total_wait=5.0)
        with make_log(localhub, retry=policy, clock=clock.time, sleep=clock.sleep) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            # The budget is counted in fake seconds, the server's lag in real ones: let the
            # new branch become readable first, so that only the refusals are measured.
            time.sleep(localhub.read_lag)
            localhub.add_fault(
                Fault(
                    method="PATCH",
                    path=REF_UPDATE,
                    status=422,
                    message="Update is not a fast forward",
                    times=None,
                )
            )
            for i in range(1, 6):
                log.append({"id": i})
            with pytest.raises(gitjsonl.NotFastForward):
                log.flush(timeout=30)
            waited = sum(clock.sleeps)
            refused = sum(1 for r in localhub.requests if r.status == 422)
            stats = log.stats()
            assert stats.pending == 5
            assert stats.failures == 1
            # The wait that would cross the budget is not slept: the batch reports instead.
            assert policy.max_total_wait - policy.max_conflict_wait <= waited
            assert waited < policy.max_total_wait
            # After each refusal, reads that still show the refused head are tried again a
            # few times before four writes are spent on it (they may lag; here it never
            # moved): fewer refused updates than attempts.
            assert 2 <= refused < stats.retries
            localhub.clear_faults()
            log.flush(timeout=30)
            assert log.stats().pending == 0
        assert [r["id"] for r in _records(localhub)] == list(range(6))
        _assert_sound(localhub)
