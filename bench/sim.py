"""The deterministic simulator's long search: seeds a second, steps and faults explored.

Runs ``gitjsonl.testing.sim`` over consecutive seeds for a time budget (or up
to 100,000 seeds): the default faults (every one but an operator's reset),
then the reset searched on its own, then the control (a GitHub whose
compare-and-swap is broken), which must fail. ``tests/test_sim.py`` runs 300
seeds in CI; this is the long one.

    .venv/bin/python bench/sim.py [SECONDS]    # prints the figures
    ./dev bench                                # section 13 of bench/run.py
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitjsonl.testing import sim

SECONDS = 600.0  # the default search's budget; the reset and the control get a tenth each
MAX_SEEDS = 100_000


def _search(seconds: float, first: int, **kwargs: Any) -> dict[str, Any]:
    """Seeds from ``first`` on, until ``seconds`` or ``MAX_SEEDS``: what they explored."""
    started = time.perf_counter()
    seed, steps, faults, violating, home_races = first, 0, Counter[str](), [], 0
    visited: set[tuple[str, str]] = set()
    while seed - first < MAX_SEEDS and time.perf_counter() - started < seconds:
        result = sim.run(seed, **kwargs)
        steps += result.steps
        home_races += result.home_races
        faults.update(result.faults)
        visited.update(result.visited)
        if result.violations:
            violating.append(seed)
        seed += 1
    elapsed = time.perf_counter() - started
    return {
        "seeds": f"{first}:{seed}",
        "runs": seed - first,
        "seconds": round(elapsed, 1),
        "seeds_per_second": round((seed - first) / elapsed, 1) if elapsed else 0.0,
        "steps": steps,
        "faults": dict(sorted(faults.items())),
        "transitions": f"{len(visited & sim.edges())}/{len(sim.edges())}",
        "home_races": home_races,
        "violations": len(violating),
        "violating_seeds": violating[:20],
    }


def run(seconds: float = SECONDS) -> dict[str, Any]:
    """The three searches; ``met``: no violation by default, the control caught."""
    default = _search(seconds, 0)
    reset = _search(seconds / 10, 0, faults=(*sim.DEFAULT_FAULTS, "reset"))
    control = _search(seconds / 10, 0, control=True)
    return {
        "default": default,
        "reset": reset,
        "control": control,
        "met": default["violations"] == 0 and control["violations"] > 0,
    }


_ROWS = (
    ("default", "every fault but a reset"),
    ("reset", "with an operator's reset"),
    ("control", "control: a broken compare-and-swap"),
)


def summary(result: dict[str, Any]) -> str:
    return "\n".join(
        f"   {label:<36} {r['runs']:,} seeds ({r['seeds_per_second']}/s), {r['steps']:,} steps, "
        f"{sum(r['faults'].values()):,} faults, {r['transitions']} transitions, "
        f"{r['home_races']} races at home, "
        f"{r['violations']} violating seeds "
        f"{r['violating_seeds'][:5] if key != 'control' else ''}"
        for key, label in _ROWS
        for r in (result[key],)
    )


def markdown(result: dict[str, Any]) -> str:
    out = [
        "\n## 13. The deterministic simulator\n",
        "Writers (the write protocol's steps, `CommitProtocol`, driven without threads; "
        "several on a host share its turn; some paced by a real `Budget`) against "
        "`MemoryGitHub` on a virtual clock and a seeded scheduler (`./dev sim`), checked "
        "after every run: every acknowledged record exactly once, each writer's order, "
        "removed commits never back, no wait past its bound, no paced window past its "
        "limit. Races at home: first ref updates refused for commits of their own host's "
        "writers only (taking turns makes them rare; kills and restarts still cost one). "
        "Target: no violation without a reset, and "
        f"the control caught: {'met' if result['met'] else 'not met'}.\n",
        "| search | seeds | seeds/s | steps | faults injected | transitions | races at home "
        "| violating seeds |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for key, label in _ROWS:
        r = result[key]
        faults = ", ".join(f"{k} {v:,}" for k, v in r["faults"].items())
        out.append(
            f"| {label} | {r['runs']:,} | {r['seeds_per_second']} | {r['steps']:,} | "
            f"{faults} | {r['transitions']} | {r['home_races']} | {r['violations']} |"
        )
    for key, label in _ROWS[:2]:
        if result[key]["violating_seeds"]:
            seeds = ", ".join(map(str, result[key]["violating_seeds"]))
            out.append(
                f"\n{label}: violating seeds {seeds} (replay: `./dev sim --seeds S:S+1 --trace`)"
            )
    return "\n".join(out) + "\n"


def main() -> int:
    print(summary(run(float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
