"""The recorded scenarios, shared by the replay tests and ``tests.record_cassettes``.

Each scenario is a function of a ``Context`` and returns a plain dict of what
a user of gitjsonl would see (records, counters, exception class names). It
creates everything it needs through the API, on its own branch
``gitjsonl-cassette-<name>``, so that the same code records against localhub
or a real scratch repository and replays from the cassette. Only faults a
real GitHub cannot be asked for (a lost answer, a secondary rate limit, an
empty repository) come from the localhub; those scenarios are ``localhub_only``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gitjsonl import FlushTimeout, GitHubError, Identity, Log, RetryPolicy
from gitjsonl._github import Credentials, GitHubRepo
from gitjsonl._migrate import migrate
from gitjsonl.testing import LocalHub
from gitjsonl.testing._faults import Fault
from tests.helpers import FakeClock

PATH = "data/interactions"
#: Fixed commit identities and dates: a re-recording produces the same commit shas.
IDENTITY = Identity("gitjsonl cassette", "cassette@example.invalid", date="2026-01-01T00:00:00Z")
RETRY = RetryPolicy(max_attempts=4)
#: A repository that exists nowhere, under the recording account (404 scenario).
MISSING_REPO_NAME = "gitjsonl-cassette-missing"


def branch_for(name: str) -> str:
    return f"gitjsonl-cassette-{name.replace('_', '-')}"


@dataclass
class Context:
    """Where a scenario runs and what it may use; ``hub`` is None on real GitHub and in replay."""

    name: str
    api_url: str
    token: str
    repo: str
    read_token: str | None
    bad_token: str
    missing_repo: str
    hub: LocalHub | None = None
    clock: FakeClock = field(default_factory=FakeClock)

    @property
    def branch(self) -> str:
        return branch_for(self.name)

    def github(self, *, token: str | None = None, repo: str | None = None) -> GitHubRepo:
        return GitHubRepo(repo or self.repo, Credentials(self.api_url, token or self.token))

    def log(self, **kwargs: Any) -> Log:
        """A Log that never sleeps for real and commits only when flushed."""
        kwargs.setdefault("repo", self.repo)
        kwargs.setdefault("token", self.token)
        kwargs.setdefault("branch", self.branch)
        kwargs.setdefault("segment_bytes", 1024 * 1024)
        return Log(
            kwargs.pop("repo"),
            path=PATH,
            api_url=self.api_url,
            pacing=None,
            flush_interval=3600,
            retry=RETRY,
            clock=self.clock.time,
            sleep=self.clock.sleep,
            author=IDENTITY,
            committer=IDENTITY,
            # Replays repeat the same commit shas: nothing may carry over from one to the next.
            budget_dir=None,
            **kwargs,
        )

    def start_branch(self) -> None:
        """Create this scenario's branch at the tip of the default branch."""
        gh = self.github()
        try:
            gh.create_ref(self.branch, gh.get_head(gh.default_branch()))
        finally:
            gh.close()

    def commit_files(self, files: dict[str, bytes], message: str) -> str:
        """Another writer: commit ``files`` on the branch through the Git Data API."""
        gh = self.github()
        try:
            head = gh.get_head(self.branch)
            tree = gh.create_tree(
                gh.get_commit(head).tree_sha,
                {path: gh.create_blob(data) for path, data in files.items()},
            )
            sha = gh.create_commit(message, tree, [head], author=IDENTITY, committer=IDENTITY)
            gh.update_ref(self.branch, sha)
            return sha
        finally:
            gh.close()

    def add_fault(self, fault: Fault) -> None:
        """Make the localhub misbehave; in replay the cassette already holds the answer."""
        if self.hub is not None:
            self.hub.add_fault(fault)


def records(first: int, count: int, kind: str = "interaction") -> list[dict[str, Any]]:
    return [{"n": n, "type": kind, "text": f"record {n}"} for n in range(first, first + count)]


def append_all(log: Log, batch: list[dict[str, Any]]) -> None:
    for record in batch:
        log.append(record)


def flush_through_rate_limits(log: Log) -> None:
    """``flush()`` alone does not wake the flusher once a rate limit has passed.

    After a rate-limited attempt the flusher waits ``flush_interval`` (here an
    hour) before it looks again; each short flush re-wakes it. Every attempt is
    still one request sequence and the clock is fake, so nothing waits for real.
    """
    while True:
        try:
            log.flush(timeout=0.05)
        except FlushTimeout:
            continue
        return


