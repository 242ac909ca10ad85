"""Readers and what reaches a terminal, attacked (issue 24, items 9 to 13): one table per class.

- headers read as numbers or dates (``Retry-After``, ``X-RateLimit-*``) holding anything
  else: dropped where the answer enters (``_http``), as if GitHub had not sent them;
- control characters from a server or a file on their way to a terminal: escaped by one
  function (``_terminal.printable``) at every print site of the command line;

The hostile server is ``test_hostile_server``'s ``HostileProxy``, in front of localhub.
The next person to find an attack adds a row to the table of its class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gitjsonl import GithubLog, RateLimited
from gitjsonl._answers import retry_after_seconds, unreadable_headers
from gitjsonl.testing import LocalHub

from . import test_hostile_server as hostile
from .helpers import PATH, REPO, make_log
from .test_hostile_server import TOKEN, Answer, HostileProxy, _Handler

#: The hostile server's fixtures: localhub with one commit, and the proxy in front of it.
hub = hostile.hub
proxy = hostile.proxy


# -- headers read as numbers or dates ---------------------------------------------------------


def with_headers(
    extra: dict[str, str], *, status: int | None = None, message: str = "rate limited"
) -> Callable[[_Handler], None]:
    """The real answer with ``extra`` headers in place of its own (and ``status``, a JSON
    error of ``message``, when given)."""

    def act(h: _Handler) -> None:
        answer = h.upstream()
        lowered = {name.lower() for name in extra}
        kept = [(k, v) for k, v in answer.headers if k.lower() not in lowered]
        body = answer.body if status is None else f'{{"message": "{message}"}}'.encode()
        h.answer(Answer(status or answer.status, [*kept, *extra.items()], body))

    return act


#: Values no header read as a number or a date may hold (each sent as it is).
BAD_NUMBERS = [
    pytest.param("soon", id="a-word"),
    pytest.param("", id="empty"),
    pytest.param("nan", id="nan"),
    pytest.param("inf", id="inf"),
    pytest.param("1e999", id="overflowing-exponent"),
    pytest.param("9" * 40, id="forty-digits"),
    pytest.param("\u00b2", id="superscript-two-isdigit-but-not-int"),
    pytest.param("12 34", id="two-numbers"),
    pytest.param("0x10", id="hex"),
]
#: ``Retry-After`` values that are neither seconds nor an HTTP date.
BAD_RETRY_AFTER = [
    *BAD_NUMBERS[:3],
    pytest.param("Mon, 99 Foo 2026 25:61:61 GMT", id="date-out-of-range"),
    pytest.param("Fri, 31 Dec 99999 23:59:59 GMT", id="year-99999"),
    pytest.param("1e999", id="exponent"),
]


class TestHeaderValues:
    @pytest.mark.parametrize("value", BAD_RETRY_AFTER)
    def test_unreadable_retry_after_reads_as_absent(self, value: str) -> None:
        """A Retry-After that is neither seconds nor a date asks for nothing (and is dropped)."""
        assert retry_after_seconds(value, 0.0) is None
        assert unreadable_headers({"Retry-After": value}) == ["Retry-After"]

    @pytest.mark.parametrize(
        ("value", "seconds"),
        [("30", 30.0), (" 2.5 ", 2.5), ("-5", 0.0), ("inf", float("inf"))],
    )
    def test_seconds_are_read(self, value: str, seconds: float) -> None:
        """Seconds are read as seconds; a negative wait is none, Infinity is left to clamp."""
        assert retry_after_seconds(value, 0.0) == seconds

    def test_an_http_date_is_read_against_now(self) -> None:
        """An HTTP date asks for the seconds from now until it."""
        assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == 60.0

    @pytest.mark.parametrize("value", BAD_NUMBERS)
    @pytest.mark.parametrize("name", ["X-RateLimit-Reset", "x-ratelimit-remaining"])
    def test_rate_limit_headers_that_are_not_numbers_are_dropped(
        self, name: str, value: str
    ) -> None:
        """An X-RateLimit-* header PyGithub would read with int(float(...)) and fail on is named."""
        assert unreadable_headers({name: value, "X-RateLimit-Limit": "5000"}) == [name]


class TestHostileHeaders:
    @pytest.mark.parametrize("value", BAD_RETRY_AFTER)
    def test_429_with_a_bad_retry_after_is_a_rate_limit(
        self, hub: LocalHub, proxy: HostileProxy, value: str
    ) -> None:
        """Log.tail raises RateLimited (no wait said), never a raw ValueError."""
        with make_log(hub, api_url=proxy.url, token=TOKEN) as log:
            proxy.add("GET", r"/git/trees/", with_headers({"Retry-After": value}, status=429))
            with pytest.raises(RateLimited) as raised:
                log.tail(5)
        assert raised.value.retry_after is None

    @pytest.mark.parametrize("value", BAD_NUMBERS)
    def test_429_with_a_bad_reset_is_a_rate_limit(
        self, hub: LocalHub, proxy: HostileProxy, value: str
    ) -> None:
        """A spent primary limit whose reset is unreadable is a rate limit, not OverflowError."""
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": value}
        with make_log(hub, api_url=proxy.url, token=TOKEN) as log:
            proxy.add("GET", r"/git/trees/", with_headers(headers, status=429))
            with pytest.raises(RateLimited):
                log.tail(5)

    @pytest.mark.parametrize("value", BAD_NUMBERS)
    def test_a_bad_reset_on_every_answer_is_ignored(
        self, hub: LocalHub, proxy: HostileProxy, value: str
    ) -> None:
        """Records are written and read back though every answer carries an unreadable reset."""
        proxy.add("*", r".", with_headers({"X-RateLimit-Reset": value}))
        with make_log(hub, api_url=proxy.url, token=TOKEN) as log:
            log.append({"id": 1})
            log.flush(timeout=30)
            assert log.tail(5) == [{"id": 1}]

    def test_load_recent_with_a_bad_retry_after_returns_nothing(
        self, hub: LocalHub, proxy: HostileProxy
    ) -> None:
        """GithubLog.load_recent (which never raises) returns [] on a 429 saying 'soon'."""
        proxy.add("GET", r"/git/trees/", with_headers({"Retry-After": "soon"}, status=429))
        recent = GithubLog(TOKEN, REPO, path=PATH, api_url=proxy.url, pacing=None)
        try:
            assert asyncio.run(recent.load_recent(5)) == []
        finally:
            asyncio.run(recent.aclose())
