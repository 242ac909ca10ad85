"""An ephemeral host, restarted: the example app in its real server, its disk wiped each time.

What issue #26's author did by hand, in one place for ``tests/test_ephemeral_host.py``
and benchmark section 11 (``bench/ephemeral.py``):

- the app (``tests/ephemeral_app.py``: the example, the drop-in ``GithubLog``
  or the reference service) under ``uvicorn --workers 2`` or gunicorn with two
  uvicorn workers, its server's own defaults otherwise;
- a ``LocalHub`` with GitHub's secondary limits (80 writes a minute, 500 an
  hour per token) and 0.5 s read lag, **scaled in time**: the limits' windows
  and the app's ``Pacing`` windows are both divided by ``scale``, and so are the
  traffic's intervals and the cycle's length (a 3-minute cycle at scale 30
  lasts 6 s). The grace before SIGKILL, the read lag and the servers' own
  timings stay in real seconds;
- each cycle: fresh folders (``HOME``, ``XDG_CACHE_HOME``, so the budget
  folder, the SQLite db, the spool) and a fresh server; a trickle of one
  ``POST /chat`` every 1-10 s (scaled) with a burst of 50 at a random moment,
  optionally a second burst of 50 just before SIGTERM; then SIGTERM to the
  server's main process (as Docker signals PID 1), SIGKILL to the whole process
  group after ``grace`` seconds or as soon as the main process is gone (the
  container ends with it); then every folder of the cycle deleted;
- the branch read back with git (a clone of localhub's repository folder: every
  segment and the legacy file), each **acknowledged** record (the request
  answered 200 with its id) counted: landed once, lost, duplicated, per cycle.

The counting is pure (``tally``) and tested without any server; the rest is a
thin driver.

What the scale cannot shrink: the servers' boot (4-11 s on a loaded 2-core
machine) and shutdown, and the grace, stay real. A boot therefore counts as
``scale`` times its length of GitHub's time (the budget refills meanwhile), and
a closing ``Log`` waiting for room finds it within a real 10 s grace far sooner
than on GitHub. Over 10 cycles at scale 20 (the benchmark) the restarts still
spend GitHub's hour twice over, as in the issue; 2-3 cycles at scale 60 (the
test) do not. To hold a shutdown to a scaled grace, pass ``grace=`` and the
``Log``'s own deadline through ``log_options``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gitjsonl.testing import LocalHub, SecondaryLimits

from .test_example import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
REPO = "owner/repo"
LOG_PATH = "data/interactions"
LEGACY_PATH = "data/interactions.jsonl"
WRITES = ("POST", "PATCH", "PUT", "DELETE")
#: What a cycle's boot says about itself, beside what the branch says.
STOP_FIELDS = (
    "refused", "limit_answers", "writes", "boot_seconds", "stop_seconds", "killed", "exit_code",
    "started", "note",
)  # fmt: skip

#: Docker's grace between SIGTERM and SIGKILL.
GRACE = 10.0
#: The issue's restart period and trickle, in unscaled seconds.
CYCLE_SECONDS = 180.0
TRICKLE = (1.0, 10.0)
BURST = 50
#: Records of 1-2 KB, as the app's are: the query is echoed in the answer.
QUERY_CHARS = 600
#: Bounds on the driver's own waits (real seconds).
START_BOUND = 120.0
REQUEST_BOUND = 15.0


@dataclass(frozen=True)
class Variant:
    """One row of the issue's table: which app, in which server, keeping what where."""

    name: str
    server: str = "uvicorn"  # or "gunicorn"
    app: str = "example"  # or "dropin", "reference"
    spool: bool = False  # a spool folder, on the disk that is wiped
    coordinator: bool = False  # a redis-server that outlives the restarts
    burst_at_sigterm: bool = False
    sigterm: bool = True  # False: SIGKILL with no warning (the harness's control)
    limits: bool = True  # False: no secondary limits and no pacing
    grace: float = GRACE
    cycle_seconds: float = CYCLE_SECONDS  # between restarts, unscaled
    #: More ``Log`` options for the app, e.g. a shutdown deadline to match a scaled grace.
    log_options: tuple[tuple[str, float | int | str | bool], ...] = ()


