"""gitjsonl.Log against localhub: batching, exactly-once commits, conflicts, faults, limits."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any

import pytest

import gitjsonl
from gitjsonl import (
    AuthenticationError,
    BufferFull,
    FlushTimeout,
    LogClosed,
    NotFound,
    PermissionDenied,
    RecordError,
)
from gitjsonl.testing import Fault, LocalHub

from .helpers import (
    PATH,
    REPO,
    committed_records,
    history_is_linear,
    make_log,
    segment_files,
)


class TestAppendAndFlush:
    def test_records_land_once_in_order(self, localhub: LocalHub) -> None:
        """Every appended record is in the repository once, in append order, after flush."""
        with make_log(localhub) as log:
            for i in range(250):
                log.append({"id": i, "text": "héllo"})
            log.flush(timeout=30)
            assert log.stats().committed == 250
            assert log.stats().pending == 0
        assert [r["id"] for r in committed_records(localhub)] == list(range(250))
        localhub.fsck(REPO)

    def test_bootstrap_of_an_empty_repository(self, localhub: LocalHub) -> None:
        """An empty repository is initialised through the Contents API, then logged to."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            log.flush(timeout=30)
        puts = [r for r in localhub.requests if r.method == "PUT"]
        assert len(puts) == 1
        assert localhub.read_file(REPO, f"{PATH}/README.md") is not None
        assert committed_records(localhub) == [{"id": 1}]

    def test_missing_branch_is_created_from_the_default_branch(self, localhub_factory: Any) -> None:
        """A branch that does not exist yet starts at the default branch's head."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True)
        with make_log(hub, branch="logs") as log:
            log.append({"id": 1})
            log.flush(timeout=30)
        assert committed_records(hub, ref="logs") == [{"id": 1}]
        assert hub.read_file(REPO, "README.md", ref="logs") is not None
        assert hub.read_file(REPO, f"{PATH}/00000001.jsonl", ref="main") is None

    def test_append_serialises_immediately(self, localhub: LocalHub) -> None:
        """Mutating a dict after append changes nothing that is logged."""
        record: dict[str, Any] = {"id": 1, "tags": ["a"]}
        with make_log(localhub) as log:
            log.append(record)
            record["tags"].append("b")
            record["id"] = 2
        assert committed_records(localhub) == [{"id": 1, "tags": ["a"]}]

    def test_bad_record_raises_and_others_survive(self, localhub: LocalHub) -> None:
        """A NaN record raises at its append; the records around it are committed."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            with pytest.raises(RecordError):
                log.append({"id": 2, "score": math.nan})
            with pytest.raises(RecordError):
                log.append({"id": 3, "when": object()})
            log.append({"id": 4})
        assert [r["id"] for r in committed_records(localhub)] == [1, 4]

    def test_threads_append_concurrently(self, localhub: LocalHub) -> None:
        """Records appended from many threads are all committed, each thread's in order."""
        with make_log(localhub) as log:

            def write(t: int) -> None:
                for i in range(100):
                    log.append({"t": t, "i": i})

            threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        records = committed_records(localhub)
        assert len(records) == 800
        for t in range(8):
            assert [r["i"] for r in records if r["t"] == t] == list(range(100))

    def test_flush_interval_commits_without_flush(self, localhub: LocalHub) -> None:
        """Records are committed by the timer alone, without any flush() call."""
        log = make_log(localhub, flush_interval=0.05)
        try:
            log.append({"id": 1})
            deadline = time.monotonic() + 10
            while log.stats().committed < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert committed_records(localhub) == [{"id": 1}]
        finally:
            log.close()

    def test_close_is_idempotent_and_refuses_appends(self, localhub: LocalHub) -> None:
        """close() twice is fine; append() and flush() after it raise LogClosed."""
        log = make_log(localhub)
        log.append({"id": 1})
        log.close()
        log.close()
        with pytest.raises(LogClosed):
            log.append({"id": 2})
        with pytest.raises(LogClosed):
            log.flush()
        assert committed_records(localhub) == [{"id": 1}]


