"""SIGTERM under real servers, and the shutdown deadline: nothing pending is lost when the host
stops the process, and a close never outlasts the host's grace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gitjsonl import AsyncLog, GithubLog, GitJsonlError, _lifecycle
from gitjsonl._config import close_deadline, shutdown_grace_from
from gitjsonl._lifecycle import time_left, why_not_committed
from gitjsonl.testing import Fault, LocalHub

from .helpers import committed_records, make_log
from .test_example import free_port, wait_until_serving

ROOT = Path(__file__).parent.parent

SERVERS = {
    "uvicorn": lambda port: [
        *("-m", "uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)),
    ],
    "gunicorn": lambda port: [
        *("-m", "gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker"),
        *("--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10"),
    ],
}
#: Requests sent at most while waiting for both workers to take some.
MAX_POSTS = 2000
KINDS = ["dropin-import", "dropin-lifespan", "log-forgotten", "asynclog-forgotten"]


def serve_and_stop(
    hub: LocalHub, tmp_path: Path, server: str, kind: str, records: int, *, late: bool = False
) -> tuple[list[str], str, float]:
    """Run the app under ``server``, append ``records``, SIGTERM the server; (acknowledged ids,
    the server's standard error, seconds from SIGTERM to its exit). ``late``: one more record
    comes from a request the server holds until after SIGTERM."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SIGTERM_APP_KIND": kind,
        "GITHUB_TOKEN": hub.token,
        "GITHUB_API_URL": hub.url,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # a budget of its own: the default pacing
        "PYTHONPATH": str(ROOT),
        "SIGTERM_APP_ARRIVED": str(tmp_path / "arrived"),
    }
    env.pop("GITJSONL_SIGTERM", None)
    proc = subprocess.Popen(
        [sys.executable, *SERVERS[server](port), "tests.sigterm_app:app"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    acknowledged: list[str] = []
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        wait_until_serving(url, proc, time.monotonic() + 60)
        per_worker: dict[str, int] = {}
        with httpx.Client(timeout=10) as client:
            # A new connection each, until both workers hold some: the kernel decides which
            # worker accepts one.
            for i in range(MAX_POSTS):
                if len(acknowledged) >= records and len(per_worker) == 2:
                    break
                answer = client.post(f"{url}/append?id=r{i}", headers={"connection": "close"})
                assert answer.status_code == 200, answer.text
                acknowledged.append(f"r{i}")
                per_worker[answer.text] = per_worker.get(answer.text, 0) + 1
        assert len(per_worker) == 2, "one worker took every request"
        if late:
            answered = pool.submit(httpx.post, f"{url}/append-after-sigterm?id=late", timeout=60)
            deadline = time.monotonic() + 30
            while not (tmp_path / "arrived").exists():
                assert time.monotonic() < deadline, "the late request never arrived"
                time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
    if late:
        assert answered.result().status_code == 200
        acknowledged.append("late")
    return acknowledged, stderr.decode(errors="replace"), time.monotonic() - stopped


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_what_is_pending_at_sigterm_is_committed_without_a_shutdown_hook(
    localhub_factory: Callable[..., LocalHub], tmp_path: Path, server: str, kind: str
) -> None:
    """Under 2 workers, a log the app never closes (the drop-in made at import or start-up, a
    forgotten Log or AsyncLog) commits every acknowledged record once when the server gets
    SIGTERM, with nothing committed before it."""
    hub = localhub_factory(initial_commit=True)
    acknowledged, stderr, _ = serve_and_stop(hub, tmp_path, server, kind, records=20)
    ids = [record["id"] for record in committed_records(hub)]  # read with git itself
    assert len(ids) == len(set(ids)), "a record was committed twice"
    assert sorted(ids) == sorted(acknowledged), stderr
    assert len({record["pid"] for record in committed_records(hub)}) == 2
    assert "could not be committed" not in stderr


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_a_record_appended_while_the_server_stops_is_committed(
    localhub_factory: Callable[..., LocalHub], tmp_path: Path, server: str
) -> None:
    """SIGTERM does not close the log to appends: a request the server finishes while stopping
    still logs its record, and it is committed with the others."""
    hub = localhub_factory(initial_commit=True)
    acknowledged, stderr, _ = serve_and_stop(
        hub, tmp_path, server, "dropin-lifespan", records=4, late=True
    )
    ids = [record["id"] for record in committed_records(hub)]
    assert sorted(ids) == sorted(acknowledged), stderr
    assert "not logged durably" not in stderr


class TestDeadline:
    def test_the_close_deadline_is_shorter_than_the_grace(self) -> None:
        """A close ends before the host's SIGKILL, leaving a margin for the process to exit."""
        assert close_deadline(10.0) == 8.0
        assert close_deadline(60.0) == 58.0
        assert close_deadline(1.0) == 0.75
        assert close_deadline(0.0) == 0.0

    def test_the_deadline_counts_from_the_sigterm(self) -> None:
        """What a close may take shrinks with the time already spent since SIGTERM."""
        assert time_left(10.0, since=None, now=100.0) == 8.0
        assert time_left(10.0, since=100.0, now=100.0) == 8.0
        assert time_left(10.0, since=100.0, now=105.0) == 3.0
        assert time_left(10.0, since=100.0, now=109.0) == 0.0

    def test_a_process_alive_after_the_grace_counts_afresh(self) -> None:
        """The host did not kill the process when it would have: a close gets a whole deadline."""
        assert time_left(10.0, since=100.0, now=130.0) == 8.0

    def test_the_grace_comes_from_the_option_its_older_name_or_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """shutdown_grace=, then exit_grace=, then $GITJSONL_SHUTDOWN_GRACE, then 10 s."""
        monkeypatch.delenv("GITJSONL_SHUTDOWN_GRACE", raising=False)
        assert shutdown_grace_from(None) == 10.0
        assert shutdown_grace_from(None, 4) == 4.0
        monkeypatch.setenv("GITJSONL_SHUTDOWN_GRACE", "30")
        assert shutdown_grace_from(None) == 30.0
        assert shutdown_grace_from(5) == 5.0
        monkeypatch.setenv("GITJSONL_SHUTDOWN_GRACE", "soon")
        with pytest.raises(ValueError, match="GITJSONL_SHUTDOWN_GRACE"):
            shutdown_grace_from(None)

    @pytest.mark.parametrize(
        ("facts", "said"),
        [
            ({"paused_for": 42.0}, "GitHub paused the token's writes until 00:00:42 UTC, 42 s"),
            ({"budget_wait": 12.0}, "write budget had no room for the batch until 00:00:12 UTC"),
            ({"last_error": "connection refused"}, "the last attempt failed: connection refused"),
            ({"retries": 3}, "the batch was being retried after 3 failed request(s)"),
            ({}, "a batch was still on its way to GitHub"),
        ],
    )
    def test_the_error_line_says_why(self, facts: dict[str, object], said: str) -> None:
        """The reason names what held the records back, and until when."""
        args: dict[str, object] = {"paused_for": 0.0, "budget_wait": 0.0, "last_error": None}
        args["retries"] = 0
        assert said in why_not_committed(**{**args, **facts}, wall_now=0.0)  # type: ignore[arg-type]

    @pytest.mark.parametrize("entry", ["Log.close", "AsyncLog.aclose", "GithubLog.aclose"])
    def test_a_close_github_paused_ends_before_the_grace_with_one_error_line(
        self,
        localhub_factory: Callable[..., LocalHub],
        caplog: pytest.LogCaptureFixture,
        entry: str,
    ) -> None:
        """GitHub pausing the token for a minute: a close by default gives up before the host's
        grace ends, with one ERROR line saying how many records and why."""
        hub = localhub_factory(initial_commit=True)
        hub.add_fault(Fault(path=r"/git/", action="secondary_limit", retry_after=60, times=None))
        if entry == "GithubLog.aclose":
            dropin = GithubLog(
                hub.token,
                "owner/repo",
                api_url=hub.url,
                pacing=None,
                flush_interval=0.05,
                shutdown_grace=GRACE,
            )
            assert dropin.log is not None
            log, close = dropin.log, lambda: asyncio.run(dropin.aclose())
        else:
            log = make_log(hub, sleep=None, shutdown_grace=GRACE)  # real waits: GitHub's minute
            close = log.close
            if entry == "AsyncLog.aclose":
                close = lambda: asyncio.run(AsyncLog.wrap(log).aclose())  # noqa: E731
        log.append({"id": 0})
        deadline = time.monotonic() + 30
        while log.stats().rate_limited == 0:  # GitHub has said to wait
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for i in range(1, 5):
            log.append({"id": i})
        caplog.clear()
        started = time.monotonic()
        with contextlib.suppress(GitJsonlError):  # Log and AsyncLog raise, the drop-in doesn't
            close()
        elapsed = time.monotonic() - started
        assert elapsed < GRACE
        said = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [r.levelno for r in said] == [logging.ERROR], [r.getMessage() for r in said]
        assert "5 record(s) could not be committed" in said[0].getMessage()
        assert "GitHub paused the token's writes until" in said[0].getMessage()


#: A grace short enough for a test, long enough for a loaded machine to exit within it.
GRACE = 4.0

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from gitjsonl import Log
    if sys.argv[3] == "own-handler":
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    log = Log("owner/repo", path="data/interactions", api_url=sys.argv[1], token=sys.argv[2],
              pacing=None, flush_interval=3600, shutdown_grace=float(sys.argv[4]))
    for i in range(5):
        log.append({"id": i})
    if sys.argv[3] == "closed":
        log.close()
    print("ready", flush=True)
    if sys.argv[3] == "own-handler":
        print("the app's handler ran" if stop.wait(30) else "it did not", flush=True)
    else:
        time.sleep(60)
    # no close(): SIGTERM comes with 5 records pending
    """
)


def run_until_sigterm(hub: LocalHub, mode: str, grace: float) -> tuple[int, str, str, float]:
    """Run the script, SIGTERM it once it appended; (exit status, stdout, stderr, seconds
    from SIGTERM to exit)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, hub.url, hub.token, mode, str(grace)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err, time.monotonic() - sent


class TestPlainScript:
    def test_sigterm_with_the_default_handler_commits_what_is_pending(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """A script that never closes its log, stopped by SIGTERM, commits, then dies of it."""
        hub = localhub_factory(initial_commit=True)
        status, _, err, _ = run_until_sigterm(hub, "default", 10.0)
        assert status == -signal.SIGTERM, err
        assert [r["id"] for r in committed_records(hub)] == list(range(5))

    def test_with_every_log_closed_sigterm_is_the_default(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """A process whose logs are all closed dies of SIGTERM at once, as without gitjsonl."""
        hub = localhub_factory(initial_commit=True)
        status, _, err, _ = run_until_sigterm(hub, "closed", 10.0)
        assert status == -signal.SIGTERM, err
        assert [r["id"] for r in committed_records(hub)] == list(range(5))

    def test_the_apps_own_handler_still_runs(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """gitjsonl's handler chains the one the app installed before it; both do their part."""
        hub = localhub_factory(initial_commit=True)
        status, out, err, _ = run_until_sigterm(hub, "own-handler", 10.0)
        assert status == 0, err
        assert "the app's handler ran" in out
        assert [r["id"] for r in committed_records(hub)] == list(range(5))

    def test_exit_after_sigterm_ends_within_the_grace_with_one_error_line(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """With GitHub failing, the process stopped by SIGTERM exits within the grace and says
        in one ERROR line how many records it could not commit, and why."""
        hub = localhub_factory(initial_commit=True)
        hub.add_fault(Fault(path=r"/git/", action="error", status=503, times=None))
        status, _, err, elapsed = run_until_sigterm(hub, "default", GRACE)
        assert status == -signal.SIGTERM, err
        assert elapsed < GRACE, err
        lines = [line for line in err.splitlines() if "gitjsonl" in line and "ERROR" in line]
        assert len(lines) <= 1, err
        assert err.count("could not be committed") == 1, err
        assert "5 record(s) could not be committed" in err
        # The reason names GitHub's answer (stats() keeps the first failed attempt's error).
        assert "the last attempt failed: 503" in err


FORK_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from gitjsonl import Log
    log = Log("owner/repo", path="data/interactions", api_url=sys.argv[1], token=sys.argv[2],
              pacing=None, flush_interval=3600)
    log.append({"id": "parent-0"})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        log.append({"id": "child-0"})
        os.write(write, b"r")
        time.sleep(60)  # SIGTERM comes here
        os._exit(3)
    os.read(read, 1)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
    log.close()
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_stopped_by_sigterm_commits_its_own_records(
    localhub_factory: Callable[..., LocalHub],
) -> None:
    """A child forked from a process with a log commits its own records when SIGTERMed, then
    dies of it; the parent's are the parent's, once."""
    hub = localhub_factory(initial_commit=True)
    out = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, hub.url, hub.token],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split() == [str(-signal.SIGTERM)], out.stderr
    assert sorted(r["id"] for r in committed_records(hub)) == ["child-0", "parent-0"]


class TestWhereTheHandlerGoes:
    """Where gitjsonl cannot hold SIGTERM back or chain the handler, it leaves SIGTERM alone."""

    @pytest.fixture
    def fresh(self, monkeypatch: pytest.MonkeyPatch) -> _lifecycle._Registry:
        registry = _lifecycle._Registry()
        monkeypatch.setattr(_lifecycle, "_registry", registry)
        monkeypatch.delenv("GITJSONL_SIGTERM", raising=False)
        installed: list[object] = []
        monkeypatch.setattr(_lifecycle.signal, "signal", lambda *args: installed.append(args))
        monkeypatch.setattr(_lifecycle, "_start_notifier", lambda: installed.append("notifier"))
        self.installed = installed
        return registry

    def test_not_from_another_thread_but_from_a_later_main_thread_log(
        self, fresh: _lifecycle._Registry
    ) -> None:
        """A Log made in a worker thread installs nothing; the next one in the main thread does."""
        worker = threading.Thread(target=_lifecycle._install_sigterm)
        worker.start()
        worker.join(timeout=10)
        assert self.installed == []
        assert not fresh.sigterm_installed
        _lifecycle._install_sigterm()
        assert self.installed[0] == "notifier"
        assert self.installed[1] == (signal.SIGTERM, _lifecycle._on_sigterm)

    def test_not_without_pthread_sigmask(
        self, fresh: _lifecycle._Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Windows has no way to hold the signal back: no handler there."""
        monkeypatch.delattr(_lifecycle.signal, "pthread_sigmask")
        _lifecycle._install_sigterm()
        assert self.installed == []

    def test_not_when_the_environment_says_off(
        self, fresh: _lifecycle._Registry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$GITJSONL_SIGTERM=off opts out."""
        monkeypatch.setenv("GITJSONL_SIGTERM", "off")
        _lifecycle._install_sigterm()
        assert self.installed == []

    @pytest.mark.parametrize("there", [signal.SIG_IGN, None])
    def test_not_over_an_ignored_signal_or_a_c_handler(
        self, fresh: _lifecycle._Registry, monkeypatch: pytest.MonkeyPatch, there: object
    ) -> None:
        """An ignored SIGTERM stays ignored; a handler installed from C cannot be chained."""
        monkeypatch.setattr(_lifecycle.signal, "getsignal", lambda signum: there)
        _lifecycle._install_sigterm()
        assert self.installed == []
        assert fresh.sigterm_installed  # decided once
