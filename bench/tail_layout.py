"""The layout's trade-off, simulated: uploads per byte appended against a cold tail's requests.

A pure simulation over ``gitjsonl._segments.plan_batch`` (no server, no I/O):
an app's trickle (one record every 1-10 s, uniformly), batched the way pacing
batches it (one batch every ~22 s, GitHub's 500 writes an hour at 3 writes a
batch), with a burst of 50 records every ``--burst`` seconds, for record sizes
of 0.2, 1 and 2 KB. The planner sees what a writer sees (the folder, and the
bytes of the small run only). After every batch it counts what a cold
``tail(500)`` would send, two ways: reading one blob per file, newest first,
until 500 records (how the reader read until GraphQL), and as the reader reads
now (``gitjsonl._reader``: the files ``plan_reads`` picks from the listing's
sizes, in one GraphQL query a round, a file of 512,000 bytes or more through
REST); both after the folder's listing, one request. At the end it counts the
bytes uploaded per byte appended and the small files standing before a large
one (stranded).

``--small-fraction`` and ``--max-run`` move the layout's two knobs (files
under ``segment_bytes / fraction`` are small; a run of ``max-run`` of them is
merged) to draw the frontier; the defaults are the layout's.

    .venv/bin/python bench/tail_layout.py
    .venv/bin/python bench/tail_layout.py --frontier
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gitjsonl import _segments
from gitjsonl._config import DEFAULT_SEGMENT_BYTES
from gitjsonl._github import DirEntry
from gitjsonl._reader import _MARGIN, ASSUMED_RECORD_BYTES, graphql_groups, plan_reads
from gitjsonl._segments import SegmentFile, plan_batch, small_run

TAIL = 500
BATCH_EVERY = 22.0  # seconds: pacing's steady pace for 500 writes an hour at 3 a batch


@dataclass(frozen=True)
class Figures:
    record_kb: float
    amplification: float  # bytes uploaded / bytes appended
    tail_worst: int  # requests of a cold tail(500) reading a blob a file, the worst after any batch
    tail_mean: float
    tail_p95: float
    graphql_worst: int  # the same tail read as the reader does: in GraphQL queries
    graphql_mean: float
    stranded: int  # small files before a large one, at the end


def simulate(
    record_kb: float, *, hours: float = 6.0, burst: float | None = 900.0, seed: int = 1
) -> Figures:
    """One history of a trickle (and bursts) through ``plan_batch``."""
    rng = random.Random(seed)
    folder: dict[int, bytes] = {}
    records: dict[int, int] = {}  # file number -> records in it
    uploaded = appended = 0
    tails: list[int] = []
    queried: list[int] = []
    now, due, next_burst = 0.0, BATCH_EVERY, burst
    pending: list[bytes] = []
    serial = 0

    def record() -> bytes:
        nonlocal serial
        serial += 1
        size = max(40, int(record_kb * 1024 * rng.uniform(0.75, 1.25)))
        head = b'{"n":%d,"text":"' % serial
        return head + b"x" * (size - len(head) - 3) + b'"}\n'

    while now < hours * 3600:
        now += rng.uniform(1, 10)
        pending.append(record())
        if next_burst is not None and now >= next_burst:
            pending += [record() for _ in range(50)]
            next_burst += burst or 0
        if now < due:
            continue
        due = now + BATCH_EVERY
        files = [SegmentFile(n, len(c)) for n, c in sorted(folder.items())]
        known = {f.number: folder[f.number] for f in small_run(files, DEFAULT_SEGMENT_BYTES)}
        plan = plan_batch(
            files,
            pending,
            segment_bytes=DEFAULT_SEGMENT_BYTES,
            next_number=max(folder, default=0) + 1,
            contents=known,
        )
        for write in plan.writes:
            folder[write.number] = write.content
            records[write.number] = write.content.count(b"\n")
            uploaded += len(write.content)
        for number in plan.deletes:
            del folder[number]
            del records[number]
        appended += sum(len(line) for line in pending)
        pending = []
        if now > 3600:  # past the first hour: a log long enough to hold 500 records
            tails.append(_tail_requests(records))
            queried.append(_tail_queries({n: len(c) for n, c in folder.items()}, records))
    tails.sort()
    return Figures(
        record_kb,
        uploaded / appended,
        tails[-1],
        statistics.fmean(tails),
        tails[int(len(tails) * 0.95)],
        max(queried),
        statistics.fmean(queried),
        _stranded(folder),
    )


def _tail_requests(records: dict[int, int]) -> int:
    need, requests = TAIL, 1  # the folder listing
    for number in sorted(records, reverse=True):
        requests += 1
        need -= records[number]
        if need <= 0:
            break
    return requests


def _tail_queries(sizes: dict[int, int], records: dict[int, int]) -> int:
    """The requests of a cold tail(500) as ``LogReader.tail`` sends them: the listing,
    then per round the files ``plan_reads`` picks, two or more a GraphQL query, the
    rest (a file alone, a file GraphQL cannot read whole) one REST read each."""
    newest = sorted(records, reverse=True)
    requests, have, seen, done = 1, 0, 0, 0
    record_bytes: float = ASSUMED_RECORD_BYTES
    while done < len(newest) and (have < TAIL or not done):
        todo = newest[done:]
        chosen = todo[: plan_reads([sizes[n] for n in todo], TAIL - have, record_bytes)]
        entries = [DirEntry(str(n), str(n), f"{n:040x}", sizes[n], "file") for n in chosen]
        queries = [group for group in graphql_groups(entries) if len(group) > 1]
        requests += len(queries) + len(chosen) - sum(len(group) for group in queries)
        have += sum(records[n] for n in chosen)
        seen += sum(sizes[n] for n in chosen)
        done += len(chosen)
        record_bytes = seen / have * _MARGIN if have else record_bytes
    return requests


def _stranded(folder: dict[int, bytes]) -> int:
    small = _segments.small_bytes(DEFAULT_SEGMENT_BYTES)
    sizes = [len(folder[n]) for n in sorted(folder)]
    large = [i for i, size in enumerate(sizes) if size >= small]
    return sum(1 for size in sizes[: large[-1]] if size < small) if large else 0


@contextmanager
def knobs(fraction: int, max_run: int) -> Iterator[None]:
    """The layout with other knobs, for the frontier (restored after)."""
    saved = _segments.small_bytes, _segments.MAX_RUN
    _segments.small_bytes = lambda segment_bytes: max(1, segment_bytes // fraction)
    _segments.MAX_RUN = max_run
    try:
        yield
    finally:
        _segments.small_bytes, _segments.MAX_RUN = saved


def row(label: str, figures: list[Figures]) -> str:
    cells = []
    for f in figures:
        stranded = f", {f.stranded} stranded" if f.stranded else ""
        cells.append(
            f"{f.amplification:.2f}x, tail {f.tail_worst} ({f.tail_mean:.1f}) by blob, "
            f"{f.graphql_worst} ({f.graphql_mean:.1f}) by GraphQL{stranded}"
        )
    return f"| {label} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frontier", action="store_true", help="also other knobs")
    parser.add_argument("--small-fraction", type=int, default=16)
    parser.add_argument("--max-run", type=int, default=_segments.MAX_RUN)
    parser.add_argument("--burst", type=float, default=900.0, help="seconds between bursts")
    parser.add_argument("--hours", type=float, default=6.0)
    args = parser.parse_args()
    sizes = (0.2, 1.0, 2.0)
    print("| small files under / run | " + " | ".join(f"{s} KB records" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    points = [(args.small_fraction, args.max_run)]
    if args.frontier:
        points += [(f, r) for f in (16, 8, 4) for r in (3, 4, 6) if (f, r) != points[0]]
    for fraction, max_run in points:
        with knobs(fraction, max_run):
            figures = [simulate(s, hours=args.hours, burst=args.burst or None) for s in sizes]
        kib = DEFAULT_SEGMENT_BYTES // fraction // 1024
        print(row(f"{kib} KiB / {max_run}", figures))
    print()
    print(
        "uploaded/appended; a cold tail(500)'s requests, the worst after any batch (mean): "
        "reading a blob a file, and as the reader reads (GraphQL queries)"
    )


if __name__ == "__main__":
    main()