def counters(log: Log) -> dict[str, Any]:
    stats = log.stats()
    return {
        "appended": stats.appended,
        "committed": stats.committed,
        "pending": stats.pending,
        "batches": stats.batches,
        "conflicts_retried": stats.conflicts_retried,
        "retries": stats.retries,
        "failures": stats.failures,
        "rate_limited": stats.rate_limited,
        "landed_after_error": stats.landed_after_error,
    }


def segment_names(ctx: Context) -> list[str]:
    gh = ctx.github()
    try:
        entries = gh.list_dir(PATH, ref=gh.get_head(ctx.branch)) or []
        return sorted(e.name for e in entries if e.name.endswith(".jsonl"))
    finally:
        gh.close()


@contextlib.contextmanager
def failing_log(log: Log) -> Iterator[dict[str, Any]]:
    """Close a Log whose records cannot be committed, keeping what its close raised."""
    seen: dict[str, Any] = {}
    try:
        yield seen
    finally:
        try:
            log.close()
        except GitHubError as exc:
            seen["close_error"] = type(exc).__name__


# -- scenarios -------------------------------------------------------------------------


def bootstrap(ctx: Context) -> dict[str, Any]:
    """First append into an empty repository: the Contents API makes the first commit."""
    with ctx.log(branch=None) as log:
        append_all(log, records(1, 2))
        log.flush()
        return {"tail": log.tail(10), "stats": counters(log)}


def appends(ctx: Context) -> dict[str, Any]:
    """Two batches into a log that already exists (made by a first Log)."""
    ctx.start_branch()
    with ctx.log() as first:
        append_all(first, records(1, 2))
        first.flush()
    with ctx.log() as log:
        append_all(log, records(3, 2))
        log.flush()
        append_all(log, records(5, 1))
        log.flush()
        return {"tail": log.tail(10), "stats": counters(log)}


def rotation(ctx: Context) -> dict[str, Any]:
    """A small segment size: batches spill into new segments."""
    ctx.start_branch()
    with ctx.log(segment_bytes=100) as log:
        for first in (1, 4, 7):
            append_all(log, records(first, 3))
            log.flush()
        return {"tail": log.tail(20), "stats": counters(log), "segments": segment_names(ctx)}


def conflict(ctx: Context) -> dict[str, Any]:
    """Another writer commits between two flushes: the ref update is refused, re-read, retried."""
    ctx.start_branch()
    with ctx.log() as log:
        append_all(log, records(1, 2))
        log.flush()
        ctx.commit_files({"other/notes.txt": b"another writer\n"}, "another writer")
        append_all(log, records(3, 2))
        log.flush()
        gh = ctx.github()
        try:
            other = [e.name for e in gh.list_dir("other", ref=gh.get_head(ctx.branch)) or []]
        finally:
            gh.close()
        return {"tail": log.tail(10), "stats": counters(log), "other": other}


def ambiguous(ctx: Context) -> dict[str, Any]:
    """The ref update lands but its answer is a 502: the batch is found, not committed twice."""
    ctx.start_branch()
    ctx.add_fault(Fault(method="PATCH", path=r"/git/refs/heads/", action="error_after", status=502))
    with ctx.log() as log:
        append_all(log, records(1, 3))
        log.flush()
        return {"tail": log.tail(10), "stats": counters(log)}


def unauthorized(ctx: Context) -> dict[str, Any]:
    """A bad token: flush raises AuthenticationError and the records stay pending."""
    log = ctx.log(token=ctx.bad_token)
    with failing_log(log) as seen:
        append_all(log, records(1, 1))
        try:
            log.flush()
        except GitHubError as exc:
            seen["flush_error"] = type(exc).__name__
            seen["status"] = exc.status
        seen["stats"] = counters(log)
    return seen


def not_found(ctx: Context) -> dict[str, Any]:
    """A repository that does not exist: flush raises NotFound."""
    log = ctx.log(repo=ctx.missing_repo, branch=None)
    with failing_log(log) as seen:
        append_all(log, records(1, 1))
        try:
            log.flush()
        except GitHubError as exc:
            seen["flush_error"] = type(exc).__name__
            seen["status"] = exc.status
        seen["stats"] = counters(log)
    return seen


