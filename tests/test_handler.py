"""GitJsonlHandler: log records shipped as JSON lines, never looping back, never blocking."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import pytest

from gitjsonl import BufferFull, Log
from gitjsonl._handler import GitJsonlHandler, default_formatter
from gitjsonl.testing import Fault, LocalHub


class ListLog:
    """Stands in for a Log: keeps what is appended; optionally runs a hook inside append."""

    def __init__(self, hook: Callable[[], None] | None = None) -> None:
        self.records: list[Mapping[str, Any]] = []
        self.hook = hook

    def append(self, record: Mapping[str, Any]) -> None:
        if self.hook is not None:
            self.hook()
        self.records.append(record)


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("tests.app")
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.handlers.clear()


def attach(logger: logging.Logger, handler: logging.Handler) -> logging.Handler:
    logger.addHandler(handler)
    return handler


class TestFormatting:
    def test_record_becomes_a_json_object(self, app_logger: logging.Logger) -> None:
        """timestamp (ISO UTC), level, logger, formatted message and extra fields are shipped."""
        log = ListLog()
        attach(app_logger, GitJsonlHandler(log))
        app_logger.warning("hello %s", "world", extra={"user": "u1", "obj": object()})
        (record,) = log.records
        assert record["level"] == "WARNING"
        assert record["logger"] == "tests.app"
        assert record["message"] == "hello world"
        assert record["user"] == "u1"
        assert record["obj"].startswith("<object object")
        assert datetime.fromisoformat(record["timestamp"]).utcoffset().total_seconds() == 0
        assert "exc_info" not in record

    def test_exception_text_is_included(self, app_logger: logging.Logger) -> None:
        """logger.exception ships the traceback text under exc_info."""
        log = ListLog()
        attach(app_logger, GitJsonlHandler(log))
        try:
            raise ValueError("boom")
        except ValueError:
            app_logger.exception("failed")
        (record,) = log.records
        assert "ValueError: boom" in record["exc_info"]
        assert "Traceback" in record["exc_info"]

    def test_custom_formatter_is_used(self, app_logger: logging.Logger) -> None:
        """A callable LogRecord -> dict replaces the default shape."""
        log = ListLog()
        attach(app_logger, GitJsonlHandler(log, formatter=lambda r: {"m": r.getMessage()}))
        app_logger.info("x=%d", 1)
        assert log.records == [{"m": "x=1"}]

    def test_level_filters(self, app_logger: logging.Logger) -> None:
        """Records below the handler's level are not shipped."""
        log = ListLog()
        attach(app_logger, GitJsonlHandler(log, level=logging.WARNING))
        app_logger.info("quiet")
        app_logger.error("loud")
        assert [r["message"] for r in log.records] == ["loud"]

    def test_default_formatter_output_is_json_serialisable(self) -> None:
        """Whatever extra holds (floats, NaN, nested objects) the default output is valid JSON."""
        import json

        record = logging.LogRecord("a", logging.INFO, __file__, 1, "m", None, None)
        record.__dict__.update({"nan": float("nan"), "nested": {"k": [1, object()]}})
        out = default_formatter(record)
        json.dumps(out, allow_nan=False)
        assert out["nan"] == "nan"


