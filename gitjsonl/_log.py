"""``Log``: the public writer. Records are buffered in memory; a flusher thread commits batches.

Threading: ``append`` encodes the record on the caller's thread, then takes
the lock only to push it onto the pending queue. The flusher thread takes the
lock only to snapshot a batch from the front of that queue and, once the batch
is committed, to drop it; it never holds the lock across a network call.
Records leave the queue only when GitHub holds them, so a failure of any kind
leaves every pending record where it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from . import _lifecycle
from ._batch import Batch, find_landed, new_batch_id
from ._commit import Committer
from ._config import DEFAULT_API_URL
from ._exceptions import (
    BufferFull,
    EmptyRepository,
    FlushTimeout,
    GitHubError,
    GitJsonlError,
    LogClosed,
    NotFound,
    RateLimited,
)
from ._github import GitHubRepo, Identity
from ._pacing import Pacer, Pacing
from ._reader import LogReader
from ._records import encode_record
from ._retry import RetryPolicy
from ._spool import Spool, spool_name

__all__ = ["DEFAULT", "Log", "LogStats", "OnFull"]

logger = logging.getLogger("gitjsonl")

OnFull = Literal["raise", "block", "drop"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: Marks "use the default" where ``None`` means "off" (``legacy_path``).
DEFAULT: Any = _Default()

MiB = 1024 * 1024

#: After a permanent failure the flusher tries again by itself after this long
#: (doubling up to the maximum); ``flush()`` tries at once.
FAILURE_BACKOFF = 30.0
FAILURE_BACKOFF_MAX = 600.0
#: Wait this long on a rate limit that did not say how long (GitHub's advice).
RATE_LIMIT_DEFAULT_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class LogStats:
    """A consistent snapshot of a ``Log``'s counters."""

    appended: int
    committed: int
    pending: int
    pending_bytes: int
    batches: int
    conflicts_retried: int
    retries: int
    failures: int
    rate_limited: int
    dropped: int
    corrupt_lines: int
    landed_after_error: int
    last_commit: str | None
    last_error: GitJsonlError | None


