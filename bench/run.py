"""The gitjsonl benchmark, against localhub on loopback.

Side by side with the reference service's Contents-API algorithm
(``gitjsonl.testing._contents_baseline.ContentsApiLog``: GET the whole file,
append one line, PUT the whole file back) on the same server:

1. requests and bytes uploaded per 1,000 records of ~1 KB, starting from an
   empty, a 1 MB and a 10 MB log;
2. ``append()`` latency (p50/p99/max) for a 1 KB record with the flusher busy, side
   by side with the floor (serialise + lock + deque) and logging's ``QueueHandler``;
3. ``tail(500)`` requests, bytes downloaded and seconds on 1/10/100 MB logs;
4. the cost of a first batch, a steady-state batch and ``tail(500)`` on logs
   of 10 and of 5,000 segments (past the Contents API's 1,000-entry listing);
5. many processes on one token (4 x 2 ``Log``s, secondary limits enforced with
   scaled-down windows), the write budget shared on the host or per process:
   writes per batch, lost races, secondary-limit answers;
6. bytes per batch with segments uploaded as base64 (before) and UTF-8 (now);
7. what a batch costs (writes, bytes uploaded per byte appended) against what it
   appends, beside ``git push`` of the same appends, and a cold ``tail(500)``;
8. an hour of pacing, simulated (``bench/hour.py``);
9. many hosts on one token and branch, with and without the coordinator
   (``bench/hosts.py``);
10. ``AsyncLog``'s event-loop stall with every Git request slowed (``bench/loop_stall.py``);
11. an ephemeral host: the example app in its real server, restarted with its
    disk wiped, every acknowledged record counted on the branch (``bench/ephemeral.py``);
12. what having gitjsonl installed costs: ``import gitjsonl``, ``gitjsonl --help`` and the
    pytest plugin in an unrelated project, beside ``import requests`` (``bench/imports.py``).
13. the deterministic simulator's long search (``bench/sim.py``).

Writes ``bench/results.md``, ``bench/results.json`` and ``bench/results.png``.
Request and byte counts come from localhub's own request log and are stable
from run to run; seconds are wall-clock on this machine and are not.

Usage: ``python bench/run.py [--quick] [--out DIR] [--only 11 --only 12]``. ``--quick`` is a smoke
run with smaller sizes that writes into a temporary folder unless ``--out`` is
given. ``--only N`` runs section N (11, 12 or 13) alone (it takes minutes) and rewrites its
part of the results already in the output folder.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import gitjsonl  # noqa: E402
from gitjsonl.testing import Fault, LocalHub  # noqa: E402
from gitjsonl.testing._contents_baseline import ContentsApiLog  # noqa: E402

MiB = 1024 * 1024
RECORD_BYTES = 1024  # serialized size of one record, newline included
LOG_PATH = "data/interactions"  # gitjsonl's folder of segments
LEGACY_PATH = "data/interactions.jsonl"  # the reference service's single file
SEGMENT_BYTES = 1 * MiB  # gitjsonl's default
SIZE_LABEL = {0: "empty", 1 * MiB: "1 MB", 2 * MiB: "2 MB", 4 * MiB: "4 MB"}


def size_label(size: int) -> str:
    return SIZE_LABEL.get(size) or f"{size // MiB} MB"


# -- records ---------------------------------------------------------------------------


def _record(i: int, pad: int) -> dict[str, Any]:
    return {
        "type": "interaction",
        "id": f"r{i:09d}",
        "ts": 1_790_000_000 + i,
        "user": f"u{i % 997:04d}",
        "text": "x" * pad,
    }


def _pad_for(size: int) -> int:
    base = len(json.dumps(_record(0, 0), separators=(",", ":"))) + 1
    return size - base


PAD = _pad_for(RECORD_BYTES)


def record(i: int) -> dict[str, Any]:
    """Record number ``i``: ~1 KB once serialized (compact JSON plus newline)."""
    return _record(i, PAD)


def line(i: int) -> bytes:
    return (json.dumps(record(i), separators=(",", ":")) + "\n").encode()


def make_lines(total: int, start: int = 0) -> list[bytes]:
    """Whole lines, numbered from ``start``, filling at most ``total`` bytes."""
    out: list[bytes] = []
    used = 0
    i = start
    while True:
        b = line(i)
        if used + len(b) > total:
            return out
        out.append(b)
        used += len(b)
        i += 1


def seed_segments(hub: LocalHub, repo: str, size: int) -> int:
    """Seed ``size`` bytes as gitjsonl segments of at most 1 MiB; return the record count."""
    if size == 0:
        return 0
    lines = make_lines(size)
    files: dict[str, bytes | None] = {}
    seg: list[bytes] = []
    used = 0
    number = 1
    for b in lines:
        if used + len(b) > SEGMENT_BYTES:
            files[f"{LOG_PATH}/{number:08d}.jsonl"] = b"".join(seg)
            number += 1
            seg, used = [], 0
        seg.append(b)
        used += len(b)
    if seg:
        files[f"{LOG_PATH}/{number:08d}.jsonl"] = b"".join(seg)
    hub.seed_commit(repo, files, message=f"seed {size_label(size)} of segments")
    return len(lines)


def seed_single_file(hub: LocalHub, repo: str, size: int) -> int:
    """Seed ``size`` bytes as the legacy single file; return the record count."""
    if size == 0:
        return 0
    lines = make_lines(size)
    hub.seed_commit(repo, {LEGACY_PATH: b"".join(lines)}, message=f"seed {size_label(size)}")
    return len(lines)


def count_lines(data: bytes | None) -> int:
    return 0 if not data else sum(1 for ln in data.splitlines() if ln.strip())


# -- request accounting ----------------------------------------------------------------


def tally(hub: LocalHub, repo: str) -> dict[str, int]:
    # GraphQL's path names no repository: its queries (the reader's) count for the one read.
    reqs = [
        r
        for r in hub.requests
        if f"/repos/{repo}/" in r.path or r.path.endswith(repo) or r.path == "/graphql"
    ]
    return {
        "requests": len(reqs),
        "bytes_in": sum(r.bytes_in for r in reqs),
        "bytes_out": sum(r.bytes_out for r in reqs),
        "by_method": dict(
            sorted(
                {m: sum(1 for r in reqs if r.method == m) for m in {r.method for r in reqs}}.items()
            )
        ),
    }


def open_log(hub: LocalHub, repo: str, **kw: Any) -> gitjsonl.Log:
    return gitjsonl.Log(repo, path=LOG_PATH, token=hub.token, api_url=hub.url, pacing=None, **kw)


# -- 1. writes -------------------------------------------------------------------------

BATCHINGS: dict[str, dict[str, Any]] = {
    # Batches cut only by flush(), every N appends (batch_bytes set out of the way,
    # no time cuts), so each run commits exactly 1,000 / N batches.
    # N = 100: a backend flushing every ~100 KB.
    "flush every 100": {"flush_every": 100},
    # N = 500: what the default batch_bytes (512 KiB) cuts when ~1 KB records
    # arrive faster than flush_interval (or pacing holds the flusher back).
    "flush every 500": {"flush_every": 500},
    # N = 1,000: e.g. the default 5 s flush_interval at 200 records/s, or a burst
    # of 1,000 appends, which the flusher takes as one batch.
    "flush every 1,000": {"flush_every": 1000},
}
ORDER = {name: i for i, name in enumerate(BATCHINGS)}
FLUSH_ONLY = {"flush_interval": 3600.0, "batch_bytes": 64 * MiB}


def bench_gitjsonl_writes(hub: LocalHub, size: int, n: int, batching: str, idx: int) -> dict:
    repo = f"bench/w-g{idx}"
    hub.create_repo(repo, initial_commit=True)
    seeded = seed_segments(hub, repo, size)
    spec = BATCHINGS[batching]
    log = open_log(hub, repo, **FLUSH_ONLY)
    hub.clear_requests()
    t0 = time.perf_counter()
    try:
        for i in range(n):
            log.append(record(seeded + i))
            if spec["flush_every"] and (i + 1) % spec["flush_every"] == 0:
                log.flush(timeout=120)
        log.flush(timeout=120)
        seconds = time.perf_counter() - t0
        st = log.stats()
    finally:
        log.close()
    t = tally(hub, repo)
    final = 0
    for name in hub.git(repo, "ls-tree", "--name-only", f"main:{LOG_PATH}").split():
        final += count_lines(hub.read_file(repo, f"{LOG_PATH}/{name}"))
    scale = 1000 / n
    return {
        "impl": "gitjsonl",
        "batching": batching,
        "start_size": size,
        "start_label": size_label(size),
        "records": n,
        "batches": st.batches,
        "requests": t["requests"],
        "bytes_in": t["bytes_in"],
        "bytes_out": t["bytes_out"],
        "by_method": t["by_method"],
        "requests_per_1000": t["requests"] * scale,
        "bytes_in_per_1000": t["bytes_in"] * scale,
        "bytes_in_per_batch": t["bytes_in"] / max(st.batches, 1),
        "max_bytes_in_one_request": max(
            (r.bytes_in for r in hub.requests if f"/repos/{repo}/" in r.path), default=0
        ),
        "seconds": seconds,
        "records_expected": seeded + n,
        "records_found": final,
        "data_lost": final != seeded + n,
    }


def bench_baseline_writes(hub: LocalHub, size: int, n: int, idx: int) -> dict:
    repo = f"bench/w-b{idx}"
    hub.create_repo(repo, initial_commit=True)
    seeded = seed_single_file(hub, repo, size)
    hub.clear_requests()
    statuses: dict[str, int] = {}
    puts: list[int] = []
    t0 = time.perf_counter()
    with ContentsApiLog(hub.url, hub.token, repo, path=LEGACY_PATH) as base:
        for i in range(n):
            s = base.append(record(seeded + i))
            statuses[str(s)] = statuses.get(str(s), 0) + 1
    seconds = time.perf_counter() - t0
    t = tally(hub, repo)
    puts = [r.bytes_in for r in hub.requests if f"/repos/{repo}/" in r.path and r.method == "PUT"]
    final = count_lines(hub.read_file(repo, LEGACY_PATH))
    scale = 1000 / n
    return {
        "impl": "reference",
        "batching": "one GET + PUT per record",
        "start_size": size,
        "start_label": size_label(size),
        "records": n,
        "batches": n,
        "requests": t["requests"],
        "bytes_in": t["bytes_in"],
        "bytes_out": t["bytes_out"],
        "by_method": t["by_method"],
        "requests_per_1000": t["requests"] * scale,
        "bytes_in_per_1000": t["bytes_in"] * scale,
        "bytes_in_per_batch": t["bytes_in"] / n,
        "first_put_bytes": puts[0] if puts else 0,
        "last_put_bytes": puts[-1] if puts else 0,
        "max_bytes_in_one_request": max(puts, default=0),
        "statuses": statuses,
        "seconds": seconds,
        "records_expected": seeded + n,
        "records_found": final,
        "data_lost": final != seeded + n,
    }


# -- 2. append latency -----------------------------------------------------------------

LATENCY_DELAY = 0.01  # seconds localhub waits before answering each request
CHUNK, PAUSE = 500, 0.005  # appends per burst, untimed sleep between bursts
#: What is timed, one call each in turn, under the same load: gitjsonl's append(), the
#: floor any in-memory buffer pays (serialise the record, take a lock, push onto a
#: deque), and the standard library's non-blocking logging (a QueueHandler, drained by
#: a QueueListener thread).
LATENCY_KINDS = ("append", "floor", "queue_handler")


def _percentiles(samples: list[int]) -> dict[str, float]:
    samples = sorted(samples)

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] / 1000

    return {
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": samples[-1] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
    }


def bench_append_latency(n: int, warmup: int) -> dict:
    import collections
    import logging
    import logging.handlers
    import queue
    import threading

    from gitjsonl._records import encode_record

    floor_lock = threading.Lock()
    floor_deque: collections.deque[bytes] = collections.deque()

    def floor(rec: dict[str, Any]) -> None:
        line = encode_record(rec, 4 * MiB)
        with floor_lock:
            floor_deque.append(line)

    events: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    qlogger = logging.getLogger("bench.queue_handler")
    qlogger.propagate = False
    qlogger.setLevel(logging.INFO)
    qhandler = logging.handlers.QueueHandler(events)
    qlogger.addHandler(qhandler)
    listener = logging.handlers.QueueListener(events, logging.NullHandler())
    listener.start()

    with LocalHub(repos=("bench/latency",), initial_commit=True) as hub:
        hub.add_fault(Fault(action="latency", delay=LATENCY_DELAY, times=None))
        log = open_log(
            hub,
            "bench/latency",
            flush_interval=0.01,
            max_pending_bytes=1024 * MiB,
        )
        rec = record(0)
        calls = {
            "append": log.append,
            "floor": floor,
            "queue_handler": lambda r: qlogger.info("%s", r),
        }
        try:
            for _ in range(warmup):
                for call in calls.values():
                    call(rec)
            floor_deque.clear()
            # Let the flusher get into a commit before measuring.
            deadline = time.monotonic() + 5
            while log.stats().batches == 0 and not hub.requests and time.monotonic() < deadline:
                time.sleep(0.005)
            req0, batches0 = len(hub.requests), log.stats().batches
            samples: dict[str, list[int]] = {kind: [0] * n for kind in LATENCY_KINDS}
            order = [(kind, samples[kind], calls[kind]) for kind in LATENCY_KINDS]
            clock = time.perf_counter_ns
            for i in range(n):
                if i % CHUNK == 0 and i:
                    # Untimed pause between bursts, so the measurement spans
                    # many of the flusher's commits (its CPU work included).
                    floor_deque.clear()
                    time.sleep(PAUSE)
                for _kind, timed, call in order:
                    t0 = clock()
                    call(rec)
                    timed[i] = clock() - t0
            st_during = log.stats()
            requests_during = len(hub.requests) - req0
            batches_during = st_during.batches - batches0
            t0 = time.perf_counter()
            log.flush(timeout=600)
            drain = time.perf_counter() - t0
            st = log.stats()
        finally:
            log.close()
            listener.stop()
            qlogger.removeHandler(qhandler)

    kinds = {kind: _percentiles(samples[kind]) for kind in LATENCY_KINDS}
    return {
        "appends": n,
        "warmup": warmup,
        "record_bytes": len(line(0)),
        **kinds["append"],
        "kinds": kinds,
        "injected_latency_s": LATENCY_DELAY,
        "requests_while_measuring": requests_during,
        "batches_committed_while_measuring": batches_during,
        "batches_total": st.batches,
        "committed": st.committed,
        "drain_seconds": drain,
    }


# -- 3. tail(500) ----------------------------------------------------------------------


def bench_tail(hub: LocalHub, size: int, idx: int) -> list[dict]:
    out = []
    # gitjsonl layout
    repo = f"bench/t-g{idx}"
    hub.create_repo(repo, initial_commit=True)
    seeded = seed_segments(hub, repo, size)
    log = open_log(hub, repo, flush_interval=3600.0)
    try:
        hub.clear_requests()
        t0 = time.perf_counter()
        got = log.tail(500)
        seconds = time.perf_counter() - t0
    finally:
        log.close()
    t = tally(hub, repo)
    ok = len(got) == 500 and got[-1]["id"] == f"r{seeded - 1:09d}"
    out.append(
        {
            "impl": "gitjsonl",
            "size": size,
            "label": size_label(size),
            "requests": t["requests"],
            "bytes_out": t["bytes_out"],
            "seconds": seconds,
            "records_returned": len(got),
            "correct": ok,
        }
    )
    # reference: one file of the same size
    repo = f"bench/t-b{idx}"
    hub.create_repo(repo, initial_commit=True)
    seeded = seed_single_file(hub, repo, size)
    hub.clear_requests()
    with ContentsApiLog(hub.url, hub.token, repo, path=LEGACY_PATH) as base:
        t0 = time.perf_counter()
        got = base.load_recent(500)
        seconds = time.perf_counter() - t0
    t = tally(hub, repo)
    ok = len(got) == 500 and got[-1]["id"] == f"r{seeded - 1:09d}"
    out.append(
        {
            "impl": "reference",
            "size": size,
            "label": size_label(size),
            "requests": t["requests"],
            "bytes_out": t["bytes_out"],
            "seconds": seconds,
            "records_returned": len(got),
            "correct": ok,
        }
    )
    return out


# -- 4. segment counts -----------------------------------------------------------------

SEGMENT_RECORDS = 600  # records per closed segment: tail(500) needs at most two segments


def bench_segment_counts(hub: LocalHub, counts: list[int]) -> list[dict]:
    """Requests of a first batch, a steady-state batch and tail(500) against segment count.

    Closed segments all hold the same 600 small records (one blob, so that
    5,000 segments seed in seconds): what is measured is how the cost grows
    with the folder's listing, never with what the segments hold.
    """
    out = []
    closed = b"".join(b'{"id":"closed","n":%d}\n' % i for i in range(SEGMENT_RECORDS))
    for count in counts:
        repo = f"bench/segments-{count}"
        hub.create_repo(repo, initial_commit=True)
        files: dict[str, bytes | None] = {
            f"{LOG_PATH}/{n:08d}.jsonl": closed for n in range(1, count)
        }
        files[f"{LOG_PATH}/{count:08d}.jsonl"] = b'{"id":"last-seeded"}\n'
        hub.seed_commit(repo, files, message=f"seed {count} segments")
        log = open_log(hub, repo, **FLUSH_ONLY)
        try:
            costs = {}
            for phase, ids in (("first_batch", range(100)), ("steady_batch", range(100, 200))):
                hub.clear_requests()
                for i in ids:
                    log.append({"id": f"new-{i}"})
                log.flush(timeout=120)
                costs[phase] = tally(hub, repo)["requests"]
            hub.clear_requests()
            got = log.tail(500)
            costs["tail_500"] = tally(hub, repo)["requests"]
        finally:
            log.close()
        ok = len(got) == 500 and got[-1]["id"] == "new-199"
        out.append({"segments": count, **costs, "tail_correct": ok})
    return out


# -- 5. many processes, one token -----------------------------------------------------

#: GitHub's secondary limits (80 writes a minute, 500 an hour, per token) scaled down to
#: windows of 2 s and 20 s, so that a 20-second run meets them; localhub enforces them
#: per token, and the writers pace themselves to the same numbers.
MANY_LIMITS = {"per_minute": 24, "per_hour": 150, "minute": 2.0, "hour": 20.0}
MANY_PROCESSES, MANY_LOGS, MANY_SECONDS = 4, 2, 20


def bench_many_processes(shared: bool, seconds: int) -> dict:
    """4 processes x 2 Logs on one token, with the host's budget shared or each process alone."""
    from gitjsonl.testing import SecondaryLimits
    from gitjsonl.testing._writers import run_writers

    limits = SecondaryLimits(
        per_minute=MANY_LIMITS["per_minute"],
        per_hour=MANY_LIMITS["per_hour"],
        minute_window=MANY_LIMITS["minute"],
        hour_window=MANY_LIMITS["hour"],
    )
    budget_dir = tempfile.mkdtemp(prefix="gitjsonl-bench-budget-") if shared else None
    with LocalHub(repos=("bench/many",), initial_commit=True, secondary_limits=limits) as hub:
        t0 = time.perf_counter()
        outs = run_writers(
            api_url=hub.url,
            token=hub.token,
            repo="bench/many",
            processes=MANY_PROCESSES,
            logs=MANY_LOGS,
            seconds=seconds,
            pacing=gitjsonl.Pacing(**MANY_LIMITS),
            budget_dir=budget_dir,
        )
        elapsed = time.perf_counter() - t0
        writes = [r for r in hub.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]
        limited = sum(1 for r in hub.requests if r.status in (403, 429))
        found: dict[str, list[int]] = {}
        for name in hub.git("bench/many", "ls-tree", "--name-only", f"main:{LOG_PATH}").split():
            data = hub.read_file("bench/many", f"{LOG_PATH}/{name}") or b""
            for raw in data.splitlines():
                rec = json.loads(raw)
                found.setdefault(rec["w"], []).append(rec["i"])
    expected = {
        f"p{n}-{k}": count for n, out in enumerate(outs) for k, count in enumerate(out["counts"])
    }
    exactly_once = all(found.get(w, []) == list(range(c)) for w, c in expected.items())
    batches = sum(out["batches"] for out in outs)
    return {
        "shared": shared,
        "processes": MANY_PROCESSES,
        "logs_per_process": MANY_LOGS,
        "seconds_appending": seconds,
        "seconds_total": elapsed,
        "records": sum(expected.values()),
        "batches": batches,
        "writes": len(writes),
        "writes_per_batch": len(writes) / max(batches, 1),
        "lost_races": sum(out["conflicts"] for out in outs),
        "secondary_limit_answers": limited,
        "exactly_once_in_order": exactly_once,
    }


