"""The FastAPI example against localhub: replay at start-up, append per request, flush at exit."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gitjsonl import Log
from gitjsonl.testing import LocalHub

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
