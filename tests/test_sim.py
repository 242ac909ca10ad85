"""./dev sim: today's Committer against MemoryGitHub on a seeded scheduler, and its checker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from gitjsonl.testing import sim

#: Seeds CI runs (about 40 a second): every fault but an operator's reset.
CI_SEEDS = range(300)


class TestSearch:
    def test_a_few_hundred_seeds_keep_every_property(self) -> None:
        """Lost answers, kills, crashes, limits, lag, foreign commits: no record lost or twice."""
        runs = sim.search(CI_SEEDS)
        assert [(r.seed, r.violations) for r in runs if r.violations] == []
        explored = sum((r.faults for r in runs), start=Counter[str]())
        assert {"lost", "crash", "kill", "secondary", "foreign"} <= set(explored)

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
