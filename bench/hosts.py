"""Many hosts, one token and one branch: with and without the coordinator (Redis).

Runs the writer processes of ``gitjsonl.testing._writers`` (one ``Log`` each,
a record every 20 ms) as ``hosts`` x ``processes``, each host its own
``budget_dir`` as separate machines are, against a localhub enforcing GitHub's
secondary limits scaled down to windows of 2 s and 20 s; with the coordinator,
every process shares a ``redis-server`` started here on a free loopback port
(``--save '' --appendonly no``; never the one on 6379). Reports writes per
committed batch, lost races and secondary-limit answers; every record is checked
to have landed once.

    .venv/bin/python bench/hosts.py         # prints the table
    ./dev bench                             # section 9 of bench/run.py
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gitjsonl
from gitjsonl.testing import LocalHub, SecondaryLimits
from gitjsonl.testing._writers import run_writers

LIMITS = {"per_minute": 24, "per_hour": 150, "minute": 2.0, "hour": 20.0}
SECONDS = 15
WRITES = ("POST", "PATCH", "PUT", "DELETE")
#: (hosts, processes per host, through the coordinator)
RUNS = ((1, 6, False), (3, 2, False), (3, 2, True))


def _redis(folder: str) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    proc = subprocess.Popen(
        [*argv, "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None


def one_run(hosts: int, processes: int, coordinator: str | None, seconds: int) -> dict[str, Any]:
    limits = SecondaryLimits(
        per_minute=LIMITS["per_minute"],
        per_hour=LIMITS["per_hour"],
        minute_window=LIMITS["minute"],
        hour_window=LIMITS["hour"],
    )
    folder = tempfile.mkdtemp(prefix="gitjsonl-bench-hosts-")
    with LocalHub(repos=("bench/hosts",), initial_commit=True, secondary_limits=limits) as hub:
        outs = run_writers(
            api_url=hub.url,
            token=hub.token,
            repo="bench/hosts",
            processes=hosts * processes,
            logs=1,
            seconds=seconds,
            pacing=gitjsonl.Pacing(**LIMITS),
            budget_dir=folder,
            hosts=hosts,
            coordinator=coordinator,
        )
        writes = sum(1 for r in hub.requests if r.method in WRITES)
        limited = sum(1 for r in hub.requests if r.status in (403, 429))
        data = b"".join(
            hub.git("bench/hosts", "show", f"main:{path}").encode()
            for path in hub.git(
                "bench/hosts", "ls-tree", "--name-only", "main", "data/interactions/"
            ).split()
            if path.endswith(".jsonl")
        )
    records = [json.loads(line) for line in data.splitlines() if line.strip()]
    appended = sum(sum(o["counts"]) for o in outs)
    batches = sum(o["batches"] for o in outs)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "hosts": hosts,
        "processes": processes,
        "coordinator": coordinator is not None,
        "batches": batches,
        "writes_per_batch": round(writes / max(1, batches), 2),
        "lost_races": sum(o["conflicts"] for o in outs),
        "limited": limited,
        "records": len(records),
        "exactly_once": len(records) == appended
        and len({(r["w"], r["i"]) for r in records}) == appended,
    }


def run(seconds: int = SECONDS) -> list[dict[str, Any]]:
    rows = []
    folder = tempfile.mkdtemp(prefix="gitjsonl-bench-redis-")
    server = _redis(folder)
    try:
        for hosts, processes, through in RUNS:
            if through and server is None:
                continue  # no redis-server here: the row is left out, said in the summary
            url = server[1] if through and server is not None else None
            rows.append(one_run(hosts, processes, url, seconds))
    finally:
        if server is not None:
            server[0].kill()
            server[0].wait()
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _name(row: dict[str, Any]) -> str:
    how = "through Redis" if row["coordinator"] else "host ledgers only"
    return f"{row['hosts']} host(s) x {row['processes']} processes, {how}"


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"   {_name(r):<44} {r['writes_per_batch']:.1f} writes/batch, {r['lost_races']} lost "
        f"races, {r['limited']} limit answers, exactly once: {r['exactly_once']}"
        for r in rows
    ]
    if not any(r["coordinator"] for r in rows):
        lines.append("   (no redis-server on this machine: the coordinator's row is left out)")
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    out = [
        "\n## 9. Many hosts, one token (the coordinator)\n",
        f"{SECONDS} s of appends, a record every 20 ms per process, one `Log` each; GitHub's "
        "secondary limits scaled down to windows of 2 s and 20 s, enforced per token.\n",
        "| run | batches | writes a batch | lost races | secondary-limit answers | once |",
        "|---|---:|---:|---:|---:|---|",
    ]
    out += [
        f"| {_name(r)} | {r['batches']} | {r['writes_per_batch']:.1f} | {r['lost_races']} | "
        f"{r['limited']} | {'yes' if r['exactly_once'] else 'NO'} |"
        for r in rows
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    rows = run()
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
