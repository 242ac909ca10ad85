"""Nothing hangs (issue 19, item 1): every blocking call returns or raises within its time.

Each test runs the call that hung on main in a thread joined with a timeout, so
that a regression fails here instead of hanging the suite (pytest-timeout is
the second net).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import FlushTimeout, LogClosed
from gitjsonl._async import AsyncLog
from gitjsonl._pacing import Pacing
from gitjsonl.testing import Fault, LocalHub

from .helpers import committed_records, make_log

pytestmark = pytest.mark.timeout(60)


def finishes(call: Callable[[], object], within: float) -> list[BaseException | object]:
    """Run ``call`` in a thread; what it returned or raised, or fail if it is still running."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still blocked after {within} s"
    return outcome


class TestFlushAndClose:
    def test_a_flush_waiting_while_close_gives_up_raises_log_closed(
        self, localhub: LocalHub
    ) -> None:
        """flush() in one thread, close(timeout) in another: once close gives up, the flush
        raises LogClosed instead of waiting for a flusher that has stopped."""
        log = make_log(localhub, sleep=None)
        localhub.add_fault(Fault(method="POST", action="latency", delay=3.0, times=None))
        log.append({"id": 0})
        waiting: list[BaseException | object] = []
        flusher = threading.Thread(target=lambda: waiting.extend(finishes(log.flush, 30)))
        flusher.start()
        time.sleep(0.1)
        with pytest.raises(FlushTimeout):
            log.close(timeout=0.2)
        flusher.join(30)
        assert not flusher.is_alive()
        assert isinstance(waiting[0], LogClosed)
        # close() kept its deadline and left the request in flight: let it end before the hub.
        log._thread.join(30)

    def test_a_flush_after_close_raises_at_once(self, localhub: LocalHub) -> None:
        """flush() on a closed log raises LogClosed, whatever was left pending."""
        log = make_log(localhub)
        log.close()
        (outcome,) = finishes(log.flush, 5)
        assert isinstance(outcome, LogClosed)


class TestAsyncLog:
    def test_a_cancelled_flush_then_aclose_lets_asyncio_run_return(
        self, localhub: LocalHub
    ) -> None:
        """A cancelled await flush() leaves no thread behind: asyncio.run() returns."""
        # Slow enough that on main the orphaned flush outlived the join below (4 x 8 s).
        localhub.add_fault(Fault(method="POST", action="latency", delay=8.0, times=None))

        log = make_log(localhub, sleep=None)

        async def main() -> None:
            alog = AsyncLog.wrap(log)
            alog.append({"id": 0})
            task = asyncio.create_task(alog.flush())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with pytest.raises(FlushTimeout):
                await alog.aclose(timeout=0.2)

        finishes(lambda: asyncio.run(main()), 20)
        log._thread.join(30)  # the request aclose() left in flight ends before the hub


class TestClosingCutsWaitsShort:
    def test_close_ends_a_wait_for_another_process_turn(
        self, localhub: LocalHub, tmp_path: Path
    ) -> None:
        """A flusher waiting for a turn another process holds stops when close() gives up:
        close returns at once, and the batch is not sent without its turn."""
        from gitjsonl._ledger import locked

        log = make_log(localhub, sleep=None, budget_dir=tmp_path)
        log.append({"id": 0})
        log.flush(timeout=30)
        (turn_file,) = tmp_path.glob("turn-*.json")
        with locked(turn_file) as fd:  # another process, as far as flock is concerned
            assert fd is not None
            log.append({"id": 1})
            time.sleep(0.3)  # the flusher is now polling for the turn (for up to 60 s)
            started = time.monotonic()
            (outcome,) = finishes(lambda: log.close(timeout=0.2), 10)
            assert time.monotonic() - started < 3.0
            assert isinstance(outcome, FlushTimeout)
            # close() keeps its deadline and does not wait for it: the flusher stops soon,
            # still without the turn.
            log._thread.join(3.0)
            assert not log._thread.is_alive()
        assert [r["id"] for r in committed_records(localhub)] == [0]

    def test_close_never_sends_writes_the_budget_has_no_room_for(
        self, localhub: LocalHub, tmp_path: Path
    ) -> None:
        """close(timeout) in a moment the budget is spent raises FlushTimeout naming the
        wait, and sends nothing: no secondary-limit answer, no "something else" warning."""
        pacing = Pacing(per_minute=80, per_hour=5, minute=60.0, hour=3600.0)
        options: dict[str, Any] = {
            "pacing": pacing,
            "sleep": None,
            "clock": time.monotonic,
            "budget_dir": tmp_path,
        }
        # A closing log may spend the closing reserve: the first one's close spends the
        # hour's 5 writes down to 1 (the bootstrap and a batch), which no batch fits in.
        first = make_log(localhub, **options)
        first.append({"id": 0})
        first.close(timeout=30)
        writes = sum(1 for r in localhub.requests if r.write)
        log = make_log(localhub, **options)
        log.append({"id": 1})
        (outcome,) = finishes(lambda: log.close(timeout=0.5), 10)
        assert isinstance(outcome, FlushTimeout)
        assert "write budget" in str(outcome)
        assert sum(1 for r in localhub.requests if r.write) == writes
        assert [r["id"] for r in committed_records(localhub)] == [0]