def read_only(ctx: Context) -> dict[str, Any]:
    """A read-only token reads the log but cannot append: PermissionDenied (403)."""
    ctx.start_branch()
    with ctx.log() as writer:
        append_all(writer, records(1, 2))
        writer.flush()
    assert ctx.read_token is not None
    log = ctx.log(token=ctx.read_token)
    with failing_log(log) as seen:
        seen["tail"] = log.tail(10)
        append_all(log, records(3, 1))
        try:
            log.flush()
        except GitHubError as exc:
            seen["flush_error"] = type(exc).__name__
            seen["status"] = exc.status
        seen["stats"] = counters(log)
    return seen


def _secondary_limit(ctx: Context, retry_after: int | None) -> dict[str, Any]:
    ctx.start_branch()
    ctx.add_fault(
        Fault(method="POST", path=r"/git/trees$", action="secondary_limit", retry_after=retry_after)
    )
    with ctx.log() as log:
        append_all(log, records(1, 2))
        flush_through_rate_limits(log)
        return {"tail": log.tail(10), "stats": counters(log), "slept": sorted(ctx.clock.sleeps)}


def secondary_limit_retry_after(ctx: Context) -> dict[str, Any]:
    """A secondary rate limit with retry-after: wait that long (on the fake clock), then commit."""
    return _secondary_limit(ctx, 7)


def secondary_limit_no_retry_after(ctx: Context) -> dict[str, Any]:
    """A secondary rate limit without retry-after: wait GitHub's advised minute, then commit."""
    return _secondary_limit(ctx, None)


def _multi_segment_log(ctx: Context) -> None:
    ctx.start_branch()
    with ctx.log(segment_bytes=100) as log:
        for first in (1, 4, 7, 10):
            append_all(log, records(first, 3))
            log.flush()


def tail_multi_segment(ctx: Context) -> dict[str, Any]:
    """A fresh Log's tail reaches back across segments, oldest first."""
    _multi_segment_log(ctx)
    with ctx.log() as log:
        return {"tail_5": log.tail(5), "tail_all": log.tail(100)}


def records_streaming(ctx: Context) -> dict[str, Any]:
    """``records()`` yields every record in order, segment by segment."""
    _multi_segment_log(ctx)
    with ctx.log() as log:
        stream = log.records()
        first = next(stream)
        return {"first": first, "rest": list(stream)}


def migration(ctx: Context) -> dict[str, Any]:
    """The single-file log moves into segments in one commit; a second run is a no-op."""
    ctx.start_branch()
    legacy = b"".join(
        b'{"n": %d, "type": "legacy", "text": "record %d"}\n' % (n, n) for n in range(1, 6)
    )
    ctx.commit_files({f"{PATH}.jsonl": legacy}, "the single-file log")
    gh = ctx.github()
    try:
        run = [
            migrate(
                gh,
                source=f"{PATH}.jsonl",
                destination=PATH,
                branch=ctx.branch,
                segment_bytes=120,
                policy=RETRY,
                sleep=ctx.clock.sleep,
            )
            for _ in range(2)
        ]
    finally:
        gh.close()
    with ctx.log() as log:
        append_all(log, records(6, 1))
        log.flush()
        tail = log.tail(10)
    first, second = run
    return {
        "ok": first.ok,
        "committed": first.commit is not None,
        "lines": first.plan.line_count if first.plan else None,
        "segments": len(first.plan.segments) if first.plan else None,
        "second_already_migrated": second.already_migrated,
        "tail": tail,
    }


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Context], dict[str, Any]]
    #: Why a real GitHub cannot record it, or "" when it can.
    localhub_only: str = ""
    empty_repository: bool = False
    needs_read_token: bool = False


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("bootstrap", bootstrap, "needs an empty repository", empty_repository=True),
        Scenario("appends", appends),
        Scenario("rotation", rotation),
        Scenario("conflict", conflict),
        Scenario("ambiguous", ambiguous, "needs a ref update whose answer is lost"),
        Scenario("unauthorized", unauthorized),
        Scenario("not_found", not_found),
        Scenario("read_only", read_only, needs_read_token=True),
        Scenario(
            "secondary_limit_retry_after",
            secondary_limit_retry_after,
            "GitHub cannot be asked for a secondary rate limit",
        ),
        Scenario(
            "secondary_limit_no_retry_after",
            secondary_limit_no_retry_after,
            "GitHub cannot be asked for a secondary rate limit",
        ),
        Scenario("tail_multi_segment", tail_multi_segment),
        Scenario("records_streaming", records_streaming),
        Scenario("migration", migration),
    )
}