# -- 6. bytes per batch: base64 (before) and UTF-8 (now) --------------------------------


def _text_record(i: int) -> dict[str, Any]:
    """A record of ~1 KB of French and Japanese text (non-ASCII, quotes and all)."""
    return {
        "type": "interaction",
        "id": f"r{i:09d}",
        "text": 'une « phrase » accentuée, 日本語 "q" ' * 22,
    }


def bench_blob_encoding(hub: LocalHub, idx: int, *, utf8: bool, text: bool) -> dict:
    """Bytes one batch of 500 records uploads, with segments as base64 or as UTF-8 text."""
    from gitjsonl import _github
    from gitjsonl._commit import Committer

    repo = f"bench/enc-{idx}"
    hub.create_repo(repo, initial_commit=True)
    make = _text_record if text else record
    saved, saved_body = Committer._as_text, _github.utf8_blob_body
    if not utf8:  # what gitjsonl sent before: a base64 blob, then the tree
        Committer._as_text = lambda self, content: False  # type: ignore[method-assign]
        _github.utf8_blob_body = lambda content: None
    log = open_log(hub, repo, **FLUSH_ONLY)
    try:
        log.append(make(0))
        log.flush(timeout=120)  # the first batch reads the head: not a steady-state batch
        hub.clear_requests()
        for i in range(1, 501):
            log.append(make(i))
        log.flush(timeout=120)
    finally:
        log.close()
        Committer._as_text = saved  # type: ignore[method-assign]
        _github.utf8_blob_body = saved_body
    t = tally(hub, repo)
    blobs = [r.bytes_in for r in hub.requests if r.path.endswith(("/git/blobs", "/git/trees"))]
    segment = sum(
        len(hub.read_file(repo, f"{LOG_PATH}/{name}") or b"")
        for name in hub.git(repo, "ls-tree", "--name-only", f"main:{LOG_PATH}").split()
    )
    return {
        "encoding": "UTF-8" if utf8 else "base64",
        "records": "text (non-ASCII)" if text else "ASCII",
        "segment_bytes": segment,
        "blob_request_bytes": sum(blobs),
        "batch_bytes": t["bytes_in"],
        "requests": t["requests"],
    }


