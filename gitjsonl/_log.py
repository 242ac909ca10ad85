"""``Log``: the public writer. Records are buffered in memory; a flusher thread commits batches.

A ``Log`` is a few small parts with one job each, wired together here:

- ``LogConfig`` (``_config``): the validated, frozen settings;
- ``PendingQueue`` (``_queue``): records waiting, by sequence number;
- ``FlushSchedule`` (``_schedule``): when the flusher may try next;
- ``Counters`` (``_stats``): what ``stats()`` reports;
- ``Committer`` (``_commit``) and ``LogReader`` (``_reader``) over one
  ``GitHubRepo`` (``_github``): the network;
- the token's ``Budget`` (``_budget``) and the branch's turn (``_turn``),
  shared with every other ``Log`` on the same token and branch in this process
  and, through files in ``budget_dir``, on this host;
- optionally a ``SlotSpool`` (``_spool``): the records on disk, and dead slots' to adopt.

Threading: ``append`` encodes the record on the caller's thread, then takes
the lock only to push it onto the queue. The flusher thread takes the lock
only to cut a batch from the front of the queue and, once the batch is
committed, to drop it; it never holds the lock across a network call.
Nothing the flusher meets ends it: every exception becomes the error that
``flush()`` raises and ``stats()`` shows, and the flusher carries on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from . import _ledger, _lifecycle
from ._batch import Batch, new_batch_id
from ._budget import Budget, budget_for
from ._commit import Committer
from ._config import (
    DEFAULT,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_SEGMENT_BYTES,
    Identity,
    LogConfig,
    MiB,
    OnFull,
)
from ._doctor import Check, coordinator_check, credentials_kind, diagnose, gather, spool_line
from ._exceptions import (
    BufferFull,
    FlushTimeout,
    GitHubError,
    GitJsonlError,
    LogClosed,
    RateLimited,
)
from ._github import Credentials, GitHubRepo, is_secondary_limit
from ._pacing import DEFAULT_BATCH_WRITES, Pacing, describe_pacing
from ._queue import PendingQueue, admit
from ._reader import LogReader
from ._records import encode_record
from ._redis import coordinator_for
from ._retry import RetryPolicy, failure_kind
from ._schedule import FlushSchedule
from ._spool import Recovery, SlotSpool, open_slot, settle_candidates
from ._stats import Counters, LogStats
from ._turn import BranchTurns

__all__ = ["Log", "LogStats"]

logger = logging.getLogger(__name__)

#: Seconds between two WARNINGs about records dropped (on_full="drop").
DROP_WARNING_EVERY = 60.0

#: Marks a log record whose error is also raised to the caller (by flush() or
#: close()): a front end that shows the exception can skip the record.
RAISED_TOO = {"gitjsonl_raised": True}


def _new_writer_id() -> str:
    return uuid.uuid4().hex[:12]


class Log:
    """An append-only JSON-lines log in a GitHub repository.

    >>> with Log("owner/repo", path="data/interactions") as log:  # doctest: +SKIP
    ...     log.append({"type": "interaction", "text": "hi"})

    Constructing a ``Log`` validates every argument (``ValueError`` or
    ``TypeError`` naming the bad one), starts the flusher thread, and sends no
    request: the first batch does.

    Args:
        repo: The repository, ``"owner/name"``.
        path: The log's folder in the repository (``"data/interactions"``);
            segments are written inside it.
        token: A GitHub token that may write contents; ``$GITHUB_TOKEN`` when
            neither it nor ``auth`` is given. It never appears in a ``repr``, a
            log line or an error.
        auth: Instead of ``token``, any PyGithub credentials object, such as
            ``github.Auth.AppAuth(app_id, key).get_installation_auth(id)``: a
            GitHub App's installation token, refreshed before it expires.
        branch: The branch to write; the repository's default branch when
            ``None``. A branch that does not exist is created from the default
            branch's head.
        api_url: GitHub's REST API (GitHub Enterprise: ``https://HOST/api/v3``);
            ``$GITHUB_API_URL`` or ``https://api.github.com`` when ``None``.
        segment_bytes: No file of the log grows past this size (1 MiB:
            every file stays readable through the Contents API); files under
            a sixteenth of it are merged by a later batch. A single larger
            record gets a file of its own.
        flush_interval: Seconds between the flusher's commits when records
            trickle in (5 s).
        batch_bytes: A batch is committed early once this much is pending
            (512 KiB).
        max_batch_bytes: The most one commit carries (4 MiB); the rest follows
            in the next batch.
        max_record_bytes: The largest record ``append`` accepts, as JSON
            (4 MiB); a larger one raises ``RecordTooLarge``.
        default: What JSON has no type for becomes what this function returns,
            as with ``json.dumps(default=...)``; ``gitjsonl.json_default`` turns
            dates, times, UUIDs, decimals, enums, sets, paths and dataclasses into
            JSON. ``None`` (the default): such a record raises ``RecordError``.
        max_pending_bytes: The most that may wait in memory (64 MiB); past it
            ``on_full`` decides.
        on_full: ``"raise"`` (``BufferFull``, the default), ``"block"`` (wait
            for room) or ``"drop"`` (count it in ``stats().dropped`` and log a
            warning).
        pacing: Budgets for write requests (GitHub's secondary limits: 80 a
            minute, 500 an hour); ``None`` turns pacing off (a local server).
        retry: How a batch is retried before its failure reaches ``flush()``.
        author: The commits' author (``Identity``); the token's user if ``None``.
        committer: The commits' committer; as GitHub decides if ``None``.
        skip_ci: Add ``[skip ci]`` to commit messages (True), so that a log
            commit does not start CI runs.
        legacy_path: A single-file log read as the oldest part of this one
            until migrated (``<path>.jsonl`` by default; ``None``: none).
        timeout: Seconds one HTTP request may take (30).
        clock: A monotonic clock (tests pass a fake one).
        sleep: How the flusher sleeps between retries (tests pass a fake one);
            by default a wait that ``close()`` cuts short.
        spool_dir: A folder for the crash-safe local spool (off by default);
            records are on disk before ``append`` returns and a restart
            commits what was not committed, exactly once.
        spool_fsync: ``fsync`` the spool after every record: survives power
            loss, costs a disk flush per ``append``.
        shutdown_grace: Seconds the host gives the process between SIGTERM and
            SIGKILL: ``$GITJSONL_SHUTDOWN_GRACE``, else 10 (Docker's, a
            HuggingFace Space's). ``close()``, ``AsyncLog.aclose()``, the
            drop-in's close and the exit flush finish before a deadline shorter
            than it (a quarter of it, at most 2 s, is left for the process to
            exit), counted from the SIGTERM when one came.
        exit_grace: The older name of ``shutdown_grace``.
        allow_public: Write even if the repository is public (False). A log of
            what users typed is personal data: by default a public repository
            is refused (``PublicRepository``) before anything is written.
        budget_dir: A folder where the processes of this host share each
            token's write budget (a small ledger file per token, named by a
            hash of the API URL and the token) and take turns committing to a
            branch. The user's cache folder by default (``$XDG_CACHE_HOME`` or
            ``~/.cache``, ``~/Library/Caches`` on macOS, then ``gitjsonl``);
            ``None`` shares them with the other ``Log``s of this process only.
        allow_insecure_http: Accept an ``http://`` ``api_url`` that is not a
            loopback address (False): the token would cross the network in
            clear text. ``http://127.0.0.1``/``localhost`` (localhub) is always accepted.
        coordinator: A ``redis://`` or ``rediss://`` URL (``pip install
            'gitjsonl[redis]'``): every host on the token shares its budget
            and takes turns on the branch through that Redis (``?prefix=``
            names its keys' prefix). ``$GITJSONL_COORDINATOR`` by default,
            else none. While Redis fails, this host's ``budget_dir`` serves
            (one WARNING); no record depends on Redis.
    """

    def __init__(
        self,
        repo: str,
        *,
        path: str,
        token: str | None = None,
        auth: object | None = None,
        branch: str | None = None,
        api_url: str | None = None,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        flush_interval: float = 5.0,
        batch_bytes: int = 512 * 1024,
        max_batch_bytes: int = 4 * MiB,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        default: Callable[[Any], Any] | None = None,
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
        shutdown_grace: float | None = None,
        exit_grace: float | None = None,
        allow_public: bool = False,
        budget_dir: str | os.PathLike[str] | None = DEFAULT,
        allow_insecure_http: bool = False,
        coordinator: str | None = DEFAULT,
    ) -> None:
        self._config = config = LogConfig.create(
            repo,
            path=path,
            token=token,
            auth=auth,
            branch=branch,
            api_url=api_url,
            segment_bytes=segment_bytes,
            flush_interval=flush_interval,
            batch_bytes=batch_bytes,
            max_batch_bytes=max_batch_bytes,
            max_record_bytes=max_record_bytes,
            max_pending_bytes=max_pending_bytes,
            on_full=on_full,
            pacing=pacing,
            retry=retry,
            author=author,
            committer=committer,
            skip_ci=skip_ci,
            legacy_path=legacy_path,
            timeout=timeout,
            spool_dir=spool_dir,
            spool_fsync=spool_fsync,
            shutdown_grace=shutdown_grace,
            exit_grace=exit_grace,
            allow_public=allow_public,
            budget_dir=budget_dir,
            allow_insecure_http=allow_insecure_http,
            coordinator=coordinator,
            default=default,
        )
        self._clock = clock
        self._injected_sleep = sleep
        # Whose requests these are, checked and hashed once: GitHub, the budget and the
        # turns all know the writer by it.
        self._credentials = Credentials(
            config.api_url,
            config.token,
            config.auth,
            allow_insecure_http=config.allow_insecure_http,
        )
        self._closing = False  # commit what is pending now (SIGTERM came, or close())
        self._close_called = False  # close(): appends are refused
        self._closed = False
        self._spool: SlotSpool | None = None
        self._recovery: Recovery | None = None  # spooled batches that may have landed
        self._fresh_parts(next_seq=1)
        if config.spool_dir is not None:
            self._open_spool(config.spool_dir)
        self._start_flusher()
        _lifecycle.register(self)

    @property
    def repo(self) -> str:
        """The repository, ``owner/name``."""
        return self._config.repo

    @property
    def path(self) -> str:
        """The log's folder in the repository."""
        return self._config.path

    @property
    def config(self) -> LogConfig:
        """The validated settings (the token is hidden from its ``repr``)."""
        return self._config

    @property
    def shutdown_grace(self) -> float:
        """Seconds the host gives the process between SIGTERM and SIGKILL."""
        return self._config.shutdown_grace

    @property
    def exit_grace(self) -> float:
        """The older name of ``shutdown_grace``."""
        return self._config.shutdown_grace

    def __repr__(self) -> str:
        return f"<gitjsonl.Log {self.repo}:{self.path} writer={self.writer_id}>"

    # -- wiring ----------------------------------------------------------------------

    def _fresh_parts(self, *, next_seq: int) -> None:
        """Locks, queue, schedule, counters and connections: at start, and anew after fork."""
        config = self._config
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closing_now = threading.Event()
        self._drop_warning_due = 0.0  # when a dropped record may be told again
        self._dropped_unsaid = 0
        self._sleep = self._injected_sleep or self._stop.wait
        self._queue = PendingQueue(next_seq=next_seq)
        self._schedule = FlushSchedule()
        self._counters = Counters()
        self._flush_target = 0  # flush() waits for this sequence number
        # What the next batch will cost, as the budget is asked before cutting it:
        # the writes the last batch sent (its layout decides), until then the default.
        self._batch_writes = DEFAULT_BATCH_WRITES
        self._retries_before_batch = 0  # the committer's retries when this batch was cut
        self.writer_id = _new_writer_id()
        self._github = GitHubRepo(config.repo, self._credentials, timeout=config.timeout)
        coordinator = None if config.coordinator is None else coordinator_for(config.coordinator)
        self._budget: Budget | None = None
        if config.pacing is not None:
            self._budget = budget_for(
                config.pacing,
                self._credentials,
                directory=config.budget_dir,
                clock=self._clock,
                coordinator=coordinator,
            )
        turns = BranchTurns(
            self._credentials,
            repo=config.repo,
            directory=config.budget_dir,
            coordinator=coordinator,
        )
        self._committer = Committer(
            self._github,
            path=config.path,
            branch=config.branch,
            segment_bytes=config.segment_bytes,
            policy=config.retry,
            budget=self._budget,
            turns=turns,
            sleep=self._sleep_unless_stopped,
            writer_id=self.writer_id,
            skip_ci=config.skip_ci,
            author=config.author,
            committer=config.committer,
            before_update=self._note_push,
            allow_public=config.allow_public,
            on_retry=self._retrying,
        )
        self._reader = LogReader(
            self._github,
            path=config.path,
            branch=lambda: self._committer.branch,
            legacy_path=config.legacy_path,
            known_head=self._committer.known_head,
            default_branch=config.branch is None,
        )

    def _open_spool(self, directory: str | os.PathLike[str]) -> None:
        config = self._config
        self._spool = open_slot(
            directory,
            config.repo,
            config.path,
            config.branch,
            api_url=config.api_url,
            fsync=config.spool_fsync,
            max_batch_bytes=config.max_batch_bytes,
        )
        recovery = self._spool.recover()
        # What the last process left goes first, as sequence numbers 1..n,
        # exactly as the spool has renumbered it.
        self._queue.extend(recovery.lines, self._clock())
        self._recovery = recovery if recovery.candidates else None
        if recovery.lines:
            logger.warning(
                "gitjsonl: %d record(s) recovered from the spool %s (left by a process that is "
                "gone)",
                len(recovery.lines),
                self._spool.path,
            )
            self._wake.set()

    def _start_flusher(self) -> None:
        # Everything the flusher reads exists before it starts.
        self._thread = threading.Thread(
            target=self._run, name=f"gitjsonl-flusher-{self.writer_id}", daemon=True
        )
        self._thread.start()

    # -- the caller's side -----------------------------------------------------------

    def append(self, record: Mapping[str, Any]) -> None:
        """Queue ``record`` for the next batch. Never does I/O; raises ``RecordError`` at once.

        The record is serialised here: changing the dict afterwards changes
        nothing that is logged. Thread-safe.
        """
        config = self._config
        line = encode_record(record, config.max_record_bytes, config.default)
        queue = self._queue
        with self._lock:
            if self._close_called:
                raise LogClosed("this log is closed")
            # The common case without a call; _admit decides the rest.
            fits = queue.bytes + len(line) <= config.max_pending_bytes
            if not fits and not self._admit(len(line)):
                return
            if self._spool is not None:
                self._spool.append(queue.next_seq, line)  # SpoolError: not appended
            queue.push(line, self._clock())
            self._counters.appended += 1
            urgent = queue.bytes >= config.batch_bytes
        # Once is enough: a busy flusher would otherwise be woken (and the lock
        # under the event taken) by every record while a batch is in flight.
        if urgent and not self._wake.is_set():
            self._wake.set()

    def _admit(self, size: int) -> bool:
        """Called with the lock held; False drops the record (``on_full="drop"``)."""
        config = self._config
        while True:
            decision = admit(
                config.on_full,
                pending_bytes=self._queue.bytes,
                size=size,
                max_pending_bytes=config.max_pending_bytes,
                empty=not len(self._queue),
            )
            if decision == "accept":
                return True
            if decision == "drop":
                self._counters.dropped += 1
                self._dropped_unsaid += 1
                now = time.monotonic()
                if now >= self._drop_warning_due:  # one WARNING a minute, not one a record
                    logger.warning(
                        "gitjsonl: pending buffer full (max_pending_bytes=%d); dropped %d "
                        "record(s) since the last warning, %d in all (stats().dropped); "
                        "the next warning comes a minute from now at the soonest",
                        config.max_pending_bytes,
                        self._dropped_unsaid,
                        self._counters.dropped,
                    )
                    self._dropped_unsaid = 0
                    self._drop_warning_due = now + DROP_WARNING_EVERY
                return False
            if decision == "raise":
                raise BufferFull(
                    f"{self._queue.bytes:,} bytes are waiting to be committed "
                    f"(max_pending_bytes={config.max_pending_bytes:,}); record not appended"
                )
            self._wake.set()
            self._changed.wait(0.5)
            if self._close_called:
                raise LogClosed("this log is closed")

    def flush(self, timeout: float | None = None) -> None:
        """Return when every record appended before this call is committed.

        Raises the error of the first attempt made after the call that failed
        for good (the records stay pending and a later flush tries again),
        ``FlushTimeout``, or ``LogClosed`` when the log is closed before they
        are committed (by ``close()`` from another thread: nothing would commit
        them any more).
        """
        self._flush(timeout, None)

    def _flush(self, timeout: float | None, cancelled: threading.Event | None) -> None:
        """``flush``; returns early, committed or not, once ``cancelled`` is set
        (``_cancel_flush``: an ``AsyncLog`` whose ``flush`` was cancelled)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                raise LogClosed("this log is closed")
            target = self._queue.last_seq
            started = self._counters.attempts_started
            self._flush_target = max(self._flush_target, target)
        self._wake.set()
        with self._lock:
            while self._queue.committed_seq < target:
                if cancelled is not None and cancelled.is_set():
                    return
                error = self._counters.last_error
                if self._counters.last_failed_attempt > started and error is not None:
                    raise error
                pending = target - self._queue.committed_seq
                if self._closed:
                    raise LogClosed(f"this log closed with {pending} record(s) not committed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise FlushTimeout(
                        f"{pending} record(s) not committed within {timeout:.3g} s{self._paced()}"
                    )
                self._changed.wait(remaining if remaining is not None else 1.0)

    def _cancel_flush(self, cancelled: threading.Event) -> None:
        """End the ``_flush`` given ``cancelled`` now (it is waiting on the condition)."""
        with self._lock:
            cancelled.set()
            self._changed.notify_all()

    def _paced(self) -> str:
        """Why a flush is still waiting, if the budget is the reason (for ``FlushTimeout``)."""
        if self._budget is None:
            return ""
        try:
            wait = self._budget.delay(self._batch_writes, queue=False)
        except OSError:
            return ""
        if wait <= 0:
            return ""
        return (
            f" (the token's write budget has room for the next batch in {wait:.0f} s; "
            "nothing is sent before then)"
        )

    def close(self, timeout: float | None = DEFAULT) -> None:
        """Flush, then stop the flusher. Idempotent. Raises if records could not be committed.

        By default it takes no longer than the deadline within the host's
        ``shutdown_grace`` (counted from the SIGTERM when one came); ``timeout``
        seconds instead, or without bound when ``None``. What it could not
        commit is one ERROR line (how many, and why) and the error raised.
        """
        if timeout is DEFAULT:
            timeout = _lifecycle.close_time_left(self._config.shutdown_grace)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._start_closing()
            self._close_called = True
            self._changed.notify_all()
            nothing = not len(self._queue)
        error: GitJsonlError | None = None
        try:
            if not nothing:
                self.flush(timeout)
        except GitJsonlError as exc:
            error = exc
        finally:
            reason = self._why_pending() if error is not None else ""
            with self._lock:
                self._closed = True
                self._changed.notify_all()  # flush() in other threads: nothing will commit now
            self._stop.set()
            self._wake.set()
            join = 5.0 if deadline is None else min(5.0, deadline - time.monotonic())
            self._thread.join(timeout=max(0.0, join))  # a request in flight may outlive it
            self._committer.close()
            self._github.close()
            if self._spool is not None:
                self._spool.close()  # uncommitted records stay in it for the next Log
            _lifecycle.unregister(self)
        if error is not None:
            with self._lock:
                left = len(self._queue)
            fate = (
                "kept in the spool for the next start"
                if self._spool is not None
                else "lost when this process ends"
            )
            _lifecycle.report_loss(
                logger,
                "gitjsonl: %d record(s) could not be committed when the log closed: %s; %s",
                left,
                reason,
                fate,
                extra=RAISED_TOO,
            )
            raise error

    def _why_pending(self) -> str:
        """Why records are still pending, for the ERROR line of a close."""
        budget_wait = 0.0
        if self._budget is not None:
            with contextlib.suppress(OSError):
                budget_wait = self._budget.delay(self._batch_writes, queue=False)
        with self._lock:
            paused_for = self._schedule.blocked_for(self._clock())
            error = self._counters.last_error
        return _lifecycle.why_not_committed(
            paused_for=paused_for,
            budget_wait=budget_wait,
            last_error=None if error is None else str(error),
            retries=self._committer.retries - self._retries_before_batch,
            wall_now=time.time(),
        )

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

    def check(self) -> list[Check]:
        """Will this work? A checklist asked of GitHub before the first record (reads only).

        Credentials and their kind, the repository visible, push permission,
        public or private, the branch (exists or will be created, protected or
        not), the primary rate limit left, and the clock against GitHub's.
        ``gitjsonl doctor`` prints the same list.
        """
        config = self._config
        facts = gather(
            self._github,
            branch=config.branch,
            credentials=credentials_kind(self._credentials),
            allow_public=config.allow_public,
            pacing=describe_pacing(config.pacing, shared=self._shared()),
        )
        info = None
        if config.coordinator is not None:
            info = coordinator_for(config.coordinator).info(self._credentials.key)
        return [*diagnose(facts), coordinator_check(info), spool_line(config.spool_dir)]

    def _shared(self) -> str:
        """Where the budget lives (``BudgetStats.shared``) as configured."""
        if self._budget is not None:
            return self._budget.store.shared
        config = self._config
        if config.coordinator is not None:
            return "hosts"
        return "process" if config.budget_dir is None else "host"

    def stats(self) -> LogStats:
        """A consistent snapshot of the counters, and of the token's write budget.

        No request to GitHub: the budget is read from this process, the host's
        small ledger file, or the coordinator (one Redis call, bounded to about
        a second).
        """
        budget = self._budget.stats() if self._budget is not None else None
        with self._lock:
            return self._counters.snapshot(
                pending=len(self._queue),
                pending_bytes=self._queue.bytes,
                conflicts_retried=self._committer.conflicts,
                retries=self._committer.retries,
                corrupt_lines=self._reader.corrupt_lines,
                landed_after_error=self._committer.landed_after_error,
                budget=budget,
                now=self._clock(),
                oldest_pending_at=self._queue.oldest_at,
            )

    # -- the flusher's side ------------------------------------------------------------

    def _sleep_unless_stopped(self, seconds: float) -> None:
        """The committer's sleep (retries, the budget): a closed ``Log`` ends it with
        ``LogClosed``, so that what waited is never sent after ``close()`` gave up."""
        if not self._stop.is_set():
            self._sleep(seconds)
        if self._stop.is_set():
            raise LogClosed("the log closed while a batch waited; its records stay pending")

    def _wait_unless_stopped(self, seconds: float) -> None:
        if not self._stop.is_set():
            self._sleep(seconds)

    def _run(self) -> None:
        # A wait for another process's lock (a turn, the ledger) ends when close() stops us.
        with _ledger.waits_end_on(self._stop):
            while not self._stop.is_set():
                self._wake.wait(self._config.flush_interval)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self._step()
                except GitJsonlError as exc:  # a spool that cannot be written, say
                    self._failed(exc)
                except Exception as exc:  # nothing may end the flusher: report it and go on
                    logger.exception("gitjsonl: unexpected error in the flusher")
                    self._failed(_wrap(exc))

    def _step(self) -> None:
        """One turn of the flusher: wait out a rate limit, recover, or commit one batch: a dead
        process's slot's (``_adopted_batch``) or else ours once the budget has room, both
        through ``_commit``: the same counters, errors and failure backoff."""
        now = self._clock()
        blocked = self._schedule.blocked_for(now)
        if blocked > 0:
            self._wait_unless_stopped(blocked)
            self._wake.set()  # records kept arriving: go on at once
            return
        if self._recovery is not None and not self._recover_landed(self._recovery):
            return
        with self._lock:
            target = self._flush_target
            requested = target > self._queue.committed_seq or self._closing
            self._flush_target = 0
        if not self._schedule.may_attempt(now, requested=requested):
            return
        adopted = self._adopted_batch(now)
        if adopted is not None:
            self._commit(adopted, own=False)
            self._ask_again(target)  # dead slots go one batch a turn, then ours
        elif self._wait_for_budget():
            self._ask_again(target)
        elif (batch := self._cut_batch()) is not None:
            self._commit(batch)

    def _ask_again(self, target: int) -> None:
        """Another turn at once; a ``flush()`` asked for must not be forgotten by it."""
        with self._lock:
            self._flush_target = max(self._flush_target, target)
        self._wake.set()

    def _wait_for_budget(self) -> bool:
        """Wait until the token's budget has room for a batch, *before* cutting it (the
        records appended meanwhile join it); True when it waited (go round again)."""
        budget = self._budget
        if budget is None:
            return False
        with self._lock:
            if not len(self._queue):
                return False
        wait = budget.delay(self._batch_writes)
        if wait <= 0:
            return False
        if self._injected_sleep is None:
            self._closing_now.wait(wait)  # close() ends it: its batch may spend the reserve
        else:
            self._wait_unless_stopped(wait)
        return True

    def _cut_batch(self) -> Batch | None:
        with self._lock:
            batch = self._queue.cut(
                self._config.max_batch_bytes,
                new_batch_id,
                resend=self._committer.unresolved_batch_id,
            )
            if batch is None:
                return None
            self._counters.attempts_started += 1
            self._retries_before_batch = self._committer.retries
        if self._spool is not None:
            self._spool.batch_formed(batch)  # before its first request
        return batch

    def _adopted_batch(self, now: float) -> Batch | None:
        """A dead process's slot's next batch (``SlotSpool.next_adopted``), on the flusher's own
        time: ``flush()`` and ``close()`` ask for ours, so after a failure it waits out the
        backoff, unless the committer owes its resend (that goes first, whoever formed it)."""
        owed = self._committer.unresolved_batch_id
        if self._spool is None or not (owed or self._schedule.may_attempt(now, requested=False)):
            return None
        batch = self._spool.next_adopted(self._committer, self._github, now)
        if batch is not None:
            with self._lock:  # not an attempt of the caller's: its flush() waits on for ours
                self._retries_before_batch = self._committer.retries
        return batch

    def _commit(self, batch: Batch, *, own: bool = True) -> bool:
        """Commit ``batch``, ours or an adopted slot's (``own=False``); True when it landed."""
        sent = self._github.writes
        try:
            sha = self._committer.commit(batch)
        except GitJsonlError as exc:
            self._failed(exc)
        except Exception as exc:  # a bug of ours must not kill the flusher silently
            logger.exception("gitjsonl: unexpected error while committing a batch")
            self._failed(_wrap(exc))
        else:
            self._batch_writes = max(1, self._github.writes - sent)
            self._succeeded(batch, sha, own=own)
            return True
        return False

    def _succeeded(self, batch: Batch, sha: str, *, own: bool = True) -> None:
        if self._spool is not None:
            self._spool.note_committed(batch, sha)  # in the file that formed it
        with self._lock:
            if own:
                self._queue.drop_committed(batch)
            counters = self._counters
            counters.committed += len(batch.lines)
            counters.batches += 1
            counters.succeeded(sha)
            self._schedule.succeeded()
            again = bool(len(self._queue)) and (
                self._queue.bytes >= self._config.batch_bytes
                or self._flush_target > self._queue.committed_seq
                or self._closing
            )
            self._changed.notify_all()
        if again:
            self._wake.set()

    def _failed(self, exc: GitJsonlError) -> None:
        now = self._clock()
        with self._lock:
            self._counters.failed(exc, now)
            if isinstance(exc, RateLimited):
                # Not a failure: wait as GitHub asks and let records pile up meanwhile.
                self._counters.rate_limited += 1
                self._schedule.rate_limited(now, exc.retry_after)
                # Go straight to waiting it out: the idle wait would add up to
                # flush_interval on top of what GitHub asked for.
                self._wake.set()
            else:
                self._counters.failures += 1
                self._counters.last_failed_attempt = self._counters.attempts_started
                self._schedule.failed(now)
            self._changed.notify_all()
        # A secondary limit met with a budget: the budget has said, once, what it does about it.
        learned = isinstance(exc, RateLimited) and is_secondary_limit(exc)
        level = logging.INFO if learned and self._budget is not None else logging.WARNING
        logger.log(
            level, "gitjsonl: batch not committed, records kept pending: %s", exc, extra=RAISED_TOO
        )

    def _retrying(self, exc: BaseException | None) -> None:
        """A failed attempt is about to be tried again: ``stats()`` shows it now (a lost race
        is how writers take turns, not a failure)."""
        if isinstance(exc, GitJsonlError) and failure_kind(exc) == "error":
            with self._lock:
                self._counters.failed(exc, self._clock())

    def _note_push(self, batch: Batch, commit: str, base: str) -> None:
        if self._spool is not None:
            self._spool.batch_pushing(batch, commit, base)

    def _recover_landed(self, left: Recovery) -> bool:
        """Drop the recovered batch whose commit landed before the crash; False to retry later.

        A batch whose ref update was sent is settled by sending that same
        update again (``Committer.settle``): exact even when reads of the
        branch lag. Newest first: a later batch holds the records of an
        earlier one that failed. Batches of an older spool, without the
        update's commit, are looked for by id in the branch's history.
        """
        try:
            found = settle_candidates(left, self._committer, self._github)
        except GitHubError as exc:
            with self._lock:
                self._counters.attempts_started += 1
            self._failed(exc)
            return False
        self._recovery = None
        if found is not None:
            batch, sha = found
            logger.info("gitjsonl: batch %s had landed before the restart (%s)", batch.id, sha)
            self._succeeded(batch, sha)  # drops exactly that batch's records, the queue's first
        return True

    # -- process lifecycle (called by _lifecycle) ----------------------------------------

    def shutdown_started(self) -> None:
        """The process was told to stop (SIGTERM): commit what is pending now, as a closing
        log does (the flusher may spend the closing reserve). Appends are still welcome
        until ``close()``: the server finishes its requests meanwhile, and what they log
        goes with the final flush (``close()`` or the exit's), not a batch each."""
        with self._lock:
            self._start_closing()
            self._changed.notify_all()
        self._wake.set()

    def _start_closing(self) -> None:
        """From now on commit at once, and the final batch may spend the closing reserve
        (``_pacing.closing_reserve``): a wait for the budget ends here. Under ``_lock``."""
        self._closing = True
        if self._budget is not None:
            self._budget.closing = True
        self._closing_now.set()

    def exit_flush(self, timeout: float) -> int:
        """Close within ``timeout`` at interpreter exit; the records left uncommitted."""
        with contextlib.suppress(GitJsonlError):  # close() has logged it
            self.close(timeout=timeout)
        with self._lock:
            return len(self._queue)

    def after_fork_in_child(self) -> None:
        """In a forked child: the parent commits its own pending records; start afresh.

        Fresh parts (locks another parent thread may have held at fork time,
        an empty queue, new counters, new HTTP connections, a new writer id)
        and a new flusher. Sequence numbers go on from the parent's.
        """
        self._fresh_parts(next_seq=self._queue.next_seq)
        self._closing = self._close_called  # the parent's SIGTERM is not the child's
        self._recovery = None
        if self._spool is not None:
            # The parent holds the spool (and its lock); the child runs without one.
            self._spool.abandon_after_fork()
            self._spool = None
            logger.warning("gitjsonl: forked child of a spooled Log runs without a spool")
        if not self._close_called:
            self._start_flusher()


def _wrap(exc: Exception) -> GitJsonlError:
    """An unexpected exception as the ``GitJsonlError`` that ``flush()`` raises."""
    wrapped = GitJsonlError(f"unexpected error in the flusher: {exc!r}")
    wrapped.__cause__ = exc
    return wrapped
