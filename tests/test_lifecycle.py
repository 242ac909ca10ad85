"""Process lifecycle: flushing at interpreter exit, and fork safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from gitjsonl._lifecycle import flush_all_at_exit, live_logs, register, unregister
from gitjsonl.testing import Fault, LocalHub

from .helpers import committed_records
from .redis_support import RedisServer, redis_server

__all__ = ["redis_server"]

ROOT = Path(__file__).parent.parent


class FakeLog:
    def __init__(self, grace: float, left: int) -> None:
        self.shutdown_grace = grace
        self.left = left
        self.timeouts: list[float] = []
        self.forked = 0
        self.told = 0

    def exit_flush(self, timeout: float) -> int:
        self.timeouts.append(timeout)
        return self.left

    def shutdown_started(self) -> None:
        self.told += 1

    def after_fork_in_child(self) -> None:
        self.forked += 1


class TestRegistry:
    def test_exit_flush_reports_what_could_not_be_committed(self) -> None:
        """flush_all_at_exit closes each live log within its grace and sums what is left."""
        logs = [FakeLog(2.0, 3), FakeLog(1.0, 0)]
        for log in logs:
            register(log)
        try:
            assert flush_all_at_exit() == 3
        finally:
            for log in logs:
                unregister(log)
        assert 0 < logs[0].timeouts[0] <= 2.0
        assert 0 < logs[1].timeouts[0] <= 1.0

    def test_registry_holds_logs_weakly(self) -> None:
        """A log that is dropped leaves the registry without being closed."""
        log = FakeLog(1.0, 0)
        register(log)
        assert log in live_logs()
        del log
        assert not any(isinstance(x, FakeLog) for x in live_logs())


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from gitjsonl import Log
    log = Log("owner/repo", path="data/interactions", api_url=sys.argv[1], token=sys.argv[2],
              pacing=None, flush_interval=3600, exit_grace=float(sys.argv[3]))
    for i in range(5):
        log.append({"id": i})
    # no close(): the interpreter exits with 5 records pending
    """
)


class TestInterpreterExit:
    def test_pending_records_are_committed_at_exit(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """A script that never closes its log still commits its records when it exits."""
        hub = localhub_factory(initial_commit=True)
        subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, hub.url, hub.token, "10"],
            check=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        # Read back with git itself: a new reader may see the branch a moment late.
        assert [r["id"] for r in committed_records(hub)] == list(range(5))

    def test_the_first_lock_and_coordinator_call_may_come_at_exit(
        self, localhub_factory: Callable[..., LocalHub], redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """A paced log on a coordinator whose first batch is the exit's own: the host's lock
        and Redis are reached then (nothing they need is imported too late), all commits."""
        hub = localhub_factory(initial_commit=True)
        script = EXIT_SCRIPT.replace(
            "pacing=None,", f"coordinator={redis_server.url!r}, budget_dir={str(tmp_path)!r},"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, hub.url, hub.token, "10"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert "gitjsonl" not in out.stderr, out.stderr  # no warning, no error
        assert [r["id"] for r in committed_records(hub)] == list(range(5))

    def test_exit_is_bounded_and_reports_the_loss(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """With GitHub refusing, exit waits no longer than the grace and says how many are lost."""
        hub = localhub_factory(initial_commit=True)
        hub.add_fault(Fault(path=r"/git/", action="error", status=503, times=None))
        out = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, hub.url, hub.token, "1.0"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=30,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert "5 record(s) could not be committed" in out.stderr


FORK_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from gitjsonl import Log
    log = Log("owner/repo", path="data/interactions", api_url=sys.argv[1], token=sys.argv[2],
              pacing=None, flush_interval=3600)
    for i in range(3):
        log.append({"id": f"parent-{i}"})
    pid = os.fork()
    if pid == 0:
        log.append({"id": "child-0"})
        log.flush(timeout=30)   # needs a flusher of its own
        log.close()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    log.close()
    """
)


class TestFork:
    def test_child_does_not_resend_parent_records_and_can_flush(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """After fork the parent's pending records are committed once, and the child's own too."""
        hub = localhub_factory(initial_commit=True)
        subprocess.run(
            [sys.executable, "-c", FORK_SCRIPT, hub.url, hub.token],
            check=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        ids = [r["id"] for r in committed_records(hub)]
        assert sorted(ids) == ["child-0", "parent-0", "parent-1", "parent-2"]


class TestReportLoss:
    """A loss of records is never silent, and never said twice."""

    def _run(self, code: str) -> str:
        import subprocess
        import sys

        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stderr

    def test_an_app_without_logging_still_hears_a_loss(self) -> None:
        """With only gitjsonl's NullHandler in place, the ERROR reaches standard error once."""
        err = self._run(
            "import logging, gitjsonl\n"
            "from gitjsonl._lifecycle import report_loss\n"
            "report_loss(logging.getLogger('gitjsonl._log'), 'gitjsonl: %d lost', 3)\n"
        )
        assert err.count("gitjsonl: 3 lost") == 1, err

    def test_an_app_with_logging_hears_it_once(self) -> None:
        """Where the app configured logging, its handler says it, and nothing else does."""
        err = self._run(
            "import logging, gitjsonl\n"
            "logging.basicConfig(format='app: %(message)s')\n"
            "from gitjsonl._lifecycle import report_loss\n"
            "report_loss(logging.getLogger('gitjsonl._log'), 'gitjsonl: %d lost', 3)\n"
        )
        assert err.splitlines() == ["app: gitjsonl: 3 lost"], err
