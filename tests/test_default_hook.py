"""``default=``: records holding what JSON has no type for, as ``json.dumps(default=)`` takes."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

import gitjsonl
from gitjsonl.testing import LocalHub

from .helpers import committed_records, make_log


class TestLogDefault:
    def test_a_log_with_json_default_commits_dates_uuids_and_decimals(
        self, localhub: LocalHub
    ) -> None:
        """What apps log (a datetime, a UUID, a Decimal) is committed as the JSON text
        json_default makes of it, and reads back as such."""
        at = datetime.datetime(2026, 12, 7, 3, 22, tzinfo=datetime.timezone.utc)
        with make_log(localhub, default=gitjsonl.json_default) as log:
            log.append({"at": at, "id": uuid.UUID(int=7), "price": decimal.Decimal("9.90")})
            log.flush(timeout=30)
            assert log.tail(1) == [
                {
                    "at": "2026-12-07T03:22:00+00:00",
                    "id": "00000000-0000-0000-0000-000000000007",
                    "price": "9.90",
                }
            ]
        assert committed_records(localhub)[-1]["price"] == "9.90"

    def test_without_default_such_a_record_is_refused_at_append(self, localhub: LocalHub) -> None:
        """No default: the datetime is a RecordError at the call, and the other records go."""
        with make_log(localhub) as log:
            log.append({"n": 1})
            with pytest.raises(gitjsonl.RecordError, match="not JSON-serialisable"):
                log.append({"at": datetime.date(2026, 1, 1)})
            log.append({"n": 2})
            log.flush(timeout=30)
        assert [r["n"] for r in committed_records(localhub)] == [1, 2]

    def test_a_default_that_is_not_a_function_is_refused_naming_it(self) -> None:
        """default= must be callable: a TypeError naming it when the Log is built."""
        with pytest.raises(TypeError, match="default"):
            gitjsonl.Log(
                "o/r",
                path="x",
                api_url="http://127.0.0.1:9",
                pacing=None,
                default="str",  # type: ignore[arg-type]
            )

    def test_the_drop_in_and_asynclog_pass_default_on(self, localhub: LocalHub) -> None:
        """GithubLog(default=) and AsyncLog(default=) reach the Log they wrap."""
        options = {"api_url": localhub.url, "pacing": None, "budget_dir": None}
        drop_in = gitjsonl.GithubLog(localhub.token, "owner/repo", default=str, **options)
        try:
            assert drop_in.log is not None
            assert drop_in.log.config.default is str
        finally:
            drop_in.close()
        async_log = gitjsonl.AsyncLog("owner/repo", path="x", default=str, **options)
        try:
            assert async_log.log.config.default is str
        finally:
            async_log.log.close()