class TestNoFeedback:
    @pytest.mark.parametrize(
        "name",
        ["gitjsonl", "gitjsonl.spool", "github.Requester", "urllib3.connectionpool", "requests"],
    )
    def test_own_and_http_stack_loggers_are_ignored(self, name: str) -> None:
        """Records of gitjsonl, PyGithub, urllib3 and requests loggers are never shipped."""
        log = ListLog()
        logger = logging.getLogger(name)
        handler = attach(logger, GitJsonlHandler(log))
        try:
            logger.warning("noise")
        finally:
            logger.removeHandler(handler)
        assert log.records == []

    def test_prefix_match_is_by_dotted_name(self) -> None:
        """A logger merely starting with the same letters ("githubapp") is shipped."""
        log = ListLog()
        logger = logging.getLogger("githubapp")
        handler = attach(logger, GitJsonlHandler(log))
        try:
            logger.warning("mine")
        finally:
            logger.removeHandler(handler)
        assert len(log.records) == 1

    def test_logging_inside_append_does_not_recurse(self, app_logger: logging.Logger) -> None:
        """A record logged while the handler is appending (same thread) is not fed back."""
        log = ListLog(hook=lambda: app_logger.warning("from inside append"))
        attach(app_logger, GitJsonlHandler(log))
        app_logger.warning("outer")
        assert [r["message"] for r in log.records] == ["outer"]

    def test_records_from_gitjsonl_threads_are_ignored(self, app_logger: logging.Logger) -> None:
        """Anything logged on a gitjsonl thread (the flusher) is not shipped."""
        log = ListLog()
        attach(app_logger, GitJsonlHandler(log))
        thread = threading.Thread(target=app_logger.warning, args=("x",), name="gitjsonl-flusher")
        thread.start()
        thread.join()
        assert log.records == []


class TestNeverRaises:
    def test_failing_log_goes_to_handle_error(self, app_logger: logging.Logger) -> None:
        """An exception inside append goes to handleError; the caller's log call returns."""

        def explode() -> None:
            raise RuntimeError("disk on fire")

        errors: list[logging.LogRecord] = []
        handler = GitJsonlHandler(ListLog(hook=explode))
        handler.handleError = errors.append  # type: ignore[method-assign]
        attach(app_logger, handler)
        app_logger.warning("x")
        assert len(errors) == 1

    def test_full_buffer_is_counted_as_dropped(self, app_logger: logging.Logger) -> None:
        """A full buffer (on_full="raise") drops the record with a counter, not an error."""

        def full() -> None:
            raise BufferFull("full")

        errors: list[logging.LogRecord] = []
        handler = GitJsonlHandler(ListLog(hook=full))
        handler.handleError = errors.append  # type: ignore[method-assign]
        attach(app_logger, handler)
        app_logger.warning("x")
        assert (handler.dropped, errors) == (1, [])


class TestWithALog:
    def test_ships_records_and_only_the_callers(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """On the root logger at DEBUG, only the application's records reach the repository."""
        hub = localhub_factory(initial_commit=True)
        log = Log(
            "owner/repo",
            path="logs/app",
            api_url=hub.url,
            token=hub.token,
            pacing=None,
            flush_interval=0.05,
            on_full="drop",
        )
        root = logging.getLogger()
        handler = attach(root, GitJsonlHandler(log))
        old_level = root.level
        root.setLevel(logging.DEBUG)
        try:
            app = logging.getLogger("tests.app")
            for i in range(5):
                app.info("request %d", i, extra={"request_id": i})
            log.flush(timeout=30)  # urllib3 and github log at DEBUG meanwhile
            app.info("after flush")
            log.flush(timeout=30)
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        shipped = log.tail(100)
        log.close()
        assert [r["logger"] for r in shipped] == ["tests.app"] * 6
        assert [r.get("request_id") for r in shipped[:5]] == list(range(5))

    def test_logging_call_does_not_wait_for_a_slow_server(
        self, localhub_factory: Callable[..., LocalHub], app_logger: logging.Logger
    ) -> None:
        """With every Git request 300 ms slow, each logging call still returns within 20 ms."""
        hub = localhub_factory(initial_commit=True)
        hub.add_fault(Fault(path=r"/git/", action="latency", delay=0.3, times=None))
        log = Log(
            "owner/repo",
            path="logs/app",
            api_url=hub.url,
            token=hub.token,
            pacing=None,
            flush_interval=0.01,
            batch_bytes=100,
            on_full="drop",
        )
        attach(app_logger, GitJsonlHandler(log))
        slowest = 0.0
        for i in range(50):
            start = time.perf_counter()
            app_logger.info("message %d", i)
            slowest = max(slowest, time.perf_counter() - start)
            time.sleep(0.005)
        log.close()
        assert slowest < 0.02
        assert log.stats().committed == 50
