"""Many processes, one token: the host shares one write budget and writers take turns.

Four processes (uvicorn's ``--workers 4``) with two ``Log``s each on one token
write one log against a localhub that enforces GitHub's secondary limits per
token, with windows scaled down from a minute and an hour to 2 s and 20 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitjsonl import Pacing
from gitjsonl.testing import SecondaryLimits
from gitjsonl.testing._writers import run_writers

from .helpers import committed_records, history_is_linear

ROOT = Path(__file__).resolve().parent.parent

#: GitHub's 80 a minute and 500 an hour, scaled down (the hub and the pacing agree).
LIMITS = SecondaryLimits(per_minute=24, per_hour=150, minute_window=2.0, hour_window=20.0)
PACING = Pacing(per_minute=24, per_hour=150, minute=2.0, hour=20.0)
PROCESSES, LOGS, SECONDS = 4, 2, 20


def run_workers(hub: Any, budget_dir: Path) -> list[dict[str, Any]]:
    return run_writers(
        api_url=hub.url,
        token=hub.token,
        repo="owner/repo",
        processes=PROCESSES,
        logs=LOGS,
        seconds=SECONDS,
        pacing=PACING,
        budget_dir=budget_dir,
        timeout=100,
    )


class TestManyProcessesOneToken:
    @pytest.mark.slow
    def test_no_secondary_limit_every_record_once_few_writes_per_batch(
        self, localhub_factory: Any, tmp_path: Path
    ) -> None:
        """4 processes x 2 Logs on one token for 20 s: GitHub never says no, no race is lost,
        every record lands once in order, and a batch costs fewer than 5 writes on average."""
        hub = localhub_factory(repos=("owner/repo",), initial_commit=True, secondary_limits=LIMITS)
        results = run_workers(hub, tmp_path / "budget")
        limited = [r for r in hub.requests if r.status in (403, 429)]
        writes = [r for r in hub.requests if r.write]
        batches = sum(r["batches"] for r in results)
        assert limited == []
        assert sum(r["rate_limited"] for r in results) == 0
        assert sum(r["conflicts"] for r in results) == 0
        assert len(writes) / batches < 5, (len(writes), batches)
        records = committed_records(hub)
        for n, result in enumerate(results):
            for k, count in enumerate(result["counts"]):
                mine = [r["i"] for r in records if r["w"] == f"p{n}-{k}"]
                assert mine == list(range(count))
        assert len(records) == sum(sum(r["counts"]) for r in results)
        assert history_is_linear(hub)
        hub.fsck("owner/repo")
