"""Hostile waits and ledgers (issue 19, item 5): one table per kind of attack.

A server may ask for any wait, and a ledger file is anyone's with this user's
rights (or was written by a clock that ran ahead): every wait is clamped, every
value read back is repaired before a decision obeys it, and a process stopped
while holding the ledger's lock blocks nobody for long. A row is an attack that
was tried; add rows to the table they belong to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from gitjsonl import _ledger
from gitjsonl._budget import budget_for, ledger_path
from gitjsonl._github import Credentials
from gitjsonl._pacing import MAX_SERVER_WAIT, Pacing
from gitjsonl.testing import Fault, LocalHub

from .helpers import committed_records, make_log

URL = "https://api.github.com"
TOKEN = "not-a-real-token-" + "h0stile" * 3


def _strict_json(text: str) -> Any:
    """JSON without Infinity or NaN: what a repaired ledger must be."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} in the ledger")

    return json.loads(text, parse_constant=refuse)


# -- waits a server asks for ---------------------------------------------------------------

SERVER_WAITS = [
    pytest.param(math.inf, id="retry-after-inf"),
    pytest.param(10**12, id="retry-after-huge"),
    pytest.param(-30, id="retry-after-negative"),
    pytest.param(math.nan, id="retry-after-nan"),
]


class TestServerWaits:
    @pytest.mark.parametrize("retry_after", SERVER_WAITS)
    def test_a_hostile_retry_after_is_clamped_and_the_records_land(
        self, localhub: LocalHub, retry_after: float
    ) -> None:
        """Whatever Retry-After says, the Log waits at most an hour (on its clock), shows a
        finite pause, and commits every record."""
        localhub.add_fault(
            Fault(method="POST", action="secondary_limit", retry_after=cast("int", retry_after))
        )
        with make_log(localhub, pacing=Pacing()) as log:
            sleeps = log._sleep.__self__.sleeps  # type: ignore[attr-defined]
            log.append({"id": 0})
            log.flush(timeout=30)
            budget = log.stats().budget
            assert budget is not None
            assert 0 <= budget.paused_for <= MAX_SERVER_WAIT
        assert max(sleeps, default=0.0) <= MAX_SERVER_WAIT
        assert [r["id"] for r in committed_records(localhub)] == [0]


# -- values read back from a ledger ---------------------------------------------------------


def _ledger_file(directory: Path) -> Path:
    key = Credentials(URL, TOKEN).key
    return ledger_path(directory, key)


def _spent_now(now: float) -> list[Any]:
    return [[now, 4, "ok", True]]


LEDGERS = [
    pytest.param(lambda now: {"blocked_until": math.inf}, id="pause-infinity"),
    pytest.param(lambda now: {"blocked_until": math.nan}, id="pause-nan"),
    pytest.param(lambda now: {"blocked_until": -1e30}, id="pause-negative"),
    pytest.param(lambda now: {"blocked_until": "soon"}, id="pause-a-string"),
    pytest.param(lambda now: {"blocked_until": now + 86_454}, id="pause-from-a-clock-a-day-ahead"),
    pytest.param(lambda now: {"allowance": math.nan}, id="allowance-nan"),
    pytest.param(lambda now: {"allowance": -1.0, "since": now}, id="allowance-negative"),
    pytest.param(lambda now: {"allowance": [1]}, id="allowance-a-list"),
    pytest.param(lambda now: {"allowance": 0.125, "since": now + 86_400}, id="since-a-day-ahead"),
    pytest.param(lambda now: {"spent": [[math.inf, 4, "x", True]]}, id="spent-at-infinity"),
    pytest.param(lambda now: {"spent": [[now, 10**9, "x", True]]}, id="spent-a-billion"),
    pytest.param(lambda now: {"spent": [[now, -5, "x", True]]}, id="spent-negative"),
    pytest.param(lambda now: {"spent": ["junk", [1, 2]]}, id="spent-junk-rows"),
    pytest.param(lambda now: {"spent": "everything"}, id="spent-not-a-list"),
    pytest.param(lambda now: {"tokens": -math.inf, "tokens_at": now}, id="bucket-minus-infinity"),
    pytest.param(lambda now: {"tokens": math.nan, "tokens_at": math.nan}, id="bucket-nan"),
    pytest.param(lambda now: {"tokens": 0.0, "tokens_at": now + 86_400}, id="bucket-from-ahead"),
    pytest.param(lambda now: {"waiting": [["w", now, now + 1e9]]}, id="a-waiter-in-line-for-ever"),
    pytest.param(lambda now: {"waiting": [["w", math.nan, math.inf]]}, id="a-waiter-at-nan"),
    pytest.param(lambda now: {"limited": -3, "waits": 1.5, "waited": math.inf}, id="counts"),
]