@dataclass
class CycleTally:
    """What one cycle's acknowledged records became on the branch, and how it stopped."""

    cycle: int
    acknowledged: int = 0
    landed_once: int = 0
    lost: int = 0
    duplicated: int = 0
    refused: int = 0  # requests not answered 200 (not acknowledged: not counted as lost)
    limit_answers: int = 0  # 403/429 localhub sent during the cycle
    writes: int = 0  # content-generating requests localhub saw during the cycle
    stop_seconds: float = 0.0  # SIGTERM to the last process gone
    killed: bool = False  # something was still alive at the grace's end
    exit_code: int | None = None
    boot_seconds: float = 0.0  # from the server's start to its first answer
    started: bool = True  # False: the server never served (its last lines in ``note``)
    note: str = ""


@dataclass
class RunResult:
    variant: Variant
    cycles: list[CycleTally] = field(default_factory=list)
    unacknowledged_landed: int = 0  # on the branch with no 200 seen (answer lost to a kill)

    def total(self) -> dict[str, int]:
        keys = ("acknowledged", "landed_once", "lost", "duplicated", "refused", "limit_answers")
        return {k: sum(getattr(c, k) for c in self.cycles) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": asdict(self.variant),
            "cycles": [asdict(c) for c in self.cycles],
            "total": self.total(),
            "killed": sum(c.killed for c in self.cycles),
            "unacknowledged_landed": self.unacknowledged_landed,
        }


# ---- pure decisions ------------------------------------------------------------


def tally(
    acknowledged: Mapping[str, int], landed: Iterable[str], cycles: int
) -> tuple[list[CycleTally], int]:
    """Each cycle's acknowledged ids (id -> cycle) against the ids on the branch.

    An id found once landed once, never lost, several times duplicated. The
    second value counts ids on the branch that were never acknowledged.
    """
    seen = Counter(landed)
    rows = [CycleTally(cycle=n) for n in range(cycles)]
    for record_id, cycle in acknowledged.items():
        row = rows[cycle]
        row.acknowledged += 1
        found = seen.get(record_id, 0)
        if found == 0:
            row.lost += 1
        elif found == 1:
            row.landed_once += 1
        else:
            row.duplicated += 1
    return rows, sum(1 for record_id in seen if record_id not in acknowledged)


def trickle_offsets(rng: random.Random, seconds: float, scale: float) -> list[float]:
    """When the trickle's requests go, in real seconds from the cycle's start."""
    offsets: list[float] = []
    t = 0.0
    while True:
        t += rng.uniform(*TRICKLE) / scale
        if t >= seconds:
            return offsets
        offsets.append(t)


def record_ids(data: bytes) -> Iterator[str]:
    """The ``id`` of every JSON-lines record in ``data`` that has a string one."""
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn line is a lost record: its id is simply not found
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            yield record["id"]


# ---- the branch, read with git -----------------------------------------------------


def _git(*args: str, cwd: Path | None = None) -> bytes:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, timeout=120
    ).stdout


def branch_ids(hub: LocalHub, clone: Path) -> list[str]:
    """Every record id on the default branch, from a clone of localhub's repository folder."""
    source = hub.root / f"{REPO}.git"  # localhub keeps root/owner/name.git
    if not clone.exists():
        _git("clone", "--quiet", "--bare", str(source), str(clone))
    else:
        _git("fetch", "--quiet", "--force", str(source), "+refs/heads/*:refs/heads/*", cwd=clone)
    paths = _git("ls-tree", "-r", "--name-only", "HEAD", "--", "data", cwd=clone).decode()
    ids: list[str] = []
    for path in paths.split():
        if path == LEGACY_PATH or (path.startswith(f"{LOG_PATH}/") and path.endswith(".jsonl")):
            ids.extend(record_ids(_git("cat-file", "blob", f"HEAD:{path}", cwd=clone)))
    return ids


