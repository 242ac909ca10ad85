"""An hour of pacing, simulated on the pacing code itself: the delay from append to committed.

Runs ``gitjsonl.testing._hour.simulate`` (the real ``Budget`` and ``_pacing``
decisions, a clock that only the simulation moves, no server, no waiting) for
three hours of each scenario, and reports per record the delay from ``append``
to committed (p50, p99, max), batches per hour, the longest gap between
commits, and the most writes any sliding minute and hour held (GitHub allows
80 and 500). "main" is the same Log paced by the windows alone, as before this
change: it spends the hour in ten minutes and then stalls.

    .venv/bin/python bench/hour.py          # prints the table
    ./dev bench                             # section 7 of bench/run.py
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitjsonl.testing._hour import (
    HourResult,
    Writer,
    percentile,
    simulate,
    steady_arrivals,
    windows_only,
)

HOUR = 3600.0
HOURS = 3
LATENCY = 0.5  # seconds a batch's writes take (the simulation's default)


def _one_log(cost: int) -> list[Writer]:
    return [Writer(steady_arrivals(1.0, 0.0, HOURS * HOUR), cost=cost)]


def _bursty() -> list[Writer]:
    # 10 minutes at 1 record/s, 30 minutes idle, then 5 records/s.
    arrivals = steady_arrivals(1.0, 0.0, 600.0) + steady_arrivals(5.0, 2400.0, HOURS * HOUR)
    return [Writer(arrivals)]


def _four_logs() -> list[Writer]:
    return [Writer(steady_arrivals(0.25, float(i), HOURS * HOUR)) for i in range(4)]


SCENARIOS: list[tuple[str, str, Callable[[], list[Writer]], bool]] = [
    ("one Log, 1 record/s, 4 writes a batch", "4 writes", lambda: _one_log(4), False),
    ("one Log, 1 record/s, 3 writes a batch", "3 writes", lambda: _one_log(3), False),
    ("main's pacing (windows only), 4 writes", "main", lambda: _one_log(4), True),
    ("idle 30 min, then 5 records/s", "bursty", _bursty, False),
    ("four Logs on one token, 0.25 records/s each", "4 Logs", _four_logs, False),
]


def _busy_gaps(result: HourResult, arrivals: list[float]) -> list[float]:
    """Per commit, how long records waited for it since the last one (idle time is no stall):
    from the previous commit, or the first record after it, to this commit."""
    gaps = []
    for a, b in zip(result.commits, result.commits[1:], strict=False):
        first = bisect.bisect_right(arrivals, a - LATENCY)  # records cut after commit a
        if first < len(arrivals) and arrivals[first] < b:
            gaps.append(b - max(a, arrivals[first]))
    return gaps


def _row(name: str, key: str, result: HourResult, arrivals: list[float]) -> dict[str, Any]:
    hours = [sum(1 for t in result.commits if h * HOUR <= t < (h + 1) * HOUR) for h in range(HOURS)]
    gaps = _busy_gaps(result, arrivals)
    return {
        "scenario": name,
        "key": key,
        "records": len(result.delays),
        "batches_per_hour": hours,
        "delay_p50_s": round(percentile(result.delays, 0.5), 1),
        "delay_p99_s": round(percentile(result.delays, 0.99), 1),
        "delay_max_s": round(max(result.delays, default=0.0), 1),
        "longest_gap_s": round(max(gaps, default=0.0), 1),
        "most_writes_a_minute": result.most_in_window(60.0),
        "most_writes_an_hour": result.most_in_window(HOUR),
    }


def run() -> list[dict[str, Any]]:
    """Every scenario's figures (about a second)."""
    rows = []
    for name, key, make, as_main in SCENARIOS:
        writers = make()
        arrivals = sorted(t for w in writers for t in w.arrivals)
        if as_main:
            with windows_only():
                result = simulate(writers, until=HOURS * HOUR)
        else:
            result = simulate(writers, until=HOURS * HOUR)
        rows.append(_row(name, key, result, arrivals))
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """One line per scenario, for the console."""
    return "\n".join(
        f"   {r['key']:<9} {'/'.join(map(str, r['batches_per_hour']))} batches/h, delay p50 "
        f"{r['delay_p50_s']:.0f} s p99 {r['delay_p99_s']:.0f} s max {r['delay_max_s']:.0f} s, "
        f"longest gap {r['longest_gap_s']:.0f} s, most {r['most_writes_a_minute']}/min "
        f"{r['most_writes_an_hour']}/h"
        for r in rows
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    """The section for ``results.md``."""
    lines = [
        "",
        "## 8. An hour of pacing (simulated, GitHub's limits: 80 writes a minute, 500 an hour)",
        "",
        f"{HOURS} hours of each scenario on the pacing code itself (`bench/hour.py`); delay is "
        "from `append` to committed, per record, over the whole run. *main* is the same Log "
        "paced by the windows alone.",
        "",
        "| scenario | batches per hour | delay p50 | p99 | max | longest gap while records "
        "waited | most writes in a minute / hour |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {' / '.join(map(str, r['batches_per_hour']))} "
            f"| {r['delay_p50_s']:.1f} s | {r['delay_p99_s']:.1f} s | {r['delay_max_s']:.1f} s "
            f"| {r['longest_gap_s']:.1f} s | {r['most_writes_a_minute']} / "
            f"{r['most_writes_an_hour']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    rows = run()
    sys.stdout.write(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
