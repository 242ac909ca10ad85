"""``gitjsonl demo``: several writers, one log, an in-process localhub, and a check with git.

No token and no network: localhub serves a temporary bare repository on
loopback. Each writer thread has its own ``Log`` (as separate processes
would), so their batches race for the branch and the conflict retry is part of
what the demo shows. At the end, git itself (not gitjsonl's reader) lists the
segments on the branch and every record id is counted.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, TextIO

from ._config import DEFAULT_LOG_PATH
from ._log import Log
from ._progress import Progress
from ._retry import RetryPolicy

__all__ = ["DemoResult", "run_demo"]

REPO = "demo/log"
PATH = DEFAULT_LOG_PATH
BRANCH = "main"
FLUSH_INTERVAL = 0.5
#: Writers racing on loopback lose often; GitHub-sized backoff (up to 30 s)
#: would only make the demo wait. Many quick retries instead.
RETRY = RetryPolicy(max_attempts=60, conflict_wait=0.02, max_wait=0.5)


@dataclass(frozen=True)
class DemoResult:
    records: int
    landed: int  # distinct record ids found on the branch
    duplicates: int
    missing: int
    out_of_order: int  # writers whose records are not in their append order
    commits: int
    batches: int
    conflicts: int
    requests: int  # while writing
    writes: int  # of those, POST/PATCH (blobs, trees, commits, ref updates)
    ref_updates: int  # PATCH attempts: landed batches plus lost races
    bytes_uploaded: int
    seconds: float
    linear: bool

    @property
    def ok(self) -> bool:
        return (
            self.landed == self.records
            and not self.duplicates
            and not self.missing
            and not self.out_of_order
            and self.linear
        )


def _writer(log: Log, writer: int, count: int, stop: threading.Event) -> None:
    for seq in range(count):
        log.append({"id": f"w{writer}-{seq:06d}", "writer": writer, "seq": seq, "text": "hello"})
        if seq % 25 == 24:
            # Spread the appends over a couple of seconds, as a busy service would.
            stop.wait(0.05)


def run_demo(
    *,
    records: int = 4000,
    writers: int = 4,
    logs: int = 2,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the demo and print its figures; 0 when every record landed exactly once.

    ``writers`` threads share ``logs`` Log instances, as the request threads of
    ``logs`` server processes would: each Log batches its threads' records, and
    the Logs race each other for the branch.
    """
    logs_wanted = max(1, min(logs, writers))
    from .testing import LocalHub

    out = out or sys.stdout
    err = err or sys.stderr
    progress = Progress(err)
    shares = [records // writers + (1 if i < records % writers else 0) for i in range(writers)]
    started = time.monotonic()
    with LocalHub(repos=(REPO,), initial_commit=True) as hub:
        hub.clear_requests()
        shared = [
            Log(
                REPO,
                path=PATH,
                api_url=hub.url,
                token=hub.token,
                pacing=None,  # a local server has no secondary limits
                flush_interval=FLUSH_INTERVAL,
                retry=RETRY,
            )
            for _ in range(logs_wanted)
        ]
        per_thread = [shared[i % logs_wanted] for i in range(writers)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=_writer, args=(log, i, n, stop), name=f"demo-writer-{i}")
            for i, (log, n) in enumerate(zip(per_thread, shares, strict=True))
        ]
        out.write(
            f"gitjsonl demo: {writers} writer threads over {logs_wanted} Log(s) append "
            f"{records:,} records to {REPO}:{PATH} on localhub ({hub.url})\n"
        )
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads) or _pending(shared):
                _show(progress, shared, records)
                stop.wait(0.1)
            for log in shared:
                log.flush(timeout=60)
            seconds = time.monotonic() - started
            traffic = hub.requests
            result = _check(hub, records, shared, traffic, seconds)
            tail = shared[0].tail(3)
        finally:
            stop.set()
            progress.done()
            for thread in threads:
                thread.join()
            for log in shared:
                log.close(timeout=5)
    out.write("tail -n 3:\n")
    for record in tail:
        out.write("  " + json.dumps(record, separators=(",", ":")) + "\n")
    out.write(_figures(result))
    return 0 if result.ok else 1


def _pending(logs: list[Log]) -> bool:
    return any(log.stats().pending for log in logs)


def _show(progress: Progress, logs: list[Log], records: int) -> None:
    stats = [log.stats() for log in logs]
    progress(
        f"appended {sum(s.appended for s in stats):,}/{records:,}  "
        f"committed {sum(s.committed for s in stats):,}  "
        f"batches {sum(s.batches for s in stats):,}  "
        f"conflicts retried {sum(s.conflicts_retried for s in stats):,}"
    )


def _check(
    hub: Any, records: int, logs: list[Log], traffic: list[Any], seconds: float
) -> DemoResult:
    """Count every record id on the branch with git itself."""
    names = hub.git(REPO, "ls-tree", "--name-only", BRANCH, f"{PATH}/").split()
    ids: Counter[str] = Counter()
    last_seq: dict[int, int] = {}
    out_of_order: set[int] = set()
    for name in sorted(names):
        if not name.endswith(".jsonl"):
            continue
        for line in hub.git(REPO, "show", f"{BRANCH}:{name}").splitlines():
            record = json.loads(line)
            ids[record["id"]] += 1
            writer, seq = record["writer"], record["seq"]
            if seq <= last_seq.get(writer, -1):
                out_of_order.add(writer)
            last_seq[writer] = seq
    commits = int(hub.git(REPO, "rev-list", "--count", BRANCH, "--", PATH).strip())
    merges = hub.git(REPO, "rev-list", "--merges", BRANCH).strip()
    stats = [log.stats() for log in logs]
    return DemoResult(
        records=records,
        landed=len(ids),
        duplicates=sum(n - 1 for n in ids.values() if n > 1),
        missing=records - len(ids),
        out_of_order=len(out_of_order),
        commits=commits,
        batches=sum(s.batches for s in stats),
        conflicts=sum(s.conflicts_retried for s in stats),
        requests=len(traffic),
        writes=sum(1 for r in traffic if r.write),
        ref_updates=sum(1 for r in traffic if r.method == "PATCH"),
        bytes_uploaded=sum(r.bytes_in for r in traffic),
        seconds=seconds,
        linear=not merges,
    )


def _figures(r: DemoResult) -> str:
    verdict = "every record landed exactly once" if r.ok else "PROBLEM"
    per_batch = r.requests / r.batches if r.batches else 0.0
    rows = [
        (
            "records",
            f"{r.landed:,} of {r.records:,} on the branch, {r.duplicates} duplicated, "
            f"{r.missing} missing",
        ),
        ("commits", f"{r.commits:,} ({r.batches:,} batches, {r.conflicts:,} conflicts retried)"),
        ("requests", f"{r.requests:,}: {per_batch:.1f} per batch, lost races included"),
        (
            "",
            f"{r.writes:,} writes, {r.requests - r.writes:,} reads, "
            f"{r.ref_updates:,} ref updates for {r.batches:,} batches",
        ),
        ("uploaded", f"{r.bytes_uploaded:,} bytes"),
        ("history", "linear" if r.linear else "NOT linear"),
        (
            "order",
            "kept per writer" if not r.out_of_order else f"{r.out_of_order} writer(s) out of order",
        ),
        ("time", f"{r.seconds:.1f} s"),
    ]
    lines = [f"  {label:<9}{value}" for label, value in rows]
    return "checked with git:\n" + "\n".join(lines) + f"\n{verdict}\n"