class TestRequestCounts:
    def test_steady_state_batch_costs_three_requests(self, localhub: LocalHub) -> None:
        """After the first batch, each batch is tree (files inline), commit and PATCH: no reads."""
        with make_log(localhub) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            for batch in range(5):
                start = len(localhub.requests)
                for i in range(20):
                    log.append({"batch": batch, "i": i})
                log.flush(timeout=30)
                calls = [(r.method, r.path.split("/")[5]) for r in localhub.requests[start:]]
                assert [m for m, _ in calls] == ["POST", "POST", "PATCH"], calls
                assert [p for _, p in calls] == ["trees", "commits", "refs"]

    def test_bytes_uploaded_per_batch_do_not_grow_with_the_log(self, localhub: LocalHub) -> None:
        """Upload size is bounded by the segment cap, not by the log's total size."""
        uploads: list[int] = []
        with make_log(localhub, segment_bytes=64 * 1024) as log:
            for batch in range(40):
                start = len(localhub.requests)
                for i in range(20):
                    log.append({"batch": batch, "i": i, "pad": "x" * 200})
                log.flush(timeout=30)
                uploads.append(sum(r.bytes_in for r in localhub.requests[start:]))
        total = sum(len(v) for v in segment_files(localhub).values())
        assert total > 150 * 1024  # the log is several segments long
        assert max(uploads) < 2 * 64 * 1024 * 4 / 3 + 4096  # one segment, base64, plus JSON


class TestSegments:
    def test_rotation_keeps_every_file_under_the_cap(self, localhub: LocalHub) -> None:
        """With a small cap the log spans several segments, none over the cap."""
        with make_log(localhub, segment_bytes=2000) as log:
            for i in range(300):
                log.append({"id": i, "pad": "y" * 30})
                if i % 25 == 0:
                    log.flush(timeout=30)
        files = segment_files(localhub)
        assert len(files) > 3
        assert all(len(data) <= 2000 for data in files.values())
        assert list(files) == [f"{n:08d}.jsonl" for n in range(1, len(files) + 1)]
        assert [r["id"] for r in committed_records(localhub)] == list(range(300))

    def test_record_over_the_cap_gets_its_own_segment(self, localhub: LocalHub) -> None:
        """A record larger than segment_bytes is alone in a segment."""
        with make_log(localhub, segment_bytes=500) as log:
            log.append({"id": 1})
            log.append({"id": 2, "big": "z" * 2000})
            log.append({"id": 3})
        sizes = [len(d) for d in segment_files(localhub).values()]
        assert any(size > 2000 for size in sizes)
        assert [r["id"] for r in committed_records(localhub)] == [1, 2, 3]

    def test_a_new_log_continues_the_sequence(self, localhub: LocalHub) -> None:
        """A second Log (a restarted process) appends after the first one's records."""
        with make_log(localhub, segment_bytes=300) as log:
            for i in range(20):
                log.append({"id": i})
        with make_log(localhub, segment_bytes=300) as log:
            for i in range(20, 40):
                log.append({"id": i})
        assert [r["id"] for r in committed_records(localhub)] == list(range(40))


