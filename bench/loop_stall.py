"""AsyncLog against a slow server: the longest the event loop is kept from running.

A ticker task sleeps 5 ms at a time on the loop and records how late each tick
wakes up (the stall); meanwhile an ``AsyncLog`` appends 200 records, flushes,
reads ``tail(5)`` and every record, and closes, with localhub delaying every Git
request by 200 ms. The control row calls the blocking ``Log.flush`` on the loop
instead, to show what the ticker reports when the loop is blocked. Target: no
stall of 50 ms or more with ``AsyncLog`` (one slow request on the loop would be
200 ms). ``tests/test_async.py`` proves the loop stays free without timing it.

    .venv/bin/python bench/loop_stall.py    # prints the figures
    ./dev bench                             # section 10 of bench/run.py
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitjsonl import AsyncLog
from gitjsonl.testing import Fault, LocalHub

TICK = 0.005  # the ticker's sleep; a stall is how much later than this it wakes
SLOW = 0.2  # latency localhub adds to every Git request
RECORDS = 200
TARGET_MS = 50.0


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


def _log(hub: LocalHub) -> AsyncLog:
    return AsyncLog(
        "bench/loop",
        path="data/interactions",
        api_url=hub.url,
        token=hub.token,
        pacing=None,
        flush_interval=0.05,
    )


async def _async_calls(hub: LocalHub) -> dict[str, Any]:
    started = time.perf_counter()
    async with StallMeter() as meter:
        log = _log(hub)
        for i in range(RECORDS):
            log.append({"id": i, "text": "x" * 100})
        await log.flush()
        tail = await log.tail(5)
        every = [record async for record in log.records()]
        await log.aclose()
    correct = [r["id"] for r in tail] == list(range(RECORDS - 5, RECORDS)) and [
        r["id"] for r in every
    ] == list(range(RECORDS))
    return _row("AsyncLog: append, flush, tail, records, aclose", meter, started, correct)


async def _blocking_flush(hub: LocalHub) -> dict[str, Any]:
    started = time.perf_counter()
    async with StallMeter() as meter:
        log = _log(hub)
        log.append({"id": 0})
        log.log.flush()  # the mistake AsyncLog exists to prevent
        await log.aclose()
    return _row("control: the blocking Log.flush on the loop", meter, started, True)


def _row(name: str, meter: StallMeter, started: float, correct: bool) -> dict[str, Any]:
    return {
        "run": name,
        "max_stall_ms": round(meter.max_stall * 1000, 1),
        "ticks": meter.ticks,
        "seconds": round(time.perf_counter() - started, 2),
        "correct": correct,
    }


def run() -> dict[str, Any]:
    """The two rows, and ``met``: the AsyncLog row read its records back, under the target."""
    rows = []
    for calls in (_async_calls, _blocking_flush):
        with LocalHub(repos=("bench/loop",), initial_commit=True) as hub:
            hub.add_fault(Fault(path=r"/git/", action="latency", delay=SLOW, times=None))
            rows.append(asyncio.run(calls(hub)))
    met = rows[0]["correct"] and rows[0]["max_stall_ms"] < TARGET_MS
    return {
        "tick_ms": TICK * 1000,
        "slow_ms": SLOW * 1000,
        "target_ms": TARGET_MS,
        "met": met,
        "rows": rows,
    }


def summary(result: dict[str, Any]) -> str:
    return "\n".join(
        f"   {r['run']:<48} max stall {r['max_stall_ms']:.1f} ms over {r['ticks']} ticks "
        f"({r['seconds']:.1f} s){'' if r['correct'] else '  WRONG RECORDS'}"
        for r in result["rows"]
    )


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    out = [
        "\n## 10. AsyncLog: event-loop stall\n",
        f"A task sleeping {TICK * 1000:.0f} ms at a time on the loop records how late each "
        f"tick wakes up, while every Git request is {SLOW * 1000:.0f} ms slow; "
        f"{RECORDS} records appended, flushed, `tail(5)`, read back with `records()`, "
        f"closed. Target: no stall of {TARGET_MS:.0f} ms: "
        f"{'met' if result['met'] else 'not met'}.\n",
        "| run | longest stall | ticks | seconds |",
        "|---|---:|---:|---:|",
    ]
    out += [
        f"| {r['run']} | {r['max_stall_ms']:.1f} ms | {r['ticks']} | {r['seconds']:.1f} |"
        for r in rows
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    print(summary(run()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