class TestLedgerValues:
    @pytest.mark.parametrize("hostile", LEDGERS)
    def test_a_hostile_ledger_is_repaired_not_obeyed(self, tmp_path: Path, hostile: Any) -> None:
        """A fresh writer on a ledger holding the value waits at most a minute (GitHub's
        advice when a pause is unknown), shows finite stats, and writes back a ledger with
        no Infinity or NaN in it."""
        now = time.time()
        path = _ledger_file(tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"format": 1, "spent": _spent_now(now), **hostile(now)}))
        path.chmod(0o600)
        budget = budget_for(Pacing(), Credentials(URL, TOKEN), directory=tmp_path)
        try:
            assert budget.delay(4) <= 61.0
            stats = budget.stats()
            assert 0 <= stats.paused_for <= 61.0
            assert all(
                math.isfinite(v)
                for v in (stats.allowance, stats.waited, stats.last_hour, stats.last_minute)
            )
            assert stats.allowed_per_hour >= 1
            budget.reserve(1)
        finally:
            budget.release()
        _strict_json(path.read_text())

    def test_a_pause_from_a_clock_a_day_ahead_is_not_a_day_long(self, tmp_path: Path) -> None:
        """The 86,454 s pause seen on main becomes at most a minute, and is written back so."""
        now = time.time()
        path = _ledger_file(tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"format": 1, "blocked_until": now + 86_454}))
        budget = budget_for(Pacing(), Credentials(URL, TOKEN), directory=tmp_path)
        try:
            assert budget.delay(4) <= 61.0
        finally:
            budget.release()
        assert _strict_json(path.read_text())["blocked_until"] <= time.time() + 61.0


# -- a process stopped while holding the ledger's lock --------------------------------------

HOLD_AND_STOP = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
"""


@contextlib.contextmanager
def stopped_holder(path: Path) -> Iterator[None]:
    """A process that took the lock of ``path`` and was then stopped (SIGSTOP)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_STOP, str(_ledger.lock_path(path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        yield
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close() if child.stdout else None


class TestStoppedLockHolder:
    def test_stats_never_waits_for_the_lock(self, tmp_path: Path) -> None:
        """stats() answers at once, from what this process last saw, while the lock is held."""
        budget = budget_for(Pacing(), Credentials(URL, TOKEN), directory=tmp_path)
        try:
            with stopped_holder(_ledger_file(tmp_path)):
                started = time.monotonic()
                budget.stats()
                assert time.monotonic() - started < 0.5
        finally:
            budget.release()

    def test_decisions_wait_a_bounded_time_then_go_on_with_one_warning(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Reserving and settling wait at most LOCK_WAIT for the lock, then decide on this
        process's last view; one WARNING says why."""
        monkeypatch.setattr(_ledger, "LOCK_WAIT", 0.2)
        budget = budget_for(Pacing(), Credentials(URL, TOKEN), directory=tmp_path)
        try:
            with (
                stopped_holder(_ledger_file(tmp_path)),
                caplog.at_level(logging.WARNING, logger="gitjsonl"),
            ):
                started = time.monotonic()
                token, wait = budget.reserve(4)
                assert token is not None
                assert wait == 0.0
                budget.settle(token, 4)
                assert time.monotonic() - started < 2.0
        finally:
            budget.release()
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "stayed locked" in warnings[0]

    def test_a_log_commits_and_reports_while_the_lock_is_held(
        self, localhub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A paced Log on the host's ledger still commits, and stats() still answers at once."""
        monkeypatch.setattr(_ledger, "LOCK_WAIT", 0.2)
        key = Credentials(localhub.url, localhub.token).key
        with stopped_holder(ledger_path(tmp_path, key)):
            log = make_log(
                localhub, pacing=Pacing(), sleep=None, clock=time.monotonic, budget_dir=tmp_path
            )
            with log:
                log.append({"id": 0})
                log.flush(timeout=30)
                started = time.monotonic()
                log.stats()
                assert time.monotonic() - started < 0.5
        assert [r["id"] for r in committed_records(localhub)] == [0]
