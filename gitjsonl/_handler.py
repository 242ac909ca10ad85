"""``GitJsonlHandler``: a ``logging.Handler`` that ships log records as JSON lines through a Log.

``emit`` formats the record into a dict and calls ``Log.append``, which does no
I/O: the caller never waits for GitHub. Records are never fed back into the
log that ships them: records of gitjsonl's own loggers and of the HTTP stack
under it (``github``, ``urllib3``, ``requests``), records emitted on gitjsonl's
own threads, and anything logged while this handler is already emitting on
the same thread are ignored.
"""

from __future__ import annotations

import logging
import math
import threading
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

from ._exceptions import BufferFull, LogClosed

__all__ = ["DEFAULT_EXCLUDED", "GitJsonlHandler", "default_formatter"]

#: Logger name prefixes whose records would loop back into the log.
DEFAULT_EXCLUDED = ("gitjsonl", "github", "urllib3", "requests", "tenacity")

#: Threads gitjsonl starts are named with this prefix.
GITJSONL_THREAD_PREFIX = "gitjsonl-"

Formatter = Callable[[logging.LogRecord], Mapping[str, Any]]

# Every attribute a LogRecord has before ``extra=`` adds its own.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class _Appendable(Protocol):
    def append(self, record: Mapping[str, Any]) -> None: ...


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return repr(value)


def default_formatter(record: logging.LogRecord) -> dict[str, Any]:
    """A LogRecord as a JSON object: timestamp, level, logger, message, exc_info, extra fields."""
    out: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    if record.exc_info and record.exc_info[0] is not None:
        out["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    elif record.exc_text:
        out["exc_info"] = record.exc_text
    if record.stack_info:
        out["stack_info"] = record.stack_info
    for key, value in record.__dict__.items():
        if key not in _STANDARD_ATTRS and key not in out:
            out[key] = _json_safe(value)
    return out


class GitJsonlHandler(logging.Handler):
    """Ship log records through ``log.append`` (a ``Log``, ``AsyncLog`` or anything with append).

    ``formatter`` turns a LogRecord into a dict (default: ``default_formatter``).
    ``exclude`` lists logger-name prefixes never shipped. Give it a Log with
    ``on_full="drop"`` or ``"raise"``: with ``"block"`` a full buffer would
    block the logging caller. Records refused because the buffer is full or the
    log is closed are counted in ``dropped``; any other failure goes to
    ``handleError`` (never raised to the caller).
    """

    def __init__(
        self,
        log: _Appendable,
        formatter: Formatter | None = None,
        level: int | str = logging.NOTSET,
        *,
        exclude: tuple[str, ...] = DEFAULT_EXCLUDED,
    ) -> None:
        super().__init__(level)
        self.log = log
        self.record_formatter: Formatter = formatter or default_formatter
        self.exclude = exclude
        self.dropped = 0
        self._emitting = threading.local()

    def _excluded(self, record: logging.LogRecord) -> bool:
        name = record.name
        for prefix in self.exclude:
            if name == prefix or name.startswith(prefix + "."):
                return True
        return (record.threadName or "").startswith(GITJSONL_THREAD_PREFIX)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._excluded(record) or getattr(self._emitting, "active", False):
            return False
        return bool(super().filter(record))

    def handle(self, record: logging.LogRecord) -> bool:
        # Check before taking the handler's lock: a record logged from inside
        # emit (same thread) must neither recurse nor deadlock.
        if getattr(self._emitting, "active", False):
            return False
        return bool(super().handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        self._emitting.active = True
        try:
            self.log.append(self.record_formatter(record))
        except (BufferFull, LogClosed):
            self.dropped += 1
        except Exception:  # a formatter bug or a refused record: never the caller's problem
            self.handleError(record)
        finally:
            self._emitting.active = False