class TestConflicts:
    def test_foreign_commit_on_other_files_is_preserved(self, localhub: LocalHub) -> None:
        """A commit by someone else between batches is kept; our batch is rebuilt on top."""
        with make_log(localhub) as log:
            log.append({"id": 1})
            log.flush(timeout=30)
            localhub.seed_commit(REPO, {"docs/notes.md": b"mine\n"}, message="foreign")
            log.append({"id": 2})
            log.flush(timeout=30)
            assert log.stats().conflicts_retried == 1
        assert localhub.read_file(REPO, "docs/notes.md") == b"mine\n"
        assert [r["id"] for r in committed_records(localhub)] == [1, 2]
        assert history_is_linear(localhub)

    def test_two_writers_share_one_log(self, localhub: LocalHub) -> None:
        """Two Logs on one path, each with its own token, race; nothing is lost or doubled."""
        # Logs on one token take turns and never race (tests/test_budget.py): two tokens do.
        with (
            make_log(localhub, segment_bytes=1500) as a,
            make_log(localhub, segment_bytes=1500, token="another-write-token") as b,
        ):
            for i in range(60):
                a.append({"w": "a", "i": i})
                b.append({"w": "b", "i": i})
                if i % 10 == 9:
                    a.flush(timeout=30)
                    b.flush(timeout=30)
            conflicts = a.stats().conflicts_retried + b.stats().conflicts_retried
        records = committed_records(localhub)
        assert conflicts >= 1
        for writer in "ab":
            assert [r["i"] for r in records if r["w"] == writer] == list(range(60))
        assert all(len(d) <= 1500 for d in segment_files(localhub).values())
        assert history_is_linear(localhub)
        localhub.fsck(REPO)


def _foreign_writer(hub: LocalHub, stop: threading.Event, count: list[int]) -> None:
    while not stop.is_set():
        try:
            hub.seed_commit(REPO, {f"other/{count[0]}.txt": b"x\n"}, message="foreign")
            count[0] += 1
        except RuntimeError:  # the branch moved under us: try again
            pass
        stop.wait(1.0)


class TestFaults:
    @pytest.mark.parametrize(
        "fault",
        [
            Fault(method="PATCH", path=r"/git/refs/", action="error_after", status=502),
            Fault(method="PATCH", path=r"/git/refs/", action="drop_after"),
            Fault(method="PATCH", path=r"/git/refs/", action="error", status=503),
            Fault(method="POST", path=r"/git/commits$", action="error_after", status=500),
            Fault(method="POST", path=r"/git/commits$", action="drop_after"),
            Fault(method="POST", path=r"/git/trees$", action="drop_after"),
            Fault(method="POST", path=r"/git/trees$", action="error", status=502),
            Fault(method="GET", path=r"/git/ref/", action="error", status=500),
        ],
        ids=lambda f: f"{f.method}-{f.path}-{f.action}",
    )
    def test_exactly_once_under_each_fault(self, localhub: LocalHub, fault: Fault) -> None:
        """Whatever fails, and whether or not the work was done, each record lands once."""
        with make_log(localhub) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.add_fault(fault)
            for i in range(1, 30):
                log.append({"id": i})
            log.flush(timeout=30)
            for i in range(30, 40):
                log.append({"id": i})
        assert [r["id"] for r in committed_records(localhub)] == list(range(40))
        assert history_is_linear(localhub)
        localhub.fsck(REPO)

    def test_lost_answer_to_a_landed_update_is_recognised(self, localhub: LocalHub) -> None:
        """A PATCH that landed but answered 502 is found in history, not committed twice."""
        with make_log(localhub) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.add_fault(Fault(method="PATCH", action="error_after", status=502))
            log.append({"id": 1})
            log.flush(timeout=30)
            assert log.stats().landed_after_error == 1
            assert log.stats().batches == 2
        commits = localhub.git(REPO, "log", "--format=%s", "main").splitlines()
        assert sum("append" in c for c in commits) == 2

    def test_landed_update_found_below_a_foreign_commit(self, localhub: LocalHub) -> None:
        """If someone commits on top of our lost-answer commit, the batch id still finds it."""
        with make_log(localhub) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            fired = threading.Event()

            def after_patch() -> None:
                fired.wait(10)
                localhub.seed_commit(REPO, {"other.txt": b"x\n"}, message="foreign")

            localhub.add_fault(Fault(method="PATCH", action="error_after", status=504, delay=0.0))
            log.append({"id": 1})
            thread = threading.Thread(target=after_patch)
            thread.start()
            fired.set()
            log.flush(timeout=30)
            thread.join()
            log.append({"id": 2})
        assert [r["id"] for r in committed_records(localhub)] == [0, 1, 2]

    def test_many_writers_with_random_faults_and_a_foreign_writer(
        self, localhub_factory: Any
    ) -> None:
        """Eight writers, random faults and a foreign committer: every id exactly once."""
        hub = localhub_factory(repos=(REPO,), seed=7)
        for method, action in [
            ("PATCH", "error_after"),
            ("PATCH", "drop_after"),
            ("POST", "error"),
            ("POST", "error_after"),
        ]:
            hub.add_fault(Fault(method=method, action=action, times=None, probability=0.05))
        stop, foreign = threading.Event(), [0]
        other = threading.Thread(target=_foreign_writer, args=(hub, stop, foreign))
        other.start()
        # Eight writers on one branch lose many races; give them room to retry.
        policy = gitjsonl.RetryPolicy(
            max_attempts=200,
            initial_wait=0.05,
            max_wait=0.5,
            conflict_wait=0.01,
            max_conflict_wait=0.1,
        )
        # Real sleeps: jittered backoff is what spreads racing writers apart.
        logs = [make_log(hub, segment_bytes=4000, retry=policy, sleep=time.sleep) for _ in range(8)]
        try:

            def write(w: int) -> None:
                for i in range(24):
                    logs[w].append({"w": w, "i": i})
                    if i % 8 == 7:
                        logs[w].flush(timeout=60)

            threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            try:
                for log in logs:
                    log.close(timeout=60)  # a test of faults, not of the shutdown deadline
            finally:
                stop.set()
                other.join()
        records = committed_records(hub)
        assert len(records) == 192
        for w in range(8):
            assert [r["i"] for r in records if r["w"] == w] == list(range(24))
        assert history_is_linear(hub)
        assert foreign[0] > 0
        for n in range(foreign[0]):
            assert hub.read_file(REPO, f"other/{n}.txt") == b"x\n"
        hub.fsck(REPO)


