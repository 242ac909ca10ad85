"""AsyncLog: the asyncio face of Log, which never blocks the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from gitjsonl import Log, LogClosed
from gitjsonl._async import AsyncLog
from gitjsonl.testing import Fault, Gate, LocalHub

T = TypeVar("T")

#: Upper bound on every wait: the tests pass in milliseconds; a bug fails, never hangs.
BOUND = 30.0
#: How long the control lets the loop try to run a coroutine while the loop is stuck.
#: Its verdict does not depend on it: the loop stays stuck until the gate opens,
#: and the gate opens only after this wait.
CONTROL_PATIENCE = 0.5


async def other_coroutine() -> str:
    """Work that needs the loop: it yields to it a few times before it finishes."""
    for _ in range(3):
        await asyncio.sleep(0)
    return "ran"


class LoopWatch:
    """Holds every request at a gate; meanwhile, from a thread, asks the loop to run a coroutine.

    The gate is opened by that thread, not by the loop: a call that blocked the
    loop would never see it opened otherwise. ``loop_ran_while_held`` is None if
    no request reached the gate, else whether ``other_coroutine`` ran to completion
    on the loop while a request was held; ``call_pending_at_release`` says the
    call was still waiting when the gate opened (so the request held was its own).
    """

    def __init__(self, hub: LocalHub, patience: float = BOUND) -> None:
        self._hub = hub
        self._patience = patience
        self._thread: threading.Thread | None = None
        self.gate = Gate()
        self.call_done = threading.Event()
        self.loop_ran_while_held: bool | None = None
        self.call_pending_at_release: bool | None = None

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.gate.wait_reached(BOUND):
            future = asyncio.run_coroutine_threadsafe(other_coroutine(), loop)
            try:
                self.loop_ran_while_held = future.result(timeout=self._patience) == "ran"
            except concurrent.futures.TimeoutError:
                future.cancel()
                self.loop_ran_while_held = False
            self.call_pending_at_release = not self.call_done.is_set()
        self.gate.open()

    async def __aenter__(self) -> LoopWatch:
        self._hub.add_fault(Fault(action="hold", gate=self.gate, delay=BOUND, times=None))
        self._thread = threading.Thread(
            target=self._watch, args=(asyncio.get_running_loop(),), daemon=True
        )
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._thread is not None
        self.call_done.set()
        self.gate.open()
        await asyncio.to_thread(self._thread.join, BOUND)
        self._hub.clear_faults()

    def assert_loop_was_free(self) -> None:
        assert self.loop_ran_while_held is not None, "the call sent no request"
        assert self.call_pending_at_release, "the call did not wait for the held request"
        assert self.loop_ran_while_held, "the loop could not run while the request was held"


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def wrapper() -> T:
        return await main()

    return asyncio.run(wrapper())


def make_log(hub: LocalHub, **options: Any) -> AsyncLog:
    options.setdefault("flush_interval", 0.05)
    return AsyncLog(
        "owner/repo",
        path="data/interactions",
        api_url=hub.url,
        token=hub.token,
        pacing=None,
        **options,
    )


@pytest.fixture
def hub(localhub_factory: Callable[..., LocalHub]) -> LocalHub:
    return localhub_factory(initial_commit=True)


def committed_log(hub: LocalHub, count: int) -> AsyncLog:
    """An AsyncLog with ``count`` records already committed (appended and flushed)."""
    log = make_log(hub)
    for i in range(count):
        log.append({"id": i, "text": "x" * 100})
    log.log.flush(timeout=BOUND)
    return log


class TestLoopNeverBlocks:
    """While a call's request is held at a gate, the loop runs other coroutines."""

    def test_flush(self, hub: LocalHub) -> None:
        """flush() leaves the loop free while the commit it waits for is held."""

        async def main() -> tuple[LoopWatch, AsyncLog]:
            log = make_log(hub)
            async with LoopWatch(hub) as watch:
                for i in range(200):
                    log.append({"id": i, "text": "x" * 100})
                await asyncio.wait_for(log.flush(), BOUND)
            await log.aclose()
            return watch, log

        watch, log = run(main)
        watch.assert_loop_was_free()
        assert log.stats().committed == 200

    def test_tail(self, hub: LocalHub) -> None:
        """tail() leaves the loop free while its reads are held, then returns the records."""
        log = committed_log(hub, 200)

        async def main() -> tuple[LoopWatch, list[dict[str, Any]]]:
            async with LoopWatch(hub) as watch:
                tail = await asyncio.wait_for(log.tail(5), BOUND)
            await log.aclose()
            return watch, tail

        watch, tail = run(main)
        watch.assert_loop_was_free()
        assert [r["id"] for r in tail] == [195, 196, 197, 198, 199]

    def test_records(self, hub: LocalHub) -> None:
        """records() leaves the loop free while its reads are held, then streams them all."""
        log = committed_log(hub, 200)

        async def collect() -> list[dict[str, Any]]:
            return [record async for record in log.records()]

        async def main() -> tuple[LoopWatch, list[dict[str, Any]]]:
            async with LoopWatch(hub) as watch:
                every = await asyncio.wait_for(collect(), BOUND)
            await log.aclose()
            return watch, every

        watch, every = run(main)
        watch.assert_loop_was_free()
        assert [r["id"] for r in every] == list(range(200))

    def test_aclose(self, hub: LocalHub) -> None:
        """aclose() leaves the loop free while its last commit is held, then closes."""

        async def main() -> tuple[LoopWatch, AsyncLog]:
            log = make_log(hub)
            async with LoopWatch(hub) as watch:
                log.append({"id": 1})
                await asyncio.wait_for(log.aclose(), BOUND)
            return watch, log

        watch, log = run(main)
        watch.assert_loop_was_free()
        assert log.stats().committed == 1
        with pytest.raises(LogClosed):
            log.append({"id": 2})

    def test_the_watch_sees_a_blocking_call(self, hub: LocalHub) -> None:
        """Calling the blocking Log.flush on the loop is caught by the same watch (control)."""

        async def main() -> LoopWatch:
            log = make_log(hub)
            async with LoopWatch(hub, patience=CONTROL_PATIENCE) as watch:
                log.append({"id": 1})
                log.log.flush(timeout=BOUND)  # the mistake AsyncLog exists to prevent
            await log.aclose()
            return watch

        watch = run(main)
        assert watch.call_pending_at_release
        assert watch.loop_ran_while_held is False


