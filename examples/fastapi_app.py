"""A FastAPI backend that keeps its interaction log in GitHub with gitjsonl.

Wired the way a backend on an ephemeral host would be:

- the ``AsyncLog`` is created in the lifespan and shared through ``app.state``;
- every request appends one record (a plain call: it never waits for GitHub)
  and writes the same row to SQLite, the app's working store;
- at start-up, when SQLite is nearly empty (fewer than 10 rows: the host lost
  its disk), the last 500 records are replayed from GitHub into SQLite;
- at shutdown the log is flushed and closed.

Run it::

    pip install gitjsonl fastapi uvicorn
    export GITHUB_TOKEN=...  GITHUB_REPOSITORY=owner/repo
    uvicorn examples.fastapi_app:app

Configuration comes from the environment, the variables gitjsonl itself reads:
``GITHUB_REPOSITORY`` (``GITJSONL_REPO``, this example's former name for it, is
still read when it is not set), ``GITHUB_TOKEN``,
``GITHUB_API_URL`` (GitHub Enterprise, or a localhub), ``GITJSONL_PATH``
(default ``data/interactions``), ``APP_DB`` (SQLite file, default
``app.db``) and ``GITJSONL_SPOOL_DIR`` (recommended on a host that can be
killed: records not yet committed survive there). With several workers
(``uvicorn --workers 4``, gunicorn ``-w 4``) set the same ``GITJSONL_SPOOL_DIR``
for all of them: each worker's log claims a slot of its own there, and what a
killed worker left is committed by the worker that replaces it (or by any live
one), exactly once. The app starts on an empty repository too: a log nothing
was written to yet replays nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel

from gitjsonl import AsyncLog, warn_if_ephemeral

#: Replay from GitHub when SQLite holds fewer rows than this.
NEARLY_EMPTY = 10
#: How many records to replay.
REPLAY = 500


@dataclass(frozen=True)
class Settings:
    repo: str
    token: str | None = None
    api_url: str | None = None
    path: str = "data/interactions"
    db_path: str = "app.db"
    log_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        options: dict[str, Any] = {}
        if os.environ.get("GITJSONL_SPOOL_DIR"):
            options["spool_dir"] = os.environ["GITJSONL_SPOOL_DIR"]
        repo = os.environ.get("GITHUB_REPOSITORY") or os.environ.get("GITJSONL_REPO")
        if not repo:
            raise RuntimeError("set GITHUB_REPOSITORY=owner/name: the repository of the log")
        return cls(
            repo=repo,
            token=os.environ.get("GITHUB_TOKEN"),
            api_url=os.environ.get("GITHUB_API_URL"),
            path=os.environ.get("GITJSONL_PATH", "data/interactions"),
            db_path=os.environ.get("APP_DB", "app.db"),
            log_options=options,
        )


class Question(BaseModel):
    session_id: str
    query: str


class Feedback(BaseModel):
    session_id: str
    feedback: int


SCHEMA = """
CREATE TABLE IF NOT EXISTS interactions (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    session_id TEXT,
    body TEXT NOT NULL,
    timestamp TEXT NOT NULL
)
"""


#: Seconds a worker waits for another worker's write lock on the shared SQLite file.
#: On an empty disk every worker replays up to 500 rows at once; with sqlite3's
#: default (5 s) a worker's start-up failed on a slow disk, and the server stopped.
DB_BUSY_TIMEOUT = 30.0


def open_db(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, timeout=DB_BUSY_TIMEOUT)
    db.execute(SCHEMA)
    return db


def store(db: sqlite3.Connection, *records: dict[str, Any]) -> None:
    """Insert ``records`` in one transaction (one disk sync, however many)."""
    db.executemany(
        "INSERT OR IGNORE INTO interactions VALUES (?, ?, ?, ?, ?)",
        [
            (
                record["id"],
                record["type"],
                record.get("session_id"),
                json.dumps(record),
                record["timestamp"],
            )
            for record in records
        ],
    )
    db.commit()


def count_rows(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT COUNT(*) FROM interactions").fetchone()
    return int(row[0])


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings.from_env()
        db = open_db(config.db_path)
        # A spool on a disk the host wipes at restart keeps nothing: one WARNING says so.
        warn_if_ephemeral(config.log_options.get("spool_dir"))
        log = AsyncLog(
            config.repo,
            path=config.path,
            token=config.token,
            api_url=config.api_url,
            **config.log_options,
        )
        replayed = 0
        if count_rows(db) < NEARLY_EMPTY:
            # One transaction: a commit per row cost 500 disk syncs per worker, and a
            # restart served nothing for 10-20 s on a slow disk.
            rows = [r for r in await log.tail(REPLAY) if {"id", "type", "timestamp"} <= r.keys()]
            store(db, *rows)
            replayed = len(rows)
        app.state.db = db
        app.state.log = log
        app.state.replayed = replayed
        try:
            yield
        finally:
            await log.aclose()  # flush: everything appended is committed before exit
            db.close()

    app = FastAPI(lifespan=lifespan)

    def record_of(kind: str, session_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "type": kind,
            "session_id": session_id,
            "timestamp": datetime.now(tz=timezone.utc).isoformat(),
            **fields,
        }

    @app.post("/chat")
    async def chat(question: Question, request: Request) -> dict[str, Any]:
        answer = f"You asked: {question.query}"
        record = record_of("interaction", question.session_id, query=question.query, answer=answer)
        store(request.app.state.db, record)
        request.app.state.log.append(record)  # never waits for GitHub
        return {"answer": answer, "id": record["id"]}

    @app.post("/feedback")
    async def feedback(body: Feedback, request: Request) -> dict[str, str]:
        record = record_of("feedback", body.session_id, feedback=body.feedback)
        store(request.app.state.db, record)
        request.app.state.log.append(record)
        return {"id": record["id"]}

    @app.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        log_stats = request.app.state.log.stats()
        return {
            "rows": count_rows(request.app.state.db),
            "replayed": request.app.state.replayed,
            "appended": log_stats.appended,
            "committed": log_stats.committed,
            "pending": log_stats.pending,
        }

    return app


app = create_app()