class TestPermanentErrors:
    def test_bad_credentials_surface_and_records_are_kept(self, localhub_factory: Any) -> None:
        """401 raises AuthenticationError from flush(); nothing pending is dropped."""
        hub = localhub_factory(repos=(REPO,), tokens={"good": "write"})
        log = make_log(hub, token="wrong")
        log.append({"id": 1})
        with pytest.raises(AuthenticationError):
            log.flush(timeout=30)
        stats = log.stats()
        assert stats.pending == 1
        assert isinstance(stats.last_error, AuthenticationError)
        assert stats.failures >= 1
        with pytest.raises(AuthenticationError):
            log.close(timeout=10)

    def test_unknown_repository_is_not_found(self, localhub: LocalHub) -> None:
        """404 on an unknown repository raises NotFound from flush()."""
        log = make_log(localhub, repo="owner/missing")
        log.append({"id": 1})
        with pytest.raises(NotFound):
            log.flush(timeout=30)
        with pytest.raises(NotFound):
            log.close(timeout=10)

    def test_forbidden_then_allowed_commits_the_kept_records(self, localhub: LocalHub) -> None:
        """A 403 keeps the records; once GitHub allows it again, the next flush commits them."""
        with make_log(localhub) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.add_fault(Fault(method="POST", action="error", status=403, times=1))
            log.append({"id": 1})
            with pytest.raises(PermissionDenied):
                log.flush(timeout=30)
            log.append({"id": 2})
            log.flush(timeout=30)
        assert [r["id"] for r in committed_records(localhub)] == [0, 1, 2]

    def test_read_only_token_is_permission_denied(self, localhub_factory: Any) -> None:
        """A token that may only read gets PermissionDenied, with the record kept."""
        hub = localhub_factory(repos=(REPO,), tokens={"w": "write", "r": "read"})
        with make_log(hub, token="w") as log:
            log.append({"id": 0})
        log = make_log(hub, token="r")
        log.append({"id": 1})
        with pytest.raises(PermissionDenied):
            log.flush(timeout=30)
        assert log.stats().pending == 1
        with pytest.raises(PermissionDenied):
            log.close(timeout=10)

    def test_no_pygithub_exception_reaches_the_caller(self, localhub_factory: Any) -> None:
        """Errors are gitjsonl's own, with PyGithub's only as the chained cause."""
        hub = localhub_factory(repos=(REPO,), tokens={"good": "write"})
        log = make_log(hub, token="bad")
        log.append({"id": 1})
        with pytest.raises(gitjsonl.GitJsonlError) as info:
            log.flush(timeout=30)
        assert type(info.value).__module__.startswith("gitjsonl")
        assert type(info.value.__cause__).__module__.startswith("github")
        with pytest.raises(gitjsonl.GitJsonlError):
            log.close(timeout=10)