# -- 7. what a batch costs against what it appends -------------------------------------

#: (name, bytes a batch appends, batches): 15 KB batches (30 records of ~500 B, one
#: record a second at a batch every 30 s), 256 KB and 4 MB ones.
BATCH_COSTS = (("trickle", 15_000, 40), ("medium", 256 * 1024, 8), ("burst", 4 * MiB, 2))
BATCH_COST_SEED = 1536 * 1024  # the log already holds 1.5 MB: a full segment and a half
BATCH_COST_RECORD = 500


def _cost_record(i: int) -> dict[str, Any]:
    """A ~500-byte record with the quotes of real text (JSON escaping costs ~10% here) and
    a reply that compresses about as well as text does (hex digits: 4 bits a character)."""
    import hashlib

    reply = "".join(hashlib.sha256(f"{i}-{k}".encode()).hexdigest() for k in range(4))
    return {
        "type": "interaction",
        "id": f"r{i:09d}",
        "ts": 1_790_000_000 + i,
        "prompt": 'she said "yes", then "no" ' * 6,
        "reply": reply,
    }


def _cost_line(i: int) -> bytes:
    return (json.dumps(_cost_record(i), separators=(",", ":")) + "\n").encode()


def _git(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    import subprocess

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.invalid",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=data, capture_output=True, env=env, check=True
    )
    return done.stdout


