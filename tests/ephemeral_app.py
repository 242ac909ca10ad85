"""The apps the ephemeral-host harness (``tests/restart_harness.py``) runs in a real server.

``uvicorn tests.ephemeral_app:app`` builds, from the environment the harness
sets, one of three apps serving the same ``POST /chat``:

- ``example``: ``examples/fastapi_app.py`` itself, untouched, configured
  through its own ``Settings.from_env()`` (``GITJSONL_REPO``, ``GITHUB_TOKEN``,
  ``GITHUB_API_URL``, ``APP_DB``, ``GITJSONL_SPOOL_DIR``) plus what an operator
  would pass as ``log_options``: the pacing (scaled in time) and a coordinator;
- ``dropin``: the same app written against the drop-in ``GithubLog`` the way the
  reference service used its own: built at start-up, ``load_recent()``
  replayed, ``append`` per request, and no shutdown hook (the drop-in is
  swapped in "without other changes");
- ``reference``: the reference service's algorithm
  (``gitjsonl.testing._contents_baseline.ContentsApiLog``: one GET and one PUT
  of the whole file per record), started in the background as the service did,
  the request acknowledged at once.

``EPHEMERAL_HOST`` holds the harness's JSON: ``app``, ``scale`` (time runs
that many times faster: the pacing's windows and the flush interval are
divided by it), ``limits`` (false: no pacing, as against a server without
secondary limits), ``coordinator`` (a ``redis://`` URL or null), ``log_options``
(more ``Log`` keyword arguments, JSON values).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request

from examples.fastapi_app import Question, Settings, create_app, open_db, store
from gitjsonl import GithubLog, Pacing
from gitjsonl.testing._contents_baseline import ContentsApiLog

ENV = "EPHEMERAL_HOST"


def pacing_for(scale: float) -> Pacing:
    """GitHub's secondary limits with their windows divided by ``scale``."""
    return Pacing(per_minute=80, per_hour=500, minute=60.0 / scale, hour=3600.0 / scale)


def host_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(os.environ.get(ENV) or "{}")
    return config


def settings() -> Settings:
    """The example's own settings from the environment, with the operator's log options."""
    config = host_config()
    scale = float(config.get("scale", 1.0))
    options: dict[str, Any] = {
        "pacing": pacing_for(scale) if config.get("limits", True) else None,
        # The default flush interval (5 s), scaled: as many batches a window as in real time.
        "flush_interval": 5.0 / scale,
    }
    if config.get("coordinator"):
        options["coordinator"] = config["coordinator"]
    options.update(config.get("log_options") or {})
    base = Settings.from_env()
    return replace(base, log_options={**base.log_options, **options})


def interaction(question: Question) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "type": "interaction",
        "session_id": question.session_id,
        "timestamp": datetime.now(tz=timezone.utc).isoformat(),
        "query": question.query,
        "answer": f"You asked: {question.query}",
    }


def served(
    lifespan: Callable[[FastAPI], Any], append: Callable[[Request, dict[str, Any]], None]
) -> FastAPI:
    """An app with the example's ``POST /chat``: the row in SQLite, then ``append``."""
    app = FastAPI(lifespan=lifespan)

    @app.post("/chat")
    async def chat(question: Question, request: Request) -> dict[str, Any]:
        record = interaction(question)
        store(request.app.state.db, record)
        append(request, record)
        return {"answer": record["answer"], "id": record["id"]}

    @app.get("/stats")
    async def stats() -> dict[str, str]:
        return {"status": "serving"}

    return app


def dropin_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings()
        app.state.db = open_db(config.db_path)
        log = GithubLog(config.token, config.repo, api_url=config.api_url, **config.log_options)
        recent = await log.load_recent(500)
        store(app.state.db, *[r for r in recent if {"id", "type", "timestamp"} <= r.keys()])
        app.state.log = log
        yield  # no shutdown hook: the reference service had none

    return served(lifespan, lambda request, record: request.app.state.log.append(record))


def reference_app() -> FastAPI:
    config = settings()

    def put(record: dict[str, Any]) -> None:
        # One session per record: the service ran its appends concurrently.
        with ContentsApiLog(config.api_url or "", config.token or "", config.repo) as contents:
            contents.append(record)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = open_db(config.db_path)
        app.state.tasks = set()
        yield

    def append(request: Request, record: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().run_in_executor(None, put, record)
        request.app.state.tasks.add(task)
        task.add_done_callback(request.app.state.tasks.discard)

    return served(lifespan, append)


def build() -> FastAPI:
    kind = host_config().get("app", "example")
    if kind == "example":
        return create_app(settings())
    if kind == "dropin":
        return dropin_app()
    if kind == "reference":
        return reference_app()
    raise ValueError(f"{ENV}: unknown app {kind!r}")


app = build()
