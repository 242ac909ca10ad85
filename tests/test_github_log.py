"""GithubLog, the drop-in for the reference Contents-API service.

The interface scenarios run on our drop-in and on an adapter with the
reference's interface around the project's own Contents-API baseline (the
reference algorithm); the baseline loses records where ours does not.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import pytest

from gitjsonl._github_log import GithubLog
from gitjsonl.testing import Fault, LocalHub
from gitjsonl.testing._contents_baseline import ContentsApiLog

REPO = "owner/repo"


class ReferenceInterface(Protocol):
    """What the reference service offers its callers."""

    @property
    def enabled(self) -> bool: ...
    def append(self, record: dict[str, Any]) -> None: ...
    async def load_recent(self, n: int = 500) -> list[dict[str, Any]]: ...
    def append_feedback(self, session_id: str, feedback: int) -> None: ...


class BaselineService:
    """The reference's interface (fire-and-forget task per append) over ContentsApiLog."""

    def __init__(self, write_token: str, repo: str, *, api_url: str) -> None:
        self._inner = ContentsApiLog(api_url, write_token, repo)
        self._tasks: set[asyncio.Task[int]] = set()
        self._token = write_token

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def append(self, record: dict[str, Any]) -> None:
        self._tasks.add(asyncio.create_task(asyncio.to_thread(self._inner.append, record)))

    def append_feedback(self, session_id: str, feedback: int) -> None:
        raise NotImplementedError

    async def load_recent(self, n: int = 500) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._inner.load_recent, n)

    async def settle(self) -> None:
        await asyncio.gather(*self._tasks)
        self._tasks.clear()

    async def aclose(self) -> None:
        self._inner.close()


class OurService(GithubLog):
    async def settle(self) -> None:
        assert await self.aflush(timeout=60)


class Service(ReferenceInterface, Protocol):
    async def settle(self) -> None: ...
    async def aclose(self) -> None: ...


Factory = Callable[[LocalHub], Service]


def ours(hub: LocalHub) -> Service:
    return OurService(hub.token, REPO, api_url=hub.url, pacing=None, flush_interval=0.05)


def baseline(hub: LocalHub) -> Service:
    return BaselineService(hub.token, REPO, api_url=hub.url)


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


async def concurrent_appends(service: Service, count: int = 24) -> set[int]:
    """Append a burst of records at once, as concurrent requests would; the ids lost."""
    for i in range(count):
        service.append({"type": "interaction", "id": i})
    await service.settle()
    seen = {r["id"] for r in await service.load_recent(500) if r.get("type") == "interaction"}
    await service.aclose()
    return set(range(count)) - seen


def seed_big_legacy_log(hub: LocalHub, records: int = 1100) -> None:
    """A legacy single-file log past 1 MB, as the reference service leaves it."""
    pad = "x" * 1000
    lines = "".join(json.dumps({"type": "old", "id": i, "pad": pad}) + "\n" for i in range(records))
    hub.seed_commit(REPO, {"data/interactions.jsonl": lines.encode()})


async def appends_past_one_megabyte(service: Service, old: int = 1100) -> set[str]:
    """Append 5 records to a log past 1 MB; the record keys ("old-3", "new-1") lost."""
    for i in range(5):
        service.append({"type": "new", "id": i})
        await service.settle()
    seen = {f"{r['type']}-{r['id']}" for r in await service.load_recent(old + 100)}
    await service.aclose()
    expected = {f"old-{i}" for i in range(old)} | {f"new-{i}" for i in range(5)}
    return expected - seen


@pytest.fixture
def hub(localhub_factory: Callable[..., LocalHub]) -> LocalHub:
    return localhub_factory(initial_commit=True)


class TestReferenceInterfaceScenarios:
    def test_ours_keeps_every_concurrent_append(self, hub: LocalHub) -> None:
        """A burst of concurrent appends all reach the repository through the drop-in."""
        assert run(concurrent_appends(ours(hub))) == set()

    def test_baseline_loses_concurrent_appends(self, hub: LocalHub) -> None:
        """The reference algorithm loses records of the same burst to 409 conflicts."""
        assert run(concurrent_appends(baseline(hub)))

    def test_ours_keeps_a_log_past_one_megabyte(self, hub: LocalHub) -> None:
        """Past 1 MB the drop-in keeps the legacy file's records and adds the new ones."""
        seed_big_legacy_log(hub)
        before = hub.read_file(REPO, "data/interactions.jsonl")
        assert run(appends_past_one_megabyte(ours(hub))) == set()
        assert hub.read_file(REPO, "data/interactions.jsonl") == before

    def test_baseline_overwrites_a_log_past_one_megabyte(self, hub: LocalHub) -> None:
        """The reference algorithm reads a >1 MB file as empty and overwrites the history."""
        seed_big_legacy_log(hub)
        lost = run(appends_past_one_megabyte(baseline(hub)))
        assert {f"old-{i}" for i in range(1100)} <= lost