class _GitPush:
    """The physical anchor: the same appends pushed by real git over file:// to a bare
    repository, the log as one growing segment file (git sends a delta of it)."""

    def __init__(self, root: Path, seed: list[bytes]) -> None:
        self.work, bare = root / "work", root / "bare.git"
        self.work.mkdir(parents=True)
        _git(root, "init", "-q", "--bare", str(bare))
        _git(self.work, "init", "-q", "-b", "main")
        _git(self.work, "remote", "add", "origin", bare.as_uri())
        self.file = self.work / "log.jsonl"
        self.file.write_bytes(b"".join(seed))
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-qm", "seed")
        _git(self.work, "push", "-q", "origin", "main")

    def push(self, lines: list[bytes]) -> int:
        """Commit ``lines`` appended to the file and push; the bytes of the pack sent."""
        with self.file.open("ab") as f:
            f.write(b"".join(lines))
        _git(self.work, "commit", "-qam", "batch")
        # The pack push sends: what origin lacks, thin (deltas against what it has).
        revs = b"HEAD\n^origin/main\n"
        pack = _git(self.work, "pack-objects", "--thin", "--stdout", "--revs", "-q", data=revs)
        _git(self.work, "push", "-q", "origin", "main")
        return len(pack)


def bench_batch_cost(hub: LocalHub, name: str, batch_bytes: int, batches: int, idx: int) -> dict:
    """Writes and bytes uploaded per batch against bytes appended, tail(500) after, and git."""
    repo = f"bench/cost-{idx}"
    hub.create_repo(repo, initial_commit=True)
    seed = []
    while sum(map(len, seed)) < BATCH_COST_SEED:
        seed.append(_cost_line(len(seed)))
    files: dict[str, bytes | None] = {}
    chunk: list[bytes] = []
    for b in seed:  # today's layout: full segments, the last one partly full
        if sum(map(len, chunk)) + len(b) > SEGMENT_BYTES:
            files[f"{LOG_PATH}/{len(files) + 1:08d}.jsonl"] = b"".join(chunk)
            chunk = []
        chunk.append(b)
    files[f"{LOG_PATH}/{len(files) + 1:08d}.jsonl"] = b"".join(chunk)
    hub.seed_commit(repo, files, message="seed")
    per = max(1, batch_bytes // len(_cost_line(0)))
    with tempfile.TemporaryDirectory(prefix="gitjsonl-push-") as tmp:
        git = _GitPush(Path(tmp), seed)
        log = open_log(hub, repo, **FLUSH_ONLY)
        uploaded = appended = writes = pushed = 0
        try:
            log.append(_cost_record(len(seed)))
            log.flush(timeout=300)  # the first batch reads the head: not a steady-state one
            git.push([_cost_line(len(seed))])
            n = len(seed) + 1
            for _ in range(batches):
                lines = [_cost_line(i) for i in range(n, n + per)]
                hub.clear_requests()
                for i in range(n, n + per):
                    log.append(_cost_record(i))
                log.flush(timeout=300)
                t = tally(hub, repo)
                uploaded += t["bytes_in"]
                writes += sum(v for m, v in t["by_method"].items() if m != "GET")
                appended += sum(map(len, lines))
                pushed += git.push(lines)
                n += per
        finally:
            log.close()
    cold = open_log(hub, repo, flush_interval=3600.0)
    try:
        hub.clear_requests()
        got = cold.tail(500)
        tail = tally(hub, repo)
    finally:
        cold.close()
    names = hub.git(repo, "ls-tree", "--name-only", f"main:{LOG_PATH}").split()
    return {
        "name": name,
        "batch_bytes": appended / batches,
        "batches": batches,
        "writes_per_batch": writes / batches,
        "uploaded_per_appended": uploaded / appended,
        "uploaded_per_batch": uploaded / batches,
        "git_push_per_appended": pushed / appended,
        "tail_500_requests": tail["requests"],
        "tail_500_correct": len(got) == 500 and got[-1] == _cost_record(n - 1),
        "files": len(names),
    }


# -- output ----------------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    for unit, div in (("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= div:
            return f"{n / div:,.1f} {unit}"
    return f"{n:,.0f} B"


def targets(results: dict) -> dict:
    writes = results["writes"]
    out: dict[str, Any] = {}
    ref = {w["start_size"]: w for w in writes if w["impl"] == "reference"}
    ratios: dict[str, dict[str, float]] = {}
    for w in writes:
        if w["impl"] != "gitjsonl":
            continue
        r = ref[w["start_size"]]["requests_per_1000"] / w["requests_per_1000"]
        ratios.setdefault(w["batching"], {})[w["start_label"]] = r
    out["request_ratio"] = ratios
    out["requests_200x"] = {b: min(v.values()) >= 200 for b, v in ratios.items()}
    # Bytes per batch must not grow with the log: compare the largest start size
    # with the empty start (within 10%).
    flat: dict[str, bool] = {}
    for b in ratios:
        rows = sorted(
            (w for w in writes if w["impl"] == "gitjsonl" and w["batching"] == b),
            key=lambda w: w["start_size"],
        )
        per = [w["bytes_in_per_batch"] for w in rows]
        flat[b] = max(per) <= 1.10 * per[0]
    out["bytes_per_batch_flat"] = flat
    out["append_p99_under_20us"] = results["append_latency"]["p99_us"] < 20
    kinds = results["append_latency"]["kinds"]
    out["append_p50_below_queue_handler"] = (
        kinds["append"]["p50_us"] < kinds["queue_handler"]["p50_us"]
    )
    out["append_p99_within_1_5x_floor"] = (
        kinds["append"]["p99_us"] <= 1.5 * kinds["floor"]["p99_us"]
    )
    shared = [m for m in results.get("many_processes", []) if m["shared"]]
    out["many_processes_shared_no_limit_under_5_writes_per_batch"] = bool(shared) and all(
        m["secondary_limit_answers"] == 0
        and m["writes_per_batch"] < 5
        and m["exactly_once_in_order"]
        for m in shared
    )
    costs = {row["name"]: row for row in results.get("batch_cost", [])}
    if costs:
        out["three_writes_a_batch"] = all(r["writes_per_batch"] == 3 for r in costs.values())
        out["trickle_uploads_at_most_3x"] = costs["trickle"]["uploaded_per_appended"] <= 3
        out["large_batches_upload_at_most_1_5x"] = all(
            costs[name]["uploaded_per_appended"] <= 1.5 for name in ("medium", "burst")
        )
    if "loop_stall" in results:
        out["async_loop_stall_under_50ms"] = results["loop_stall"]["met"]
    if "ephemeral" in results:
        import ephemeral

        out["ephemeral_host_nothing_lost"] = ephemeral.met(results["ephemeral"])
    if "sim" in results:
        out["simulator_no_violation_and_control_caught"] = results["sim"]["met"]
    tails = [t for t in results["tail"] if t["impl"] == "gitjsonl"]
    out["tail_at_most_8_requests"] = all(t["requests"] <= 8 and t["correct"] for t in tails)
    return out


def write_markdown(results: dict, path: Path) -> None:
    m = results["machine"]
    tg = results["targets"]
    L: list[str] = []
    L.append("# gitjsonl benchmark results")
    L.append("")
    L.append(
        f"Run {results['date']} on {m['cpus']} CPU cores ({m['system']} {m['machine']}, "
        f"Python {m['python']}), against localhub on loopback"
        + (" — **quick smoke run, reduced sizes**." if results["quick"] else ".")
    )
    L.append(
        "Requests and bytes are counted by localhub's request log and are stable from run "
        "to run; seconds are wall-clock on this machine. Records are ~1 KB "
        f"({results['record_bytes']} bytes of compact JSON per line). 1 MB = 1 MiB here."
    )
    L.append("")
    # targets line
    ok_req = all(tg["requests_200x"].values())
    any_req = any(tg["requests_200x"].values())
    req_txt = (
        "met"
        if ok_req
        else (
            "met for "
            + ", ".join(b for b, v in tg["requests_200x"].items() if v)
            + "; not met for "
            + ", ".join(b for b, v in tg["requests_200x"].items() if not v)
            if any_req
            else "not met"
        )
    )
    flat_ok = all(tg["bytes_per_batch_flat"].values())
    L.append(
        "**Targets:** "
        f">= 200x fewer requests per 1,000 records: {req_txt}. "
        f"Bytes uploaded per batch flat in log size: {'met' if flat_ok else 'not met'}. "
        f"append() p99 < 20 µs: {'met' if tg['append_p99_under_20us'] else 'not met'} "
        f"({results['append_latency']['p99_us']:.1f} µs). "
        f"tail(500) <= 8 requests on every size: "
        f"{'met' if tg['tail_at_most_8_requests'] else 'not met'}. "
        f"append() p50 below QueueHandler's: "
        f"{'met' if tg['append_p50_below_queue_handler'] else 'not met'}; "
        f"p99 within 1.5x the floor's: "
        f"{'met' if tg['append_p99_within_1_5x_floor'] else 'not met'}. "
        f"Many processes on one token, shared budget: no secondary-limit answer and fewer "
        f"than 5 writes per batch: "
        f"{'met' if tg['many_processes_shared_no_limit_under_5_writes_per_batch'] else 'not met'}."
        + (
            " An ephemeral host restarted with its disk wiped: no acknowledged record lost or "
            f"duplicated in any cycle: {'met' if tg['ephemeral_host_nothing_lost'] else 'not met'}."
            if "ephemeral_host_nothing_lost" in tg
            else ""
        )
    )
    L.append("")
    L.append("## 1. Writes: cost per 1,000 records")
    L.append("")
    nb = next(w["records"] for w in results["writes"] if w["impl"] == "reference")
    ng = next(w["records"] for w in results["writes"] if w["impl"] == "gitjsonl")
    L.append(
        f"gitjsonl appends {ng:,} records per run (so a Log's one-time start-up reads are "
        f"spread as a long-running backend spreads them) and its figures are scaled to "
        f"per-1,000; the reference runs {nb:,} records "
        f"(one GET + one PUT each) and its figures are scaled x{1000 // nb} to per-1,000. "
        "The scaling flatters the reference from an empty log: each of its PUTs re-uploads "
        "the whole, growing file, so a real run of 1,000 records would upload roughly ten "
        "times the figure shown."
    )
    L.append("")
    L.append(
        "| start | implementation | batching | requests / 1,000 | fewer than reference "
        "| uploaded / 1,000 | uploaded / batch | largest request | records kept |"
    )
    L.append("|---|---|---|---:|---:|---:|---:|---:|---|")
    ratios = tg["request_ratio"]
    for w in sorted(
        results["writes"],
        key=lambda w: (w["start_size"], ORDER.get(w["batching"], -1)),
    ):
        ratio = "—"
        if w["impl"] != "reference":
            ratio = f"{ratios[w['batching']][w['start_label']]:.0f}x"
        kept = f"{w['records_found']:,} of {w['records_expected']:,}"
        if w["data_lost"]:
            kept += " — **log lost**"
        L.append(
            f"| {w['start_label']} | {w['impl']} | {w['batching']} | "
            f"{w['requests_per_1000']:,.0f} | {ratio} | {fmt_bytes(w['bytes_in_per_1000'])} | "
            f"{fmt_bytes(w['bytes_in_per_batch'])} | {fmt_bytes(w['max_bytes_in_one_request'])} "
            f"| {kept} |"
        )
    L.append("")
    L.append(
        '"Uploaded" is the sum of request bodies (bytes_in at the server). A gitjsonl batch '
        "uploads the active segment's content (at most 1 MiB, as UTF-8 text) plus a tree, "
        "a commit and a ref update, whatever the size of the log; flushing more often re-uploads "
        "the growing active segment more often, hence more bytes per 1,000 records at small "
        "batches. A fresh Log reads the repository and branch state once (4-5 GETs) before "
        'its first batch; every batch is then 3 requests. "Records kept" counts '
        "the lines in the repository afterwards: the reference's GET returns empty content "
        "for a file over 1 MB, so its next PUT replaces the log with one record."
    )
    L.append("")
    L.append("## 2. append() latency, flusher busy")
    L.append("")
    a = results["append_latency"]
    L.append(
        f"{a['appends']:,} appends of one {a['record_bytes']}-byte record (after "
        f"{a['warmup']:,} warm-up appends), timed one by one with time.perf_counter_ns, in "
        f"bursts of {CHUNK} with an untimed {PAUSE * 1000:.0f} ms pause between bursts, while "
        f"the flusher commits against a localhub that delays every request by "
        f"{a['injected_latency_s'] * 1000:.0f} ms. The flusher was mid-commit throughout: "
        f"{a['requests_while_measuring']} of its requests were answered and "
        f"{a['batches_committed_while_measuring']} batches completed during the measurement "
        "(batches of up to 4 MiB, each spanning several 1 MiB segment blobs); draining the "
        f"rest took {a['drain_seconds']:.1f} s. localhub runs in the same process and competes "
        "for the GIL, which makes these figures pessimistic."
    )
    L.append("")
    L.append(
        "Each turn of the loop times, one after the other and so under the same load, "
        "gitjsonl's `append()`, the *floor* any in-memory buffer pays (the same "
        "serialisation, a lock and a `deque.append`), and the standard library's "
        "non-blocking logging: `logger.info('%s', record)` through a `QueueHandler`, "
        "drained by a `QueueListener` thread."
    )
    L.append("")
    L.append("| call | p50 | p90 | p99 | p99.9 | max | mean |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    names = {
        "append": "gitjsonl `append()`",
        "floor": "floor: serialise + lock + deque",
        "queue_handler": "logging `QueueHandler`",
    }
    for kind, label in names.items():
        q = a["kinds"][kind]
        L.append(
            f"| {label} | {q['p50_us']:.1f} µs | {q['p90_us']:.1f} µs | {q['p99_us']:.1f} µs | "
            f"{q['p999_us']:.1f} µs | {q['max_us']:,.0f} µs | {q['mean_us']:.1f} µs |"
        )
    L.append("")
    L.append("## 3. tail(500)")
    L.append("")
    L.append(
        "A fresh reader on each log (no cache). gitjsonl: `Log.tail(500)` on a log of 1 MiB "
        "segments; reference: `load_recent(500)` (one Contents-API GET) on a single file of "
        'the same size. "Downloaded" is the sum of response bodies (bytes_out).'
    )
    L.append("")
    L.append("| log size | implementation | requests | downloaded | seconds | records returned |")
    L.append("|---|---|---:|---:|---:|---|")
    for t in results["tail"]:
        got = f"{t['records_returned']}"
        got += " (correct)" if t["correct"] else " — **wrong / nothing**"
        L.append(
            f"| {t['label']} | {t['impl']} | {t['requests']} | {fmt_bytes(t['bytes_out'])} | "
            f"{t['seconds']:.3f} | {got} |"
        )
    L.append("")
    L.append("## 4. Segment counts")
    L.append("")
    L.append(
        "Requests of a log's first batch (which reads the head: the commit's tree, one "
        "request per folder level, and the active segment), of the next batch (steady "
        "state: no reads) and of `tail(500)`, on logs of 10 and of 5,000 segments. Folders "
        "are listed through the Git Trees API, so past the Contents API's 1,000-entry cap "
        "nothing is missed and nothing costs more."
    )
    L.append("")
    L.append("| segments | first batch | steady-state batch | tail(500) | tail correct |")
    L.append("|---:|---:|---:|---:|---|")
    for row in results.get("segment_counts", []):
        L.append(
            f"| {row['segments']:,} | {row['first_batch']} | {row['steady_batch']} | "
            f"{row['tail_500']} | {'yes' if row['tail_correct'] else '**no**'} |"
        )
    L.append("")
    L.append("## 5. Many processes, one token")
    L.append("")
    many = results.get("many_processes", [])
    if many:
        m0 = many[0]
        L.append(
            f"{m0['processes']} processes with {m0['logs_per_process']} `Log`s each, all on one "
            f"token and one log, append a record every 20 ms per `Log` for "
            f"{m0['seconds_appending']} s, then close. localhub enforces secondary limits per "
            f"token with GitHub's numbers scaled down ({MANY_LIMITS['per_minute']} writes per "
            f"{MANY_LIMITS['minute']:.0f} s and {MANY_LIMITS['per_hour']} per "
            f"{MANY_LIMITS['hour']:.0f} s) and the `Log`s pace themselves to the same numbers. "
            "*Shared on the host*: the default (`budget_dir` in the user's cache folder); "
            "*each process alone*: `budget_dir=None` (the two `Log`s of a process still share)."
        )
        L.append("")
        L.append(
            "| budget | records | batches | writes | writes / batch | lost races "
            "| secondary-limit answers | every record once, in order |"
        )
        L.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for m in many:
            L.append(
                f"| {'shared on the host' if m['shared'] else 'each process alone'} | "
                f"{m['records']:,} | {m['batches']} | {m['writes']} | "
                f"{m['writes_per_batch']:.1f} | {m['lost_races']} | "
                f"{m['secondary_limit_answers']} | "
                f"{'yes' if m['exactly_once_in_order'] else 'NO'} |"
            )
        L.append("")
    L.append("## 6. Bytes per batch: base64 (before) and UTF-8 (now)")
    L.append("")
    L.append(
        "One steady-state batch of 500 records (a new file of 500 records). *base64*: the "
        "file as a base64 blob, then the tree (four writes); *UTF-8*: the file as text inside "
        "the tree (three writes). ASCII: the benchmark's ~1 KB records; text: ~1 KB of "
        "French and Japanese with quotes."
    )
    L.append("")
    L.append("| records | encoding | file | blob + tree requests | whole batch |")
    L.append("|---|---|---:|---:|---:|")
    for row in results.get("blob_encoding", []):
        L.append(
            f"| {row['records']} | {row['encoding']} | {fmt_bytes(row['segment_bytes'])} | "
            f"{fmt_bytes(row['blob_request_bytes'])} | {fmt_bytes(row['batch_bytes'])} |"
        )
    L.append("")
    costs = results.get("batch_cost", [])
    if costs:
        L.append("## 7. What a batch costs against what it appends")
        L.append("")
        L.append(
            "Steady-state batches of ~500-byte records (quotes included: JSON escaping costs "
            "~10% on these) into a log already holding 1.5 MB in today's layout. *Uploaded*: "
            "every request body as sent (tree with the files inline, commit, ref update), "
            "over the bytes appended. *git push*: the same appends to one growing file, "
            "committed and pushed by real git over file:// to a bare repository: the thin "
            "pack it sends (a compressed delta), the physical floor. *tail(500)*: requests of "
            "a cold `Log` afterwards (4 of them list the folder: head, root, `data`, the log)."
        )
        L.append("")
        L.append(
            "| batches | a batch appends | writes a batch | uploaded / appended | "
            "git push / appended | tail(500) requests | files in the log |"
        )
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for row in costs:
            L.append(
                f"| {row['name']} ({row['batches']}) | {fmt_bytes(row['batch_bytes'])} | "
                f"{row['writes_per_batch']:.1f} | {row['uploaded_per_appended']:.2f}x | "
                f"{row['git_push_per_appended']:.3f}x | {row['tail_500_requests']} | "
                f"{row['files']} |"
            )
        L.append("")
    L.append("![requests and bytes per record](results.png)")
    L.append("")
    L.append(f"Total benchmark time: {results['total_seconds']:.0f} s.")
    L.append("")
    path.write_text("\n".join(L), encoding="utf-8")


def draw_chart(results: dict, path: Path) -> None:
    import matplotlib  # bench-only dependency, imported here on purpose

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    writes = results["writes"]
    sizes = sorted({w["start_size"] for w in writes})
    labels = [size_label(s) for s in sizes]
    x = list(range(len(sizes)))
    series: dict[str, list[dict]] = {}
    for w in writes:
        name = (
            "reference (Contents API)" if w["impl"] == "reference" else f"gitjsonl, {w['batching']}"
        )
        series.setdefault(name, []).append(w)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in (
        (axes[0], "requests_per_1000", "requests per record"),
        (axes[1], "bytes_in_per_1000", "bytes uploaded per record"),
    ):
        for name, unsorted in series.items():
            rows = sorted(unsorted, key=lambda w: w["start_size"])
            ys = [w[key] / 1000 for w in rows]
            style: dict[str, Any] = {"marker": "o"}
            if "reference" in name:
                style = {"color": "tab:red", "marker": "s", "linewidth": 2.5}
            ax.plot(x, ys, label=name, **style)
            if "reference" in name:
                for xi, w in zip(x, rows, strict=True):
                    if w["data_lost"]:
                        ax.annotate(
                            "log lost",
                            (xi, w[key] / 1000),
                            textcoords="offset points",
                            xytext=(0, 8),
                            ha="center",
                            color="tab:red",
                            fontsize=8,
                        )
        ax.set_yscale("log")
        ax.margins(y=0.2)
        ax.set_xticks(x)
        ax.set_xticklabels(labels)
        ax.set_xlabel("log size at start")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("gitjsonl vs the reference Contents-API logger, ~1 KB records (localhub)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fast smoke run with smaller sizes")
    ap.add_argument("--out", help="output folder (default: bench/, or a temp folder with --quick)")
    ap.add_argument(
        "--only",
        choices=sorted(ALONE),
        action="append",
        help="run this section alone (repeatable), into the results of the last full run there",
    )
    args = ap.parse_args(argv)
    if args.only:
        return only_sections(Path(args.out) if args.out else HERE, args.only, quick=args.quick)

    if args.quick:
        write_sizes = [0, 1 * MiB, 2 * MiB]
        tail_sizes = [1 * MiB, 2 * MiB, 4 * MiB]
        n_gitjsonl, n_ref, n_append, warmup = 1000, 20, 5_000, 500
        many_seconds = 8
    else:
        write_sizes = [0, 1 * MiB, 10 * MiB]
        tail_sizes = [1 * MiB, 10 * MiB, 100 * MiB]
        n_gitjsonl, n_ref, n_append, warmup = 5000, 100, 50_000, 2_000
        many_seconds = MANY_SECONDS
    if args.out:
        out = Path(args.out)
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="gitjsonl-bench-"))
    else:
        out = HERE
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "system": platform.system(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "gitjsonl_version": getattr(gitjsonl, "__version__", "unknown"),
        "record_bytes": len(line(0)),
        "settings": {
            "segment_bytes": SEGMENT_BYTES,
            "pacing": None,
            "batchings": {
                k: {"flush_every": v["flush_every"], **FLUSH_ONLY} for k, v in BATCHINGS.items()
            },
            "reference_records_per_run": n_ref,
            "gitjsonl_records_per_run": n_gitjsonl,
        },
        "writes": [],
        "tail": [],
    }

    print("1. writes", flush=True)
    with LocalHub(repos=(), initial_commit=True) as hub:
        idx = 0
        for size in write_sizes:
            for batching in BATCHINGS:
                idx += 1
                w = bench_gitjsonl_writes(hub, size, n_gitjsonl, batching, idx)
                results["writes"].append(w)
                print(
                    f"   gitjsonl  {w['start_label']:>6} {batching:<30} {w['requests']:>5} req "
                    f"{fmt_bytes(w['bytes_in']):>10} up  {w['batches']} batches  "
                    f"{w['seconds']:.1f}s",
                    flush=True,
                )
            idx += 1
            w = bench_baseline_writes(hub, size, n_ref, idx)
            results["writes"].append(w)
            print(
                f"   reference {w['start_label']:>6} {n_ref} records: {w['requests']:>5} req "
                f"{fmt_bytes(w['bytes_in']):>10} up  "
                f"kept {w['records_found']}/{w['records_expected']}"
                f"  {w['seconds']:.1f}s",
                flush=True,
            )

    print("2. append latency", flush=True)
    gc.collect()
    results["append_latency"] = bench_append_latency(n_append, warmup)
    a = results["append_latency"]
    print(
        f"   p50 {a['p50_us']:.1f} µs  p99 {a['p99_us']:.1f} µs  max {a['max_us']:.0f} µs",
        flush=True,
    )

    k = a["kinds"]
    print(
        f"   floor p50 {k['floor']['p50_us']:.1f} µs p99 {k['floor']['p99_us']:.1f} µs; "
        f"QueueHandler p50 {k['queue_handler']['p50_us']:.1f} µs "
        f"p99 {k['queue_handler']['p99_us']:.1f} µs",
        flush=True,
    )

    print("3. tail(500)", flush=True)
    with LocalHub(repos=(), initial_commit=True) as hub:
        for i, size in enumerate(tail_sizes):
            for t in bench_tail(hub, size, i):
                results["tail"].append(t)
                print(
                    f"   {t['impl']:<9} {t['label']:>6} {t['requests']} req "
                    f"{fmt_bytes(t['bytes_out']):>10} down {t['seconds']:.3f}s "
                    f"{t['records_returned']} records",
                    flush=True,
                )

    print("4. segment counts", flush=True)
    results["segment_counts"] = []
    with LocalHub(repos=(), initial_commit=True) as hub:
        for row in bench_segment_counts(hub, [10, 5000]):
            results["segment_counts"].append(row)
            print(
                f"   {row['segments']:>5} segments: first batch {row['first_batch']} req, "
                f"steady batch {row['steady_batch']} req, tail(500) {row['tail_500']} req"
                f"{'' if row['tail_correct'] else '  WRONG TAIL'}",
                flush=True,
            )

    print("5. many processes, one token", flush=True)
    results["many_processes"] = []
    for shared in (True, False):
        m = bench_many_processes(shared, many_seconds)
        results["many_processes"].append(m)
        print(
            f"   {'shared on the host' if shared else 'each process alone':<20} "
            f"{m['writes_per_batch']:.1f} writes/batch, {m['lost_races']} lost races, "
            f"{m['secondary_limit_answers']} secondary-limit answers, "
            f"exactly once: {m['exactly_once_in_order']}",
            flush=True,
        )

    print("6. bytes per batch, base64 and UTF-8", flush=True)
    results["blob_encoding"] = []
    with LocalHub(repos=(), initial_commit=True) as hub:
        idx = 0
        for text in (False, True):
            for utf8 in (False, True):
                idx += 1
                row = bench_blob_encoding(hub, idx, utf8=utf8, text=text)
                results["blob_encoding"].append(row)
                print(
                    f"   {row['records']:<17} {row['encoding']:<7} segment "
                    f"{fmt_bytes(row['segment_bytes'])}, blob request "
                    f"{fmt_bytes(row['blob_request_bytes'])}, "
                    f"batch {fmt_bytes(row['batch_bytes'])}",
                    flush=True,
                )

    print("7. what a batch costs against what it appends", flush=True)
    results["batch_cost"] = []
    with LocalHub(repos=(), initial_commit=True) as hub:
        for idx, (name, size, batches) in enumerate(BATCH_COSTS):
            row = bench_batch_cost(hub, name, size, 4 if args.quick else batches, idx)
            results["batch_cost"].append(row)
            print(
                f"   {name:<8} {fmt_bytes(row['batch_bytes']):>9} a batch: "
                f"{row['writes_per_batch']:.1f} writes, "
                f"uploads {row['uploaded_per_appended']:.2f}x "
                f"what it appends (git push {row['git_push_per_appended']:.2f}x), "
                f"tail(500) {row['tail_500_requests']} req, {row['files']} files",
                flush=True,
            )

    print("8. an hour of pacing (simulated)", flush=True)
    import hour

    results["hour"] = hour.run()
    print(hour.summary(results["hour"]), flush=True)

    print("9. many hosts, one token (the coordinator)", flush=True)
    import hosts

    results["hosts"] = hosts.run(5 if args.quick else hosts.SECONDS)
    print(hosts.summary(results["hosts"]), flush=True)

    print("10. AsyncLog: event-loop stall", flush=True)
    import loop_stall

    results["loop_stall"] = loop_stall.run()
    print(loop_stall.summary(results["loop_stall"]), flush=True)

    for number in sorted(ALONE, key=int):
        run_alone_section(number, results, quick=args.quick)

    results["total_seconds"] = time.perf_counter() - started
    write_results(results, out)
    draw_chart(results, out / "results.png")
    print(f"wrote results.md, results.json, results.png ({results['total_seconds']:.0f} s)")
    print(json.dumps(results["targets"], indent=2))
    return 0