class TestRateLimits:
    @pytest.mark.parametrize("retry_after", [7, None])
    def test_secondary_limit_waits_and_batches_up(
        self, localhub: LocalHub, retry_after: int | None
    ) -> None:
        """A secondary limit is waited out (retry-after, else 60 s); records join one batch."""
        log = make_log(localhub)
        clock_sleeps = log._sleep.__self__.sleeps  # type: ignore[attr-defined]
        try:
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.add_fault(
                Fault(method="POST", action="secondary_limit", retry_after=retry_after)
            )
            for i in range(1, 20):
                log.append({"id": i})
            log.flush(timeout=30)
            stats = log.stats()
            assert stats.rate_limited == 1
            assert stats.failures == 0
            assert (retry_after or 60) in [round(s) for s in clock_sleeps]
        finally:
            log.close()
        assert [r["id"] for r in committed_records(localhub)] == list(range(20))

    def test_pacing_keeps_writes_under_the_servers_limit(self, localhub_factory: Any) -> None:
        """With pacing matching the server's limits, GitHub never has to say no."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True)
        # The hub counts real seconds; pacing uses its own (real) clock here too.
        log = make_log(
            hub,
            pacing=gitjsonl.Pacing(per_minute=12, per_hour=1000, minute=1.0, hour=60.0),
            sleep=time.sleep,
        )
        hub.secondary_limits = gitjsonl.testing.SecondaryLimits(
            per_minute=12, per_hour=1000, minute_window=1.0, hour_window=60.0
        )
        with log:
            for batch in range(6):
                log.append({"batch": batch})
                log.flush(timeout=30)
        assert all(r.status != 403 for r in hub.requests)
        assert [r["batch"] for r in committed_records(hub)] == list(range(6))


class TestBackpressure:
    def test_raise_policy_refuses_the_record_that_does_not_fit(self, localhub: LocalHub) -> None:
        """on_full='raise' raises BufferFull for the overflowing record; the others commit."""
        localhub.add_fault(Fault(action="latency", delay=0.5, times=1))
        with make_log(localhub, max_pending_bytes=200, flush_interval=10) as log:
            accepted = 0
            error: BufferFull | None = None
            for i in range(100):
                try:
                    log.append({"id": i, "pad": "p" * 20})
                except BufferFull as exc:
                    error = exc
                    break
                accepted += 1
            assert error is not None
        assert [r["id"] for r in committed_records(localhub)] == list(range(accepted))

    def test_drop_policy_counts_what_it_drops(self, localhub: LocalHub) -> None:
        """on_full='drop' never raises and counts every dropped record."""
        with make_log(localhub, max_pending_bytes=200, flush_interval=10, on_full="drop") as log:
            for i in range(50):
                log.append({"id": i, "pad": "p" * 20})
            stats = log.stats()
            assert stats.dropped > 0
            assert stats.appended + stats.dropped == 50
        assert len(committed_records(localhub)) == 50 - stats.dropped

    def test_dropped_records_are_told_once_a_minute_not_once_each(
        self, localhub: LocalHub, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A burst of dropped records is one WARNING with their count, not one per record."""
        with (
            caplog.at_level(logging.WARNING, logger="gitjsonl"),
            make_log(localhub, max_pending_bytes=200, flush_interval=10, on_full="drop") as log,
        ):
            for i in range(50):
                log.append({"id": i, "pad": "p" * 20})
            dropped = log.stats().dropped
        warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
        assert dropped > 1
        assert len(warnings) == 1
        assert warnings[0].name == "gitjsonl._log"  # loggers are named by module

    def test_block_policy_waits_for_room(self, localhub: LocalHub) -> None:
        """on_full='block' makes append wait for a commit instead of losing anything."""
        with make_log(localhub, max_pending_bytes=300, on_full="block", batch_bytes=100) as log:
            for i in range(60):
                log.append({"id": i, "pad": "p" * 20})
        assert [r["id"] for r in committed_records(localhub)] == list(range(60))

    def test_flush_timeout_keeps_records_pending(self, localhub: LocalHub) -> None:
        """flush(timeout) raises FlushTimeout when GitHub is slow; the records still land."""
        with make_log(localhub) as log:
            log.append({"id": 0})
            log.flush(timeout=30)
            localhub.add_fault(Fault(method="POST", action="latency", delay=1.0))
            log.append({"id": 1})
            with pytest.raises(FlushTimeout):
                log.flush(timeout=0.2)
            log.flush(timeout=30)
        assert [r["id"] for r in committed_records(localhub)] == [0, 1]


