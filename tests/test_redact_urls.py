"""No URL a user gives (``api_url``, a coordinator's ``redis://``) shows its secret in any message.

A table of URL shapes, each holding a password somewhere (user information,
``?password=``, ``?token=``, with ``/``, ``#``, ``?`` or ``@`` in it so the URL
parses as something else), run through every path by which a URL reaches a
person: refusals of ``Log()``/``LogConfig``, the fallback WARNING, ``doctor``'s
line, the command line's errors. Each case draws fresh secret halves, so no
token this process remembered from another test can hide a leak.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from gitjsonl import Log
from gitjsonl._cli import main
from gitjsonl._config import check_api_url, coordinator_from
from gitjsonl._doctor import coordinator_check, format_checks
from gitjsonl._redact import scrub_url
from gitjsonl._redis import Coordinator, CoordinatorDown, check_coordinator_url

from .helpers import PATH, REPO
from .redis_support import free_port

#: Where the password sits in a URL; ``{pw}`` is replaced by the password, ``{port}`` by a
#: closed loopback port. Separators inside the password make the URL misparse.
SHAPES = {
    "userinfo": "{scheme}://:{pw}@127.0.0.1:{port}/0",
    "user and password": "{scheme}://deploy:{pw}@127.0.0.1:{port}/0",
    "password with /": "{scheme}://:{a}/{b}@127.0.0.1:{port}/0",
    "password with #": "{scheme}://:{a}#{b}@127.0.0.1:{port}/0",
    "password with ?": "{scheme}://:{a}?{b}@127.0.0.1:{port}/0",
    "password with @": "{scheme}://:{a}@{b}@127.0.0.1:{port}/0",
    "user name only (a token)": "{scheme}://{pw}@127.0.0.1:{port}/0",
    "?password=": "{scheme}://127.0.0.1:{port}/0?password={pw}",
    "?password= with # and &": "{scheme}://127.0.0.1:{port}/0?password={a}#&{b}",
    "?password= then prefix": "{scheme}://127.0.0.1:{port}/0?password={pw}&prefix=app:",
    "?token=": "{scheme}://127.0.0.1:{port}/0?db=0&token={pw}",
    "?access_token=": "{scheme}://127.0.0.1:{port}/0?access_token={pw}",
    "?key=": "{scheme}://127.0.0.1:{port}/0?KEY={pw}",
    "bad port and password": "{scheme}://:{pw}@127.0.0.1:port/0",
    "no scheme": ":{pw}@127.0.0.1:{port}",
}


class Case:
    """One URL of the table, with the two halves of its password to look for."""

    def __init__(self, shape: str, scheme: str) -> None:
        self.a = "Aa" + secrets.token_hex(5)
        self.b = "Bb" + secrets.token_hex(5)
        self.url = SHAPES[shape].format(
            scheme=scheme, pw=self.a + self.b, a=self.a, b=self.b, port=free_port()
        )

    def assert_hidden(self, text: str) -> None:
        assert text, "the path printed nothing to check"
        assert self.a not in text, text
        assert self.b not in text, text


def _refusal(check: Callable[[], object]) -> str | None:
    """The message ``check`` raised with, or None when the URL was taken."""
    try:
        check()
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("shape", list(SHAPES))
class TestCoordinatorUrls:
    def test_check_and_environment(self, shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """A refused coordinator URL's message (given, or from the environment) hides it."""
        case = Case(shape, "redis")
        monkeypatch.setenv("GITJSONL_COORDINATOR", case.url)
        for text in (
            _refusal(lambda: check_coordinator_url(case.url)),
            _refusal(lambda: coordinator_from(case.url)),
            scrub_url(case.url),
        ):
            if text is not None:
                case.assert_hidden(text)

    def test_fallback_warning_and_doctor_line(
        self, shape: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The WARNING of a coordinator that fails, and doctor's line about it, hide it."""
        case = Case(shape, "redis")
        if _refusal(lambda: check_coordinator_url(case.url)) is not None:
            pytest.skip("refused before any message about a live coordinator")
        coordinator = Coordinator(case.url)
        try:
            with (
                caplog.at_level(logging.INFO, logger="gitjsonl"),
                pytest.raises(CoordinatorDown) as down,
            ):
                coordinator.call(lambda c: c._connect().ping())
            case.assert_hidden(caplog.text)
            case.assert_hidden(str(down.value))
            case.assert_hidden(format_checks([coordinator_check(coordinator.info("key"))]))
        finally:
            coordinator.close()

    def test_log_refuses_without_showing_it(self, shape: str, tmp_path: Any) -> None:
        """Log(coordinator=...) with a URL it refuses says why without the password."""
        case = Case(shape, "https")  # never a Redis URL: always refused
        with pytest.raises(ValueError, match="coordinator") as refused:
            Log(REPO, path=PATH, token="t" * 40, coordinator=case.url, budget_dir=tmp_path)
        case.assert_hidden(str(refused.value))

    def test_command_line_doctor(
        self,
        shape: str,
        localhub: Any,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`gitjsonl --coordinator URL doctor` prints nothing of the password, taken or not."""
        case = Case(shape, "redis")
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        main(["--repo", REPO, "--api-url", localhub.url, "--coordinator", case.url, "doctor"])
        out, err = capsys.readouterr()
        case.assert_hidden(out + err)


def _log_on(api_url: str, budget_dir: Any) -> Log:
    return Log(REPO, path=PATH, token="t" * 40, api_url=api_url, budget_dir=budget_dir)


@pytest.mark.parametrize("shape", list(SHAPES))
class TestApiUrls:
    def test_every_refusal_hides_it(self, shape: str, tmp_path: Any) -> None:
        """api_url= refused by check_api_url or Log() never quotes its password."""
        for scheme in ("https", "http", "ftp"):
            case = Case(shape, scheme)
            for text in (
                _refusal(lambda: check_api_url(case.url)),  # noqa: B023 - called at once
                _refusal(lambda: _log_on(case.url, tmp_path)),  # noqa: B023 - called at once
            ):
                assert text is not None, f"{case.url} was taken"
                case.assert_hidden(text)

    def test_command_line(
        self, shape: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gitjsonl --api-url URL` (or $GITHUB_API_URL) fails in one line without the password."""
        case = Case(shape, "https")
        monkeypatch.setenv("GITHUB_TOKEN", "t" * 40)
        assert main(["--repo", REPO, "--api-url", case.url, "doctor"]) != 0
        monkeypatch.setenv("GITHUB_API_URL", case.url)
        assert main(["--repo", REPO, "doctor"]) != 0
        out, err = capsys.readouterr()
        case.assert_hidden(out + err)