def write_results(results: dict[str, Any], out: Path) -> None:
    """results.json and results.md, every section that has results."""
    import ephemeral
    import hosts
    import hour
    import loop_stall

    results["targets"] = targets(results)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_markdown(results, out / "results.md")
    with (out / "results.md").open("a", encoding="utf-8") as md:
        md.write(hour.markdown(results["hour"]))
        md.write(hosts.markdown(results["hosts"]))
        md.write(loop_stall.markdown(results["loop_stall"]))
        if "ephemeral" in results:
            md.write(ephemeral.markdown(results["ephemeral"]))
        if "imports" in results:
            import imports

            md.write(imports.markdown(results["imports"]))
        if "sim" in results:
            import sim

            md.write(sim.markdown(results["sim"]))


#: The sections that can run alone (``--only N``): number -> (title, module, results key).
ALONE = {
    "11": ("an ephemeral host, restarted with its disk wiped", "ephemeral", "ephemeral"),
    "12": ("what having gitjsonl installed costs", "imports", "imports"),
    "13": ("the deterministic simulator's long search", "sim", "sim"),
}


def run_alone_section(number: str, results: dict[str, Any], *, quick: bool) -> None:
    """Run section ``number`` into ``results`` (its module's ``run_all``, or ``run``)."""
    import importlib

    title, module_name, key = ALONE[number]
    print(f"{number}. {title}", flush=True)
    module = importlib.import_module(module_name)
    started = time.perf_counter()
    if module_name == "ephemeral":
        results[key] = module.run_all(3 if quick else module.CYCLES)
    elif module_name == "sim":
        results[key] = module.run(20.0 if quick else module.SECONDS)
        print(module.summary(results[key]), flush=True)
    else:
        results[key] = module.run()
        print(module.summary(results[key]), flush=True)
    results[f"{key}_seconds"] = time.perf_counter() - started


def only_sections(out: Path, numbers: list[str], *, quick: bool) -> int:
    """Sections ``numbers`` alone, written into the results of the last full run in ``out``."""
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for number in numbers:
        run_alone_section(number, results, quick=quick)
    write_results(results, out)
    print(f"wrote results.md, results.json (sections {', '.join(numbers)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
