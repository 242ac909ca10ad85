"""Writer processes for tests and the benchmark: many ``Log``s on one token, in other processes.

``run_writers`` starts ``processes`` Python processes, each running this module
(``python -m gitjsonl.testing._writers``): ``logs`` ``Log``s on one token and
one log, each appending a record ``{"w": "<process>-<log>", "i": n}`` every 20 ms
for ``seconds``, then closing. Each process prints one JSON line: how many
records each of its ``Log``s appended, and their batches, lost races and rate
limits. The test of issue 11 and the benchmark's "many processes, one token"
run the same writers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gitjsonl._pacing import Pacing

__all__ = ["run_writers"]

#: Seconds between two appends of one ``Log``.
APPEND_EVERY = 0.02


def run_writers(
    *,
    api_url: str,
    token: str,
    repo: str,
    processes: int,
    logs: int,
    seconds: float,
    pacing: Pacing,
    budget_dir: str | Path | None,
    timeout: float = 300.0,
    hosts: int = 1,
    coordinator: str | None = None,
    branch: str | None = None,
    start_at: float | None = None,
) -> list[dict[str, Any]]:
    """Run the writer processes to the end; each one's report, in process order.

    ``hosts`` > 1 simulates that many hosts: process ``n`` keeps its budget and
    turns in ``budget_dir/host<n % hosts>``, as separate machines would;
    ``coordinator`` is the Redis they all share (``Log(coordinator=)``).
    ``start_at`` (a ``time.time()``): every process waits for it before its first
    append, so that their first flushes come at about the same moment.
    """
    argv = [
        sys.executable,
        "-m",
        "gitjsonl.testing._writers",
        "--api-url",
        api_url,
        "--repo",
        repo,
        "--logs",
        str(logs),
        "--seconds",
        str(seconds),
        "--pacing",
        json.dumps(asdict(pacing)),
        "--coordinator",
        coordinator or "-",
        "--branch",
        "-" if branch is None else branch,
        "--start-at",
        "0" if start_at is None else repr(start_at),
    ]

    def folder(n: int) -> str:
        if budget_dir is None:
            return "-"
        return str(Path(budget_dir) / f"host{n % hosts}") if hosts > 1 else str(budget_dir)

    procs = [
        subprocess.Popen(
            [*argv, "--name", f"p{n}", "--budget-dir", folder(n)],
            stdout=subprocess.PIPE,
            # The token goes through the environment, never the process list.
            env={**os.environ, "GITHUB_TOKEN": token},
        )
        for n in range(processes)
    ]
    outputs = [proc.communicate(timeout=timeout)[0] for proc in procs]
    failed = [n for n, proc in enumerate(procs) if proc.returncode != 0]
    if failed:
        raise RuntimeError(f"writer processes {failed} failed")
    return [json.loads(out) for out in outputs]


class _Notes(logging.Handler):
    """Counts what gitjsonl said of its coordinator: falling back (WARNING), back (INFO)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fell_back = 0
        self.came_back = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "coordinator" in message and record.levelno == logging.WARNING:
            self.fell_back += 1
        elif "coordinator" in message and "answers again" in message:
            self.came_back += 1


def _write(args: argparse.Namespace) -> dict[str, Any]:
    import gitjsonl

    notes = _Notes()
    logger = logging.getLogger("gitjsonl")
    logger.addHandler(notes)
    logger.setLevel(logging.INFO)

    logs = [
        gitjsonl.Log(
            args.repo,
            path="data/interactions",
            api_url=args.api_url,
            pacing=Pacing(**json.loads(args.pacing)),
            flush_interval=0.2,
            budget_dir=None if args.budget_dir == "-" else args.budget_dir,
            coordinator=None if args.coordinator == "-" else args.coordinator,
            branch=None if args.branch == "-" else args.branch,
        )
        for _ in range(args.logs)
    ]
    counts = [0] * len(logs)
    time.sleep(max(0.0, args.start_at - time.time()))  # the barrier

    def write(k: int) -> None:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            logs[k].append({"w": f"{args.name}-{k}", "i": counts[k]})
            counts[k] += 1
            time.sleep(APPEND_EVERY)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(len(logs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close(timeout=120)
    stats = [log.stats() for log in logs]
    return {
        "counts": counts,
        "batches": sum(s.batches for s in stats),
        "conflicts": sum(s.conflicts_retried for s in stats),
        "rate_limited": sum(s.rate_limited for s in stats),
        "coordinator_warnings": notes.fell_back,
        "coordinator_back": notes.came_back,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--logs", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--pacing", required=True, help="Pacing's fields, as JSON")
    parser.add_argument("--budget-dir", required=True, help="a folder, or - for none")
    parser.add_argument("--coordinator", default="-", help="a redis:// URL, or - for none")
    parser.add_argument("--branch", default="-", help="a branch, or - for the default")
    parser.add_argument("--start-at", type=float, default=0.0, help="a time.time() to wait for")
    sys.stdout.write(json.dumps(_write(parser.parse_args(argv))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