# ---- the host ---------------------------------------------------------------------


def server_command(server: str, port: int) -> list[str]:
    """The server as a deployer starts it: two workers, its own defaults otherwise."""
    target = "tests.ephemeral_app:app"
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--workers", "2", "--host", "127.0.0.1",
                "--port", str(port), target]  # fmt: skip
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
                "--bind", f"127.0.0.1:{port}", target]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


def host_env(
    variant: Variant, hub: LocalHub, disk: Path, scale: float, redis: str | None
) -> dict[str, str]:
    """The environment of one boot: every folder the app may write to is under ``disk``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITJSONL_", "GITHUB_"))}
    env.update(
        HOME=str(disk / "home"),
        XDG_CACHE_HOME=str(disk / "cache"),
        TMPDIR=str(disk / "tmp"),
        PYTHONPATH=str(ROOT),
        GITJSONL_REPO=REPO,
        GITHUB_TOKEN=hub.token,
        GITHUB_API_URL=hub.url,
        APP_DB=str(disk / "app.db"),
        EPHEMERAL_HOST=json.dumps(
            {
                "app": variant.app,
                "scale": scale,
                "limits": variant.limits,
                "coordinator": redis if variant.coordinator else None,
                "log_options": dict(variant.log_options),
            }
        ),
    )
    if variant.spool:
        env["GITJSONL_SPOOL_DIR"] = str(disk / "spool")
    for name in ("home", "cache", "tmp"):
        (disk / name).mkdir(parents=True)
    return env


def stop(proc: subprocess.Popen[bytes], variant: Variant, cycle: CycleTally) -> None:
    """SIGTERM the main process, SIGKILL the group at the grace's end or once it is gone."""
    started = time.monotonic()
    if variant.sigterm:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=variant.grace)
        except subprocess.TimeoutExpired:
            cycle.killed = True
    else:
        cycle.killed = True
    # The container ends with its main process: whatever is left goes with it.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    cycle.stop_seconds = round(time.monotonic() - started, 2)
    cycle.exit_code = proc.returncode


class Traffic:
    """The client side: POSTs to ``/chat``, each acknowledged id kept with its cycle."""

    def __init__(self, url: str, rng: random.Random) -> None:
        self.url = url
        self.rng = rng
        self.acknowledged: dict[str, int] = {}
        self.refused: Counter[int] = Counter()
        self._client = httpx.Client(timeout=REQUEST_BOUND)
        self._pool = ThreadPoolExecutor(8)
        self._lock = threading.Lock()  # a burst's threads count into the same tallies

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def post(self, cycle: int, n: int) -> None:
        query = f"c{cycle} q{n} " + "x" * QUERY_CHARS
        try:
            answer = self._client.post(
                f"{self.url}/chat", json={"session_id": f"s{n % 7}", "query": query}
            )
            record_id = answer.json().get("id") if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            record_id = None
        with self._lock:
            if isinstance(record_id, str):
                self.acknowledged[record_id] = cycle
            else:
                self.refused[cycle] += 1

    def burst(self, cycle: int, first: int) -> None:
        list(self._pool.map(lambda n: self.post(cycle, n), range(first, first + BURST)))

    def cycle(self, cycle: int, seconds: float, scale: float, burst_at_end: bool) -> None:
        offsets = trickle_offsets(self.rng, seconds, scale)
        burst_at = self.rng.uniform(0.2, 0.8) * seconds
        start = time.monotonic()
        n = 0
        for offset in sorted([*offsets, burst_at]):
            time.sleep(max(0.0, start + offset - time.monotonic()))
            if offset == burst_at:
                self.burst(cycle, n)
                n += BURST
            else:
                self.post(cycle, n)
                n += 1
        time.sleep(max(0.0, start + seconds - time.monotonic()))
        if burst_at_end:
            self.burst(cycle, n)


