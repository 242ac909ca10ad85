"""An ephemeral host restarted with its disk wiped: every acknowledged record lands, once.

The example app runs in its real server (``uvicorn --workers 2``, gunicorn with
two uvicorn workers) against a LocalHub with GitHub's secondary limits and
read lag, time scaled (``tests/restart_harness.py``); each boot starts on an
empty disk and ends with SIGTERM then SIGKILL after the grace, and the branch
is read back with git. The harness is checked too: a host killed without
warning must show losses, and a kind host (no limits, a long grace) none.
"""

from __future__ import annotations

import random

import pytest

from .redis_support import redis_server
from .restart_harness import (
    RunResult,
    Variant,
    record_ids,
    run,
    tally,
    trickle_offsets,
)

__all__ = ["redis_server"]  # the coordinator's runs ask for it by name

#: Time runs this many times faster: a 3-minute cycle lasts 3 s, GitHub's hour 60 s.
SCALE = 60.0
#: (variant, cycles): the issue's matrix, short (the benchmark runs 10 cycles of each).
RUNS = {
    "uvicorn": (Variant("uvicorn", burst_at_sigterm=True), 3),
    "uvicorn-coordinator": (Variant("uvicorn", burst_at_sigterm=True, coordinator=True), 2),
    "gunicorn": (Variant("gunicorn", server="gunicorn", burst_at_sigterm=True), 2),
    "gunicorn-coordinator": (
        Variant("gunicorn", server="gunicorn", burst_at_sigterm=True, coordinator=True),
        2,
    ),
    # The drop-in swapped in with no other change: no shutdown hook in the app.
    "dropin": (Variant("dropin", app="dropin", burst_at_sigterm=True), 2),
}


def table(result: RunResult) -> str:
    return "\n".join(str(row) for row in result.cycles)


class TestTally:
    def test_each_acknowledged_record_is_once_lost_or_duplicated_in_its_cycle(self) -> None:
        """An id found once landed, never found is lost, found twice is duplicated, by cycle."""
        rows, stray = tally({"a": 0, "b": 0, "c": 1, "d": 1}, ["a", "c", "c", "x"], cycles=2)
        assert [(r.acknowledged, r.landed_once, r.lost, r.duplicated) for r in rows] == [
            (2, 1, 1, 0),
            (2, 0, 1, 1),
        ]
        assert stray == 1

    def test_a_cycle_with_no_acknowledged_record_still_has_its_row(self) -> None:
        """A cycle that acknowledged nothing reports zeros instead of disappearing."""
        rows, _ = tally({"a": 1}, ["a"], cycles=3)
        assert [r.acknowledged for r in rows] == [0, 1, 0]

    def test_records_without_a_string_id_and_torn_lines_are_not_counted(self) -> None:
        """Lines that are torn, not objects, or lack a string id yield nothing."""
        data = b'{"id": "a"}\n{"id": 3}\n[1]\n{"id": "b"\n\n{"id": "c", "x": 1}\n'
        assert list(record_ids(data)) == ["a", "c"]

    def test_the_trickle_is_one_request_every_1_to_10_scaled_seconds(self) -> None:
        """Gaps between trickle requests are 1-10 s divided by the scale, all inside the cycle."""
        offsets = trickle_offsets(random.Random(1), 180 / SCALE, SCALE)
        gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
        assert offsets
        assert offsets[-1] < 180 / SCALE
        assert all(1 / SCALE <= gap <= 10 / SCALE for gap in gaps)


def run_variant(request: pytest.FixtureRequest, variant: Variant, cycles: int) -> RunResult:
    redis = request.getfixturevalue("redis_server").url if variant.coordinator else None
    result = run(variant, cycles=cycles, scale=SCALE, redis=redis, seed=cycles)
    print(table(result))
    return result


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(RUNS))
def test_restarts_with_a_wiped_disk_lose_nothing(request: pytest.FixtureRequest, name: str) -> None:
    """Restarted with its disk wiped, a burst arriving at each SIGTERM, the app loses no
    acknowledged record and commits none twice, in any cycle."""
    variant, cycles = RUNS[name]
    result = run_variant(request, variant, cycles)
    assert all(row.acknowledged > 0 for row in result.cycles), table(result)
    lost = [(row.lost, row.duplicated) for row in result.cycles]
    assert lost == [(0, 0)] * cycles, table(result)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_harness_sees_what_a_kill_without_warning_loses() -> None:
    """Control: SIGKILL with no SIGTERM right after a burst leaves acknowledged records lost."""
    result = run(
        Variant("control", burst_at_sigterm=True, sigterm=False), cycles=1, scale=SCALE, seed=3
    )
    print(table(result))
    assert result.cycles[0].killed
    assert result.cycles[0].lost > 0, table(result)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_harness_counts_nothing_lost_on_a_kind_host() -> None:
    """Control: with no limits and a long grace, the app's own close commits everything."""
    result = run(
        Variant("kind", burst_at_sigterm=True, limits=False, grace=60.0),
        cycles=1,
        scale=SCALE,
        seed=4,
    )
    print(table(result))
    row = result.cycles[0]
    assert not row.killed, table(result)
    assert (row.lost, row.duplicated) == (0, 0), table(result)
    assert row.landed_once == row.acknowledged > 2 * 50