class TestCommitMessages:
    def test_trailers_name_the_batch_and_skip_ci(self, localhub: LocalHub) -> None:
        """Each commit says [skip ci] and carries its batch id and record count."""
        with make_log(localhub, author=gitjsonl.Identity("Log Bot", "bot@example.com")) as log:
            for i in range(3):
                log.append({"id": i})
        body = localhub.git(REPO, "log", "-1", "--format=%B%n%an <%ae>", "main")
        assert "[skip ci]" in body
        assert "Gitjsonl-Records: 3" in body
        assert "Gitjsonl-Batch: " in body
        assert "Log Bot <bot@example.com>" in body


class TestReading:
    def test_tail_and_records(self, localhub: LocalHub) -> None:
        """tail(n) is the last n records oldest first; records() streams them all."""
        with make_log(localhub, segment_bytes=400) as log:
            for i in range(100):
                log.append({"id": i})
            log.flush(timeout=30)
            assert [r["id"] for r in log.tail(5)] == [95, 96, 97, 98, 99]
            assert [r["id"] for r in log.tail(1000)] == list(range(100))
            assert [r["id"] for r in log.records()] == list(range(100))
            assert log.tail(0) == []

    def test_corrupt_lines_are_skipped_and_counted(self, localhub: LocalHub) -> None:
        """A corrupt line in a segment is skipped with a counter; reading goes on."""
        data = b'{"id":1}\nnot json\n{"id":2}\n{"torn'
        localhub.seed_commit(REPO, {f"{PATH}/00000001.jsonl": data})
        with make_log(localhub) as log:
            assert [r["id"] for r in log.records()] == [1, 2]
            assert log.stats().corrupt_lines == 2
            log.append({"id": 3})
        # The torn file is left as it was; the new file keeps our record off its line.
        assert localhub.read_file(REPO, f"{PATH}/00000001.jsonl") == data
        assert localhub.read_file(REPO, f"{PATH}/00000002.jsonl") == b'\n{"id":3}\n'

    def test_tail_reads_a_legacy_file_larger_than_one_megabyte(self, localhub: LocalHub) -> None:
        """The legacy single file is read through the blob API, whatever its size."""
        legacy = b"".join(
            json.dumps({"id": i, "pad": "q" * 100}).encode() + b"\n" for i in range(12000)
        )
        assert len(legacy) > 1024 * 1024
        localhub.seed_commit(REPO, {f"{PATH}.jsonl": legacy})
        with make_log(localhub) as log:
            log.append({"id": 12000})
            log.flush(timeout=30)
            assert [r["id"] for r in log.tail(3)] == [11998, 11999, 12000]
            assert sum(1 for _ in log.records()) == 12001

    def test_migrated_legacy_file_is_not_read_twice(self, localhub: LocalHub) -> None:
        """Once a manifest says the legacy file was migrated, readers skip it."""
        localhub.seed_commit(
            REPO,
            {
                f"{PATH}.jsonl": b'{"id":1}\n',
                f"{PATH}/00000001.jsonl": b'{"id":1}\n',
                f"{PATH}/_gitjsonl.json": b'{"migrated_from": "data/interactions.jsonl"}\n',
            },
        )
        with make_log(localhub) as log:
            assert [r["id"] for r in log.records()] == [1]
            assert [r["id"] for r in log.tail(10)] == [1]