class Log:
    """An append-only JSON-lines log in a GitHub repository.

    >>> with Log("owner/repo", path="data/interactions") as log:  # doctest: +SKIP
    ...     log.append({"type": "interaction", "text": "hi"})
    """

    def __init__(
        self,
        repo: str,
        *,
        path: str,
        token: str | None = None,
        branch: str | None = None,
        api_url: str | None = None,
        segment_bytes: int = 1 * MiB,
        flush_interval: float = 5.0,
        batch_bytes: int = 512 * 1024,
        max_batch_bytes: int = 4 * MiB,
        max_record_bytes: int = 4 * MiB,
        max_pending_bytes: int = 64 * MiB,
        on_full: OnFull = "raise",
        pacing: Pacing | None = Pacing(),  # noqa: B008 - frozen, shared safely
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, shared safely
        author: Identity | None = None,
        committer: Identity | None = None,
        skip_ci: bool = True,
        legacy_path: str | None = DEFAULT,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_fsync: bool = False,
        exit_grace: float = _lifecycle.DEFAULT_EXIT_GRACE,
    ) -> None:
        if on_full not in ("raise", "block", "drop"):
            raise ValueError(f"on_full must be 'raise', 'block' or 'drop', not {on_full!r}")
        if "/" not in repo.strip("/"):
            raise ValueError(f"repo must be 'owner/name', not {repo!r}")
        path = path.strip("/")
        if not path or ".." in path.split("/"):
            raise ValueError(f"path must be a folder inside the repository, not {path!r}")
        if min(segment_bytes, batch_bytes, max_batch_bytes, max_record_bytes) < 1:
            raise ValueError("sizes must be positive")
        token = token if token is not None else os.environ.get("GITHUB_TOKEN")
        api_url = api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL

        self.repo = repo
        self.path = path
        self._flush_interval = flush_interval
        self._batch_bytes = batch_bytes
        self._max_batch_bytes = max_batch_bytes
        self._max_record_bytes = max_record_bytes
        self._max_pending_bytes = max_pending_bytes
        self._on_full = on_full
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self.writer_id = uuid.uuid4().hex[:12]

        self.exit_grace = exit_grace
        self._settings: dict[str, Any] = {
            "token": token,
            "api_url": api_url,
            "timeout": timeout,
            "branch": branch,
            "segment_bytes": segment_bytes,
            "retry": retry,
            "pacing": pacing,
            "skip_ci": skip_ci,
            "author": author,
            "committer": committer,
            "legacy_path": f"{path}.jsonl" if legacy_path is DEFAULT else legacy_path,
        }
        self._sleep_arg = sleep
        self._connect()

        # Everything the flusher reads exists before it starts.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._pending: deque[tuple[int, bytes]] = deque()
        self._pending_bytes = 0
        self._next_seq = 1
        self._committed_seq = 0
        self._appended = 0
        self._committed = 0
        self._batches = 0
        self._failures = 0
        self._rate_limited = 0
        self._dropped = 0
        self._attempts_started = 0
        self._last_failed_attempt = 0
        self._last_commit: str | None = None
        self._last_error: GitJsonlError | None = None
        self._inflight: Batch | None = None
        self._flush_target = 0  # flush() waits for this sequence number
        self._closing = False
        self._closed = False
        self._blocked_until = 0.0  # rate limited: no attempt before this (clock time)
        self._retry_at = 0.0  # after a failure: no unrequested attempt before this
        self._backoff = FAILURE_BACKOFF
        self._spool: Spool | None = None
        self._recovering: tuple[Batch, ...] = ()  # batches of the spool that may have landed
        self._spool_last_commit: str | None = None
        if spool_dir is not None:
            self._spool = Spool(spool_dir, spool_name(repo, path, branch), fsync=spool_fsync)
            recovery = self._spool.recover()
            # What the last process left goes first, as sequence numbers 1..n,
            # exactly as the spool has renumbered it.
            for line in recovery.lines:
                self._pending.append((self._next_seq, line))
                self._next_seq += 1
                self._pending_bytes += len(line)
            self._recovering = recovery.candidates
            self._spool_last_commit = recovery.last_commit
            if recovery.lines:
                logger.info("gitjsonl: %d record(s) recovered from the spool", len(recovery.lines))
                self._wake.set()
        self._thread = threading.Thread(
            target=self._run, name=f"gitjsonl-flusher-{self.writer_id}", daemon=True
        )
        self._thread.start()
        _lifecycle.register(self)

    def _connect(self) -> None:
        """The GitHub client, committer and reader: built again in a forked child."""
        c = self._settings
        self._github = GitHubRepo(
            self.repo, token=c["token"], api_url=c["api_url"], timeout=c["timeout"]
        )
        self._committer = Committer(
            self._github,
            path=self.path,
            branch=c["branch"],
            segment_bytes=c["segment_bytes"],
            policy=c["retry"],
            pacer=Pacer(c["pacing"], self._clock) if c["pacing"] is not None else None,
            sleep=self._sleep_unless_stopped,
            writer_id=self.writer_id,
            skip_ci=c["skip_ci"],
            author=c["author"],
            committer=c["committer"],
        )
        self._reader = LogReader(
            self._github,
            path=self.path,
            branch=lambda: self._committer.branch,
            legacy_path=c["legacy_path"],
        )

    # -- the caller's side ---------------------------------------------------------

    def append(self, record: Mapping[str, Any]) -> None:
        """Queue ``record`` for the next batch. Never does I/O; raises ``RecordError`` at once."""
        line = encode_record(record, self._max_record_bytes)
        with self._lock:
            if self._closing:
                raise LogClosed("this log is closed")
            full = self._pending_bytes + len(line) > self._max_pending_bytes
            if full and not self._make_room(len(line)):
                return
            if self._spool is not None:
                self._spool.append(self._next_seq, line)  # SpoolError: not appended
            self._pending.append((self._next_seq, line))
            self._next_seq += 1
            self._appended += 1
            self._pending_bytes += len(line)
            urgent = self._pending_bytes >= self._batch_bytes
        if urgent:
            self._wake.set()

    def _make_room(self, size: int) -> bool:
        """Called with the lock held when the queue is full; False drops the record."""
        if self._on_full == "drop":
            self._dropped += 1
            logger.warning(
                "gitjsonl: pending buffer full; dropped a record (%d so far)", self._dropped
            )
            return False
        if self._on_full == "raise":
            raise BufferFull(
                f"{self._pending_bytes:,} bytes are waiting to be committed "
                f"(max_pending_bytes={self._max_pending_bytes:,}); record not appended"
            )
        self._wake.set()
        while self._pending_bytes + size > self._max_pending_bytes and self._pending:
            if self._closing:
                raise LogClosed("this log is closed")
            self._changed.wait(0.5)
        return True

    def flush(self, timeout: float | None = None) -> None:
        """Return when every record appended before this call is committed.

        Raises the error of the first attempt made after the call that failed
        for good (the records stay pending and a later flush tries again), or
        ``FlushTimeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                raise LogClosed("this log is closed")
            target = self._next_seq - 1
            started = self._attempts_started
            self._flush_target = max(self._flush_target, target)
        self._wake.set()
        with self._lock:
            while self._committed_seq < target:
                error = self._last_error
                if self._last_failed_attempt > started and error is not None:
                    raise error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    pending = target - self._committed_seq
                    raise FlushTimeout(f"{pending} record(s) not committed within {timeout} s")
                self._changed.wait(remaining if remaining is not None else 1.0)

    def close(self, timeout: float | None = 60.0) -> None:
        """Flush, then stop the flusher. Idempotent. Raises if records could not be committed."""
        with self._lock:
            if self._closed:
                return
            self._closing = True
            self._changed.notify_all()
        error: GitJsonlError | None = None
        try:
            self._flush_pending(timeout)
        except GitJsonlError as exc:
            error = exc
        finally:
            with self._lock:
                self._closed = True
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=5.0)
            self._github.close()
            if self._spool is not None:
                self._spool.close()  # uncommitted records stay in it for the next Log
            _lifecycle.unregister(self)
        if error is not None:
            with self._lock:
                left = len(self._pending)
            logger.error("gitjsonl: closed with %d record(s) not committed: %s", left, error)
            raise error

    def _flush_pending(self, timeout: float | None) -> None:
        with self._lock:
            nothing = not self._pending
        if not nothing:
            self.flush(timeout)

    def __enter__(self) -> Log:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def tail(self, n: int = 500) -> list[dict[str, Any]]:
        """The last ``n`` committed records on the branch, oldest first."""
        return self._reader.tail(n)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every committed record on the branch, in order, streaming segment by segment."""
        return self._reader.records()

    def stats(self) -> LogStats:
        with self._lock:
            return LogStats(
                appended=self._appended,
                committed=self._committed,
                pending=len(self._pending),
                pending_bytes=self._pending_bytes,
                batches=self._batches,
                conflicts_retried=self._committer.conflicts,
                retries=self._committer.retries,
                failures=self._failures,
                rate_limited=self._rate_limited,
                dropped=self._dropped,
                corrupt_lines=self._reader.corrupt_lines,
                landed_after_error=self._committer.landed_after_error,
                last_commit=self._last_commit,
                last_error=self._last_error,
            )

    # -- the flusher's side ----------------------------------------------------------

    def _sleep_unless_stopped(self, seconds: float) -> None:
        if not self._stop.is_set():
            self._sleep(seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            now = self._clock()
            if self._blocked_until > now:
                self._sleep_unless_stopped(self._blocked_until - now)
                self._wake.set()  # records kept arriving: go on at once
                continue
            if self._recovering and not self._recover_landed():
                continue
            with self._lock:
                requested = self._flush_target > self._committed_seq or self._closing
                self._flush_target = 0  # flush() waits for this sequence number
            if self._retry_at > now and not requested:
                continue
            batch = self._form_batch()
            if batch is None:
                continue
            self._commit(batch)

    def _form_batch(self) -> Batch | None:
        with self._lock:
            if not self._pending:
                return None
            self._attempts_started += 1
            inflight = self._inflight
            if inflight is not None and self._committer.unresolved_batch_id == inflight.id:
                return inflight  # it may have landed: only the same id can tell
            lines: list[bytes] = []
            size = 0
            for _seq, line in self._pending:
                if lines and size + len(line) > self._max_batch_bytes:
                    break
                lines.append(line)
                size += len(line)
            self._inflight = Batch(new_batch_id(), tuple(lines), self._pending[0][0])
            if self._spool is not None:
                self._spool.batch_formed(self._inflight)  # before its first request
            return self._inflight

    def _commit(self, batch: Batch) -> None:
        try:
            sha = self._committer.commit(batch)
        except GitHubError as exc:
            self._failed(exc)
        except Exception as exc:  # a bug of ours must not kill the flusher silently
            logger.exception("gitjsonl: unexpected error while committing a batch")
            wrapped = GitJsonlError(f"unexpected error while committing: {exc!r}")
            wrapped.__cause__ = exc
            self._failed(wrapped)
        else:
            self._succeeded(batch, sha)

    def _succeeded(self, batch: Batch, sha: str) -> None:
        if self._spool is not None:
            try:
                self._spool.batch_committed(batch, sha)
            except GitJsonlError as exc:  # the commit stands; a restart finds it by its id
                logger.warning("gitjsonl: could not mark a batch committed in the spool: %s", exc)
        with self._lock:
            for _ in batch.lines:
                self._pending_bytes -= len(self._pending.popleft()[1])
            self._committed += len(batch.lines)
            self._committed_seq = batch.last_seq
            self._batches += 1
            self._last_commit = sha
            self._last_error = None
            self._inflight = None
            self._retry_at = 0.0
            self._backoff = FAILURE_BACKOFF
            again = bool(self._pending) and (
                self._pending_bytes >= self._batch_bytes
                or self._flush_target > self._committed_seq
                or self._closing
            )
            self._changed.notify_all()
        if again:
            self._wake.set()

    def _failed(self, exc: GitJsonlError) -> None:
        now = self._clock()
        with self._lock:
            if isinstance(exc, RateLimited):
                # Not a failure: wait as GitHub asks and let records pile up meanwhile.
                self._rate_limited += 1
                wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_DEFAULT_WAIT
                self._blocked_until = now + wait
                self._last_error = exc
                # Go straight to waiting it out: the idle wait would add up to
                # flush_interval on top of what GitHub asked for.
                self._wake.set()
            else:
                self._failures += 1
                self._last_error = exc
                self._last_failed_attempt = self._attempts_started
                self._retry_at = now + self._backoff
                self._backoff = min(self._backoff * 2, FAILURE_BACKOFF_MAX)
            self._changed.notify_all()
        logger.warning("gitjsonl: batch not committed, records kept pending: %s", exc)

    def _recover_landed(self) -> bool:
        """Drop the recovered batch whose commit landed before the crash; False to retry later."""
        try:
            try:
                tip = self._github.get_head(self._committer.branch)
            except (EmptyRepository, NotFound):
                found = None  # no history: nothing of ours can have landed
            else:
                commits = ((c.sha, c.message) for c in self._github.iter_commits(tip))
                found = find_landed(commits, self._recovering, stop_at=self._spool_last_commit)
        except GitHubError as exc:
            self._failed(exc)
            return False
        self._recovering = ()
        if found is not None:
            batch, sha = found
            logger.info("gitjsonl: batch %s had landed before the restart (%s)", batch.id, sha)
            self._succeeded(batch, sha)
        return True

    # -- process lifecycle (called by _lifecycle) ----------------------------------

    def exit_flush(self, timeout: float) -> int:
        """Close within ``timeout`` at interpreter exit; the records left uncommitted."""
        with contextlib.suppress(GitJsonlError):  # close() has logged it
            self.close(timeout=timeout)
        with self._lock:
            return len(self._pending)

    def after_fork_in_child(self) -> None:
        """In a forked child: the parent commits its own pending records; start afresh."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sleep = self._sleep_arg or self._stop.wait
        self._pending.clear()
        self._pending_bytes = 0
        self._committed_seq = self._next_seq - 1
        self._flush_target = 0
        self._inflight = None
        self._recovering = ()
        self._blocked_until = self._retry_at = 0.0
        if self._spool is not None:
            # The parent holds the spool (and its lock); the child runs without one.
            self._spool.abandon_after_fork()
            self._spool = None
            logger.warning("gitjsonl: forked child of a spooled Log runs without a spool")
        self.writer_id = uuid.uuid4().hex[:12]
        self._connect()  # never share the parent's HTTP connections
        if self._closing:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"gitjsonl-flusher-{self.writer_id}", daemon=True
        )
        self._thread.start()
