"""``GithubLog``: a drop-in for the Contents-API ``GithubLog`` service many backends run.

Same constructor ``(write_token, repo)``, same ``enabled``, ``append(record)``,
``async load_recent(n=500)`` and ``append_feedback(session_id, feedback)``
(same feedback record shape), but batched through the Git Data API,
exactly-once, and safe past 1 MB: records go to segments under
``data/interactions/``, and ``load_recent`` also reads the old single file
``data/interactions.jsonl`` as the oldest part of the log until it is migrated,
so switching loses no history.

Like the service it replaces it never raises into the request path: a record
that cannot be logged (not JSON-serialisable, NaN, too large, buffer full, log
closed) is reported with a WARNING on the ``gitjsonl`` logger. Unlike it, a
record is never lost to a GitHub failure: rate limits, 409s, 5xx and network
errors leave it pending, retried by the flusher thread, and committed once
GitHub answers again (see ``Log.stats()`` via ``log``). With ``spool_dir`` the
pending records also survive the process being killed; every worker of a
server may share one ``spool_dir`` (each claims a slot of its own there).

Unlike the reference, ``append`` does not need a running event loop.

Nothing to add at shutdown: what is pending when the server stops is
committed (``gitjsonl._lifecycle``: on SIGTERM the log commits at once, and the
exit flush runs even under a server that re-raises SIGTERM, as uvicorn does),
before a deadline shorter than the host's ``shutdown_grace`` (10 s), or one
ERROR line says how many records could not be and why. Proven under
``uvicorn --workers 2`` and gunicorn with 2 uvicorn workers, for a ``GithubLog``
made at import or at start-up. Where that cannot hold, call ``await
log.aclose()`` in the app's shutdown (FastAPI's lifespan, after ``yield``):
on Windows, with ``$GITJSONL_SIGTERM=off``, when the first log is made outside
the main thread, a ``GithubLog`` made at import under gunicorn ``--preload``
(the worker resets SIGTERM after the fork), and under a server whose workers
end with ``os._exit`` (no exit handler runs: only what the log committed
between SIGTERM and then, and the spool, survive).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._config import DEFAULT, DEFAULT_LOG_PATH, legacy_path_for
from ._exceptions import EmptyRepository, GitJsonlError, NotFound
from ._log import Log

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._config import LogOptions

__all__ = ["GithubLog"]

# The logger keeps the name it was published under: applications may configure it.
logger = logging.getLogger(__name__)


class GithubLog:
    """Append-only JSONL log in a GitHub repository, with the reference service's interface.

    ``write_token`` empty (or ``None``) disables it as the reference does: every
    call is a no-op and ``load_recent`` returns ``[]``. Keyword arguments are
    ``Log``'s and configure the underlying ``Log`` (``api_url``, ``spool_dir``,
    ``flush_interval``, ``pacing``, ...); ``path`` defaults to
    ``data/interactions`` and ``legacy_path`` to the reference's
    ``data/interactions.jsonl``. The token is ``write_token``, never ``token=``.
    """

    def __init__(self, write_token: str | None, repo: str, **options: Unpack[LogOptions]) -> None:
        if "token" in options:
            raise TypeError("GithubLog takes its token as write_token, not token=")
        options.setdefault("path", DEFAULT_LOG_PATH)
        options.setdefault("legacy_path", legacy_path_for(DEFAULT_LOG_PATH))
        self._token = write_token or ""
        self._repo = repo
        self._log: Log | None = None
        if self.enabled:
            options["token"] = self._token
            self._log = Log(repo, **options)

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    @property
    def log(self) -> Log | None:
        """The underlying ``Log`` (``None`` when disabled), for ``stats()`` and ``flush()``."""
        return self._log

    def append(self, record: dict[str, Any]) -> None:
        """Queue ``record`` for the durable log. Returns immediately, never raises."""
        if self._log is None:
            return
        try:
            self._log.append(record)
        except GitJsonlError as exc:
            logger.warning("GithubLog.append: record not logged durably: %s", exc)

    def append_feedback(self, session_id: str, feedback: int) -> None:
        """Record a feedback update as its own line (``type: "feedback"``), like the reference."""
        if self._log is None:
            return
        self.append(
            {
                "type": "feedback",
                "session_id": session_id,
                "feedback": feedback,
                "timestamp": datetime.now(tz=timezone.utc).isoformat(),
            }
        )

    async def load_recent(self, n: int = 500) -> list[dict[str, Any]]:
        """The last ``n`` committed records, oldest first; ``[]`` when disabled or unreadable."""
        if self._log is None:
            return []
        try:
            return await asyncio.to_thread(self._log.tail, n)
        except (NotFound, EmptyRepository):
            # A log that does not exist yet (no repository content, no branch, no
            # folder) has no records, as the reference answered its 404. Log.tail
            # gives [] itself for an empty repository and a missing folder.
            return []
        except GitJsonlError as exc:
            logger.warning("GithubLog.load_recent error: %s", exc)
            return []

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record appended so far is committed; False (and a warning) if not."""
        if self._log is None:
            return True
        try:
            self._log.flush(timeout)
        except GitJsonlError as exc:
            logger.warning("GithubLog.flush: records still pending: %s", exc)
            return False
        return True

    async def aflush(self, timeout: float | None = None) -> bool:
        """``flush`` without blocking the event loop."""
        return await asyncio.to_thread(self.flush, timeout)

    def close(self, timeout: float | None = DEFAULT) -> None:
        """Flush and stop, before the deadline within the host's ``shutdown_grace`` (or within
        ``timeout``); never raises: what cannot be committed is the ``Log``'s one ERROR line."""
        if self._log is None:
            return
        with contextlib.suppress(GitJsonlError):  # Log.close has said how many, and why
            self._log.close(timeout)

    async def aclose(self, timeout: float | None = DEFAULT) -> None:
        """``close`` without blocking the event loop."""
        await asyncio.to_thread(self.close, timeout)

    async def __aenter__(self) -> GithubLog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
