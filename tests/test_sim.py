"""./dev sim: the write protocol's steps against MemoryGitHub on a seeded scheduler, and its
checker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from gitjsonl import _protocol
from gitjsonl._protocol import State
from gitjsonl.testing import sim

#: Seeds CI runs (about 35 a second): every fault but an operator's reset.
CI_SEEDS = range(300)

_S = State
#: The table's edges no seed takes, and why (``./dev sim --coverage`` lists them).
UNREACHED = {
    # Only an exception no driver throws (a bug: the budget's store raising past its
    # fallbacks) takes these: the catch-all "anything else gives up".
    (_S.RESTORING, _S.GAVE_UP): "Restore raises nothing but OSError, which is caught",
    (_S.RESERVING, _S.GAVE_UP): "Reserve raises nothing",
    # A prepared change (migrate's commit) planned again: the simulator runs no migration
    # (tests/test_migrate_turn.py takes it).
    (
        _S.TURN,
        _S.IDLE,
    ): "no migration in the simulator (tests/test_protocol.py::TestPreparedChange)",
}


@pytest.fixture(scope="module")
def ci_runs() -> list[sim.Run]:
    return sim.search(CI_SEEDS)


class TestSearch:
    def test_a_few_hundred_seeds_keep_every_property(self, ci_runs: list[sim.Run]) -> None:
        """Lost answers, kills, crashes, limits, lag, foreign commits, a Log closing, shared
        turns, a paced budget: no record lost or twice, no pacing limit passed."""
        assert [(r.seed, r.violations) for r in ci_runs if r.violations] == []
        explored = sum((r.faults for r in ci_runs), start=Counter[str]())
        assert {"lost", "crash", "kill", "secondary", "foreign", "close"} <= set(explored)
        assert sum(r.turn_waits for r in ci_runs) > 0  # writers did wait for a host's turn

    def test_the_seeds_walk_every_reachable_transition(self, ci_runs: list[sim.Run]) -> None:
        """Every edge of the protocol's table is taken by some seed, or listed with why not."""
        visited = set(sum((r.visited for r in ci_runs), start=Counter[tuple[str, str]]()))
        table = sim.edges()
        assert len(table) == sum(len(targets) for targets in _protocol.TRANSITIONS.values())
        assert sorted(table - visited - set(UNREACHED)) == []
        assert sorted(visited & set(UNREACHED)) == []  # reached after all: off the list
        assert visited <= table

    def test_a_budget_that_forgets_the_limits_is_caught(self) -> None:
        """The pacing property's control: writers paced for far higher limits pass the run's."""
        runs = [sim.run(seed, sabotage="budget") for seed in range(40)]
        assert any(any("paced writes" in v for v in r.violations) for r in runs)

    def test_a_writer_naming_no_branch_survives_its_default_branch_read_failing(self) -> None:
        """Seed 205 with writers naming no branch: w1's default_branch read is refused by a
        secondary limit after its repository check, and its next batch's read fails too (found
        by the simulator: the attempt failed before it entered a state, a ProtocolError)."""
        result = sim.run(205, faults=sim.DEFAULT_FAULTS)
        assert "default_branch" in "\n".join(result.trace)
        assert result.violations == []

    def test_a_broken_compare_and_swap_is_caught(self) -> None:
        """The control: a GitHub that accepts an update that is not a fast-forward fails runs."""
        runs = sim.search(range(40), control=True)
        assert sum(1 for r in runs if r.violations) >= 20

    def test_a_restart_that_forgets_its_spool_is_caught(self) -> None:
        """The kill path's control: a restart sending its batch under a new id duplicates it."""
        runs = [sim.run(seed, sabotage="spool") for seed in CI_SEEDS]
        assert any(any("2 times" in v for v in r.violations) for r in runs)


class TestDigest:
    def test_a_seed_replays_the_same_trace(self) -> None:
        """Two runs of one seed have one digest; two seeds have two."""
        assert sim.run(7).digest == sim.run(7).digest
        assert sim.run(7).digest != sim.run(8).digest

    def test_the_digest_is_the_same_in_another_process(self) -> None:
        """Whatever the process's hash seed, ``--digest`` prints the same line."""
        digests = {
            subprocess.run(
                [sys.executable, "-m", "gitjsonl.testing.sim", "--digest", "11"],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
                env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            ).stdout
            for hash_seed in (1, 2)
        }
        assert len(digests) == 1
        assert len(digests.pop().strip()) == 64


class TestCommandLine:
    def test_a_clean_search_exits_0_and_says_so_last(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--seeds A:B`` prints ``N seeds, V violations`` last, and exits 0 without one."""
        assert sim.main(["--seeds", "0:5"]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "5 seeds, 0 violations"

    def test_coverage_counts_the_transitions_visited(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--coverage`` prints visited/total edges of the protocol's table, and those missed."""
        assert sim.main(["--seeds", "0:3", "--coverage"]) == 0
        out = capsys.readouterr().out.splitlines()
        total = len(sim.edges())
        line = next(line for line in out if line.startswith("transitions: "))
        visited = int(line.split()[1].split("/")[0])
        assert line == f"transitions: {visited}/{total} edges visited"
        assert 0 < visited < total
        assert sum(1 for line in out if line.startswith("  never: ")) == total - visited

    def test_a_violation_prints_its_seed_and_replay(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--control`` fails, naming each violating seed and the command that replays it."""
        assert sim.main(["--control", "--seeds", "0:10"]) == 1
        out = capsys.readouterr().out.splitlines()
        assert any(line.startswith("seed ") for line in out)
        assert any("replay: ./dev sim --seeds" in line and "--control" in line for line in out)
        assert out[-1].startswith("10 seeds, ")
        assert not out[-1].endswith(" 0 violations")