class TestAsyncApi:
    def test_append_then_flush_commits(self, localhub: LocalHub) -> None:
        """Records appended and flushed are on the branch, in order, and counted in stats."""

        async def main() -> tuple[list[dict[str, Any]], int]:
            async with make_log(localhub) as log:
                for i in range(10):
                    log.append({"id": i})
                await log.flush(timeout=30)
                return await log.tail(100), log.stats().committed

        tail, committed = run(main)
        assert [r["id"] for r in tail] == list(range(10))
        assert committed == 10

    def test_records_streams_across_chunks_in_order(self, localhub: LocalHub) -> None:
        """records() yields every record in order when the hand-over chunk is small."""

        async def main() -> list[int]:
            async with make_log(localhub, segment_bytes=300) as log:
                for i in range(100):
                    log.append({"id": i})
                await log.flush(timeout=30)
                return [r["id"] async for r in log.records(chunk=7)]

        assert run(main) == list(range(100))

    def test_leaving_records_early_is_clean(self, localhub: LocalHub) -> None:
        """Breaking out of ``async for`` stops the stream without error."""

        async def main() -> list[int]:
            async with make_log(localhub) as log:
                for i in range(20):
                    log.append({"id": i})
                await log.flush(timeout=30)
                seen = []
                async for record in log.records(chunk=3):
                    seen.append(record["id"])
                    if len(seen) == 4:
                        break
                return seen

        assert run(main) == [0, 1, 2, 3]

    def test_async_with_closes_the_log(self, localhub: LocalHub) -> None:
        """Leaving ``async with`` flushes and closes: later appends raise LogClosed."""

        async def main() -> AsyncLog:
            async with make_log(localhub) as log:
                log.append({"id": 1})
            return log

        log = run(main)
        assert log.stats().committed == 1
        with pytest.raises(LogClosed):
            log.append({"id": 2})

    def test_aclose_is_idempotent(self, localhub: LocalHub) -> None:
        """A second aclose() does nothing."""

        async def main() -> None:
            log = make_log(localhub)
            await log.aclose()
            await log.aclose()

        run(main)

    def test_block_policy_is_refused(self, localhub: LocalHub) -> None:
        """on_full="block" is refused: it would block the event loop when the buffer is full."""
        with pytest.raises(ValueError, match="block"):
            make_log(localhub, on_full="block")

    def test_wrap_shares_the_log(self, localhub: LocalHub) -> None:
        """wrap() gives an AsyncLog over an existing Log; both see the same records."""
        log = Log(
            "owner/repo",
            path="data/interactions",
            api_url=localhub.url,
            token=localhub.token,
            pacing=None,
            flush_interval=0.05,
        )
        wrapped = AsyncLog.wrap(log)
        assert wrapped.log is log
        assert (wrapped.repo, wrapped.path) == ("owner/repo", "data/interactions")
        wrapped.append({"id": 1})

        async def main() -> None:
            await wrapped.aclose()

        run(main)
        assert log.stats().committed == 1
