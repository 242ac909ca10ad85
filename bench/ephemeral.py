"""An ephemeral host, restarted ten times with its disk wiped (issue #26's table).

Runs ``tests/restart_harness.py`` for each row of the issue's table: the
example app under ``uvicorn --workers 2`` (and gunicorn), LocalHub with
GitHub's secondary limits and 0.5 s read lag, time scaled by ``SCALE`` (the
limits' windows, the pacing's, the flush interval, the traffic and the restart
period together; the 10 s grace before SIGKILL stays real), a trickle of one
interaction every 1-10 s with a burst of 50 per cycle, every local folder
wiped between restarts, and every acknowledged record counted on the branch
with git. The reference service's algorithm runs under the same traffic.

    .venv/bin/python bench/ephemeral.py          # prints the table
    .venv/bin/python bench/run.py --only 11      # section 11 alone, into results.*
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.redis_support import RedisServer
from tests.restart_harness import RunResult, Variant, run

SCALE = 20.0
CYCLES = 10
VARIANTS = (
    Variant("uvicorn, 2 workers, no spool, restart every 3 min"),
    Variant("same, spool folder on the wiped disk", spool=True),
    Variant("gunicorn, 2 workers, spool", server="gunicorn", spool=True),
    Variant(
        "a burst arriving at SIGTERM, restart every 4 min",
        burst_at_sigterm=True,
        cycle_seconds=240.0,
    ),
    Variant("the drop-in `GithubLog` in the same app", app="dropin"),
    Variant("with a Redis coordinator (its budget outlives the disk)", coordinator=True),
    Variant("the reference service (Contents API, one GET+PUT a record)", app="reference"),
)
assert len({v.name for v in VARIANTS}) == len(VARIANTS)


def _redis(folder: Path) -> RedisServer | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    server = RedisServer(binary, folder)
    server.start()
    return server


def run_all(cycles: int = CYCLES, scale: float = SCALE) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    folder = Path(tempfile.mkdtemp(prefix="gitjsonl-bench-ephemeral-"))
    redis = _redis(folder)
    try:
        for n, variant in enumerate(VARIANTS):
            if variant.coordinator and redis is None:
                continue  # no redis-server here: the row is left out, said in the summary
            result: RunResult = run(
                variant,
                cycles=cycles,
                scale=scale,
                redis=redis.url if variant.coordinator and redis else None,
                seed=n,
            )
            row = {**result.as_dict(), "scale": scale}
            rows.append(row)
            print(_line(row), flush=True)
    finally:
        if redis is not None:
            redis.kill()
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def met(rows: list[dict[str, Any]]) -> bool:
    """The target: gitjsonl's rows (not the reference's) lost nothing, twice nothing, each cycle."""
    ours = [r for r in rows if r["variant"]["app"] != "reference"]
    return bool(ours) and all(
        c["lost"] == 0 and c["duplicated"] == 0 for r in ours for c in r["cycles"]
    )


def _first_cycle(row: dict[str, Any]) -> str:
    lost = row["cycles"][0]["lost"] if row["cycles"] else 0
    return f" ({lost} in the first cycle)" if lost else ""


def _line(r: dict[str, Any]) -> str:
    return (
        f"   {r['variant']['name'][:58]:<58} acknowledged {r['total']['acknowledged']:>5}, "
        f"landed once {r['total']['landed_once']:>5}, lost {r['total']['lost']:>4}"
        f"{_first_cycle(r)}, duplicated {r['total']['duplicated']}, "
        f"SIGKILLed {r['killed']}/{len(r['cycles'])}"
    )


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [_line(r) for r in rows]
    if not any(r["variant"]["coordinator"] for r in rows):
        lines.append("   (no redis-server on this machine: the coordinator's row is left out)")
    return "\n".join(lines)


def _lost_cycles(row: dict[str, Any]) -> str:
    lost = [str(c["lost"]) for c in row["cycles"]]
    return " ".join(lost)


def markdown(rows: list[dict[str, Any]]) -> str:
    scale = rows[0]["scale"] if rows else SCALE
    cycles = len(rows[0]["cycles"]) if rows else CYCLES
    out = [
        "\n## 11. An ephemeral host, restarted with its disk wiped\n",
        f"The example app in its real server (2 workers), restarted {cycles} times; every "
        "local folder (budget folder, cache, spool, SQLite) wiped between restarts; SIGTERM, "
        "then SIGKILL 10 s later (real seconds) to the whole process group, or as soon as "
        "the main process is gone. LocalHub enforces GitHub's secondary limits (80 writes a "
        "minute, 500 an hour per token) with 0.5 s read lag. Time runs "
        f"{scale:g} times faster: the limits' windows, the pacing's, the flush interval "
        "(5 s), the trickle (one interaction every 1-10 s), and the restart period are all "
        "divided by it. One burst of 50 per cycle. Every acknowledged record (answered 200) "
        "is counted on the branch, read with git.\n",
        "| run | acknowledged | landed once | lost | duplicated | SIGKILLed | lost per cycle |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    out += [
        f"| {r['variant']['name']} | {r['total']['acknowledged']:,} | "
        f"{r['total']['landed_once']:,} | **{r['total']['lost']:,}**{_first_cycle(r)} | "
        f"{r['total']['duplicated']} | {r['killed']}/{len(r['cycles'])} | {_lost_cycles(r)} |"
        for r in rows
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else CYCLES
    rows = run_all(cycles)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
