"""What having gitjsonl installed costs: imports, the CLI's start, the pytest plugin.

Each figure is the median wall time of fresh interpreters (``RUNS`` of each),
less the median of an empty interpreter (``python -c pass``), so what remains
is the import itself. The anchors are ``import requests`` and ``import httpx``
(when installed). Targets (issue 25): ``import gitjsonl`` at most twice ``import
requests``; the pytest plugin adds under 0.15 s to an unrelated project's
one-test run (measured with the plugin on, and off with ``-p no:...``).

    .venv/bin/python bench/imports.py       # prints the figures
    ./dev bench                             # a section of bench/run.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = 9
PLUGIN = "gitjsonl.testing.pytest_plugin"
PLUGIN_TARGET_S = 0.15

#: label -> the code a fresh interpreter runs.
IMPORTS = {
    "empty interpreter": "pass",
    "import requests": "import requests",
    "import httpx": "import httpx",
    "import gitjsonl": "import gitjsonl",
    "import gitjsonl; gitjsonl.Log": "import gitjsonl; gitjsonl.Log",
}


def _median_seconds(argv: list[str], cwd: Path, runs: int = RUNS) -> float | None:
    samples = []
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            return None  # not installed (httpx is optional) or failed: no figure
        samples.append(elapsed)
    return statistics.median(samples)


def _median_of(samples: list[float | None]) -> float | None:
    return None if any(s is None for s in samples) else statistics.median(s for s in samples if s)


def _one_test_project(folder: Path) -> None:
    (folder / "test_unrelated.py").write_text("def test_nothing():\n    assert 1 + 1 == 2\n")
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")


def run(runs: int = RUNS) -> dict[str, Any]:
    python = sys.executable
    seconds = {
        label: _median_seconds([python, "-c", code], ROOT, runs) for label, code in IMPORTS.items()
    }
    seconds["gitjsonl --help"] = _median_seconds([python, "-m", "gitjsonl", "--help"], ROOT, runs)
    empty = seconds["empty interpreter"] or 0.0
    net = {k: (None if v is None else max(0.0, v - empty)) for k, v in seconds.items()}
    with tempfile.TemporaryDirectory(prefix="gitjsonl-plugin-") as tmp:
        project = Path(tmp)
        _one_test_project(project)
        pytest = [python, "-m", "pytest", "-q"]
        # Alternated run by run, so that a change in the machine's load weighs on both alike.
        pairs = [
            (
                _median_seconds(pytest, project, 1),
                _median_seconds([*pytest, "-p", f"no:{PLUGIN}"], project, 1),
            )
            for _ in range(runs)
        ]
        with_plugin = _median_of([a for a, _ in pairs])
        without_plugin = _median_of([b for _, b in pairs])
    plugin_cost = (
        None if with_plugin is None or without_plugin is None else with_plugin - without_plugin
    )
    requests_s = net.get("import requests")
    gitjsonl_s = net.get("import gitjsonl")
    return {
        "runs": runs,
        "seconds": seconds,
        "net_seconds": net,
        "pytest_with_plugin_s": with_plugin,
        "pytest_without_plugin_s": without_plugin,
        "plugin_cost_s": plugin_cost,
        "gitjsonl_per_requests": (
            None if not requests_s or gitjsonl_s is None else gitjsonl_s / requests_s
        ),
        "targets": {
            "import_at_most_twice_requests": (
                requests_s is not None and gitjsonl_s is not None and gitjsonl_s <= 2 * requests_s
            ),
            "plugin_under_0_15_s": plugin_cost is not None and plugin_cost < PLUGIN_TARGET_S,
        },
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def summary(result: dict[str, Any]) -> str:
    net = result["net_seconds"]
    lines = [f"   {label:<32} {_ms(net[label])}" for label in net if label != "empty interpreter"]
    lines.append(
        f"   pytest, one unrelated test: {_ms(result['pytest_with_plugin_s'])} with the plugin, "
        f"{_ms(result['pytest_without_plugin_s'])} without: "
        f"plugin costs {_ms(result['plugin_cost_s'])}"
    )
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    net = result["net_seconds"]
    rows = "\n".join(
        f"| {label} | {_ms(net[label])} |" for label in net if label != "empty interpreter"
    )
    ratio = result["gitjsonl_per_requests"]
    return (
        "\n## 12. What having gitjsonl installed costs\n\n"
        f"Median of {result['runs']} fresh interpreters each, less an empty interpreter's "
        f"{_ms(result['seconds']['empty interpreter'])}.\n\n"
        "| what | time |\n| --- | --- |\n"
        f"{rows}\n\n"
        f"`import gitjsonl` is {'n/a' if ratio is None else f'{ratio:.2f}x'} `import requests` "
        "(target: at most 2x). An unrelated project's one-test pytest run takes "
        f"{_ms(result['pytest_with_plugin_s'])} with gitjsonl's plugin loaded and "
        f"{_ms(result['pytest_without_plugin_s'])} without it: the plugin costs "
        f"{_ms(result['plugin_cost_s'])} (target: under 150 ms).\n"
    )


if __name__ == "__main__":
    print(summary(run()))