class TestTailCost:
    @pytest.mark.parametrize("megabytes", [1, 10, 100])
    def test_tail_500_costs_at_most_eight_requests(
        self, localhub: LocalHub, megabytes: int
    ) -> None:
        """tail(500) reads the head, one listing and the last segments, whatever the size."""
        line = json.dumps({"type": "interaction", "pad": "r" * 1000}).encode() + b"\n"
        per_segment = (1024 * 1024) // len(line)
        segment = line * per_segment
        count = max(1, megabytes * 1024 * 1024 // len(segment))
        files: dict[str, bytes | None] = {
            f"{PATH}/{n:08d}.jsonl": segment for n in range(1, count + 1)
        }
        files[f"{PATH}/{count + 1:08d}.jsonl"] = line * 3  # a just-rotated active segment
        localhub.seed_commit(REPO, files)
        with make_log(localhub) as log:
            start = len(localhub.requests)
            records = log.tail(500)
            cost = localhub.requests[start:]
        assert len(records) == 500
        assert len(cost) <= 8, [(r.method, r.path) for r in cost]
        assert all(r.method == "GET" for r in cost)


_PROCESS_WRITER = """
import sys, threading
import gitjsonl
api_url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
policy = gitjsonl.RetryPolicy(max_attempts=200, initial_wait=0.05, max_wait=0.5,
                              conflict_wait=0.01, max_conflict_wait=0.2)
with gitjsonl.Log("owner/repo", path="data/interactions", api_url=api_url, token=token,
                  pacing=None, flush_interval=0.05, segment_bytes=3000, retry=policy) as log:
    def write(t):
        for i in range(50):
            log.append({"w": f"{name}-{t}", "i": i})
            if i % 10 == 9:
                log.flush(timeout=60)
    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
"""


class TestProcesses:
    def test_eight_threads_in_two_processes_share_one_log(self, localhub: LocalHub) -> None:
        """Two processes of four threads each, and a foreign committer: every id once, in order."""
        import subprocess
        import sys

        stop, foreign = threading.Event(), [0]
        other = threading.Thread(target=_foreign_writer, args=(localhub, stop, foreign))
        other.start()
        try:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", _PROCESS_WRITER, localhub.url, localhub.token, name]
                )
                for name in ("p1", "p2")
            ]
            codes = [proc.wait(timeout=100) for proc in procs]
        finally:
            stop.set()
            other.join()
        assert codes == [0, 0]
        records = committed_records(localhub)
        assert len(records) == 400
        for name in ("p1", "p2"):
            for t in range(4):
                mine = [r["i"] for r in records if r["w"] == f"{name}-{t}"]
                assert mine == list(range(50))
        assert all(len(d) <= 3000 for d in segment_files(localhub).values())
        assert history_is_linear(localhub)
        for n in range(foreign[0]):
            assert localhub.read_file(REPO, f"other/{n}.txt") == b"x\n"
        localhub.fsck(REPO)
