"""A bare ASGI app that never closes its log, run under real servers by ``tests/test_sigterm.py``.

``SIGTERM_APP_KIND`` picks the log and when it is made: ``dropin-import`` (the
drop-in ``GithubLog`` built at import, as a service that swapped one import
would), ``dropin-lifespan`` (the same, built at start-up), ``log-forgotten`` (a
``Log`` built at start-up) and ``asynclog-forgotten`` (an ``AsyncLog``). No
shutdown hook anywhere: whatever is committed at SIGTERM is gitjsonl's doing.
``POST /append?id=X`` appends ``{"id": X, "pid": ...}`` and answers, with the worker's pid,
once ``append`` returned; ``/append-after-sigterm`` does the same once the worker got SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import gitjsonl
from gitjsonl import _lifecycle

KIND = os.environ.get("SIGTERM_APP_KIND", "dropin-import")
REPO = "owner/repo"
#: Nothing is committed before SIGTERM unless the test says otherwise.
FLUSH_INTERVAL = float(os.environ.get("SIGTERM_APP_FLUSH_INTERVAL", "3600"))

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The app's log, under "log" once made (at import or at start-up).
made: dict[str, Any] = {}


def make_log() -> Any:
    if KIND.startswith("dropin"):
        return gitjsonl.GithubLog(os.environ["GITHUB_TOKEN"], REPO, flush_interval=FLUSH_INTERVAL)
    if KIND == "asynclog-forgotten":
        return gitjsonl.AsyncLog(REPO, path="data/interactions", flush_interval=FLUSH_INTERVAL)
    return gitjsonl.Log(REPO, path="data/interactions", flush_interval=FLUSH_INTERVAL)


if KIND == "dropin-import":
    made["log"] = make_log()


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if "log" not in made:
                    made["log"] = make_log()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    status, body = 200, str(os.getpid()).encode()
    if scope["path"] == "/append-after-sigterm":
        # Held until this worker got SIGTERM: a request the server finishes while stopping.
        Path(os.environ["SIGTERM_APP_ARRIVED"]).touch()  # the test may send SIGTERM now
        deadline = time.monotonic() + 30
        while _lifecycle._registry.sigterm_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    if scope["path"] in ("/append", "/append-after-sigterm"):
        query = dict(
            part.split("=", 1) for part in scope["query_string"].decode().split("&") if part
        )
        made["log"].append({"id": query["id"], "pid": os.getpid()})
    elif scope["path"] != "/stats":  # what tests/test_example.py's wait_until_serving asks
        status, body = 404, b"no"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})
