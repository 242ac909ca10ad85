"""AsyncLog: the asyncio face of Log, which never blocks the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from gitjsonl import Log, LogClosed
from gitjsonl._async import AsyncLog
from gitjsonl.testing import Fault, LocalHub

T = TypeVar("T")

#: The ticker's period; a stall is how much later than this a tick arrives.
TICK = 0.005
#: What "never blocks the loop" means here: no tick later than this.
MAX_STALL = 0.05
#: Latency localhub adds to every Git Data request in the slow-server tests.
SLOW = 0.2


class StallMeter:
    """A ticker task that records the longest time the loop could not run it."""

    def __init__(self) -> None:
        self.max_stall = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            self.max_stall = max(self.max_stall, time.perf_counter() - start - TICK)
            self.ticks += 1

    async def __aenter__(self) -> StallMeter:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await asyncio.sleep(TICK * 3)  # let a tick that is already due be measured
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


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
def slow_hub(localhub_factory: Callable[..., LocalHub]) -> LocalHub:
    hub = localhub_factory(initial_commit=True)
    hub.add_fault(Fault(path=r"/git/", action="latency", delay=SLOW, times=None))
    return hub


class TestLoopNeverBlocks:
    def test_append_flush_tail_records_close_keep_the_loop_running(
        self, slow_hub: LocalHub
    ) -> None:
        """With every Git request 200 ms slow, no API call stalls the loop for 50 ms."""

        async def main() -> tuple[StallMeter, list[dict[str, Any]], list[dict[str, Any]]]:
            async with StallMeter() as meter:
                log = make_log(slow_hub)
                for i in range(200):
                    log.append({"id": i, "text": "x" * 100})
                await log.flush()
                tail = await log.tail(5)
                every = [record async for record in log.records()]
                await log.aclose()
            return meter, tail, every

        meter, tail, every = run(main)
        assert [r["id"] for r in tail] == [195, 196, 197, 198, 199]
        assert [r["id"] for r in every] == list(range(200))
        assert meter.ticks > 50, "the ticker hardly ran: the measurement means nothing"
        print(f"max loop stall: {meter.max_stall * 1000:.1f} ms over {meter.ticks} ticks")
        assert meter.max_stall < MAX_STALL, f"loop stalled {meter.max_stall * 1000:.0f} ms"

    def test_the_meter_sees_a_blocking_call(self, slow_hub: LocalHub) -> None:
        """Calling the blocking Log.flush on the loop is caught by the same meter (control)."""

        async def main() -> StallMeter:
            async with StallMeter() as meter:
                log = make_log(slow_hub)
                log.append({"id": 1})
                log.log.flush()  # the mistake AsyncLog exists to prevent
                await log.aclose()
            return meter

        assert run(main).max_stall > SLOW


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
