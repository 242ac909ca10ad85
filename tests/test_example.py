"""The FastAPI example against localhub: replay at start-up, append per request, flush at exit."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from gitjsonl import Log
from gitjsonl.testing import LocalHub

from .helpers import committed_records

EXAMPLE = Path(__file__).parent.parent / "examples" / "fastapi_app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pydantic look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return load_example()


@pytest.fixture
def hub(localhub_factory: Callable[..., LocalHub]) -> LocalHub:
    hub = localhub_factory(initial_commit=True)
    # What the user's old service left: 600 records in the legacy single file.
    lines = "".join(
        json.dumps(
            {
                "id": f"old-{i}",
                "type": "interaction",
                "session_id": "s0",
                "timestamp": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
            }
        )
        + "\n"
        for i in range(600)
    )
    hub.seed_commit("owner/repo", {"data/interactions.jsonl": lines.encode()})
    return hub


def settings(example: ModuleType, hub: LocalHub, db: Path) -> Any:
    return example.Settings(
        repo="owner/repo",
        token=hub.token,
        api_url=hub.url,
        db_path=str(db),
        log_options={"pacing": None, "flush_interval": 0.05},
    )


class TestSettingsFromEnv:
    def test_reads_the_repository_gitjsonl_reads(
        self, example: ModuleType, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The example takes its repository from GITHUB_REPOSITORY, as the library and CLI do."""
        monkeypatch.delenv("GITJSONL_REPO", raising=False)
        monkeypatch.setenv("GITHUB_REPOSITORY", "owner/repo")
        assert example.Settings.from_env().repo == "owner/repo"

    def test_former_name_is_a_fallback(
        self, example: ModuleType, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """GITJSONL_REPO, the example's former name, counts only when GITHUB_REPOSITORY is unset."""
        monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
        monkeypatch.setenv("GITJSONL_REPO", "owner/old")
        assert example.Settings.from_env().repo == "owner/old"
        monkeypatch.setenv("GITHUB_REPOSITORY", "owner/new")
        assert example.Settings.from_env().repo == "owner/new"

    def test_no_repository_says_which_variable(
        self, example: ModuleType, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a repository, start-up fails naming GITHUB_REPOSITORY, not with a KeyError."""
        monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
        monkeypatch.delenv("GITJSONL_REPO", raising=False)
        with pytest.raises(RuntimeError, match="GITHUB_REPOSITORY"):
            example.Settings.from_env()


# Starlette 1.x asks for "httpx2" under its TestClient; the test extra ships httpx, which works.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
class TestFastApiExample:
    def test_replays_appends_and_flushes(
        self, example: ModuleType, hub: LocalHub, tmp_path: Path
    ) -> None:
        """Start-up replays the last 500 records; requests are committed by shutdown."""
        from fastapi.testclient import TestClient

        app = example.create_app(settings(example, hub, tmp_path / "app.db"))
        with TestClient(app) as client:
            stats = client.get("/stats").json()
            assert (stats["replayed"], stats["rows"]) == (500, 500)
            ids = [
                client.post("/chat", json={"session_id": "s1", "query": f"q{i}"}).json()["id"]
                for i in range(3)
            ]
            ids.append(
                client.post("/feedback", json={"session_id": "s1", "feedback": -1}).json()["id"]
            )
            assert client.get("/stats").json()["rows"] == 504
        # Shutdown flushed: a fresh reader sees the four records after the legacy ones,
        # once GitHub's reads of the branch have caught up with the writes.
        time.sleep(hub.read_lag)
        with Log(
            "owner/repo", path="data/interactions", api_url=hub.url, token=hub.token, pacing=None
        ) as reader:
            tail = reader.tail(5)
        assert [r["id"] for r in tail] == ["old-599", *ids]
        assert tail[-1]["type"] == "feedback"
        assert tail[-1]["feedback"] == -1

    def test_no_replay_when_sqlite_has_rows(
        self, example: ModuleType, hub: LocalHub, tmp_path: Path
    ) -> None:
        """A second start on a database that survived does not replay."""
        from fastapi.testclient import TestClient

        db = tmp_path / "app.db"
        with TestClient(example.create_app(settings(example, hub, db))) as client:
            assert client.get("/stats").json()["replayed"] == 500
        with TestClient(example.create_app(settings(example, hub, db))) as client:
            stats = client.get("/stats").json()
        assert (stats["replayed"], stats["rows"]) == (0, 500)

    def test_starts_on_an_empty_repository(
        self, example: ModuleType, localhub_factory: Callable[..., LocalHub], tmp_path: Path
    ) -> None:
        """On a repository nothing was ever logged to, start-up replays nothing and serves."""
        from fastapi.testclient import TestClient

        empty = localhub_factory()
        app = example.create_app(settings(example, empty, tmp_path / "app.db"))
        with TestClient(app) as client:
            assert client.get("/stats").json()["replayed"] == 0
            assert client.post("/chat", json={"session_id": "s", "query": "q"}).status_code == 200
        assert [r["query"] for r in committed_records(empty)] == ["q"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's child processes (uvicorn's workers), from /proc."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited at start"
        try:
            if httpx.get(f"{url}/stats", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not start")


def drain_spools(hub: LocalHub, spool_dir: Path) -> None:
    """A restart with as many Logs as slot files: each claims one, recovers it and commits it."""
    logs = [
        Log(
            "owner/repo",
            path="data/interactions",
            api_url=hub.url,
            token=hub.token,
            pacing=None,
            flush_interval=0.05,
            spool_dir=spool_dir,
        )
        for _ in spool_dir.glob("*.spool")
    ]
    for log in logs:
        log.close(timeout=60)


SERVERS = {
    "uvicorn": ["-m", "uvicorn", "--workers", "4", "--timeout-graceful-shutdown", "60"],
    # uvicorn.workers is deprecated in favour of the uvicorn-worker package; same class.
    "gunicorn": ["-m", "gunicorn", "-w", "4", "-k", "uvicorn.workers.UvicornWorker"],
}


def server_command(server: str, port: int) -> list[str]:
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "gunicorn":
        bind = ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "60"]
    return [sys.executable, *SERVERS[server], *bind, "examples.fastapi_app:app"]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads workers from /proc")
@pytest.mark.parametrize("server_name", sorted(SERVERS))
def test_four_workers_on_one_spool_dir_killed_every_few_seconds_lose_nothing(
    localhub_factory: Callable[..., LocalHub], tmp_path: Path, server_name: str
) -> None:
    """Under uvicorn --workers 4 (or gunicorn -w 4) on one empty repository and one spool
    folder, with a worker SIGKILLed every 2 s, every acknowledged record is on the branch once."""
    hub = localhub_factory()  # an empty repository: the app must start on it
    spool_dir = tmp_path / "spool"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GITHUB_REPOSITORY": "owner/repo",
        "GITHUB_TOKEN": hub.token,
        "GITHUB_API_URL": hub.url,
        "GITJSONL_SPOOL_DIR": str(spool_dir),
        "APP_DB": str(tmp_path / "app.db"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": str(EXAMPLE.parent.parent),
    }
    server = subprocess.Popen(
        server_command(server_name, port),
        env=env,
        cwd=EXAMPLE.parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    acknowledged: list[str] = []
    kills = 0
    try:
        wait_until_serving(url, server, time.monotonic() + 60)
        started = time.monotonic()
        next_kill = started + 2.0
        with httpx.Client(timeout=10) as client:
            i = 0
            while time.monotonic() - started < 20:
                i += 1
                try:
                    answer = client.post(f"{url}/chat", json={"session_id": "s", "query": f"q{i}"})
                except httpx.HTTPError:
                    continue  # the worker that had it was killed: not acknowledged
                if answer.status_code == 200:
                    acknowledged.append(answer.json()["id"])
                if time.monotonic() >= next_kill and (pids := worker_pids(server.pid)):
                    os.kill(pids[kills % len(pids)], signal.SIGKILL)
                    kills += 1
                    next_kill += 2.0
    finally:
        server.send_signal(signal.SIGTERM)  # the live workers flush and close
        _, stderr = server.communicate(timeout=120)
    assert kills >= 5
    assert len(acknowledged) > 200
    assert b"SpoolLocked" not in stderr
    drain_spools(hub, spool_dir)  # what the last killed workers left, as a restart commits it
    ids = [record["id"] for record in committed_records(hub)]  # read with git itself
    assert len(ids) == len(set(ids)), "a record was committed twice"
    missing = set(acknowledged) - set(ids)
    assert not missing, f"{len(missing)} acknowledged record(s) lost"
    hub.fsck("owner/repo")