@contextmanager
def ephemeral_hub(scale: float, limits: bool, read_lag: float = 0.5) -> Iterator[LocalHub]:
    """A LocalHub with GitHub's secondary limits, windows divided by ``scale``."""
    secondary = (
        SecondaryLimits(
            per_minute=80, per_hour=500, minute_window=60 / scale, hour_window=3600 / scale
        )
        if limits
        else None
    )
    with LocalHub(
        repos=(REPO,), initial_commit=True, secondary_limits=secondary, read_lag=read_lag
    ) as hub:
        yield hub


def run(
    variant: Variant,
    *,
    cycles: int,
    scale: float,
    redis: str | None = None,
    seed: int = 0,
    logs: Path | None = None,
) -> RunResult:
    """``cycles`` boots of ``variant`` on a fresh disk each; the branch counted with git.

    ``redis`` is the coordinator's URL (a server that outlives the boots) for a
    variant with one. Servers' output goes to ``logs`` (kept) when given.
    """
    if variant.coordinator and redis is None:
        raise ValueError(f"{variant.name}: a coordinator variant needs a redis URL")
    rng = random.Random(seed)
    acknowledged: dict[str, int] = {}
    stops: list[CycleTally] = []
    work = Path(tempfile.mkdtemp(prefix="gitjsonl-ephemeral-"))
    try:
        with ephemeral_hub(scale, variant.limits) as hub:
            for n in range(cycles):
                ids, stopped = boot(
                    variant,
                    hub,
                    disk=work / f"disk-{n}",
                    n=n,
                    scale=scale,
                    redis=redis,
                    rng=rng,
                    logs=logs,
                )
                acknowledged.update(ids)
                stops.append(stopped)
            rows, stray = tally(acknowledged, branch_ids(hub, work / "clone.git"), cycles)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row, stopped in zip(rows, stops, strict=True):
        for name in STOP_FIELDS:
            setattr(row, name, getattr(stopped, name))
    return RunResult(variant, rows, stray)


def boot(
    variant: Variant,
    hub: LocalHub,
    *,
    disk: Path,
    n: int,
    scale: float,
    redis: str | None,
    rng: random.Random,
    logs: Path | None,
) -> tuple[dict[str, int], CycleTally]:
    """One life of the host: start on an empty disk, serve the traffic, stop, lose the disk."""
    cycle = CycleTally(cycle=n)
    env = host_env(variant, hub, disk, scale, redis)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first_request = len(hub.requests)
    log = (logs or disk.parent) / f"{variant.name}-{n}.log"  # outside the disk: kept
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_command(variant.server, port),
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        traffic = Traffic(url, rng)
        booted = time.monotonic()
        try:
            wait_until_serving(url, proc, booted + START_BOUND)
            cycle.boot_seconds = round(time.monotonic() - booted, 2)
        except AssertionError:  # it exited, or never answered: a boot that served nothing
            cycle.started = False
        try:
            if cycle.started:
                traffic.cycle(n, variant.cycle_seconds / scale, scale, variant.burst_at_sigterm)
        finally:
            traffic.close()
            stop(proc, variant, cycle)
            shutil.rmtree(disk, ignore_errors=True)  # the disk is gone with the container
    requests = hub.requests[first_request:]
    cycle.limit_answers = sum(1 for r in requests if r.status in (403, 429))
    cycle.writes = sum(1 for r in requests if r.write)
    cycle.refused = traffic.refused[n]
    if not cycle.started:
        last = " | ".join(log.read_text(errors="replace").splitlines()[-3:])
        # Kept in results that may be committed: no path of this machine.
        cycle.note = last.replace(str(disk.parent), "<run>").replace(str(ROOT), "<repo>")
    return traffic.acknowledged, cycle