class TestGithubLog:
    def test_load_recent_reads_legacy_then_segments_in_order(self, hub: LocalHub) -> None:
        """Records still in the legacy file come first, then the new ones, oldest first."""
        legacy = "".join(json.dumps({"id": f"old{i}"}) + "\n" for i in range(3))
        hub.seed_commit(REPO, {"data/interactions.jsonl": legacy.encode()})

        async def main() -> list[dict[str, Any]]:
            service = ours(hub)
            service.append({"id": "new0"})
            await service.settle()
            recent = await service.load_recent(3)
            everything = await service.load_recent()
            await service.aclose()
            return [*recent, *everything]

        ids = [r["id"] for r in run(main())]
        assert ids == ["old1", "old2", "new0", "old0", "old1", "old2", "new0"]

    def test_feedback_record_has_the_reference_shape(self, hub: LocalHub) -> None:
        """append_feedback writes {type, session_id, feedback, timestamp (ISO, UTC)}."""

        async def main() -> list[dict[str, Any]]:
            service = ours(hub)
            service.append_feedback("s-1", -1)
            await service.settle()
            recent = await service.load_recent(10)
            await service.aclose()
            return recent

        (record,) = run(main())
        assert set(record) == {"type", "session_id", "feedback", "timestamp"}
        assert (record["type"], record["session_id"], record["feedback"]) == ("feedback", "s-1", -1)
        assert datetime.fromisoformat(record["timestamp"]).utcoffset() == timedelta(0)

    def test_disabled_without_token_does_nothing(self, hub: LocalHub) -> None:
        """With an empty token: enabled is False, calls are no-ops, no request is made."""
        service = GithubLog("", REPO, api_url=hub.url)
        assert not service.enabled
        assert service.log is None
        hub.clear_requests()

        async def main() -> list[dict[str, Any]]:
            service.append({"id": 1})
            service.append_feedback("s", 1)
            assert await service.aflush()
            recent = await service.load_recent()
            await service.aclose()
            return recent

        assert run(main()) == []
        assert hub.requests == []

    def test_append_needs_no_event_loop(self, hub: LocalHub) -> None:
        """append works from plain synchronous code (the reference needed a running loop)."""
        service = GithubLog(hub.token, REPO, api_url=hub.url, pacing=None, flush_interval=0.05)
        service.append({"id": 1})
        assert service.flush(timeout=30)
        service.close()
        assert service.log is not None
        assert service.log.stats().committed == 1

    def test_bad_record_is_a_warning_not_an_exception(
        self, hub: LocalHub, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A record that is not JSON is reported as a warning; the request path never sees it."""
        service = GithubLog(hub.token, REPO, api_url=hub.url, pacing=None, flush_interval=0.05)
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            service.append({"bad": object()})
            service.append({"nan": float("nan")})
        service.append({"id": "good"})
        service.close()
        assert caplog.text.count("not logged durably") == 2
        assert service.log is not None
        assert service.log.stats().committed == 1

    def test_github_failures_keep_records_until_they_commit(self, hub: LocalHub) -> None:
        """Server errors never lose a record: it stays pending and is committed afterwards."""
        hub.add_fault(Fault(method="POST", path=r"/git/trees", action="error", status=502, times=2))
        service = GithubLog(hub.token, REPO, api_url=hub.url, pacing=None, flush_interval=0.05)
        for i in range(5):
            service.append({"id": i})

        async def main() -> list[dict[str, Any]]:
            assert await service.aflush(timeout=60)
            recent = await service.load_recent()
            await service.aclose()
            return recent

        assert [r["id"] for r in run(main())] == list(range(5))

    def test_load_recent_on_an_empty_repository_is_empty(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """Nothing logged yet (empty repository) gives [] like the reference's 404."""
        empty = localhub_factory()
        service = GithubLog(empty.token, REPO, api_url=empty.url, pacing=None)

        async def main() -> list[dict[str, Any]]:
            recent = await service.load_recent()
            await service.aclose()
            return recent

        assert run(main()) == []


class TestALogThatDoesNotExistYet:
    """A log nobody has written to has no records: ``[]``, as the reference answered."""

    def test_tail_and_records_of_an_empty_repository_are_empty(
        self, localhub_factory: Callable[..., LocalHub]
    ) -> None:
        """Log.tail() and Log.records() of an empty repository are empty, not EmptyRepository."""
        from gitjsonl import Log

        empty = localhub_factory()
        with Log(
            REPO, path="data/interactions", api_url=empty.url, token=empty.token, pacing=None
        ) as log:
            assert log.tail(500) == []
            assert list(log.records()) == []

    def test_tail_of_a_missing_folder_is_empty(self, hub: LocalHub) -> None:
        """A branch without the log's folder yet: tail() is []."""
        from gitjsonl import Log

        with Log(
            REPO, path="data/nothing-yet", api_url=hub.url, token=hub.token, pacing=None
        ) as log:
            assert log.tail(5) == []

    def test_a_missing_branch_still_raises(self, hub: LocalHub) -> None:
        """A branch that does not exist is NotFound for Log.tail (a misspelt name is not a log)."""
        from gitjsonl import Log, NotFound

        with (
            Log(
                REPO,
                path="data/interactions",
                branch="no-such",
                api_url=hub.url,
                token=hub.token,
                pacing=None,
            ) as log,
            pytest.raises(NotFound),
        ):
            log.tail(5)
