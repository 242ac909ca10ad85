"""A log's settings: what a user may pass, what is refused at construction, and the environment."""

from __future__ import annotations

import inspect
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gitjsonl import AsyncLog, GithubLog, Identity, Log, Pacing, RetryPolicy
from gitjsonl._config import (
    DEFAULT_API_URL,
    LogOptions,
    check_api_url,
    check_branch,
    check_path,
    check_positive,
    check_repo,
)

#: Nothing listens on the discard port; a Log that connected at construction would fail loudly.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_API_URL", raising=False)


@pytest.fixture
def quiet_server() -> Iterator[tuple[str, socket.socket]]:
    """A listening socket that nobody should connect to, and its URL."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield f"http://127.0.0.1:{server.getsockname()[1]}", server


def make_log(**options: Any) -> Log:
    options.setdefault("path", "data/interactions")
    options.setdefault("api_url", NOWHERE)
    options.setdefault("pacing", None)
    return Log("owner/repo", **options)


class TestCheckRepo:
    @pytest.mark.parametrize(
        "repo",
        [
            "octocat/Hello-World",
            "a/b",
            "owner-1/repo.name_x",
            "o/.github",
            "a" * 39 + "/r",
            "o/" + "r" * 100,
        ],
    )
    def test_accepts_github_names(self, repo: str) -> None:
        """``owner/name`` with GitHub's characters and lengths is returned unchanged."""
        assert check_repo(repo) == repo

    @pytest.mark.parametrize(
        "repo",
        [
            "",
            "owner",
            "/name",
            "owner/",
            "a/b/c",
            "../x",
            "o/..",
            "o/.",
            "-o/r",
            "o r/x",
            "o/r name",
            "o\n/r",
            "o/r\n",
            "o/r\x00",
            "o/r\t",
            "a" * 40 + "/r",
            "o/" + "r" * 101,
        ],
    )
    def test_refuses_anything_else(self, repo: str) -> None:
        """Anything but exactly ``owner/name`` in GitHub's alphabet is a ``ValueError``."""
        with pytest.raises(ValueError, match="repo must be 'owner/name'"):
            check_repo(repo)

    @pytest.mark.parametrize("repo", [None, 3, b"o/r"])
    def test_refuses_non_strings(self, repo: object) -> None:
        """A repository that is not a string is a ``TypeError``."""
        with pytest.raises(TypeError, match="repo"):
            check_repo(repo)


class TestCheckPath:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("data/interactions", "data/interactions"),
            ("/data/interactions/", "data/interactions"),
            ("//logs", "logs"),
            ("a/.gitignore", "a/.gitignore"),
            ("a/.github/x", "a/.github/x"),
            ("ünï/cödé", "ünï/cödé"),
        ],
    )
    def test_accepts_paths_and_strips_outer_slashes(self, path: str, expected: str) -> None:
        """A path inside the repository comes back without leading or trailing ``/``."""
        assert check_path(path) == expected

    @pytest.mark.parametrize(
        "path",
        [
            "",
            "/",
            "///",
            "a\nb",
            "data/x\n\nGitjsonl-Batch: forged",
            "a\x00b",
            "a\x7fb",
            "..",
            "a/../b",
            "../a",
            ".",
            "a/./b",
            "a//b",
            ".git",
            "a/.git/b",
            ".GIT",
            "a/.Git/b",
            ".git.",
            "a/.git./b",
        ],
    )
    def test_refuses_paths_github_refuses(self, path: str) -> None:
        """Control characters, empty, ``.``, ``..`` and ``.git`` segments are a ``ValueError``."""
        with pytest.raises(ValueError, match="path must be a path inside the repository"):
            check_path(path)

    def test_names_the_argument(self) -> None:
        """The error names the argument it was given as (``legacy_path``)."""
        with pytest.raises(ValueError, match=r"^legacy_path must be"):
            check_path("a\nb", what="legacy_path")

    def test_refuses_non_strings(self) -> None:
        """A path that is not a string is a ``TypeError``."""
        with pytest.raises(TypeError, match="path must be a string"):
            check_path(None)


class TestCheckBranch:
    @pytest.mark.parametrize(
        "branch",
        [
            "main",
            "main#x",
            "issue#12",
            "feat%2Fy",
            "feat/y",
            "feat/-x",
            "fix/ünïcödé",
            "日本語",
            "a@b",
            "x-",
            "v1.0",
            "a.lock.b",
        ],
    )
    def test_accepts_what_git_accepts(self, branch: str) -> None:
        """Valid git branch names, ``#`` and ``%`` included, are kept (the client encodes them)."""
        assert check_branch(branch) == branch

    @pytest.mark.parametrize(
        "branch",
        [
            "",
            "@",
            "a..b",
            "a b",
            "a\tb",
            "a\nb",
            "a\x7fb",
            "a~b",
            "a^b",
            "a:b",
            "a?b",
            "a*b",
            "a[b",
            "a\\b",
            "a@{b",
            ".hidden",
            "x/.hidden",
            "x.lock",
            "x.lock/y",
            "x/",
            "x.",
            "/a",
            "a//b",
            "-x",
        ],
    )
    def test_refuses_what_git_refuses(self, branch: str) -> None:
        """Names ``git check-ref-format --branch`` refuses are a ``ValueError``."""
        with pytest.raises(ValueError, match="not a valid git branch name"):
            check_branch(branch)

    def test_refuses_head(self) -> None:
        """``HEAD`` is not a branch name git accepts."""
        with pytest.raises(ValueError, match="not a valid git branch name"):
            check_branch("HEAD")

    def test_refuses_non_strings(self) -> None:
        """A branch that is not a string is a ``TypeError``."""
        with pytest.raises(TypeError, match="branch must be a string"):
            check_branch(1)


class TestCheckPositive:
    @pytest.mark.parametrize(("value", "integer"), [(1, True), (1, False), (0.001, False)])
    def test_accepts_positive_numbers(self, value: float, integer: bool) -> None:
        """A finite number above zero passes (an int where ``integer``)."""
        check_positive("size", value, integer=integer)

    @pytest.mark.parametrize("value", [0, -1, -0.5, 0.0, float("nan"), float("inf"), -float("inf")])
    def test_refuses_zero_negative_and_non_finite(self, value: float) -> None:
        """Zero, negatives, NaN and infinities are a ``ValueError`` naming the argument."""
        with pytest.raises(ValueError, match="flush_interval must be positive"):
            check_positive("flush_interval", value)

    @pytest.mark.parametrize("value", [True, False, "1", None, [1]])
    def test_refuses_non_numbers(self, value: object) -> None:
        """Booleans, strings and other non-numbers are a ``TypeError`` naming the argument."""
        with pytest.raises(TypeError, match="timeout must be a number"):
            check_positive("timeout", value)

    @pytest.mark.parametrize("value", [1.0, 2.5])
    def test_integer_refuses_floats(self, value: float) -> None:
        """Where an integer is required, a float (even a whole one) is a ``TypeError``."""
        with pytest.raises(TypeError, match="segment_bytes must be an integer"):
            check_positive("segment_bytes", value, integer=True)


class TestCheckApiUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            (DEFAULT_API_URL, DEFAULT_API_URL),
            ("https://api.github.com/", DEFAULT_API_URL),
            ("https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3"),
            ("http://127.0.0.1:9//", "http://127.0.0.1:9"),
        ],
    )
    def test_accepts_http_urls_without_trailing_slash(self, url: str, expected: str) -> None:
        """An http(s) base URL is returned with its trailing ``/`` removed."""
        assert check_api_url(url) == expected

    @pytest.mark.parametrize(
        "url",
        [
            "",
            "api.github.com",
            "ftp://api.github.com",
            "file:///etc/passwd",
            "https://",
            "https://api.github.com?x=1",
            "https://api.github.com/#frag",
            "https://api.github.com/\n",
            "https://api.github.com/\x00",
        ],
    )
    def test_refuses_other_urls(self, url: str) -> None:
        """No scheme or host, another scheme, a query, a fragment or a control char is refused."""
        with pytest.raises(ValueError, match="api_url"):
            check_api_url(url)

    @pytest.mark.parametrize("url", ["https://ghe.example.com:abc", "http://127.0.0.1:99999"])
    def test_refuses_bad_ports(self, url: str) -> None:
        """A port that is not a number from 0 to 65535 is a ``ValueError`` naming ``api_url``."""
        with pytest.raises(ValueError, match="api_url"):
            check_api_url(url)

    def test_refuses_non_strings(self) -> None:
        """An API URL that is not a string is a ``TypeError``."""
        with pytest.raises(TypeError, match="api_url must be a string"):
            check_api_url(b"https://api.github.com")


class TestIdentity:
    def test_accepts_a_name_and_an_email(self) -> None:
        """An ordinary author keeps its fields; the date defaults to GitHub's choice."""
        who = Identity("Ada Lovelace", "ada@example.com")
        assert (who.name, who.email, who.date) == ("Ada Lovelace", "ada@example.com", None)

    @pytest.mark.parametrize(
        ("name", "email"),
        [
            ("", "a@b.c"),
            ("   ", "a@b.c"),
            ("Ada", ""),
            ("Ada\nEvil", "a@b.c"),
            ("Ada", "a@b.c\n"),
            ("Ada\x00", "a@b.c"),
            ("Ada <x@y.z>", "a@b.c"),
            ("Ada", "<a@b.c>"),
            ("Ada>", "a@b.c"),
        ],
    )
    def test_refuses_what_would_corrupt_a_commit_header(self, name: str, email: str) -> None:
        """Empty values, newlines, control characters, ``<`` and ``>`` are a ``ValueError``."""
        with pytest.raises(ValueError, match="Identity"):
            Identity(name, email)


class TestLogConfig:
    @pytest.mark.parametrize(
        ("options", "error", "argument"),
        [
            ({"flush_interval": 0}, ValueError, "flush_interval"),
            ({"flush_interval": -1.0}, ValueError, "flush_interval"),
            ({"flush_interval": float("nan")}, ValueError, "flush_interval"),
            ({"timeout": -1}, ValueError, "timeout"),
            ({"timeout": 0}, ValueError, "timeout"),
            ({"on_full": "nope"}, ValueError, "on_full"),
            ({"segment_bytes": 0}, ValueError, "segment_bytes"),
            ({"segment_bytes": 1.5}, TypeError, "segment_bytes"),
            ({"batch_bytes": 0}, ValueError, "batch_bytes"),
            ({"max_batch_bytes": -1}, ValueError, "max_batch_bytes"),
            ({"max_record_bytes": 0}, ValueError, "max_record_bytes"),
            ({"max_pending_bytes": 0}, ValueError, "max_pending_bytes"),
            ({"pacing": "fast"}, TypeError, "pacing"),
            ({"pacing": {"per_minute": 80}}, TypeError, "pacing"),
            ({"retry": {"max_attempts": 3}}, TypeError, "retry"),
            ({"retry": None}, TypeError, "retry"),
            ({"exit_grace": -1}, ValueError, "exit_grace"),
            ({"exit_grace": "10"}, TypeError, "exit_grace"),
            ({"author": "Ada <ada@example.com>"}, TypeError, "author"),
            ({"committer": ("Ada", "ada@example.com")}, TypeError, "committer"),
            ({"token": "ghp_x\nX-Evil: 1"}, ValueError, "token"),
            ({"path": "data/../x"}, ValueError, "path"),
            ({"path": "data\nx"}, ValueError, "path"),
            ({"legacy_path": "old\n.jsonl"}, ValueError, "legacy_path"),
            ({"branch": "a..b"}, ValueError, "branch"),
            ({"branch": ""}, ValueError, "branch"),
            ({"api_url": "ftp://example.com"}, ValueError, "api_url"),
        ],
    )
    def test_bad_argument_raises_at_construction_naming_it(
        self, options: dict[str, Any], error: type[Exception], argument: str
    ) -> None:
        """A bad argument raises in ``Log(...)`` with its name, before any thread is started."""
        threads = threading.active_count()
        with pytest.raises(error, match=argument):
            make_log(**options)
        assert threading.active_count() == threads

    @pytest.mark.parametrize("repo", ["nope", "a/b/c", "../x", "o/r\n"])
    def test_bad_repo_raises_at_construction(self, repo: str) -> None:
        """A repository that is not ``owner/name`` raises in ``Log(...)`` and starts no thread."""
        threads = threading.active_count()
        with pytest.raises(ValueError, match="repo"):
            Log(repo, path="data/interactions", api_url=NOWHERE, pacing=None)
        assert threading.active_count() == threads

    def test_construction_sends_no_request(self, quiet_server: tuple[str, socket.socket]) -> None:
        """Building and closing an idle ``Log`` never connects to the API."""
        url, server = quiet_server
        make_log(api_url=url, token="t").close()
        with pytest.raises(BlockingIOError):
            server.accept()

    def test_settings_are_kept_normalised(self, no_env_token: None) -> None:
        """The config holds the normalised values: stripped path, trimmed URL, float intervals."""
        log = make_log(path="/data/x/", api_url=NOWHERE + "/", flush_interval=2, branch="main#x")
        try:
            config = log.config
            assert (config.path, config.api_url, config.branch) == ("data/x", NOWHERE, "main#x")
            assert config.flush_interval == 2.0
            assert isinstance(config.flush_interval, float)
            assert config.legacy_path == "data/x.jsonl"
            assert config.token is None
        finally:
            log.close()

    def test_token_comes_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ``token=``, ``$GITHUB_TOKEN`` is used, and it never shows in the repr."""
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_env_secret")
        log = make_log()
        try:
            assert log.config.token == "ghp_from_env_secret"
            assert "ghp_from_env_secret" not in repr(log.config)
            assert "ghp_from_env_secret" not in repr(log)
        finally:
            log.close()

    def test_given_token_wins_over_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An explicit ``token=`` is used instead of ``$GITHUB_TOKEN``, and is hidden too."""
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_env")
        log = make_log(token="ghp_given_secret")
        try:
            assert log.config.token == "ghp_given_secret"
            assert "ghp_given_secret" not in repr(log.config)
        finally:
            log.close()

    def test_empty_env_token_means_none(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An empty ``$GITHUB_TOKEN`` counts as no token."""
        monkeypatch.setenv("GITHUB_TOKEN", "")
        log = make_log()
        try:
            assert log.config.token is None
        finally:
            log.close()

    def test_api_url_comes_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ``api_url=``, ``$GITHUB_API_URL`` is used (validated, trailing ``/`` removed)."""
        monkeypatch.setenv("GITHUB_API_URL", NOWHERE + "/api/v3/")
        log = make_log(api_url=None)
        try:
            assert log.config.api_url == NOWHERE + "/api/v3"
        finally:
            log.close()

    def test_api_url_defaults_to_github(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ``api_url=`` or ``$GITHUB_API_URL``, GitHub's own API is used."""
        monkeypatch.delenv("GITHUB_API_URL", raising=False)
        log = make_log(api_url=None)
        try:
            assert log.config.api_url == DEFAULT_API_URL
        finally:
            log.close()

    def test_bad_env_api_url_raises_at_construction(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A ``$GITHUB_API_URL`` that is not an http(s) URL is refused like an argument."""
        monkeypatch.setenv("GITHUB_API_URL", "ftp://example.com")
        with pytest.raises(ValueError, match="api_url"):
            make_log(api_url=None)

    def test_config_is_frozen(self) -> None:
        """A log's settings cannot be changed after construction."""
        log = make_log()
        try:
            with pytest.raises(AttributeError):
                log.config.flush_interval = 0.0  # type: ignore[misc]
        finally:
            log.close()


def every_option() -> dict[str, Any]:
    """A value for every ``LogOptions`` key (no token or auth: the wrappers differ there)."""
    return {
        "path": "data/x",
        "branch": "dev",
        "api_url": NOWHERE,
        "segment_bytes": 12345,
        "flush_interval": 3.0,
        "batch_bytes": 1000,
        "max_batch_bytes": 2000,
        "max_record_bytes": 3000,
        "default": str,
        "max_pending_bytes": 4000,
        "on_full": "drop",
        "pacing": Pacing(),
        "retry": RetryPolicy(max_attempts=2),
        "author": Identity("A", "a@example.com"),
        "committer": Identity("C", "c@example.com"),
        "skip_ci": False,
        "legacy_path": None,
        "timeout": 7.0,
        "clock": lambda: 0.0,
        "sleep": lambda seconds: None,
        "spool_dir": None,
        "spool_fsync": True,
        "shutdown_grace": 1.0,  # exit_grace, its older name, may not be given with it
        "allow_public": True,
        "budget_dir": None,
        "allow_insecure_http": True,
        "coordinator": None,
    }


class TestLogOptions:
    def test_keys_are_logs_keyword_only_parameters(self) -> None:
        """``LogOptions`` names exactly ``Log.__init__``'s keyword-only parameters."""
        parameters = inspect.signature(Log.__init__).parameters.values()
        keyword_only = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert set(LogOptions.__optional_keys__) | set(LogOptions.__required_keys__) == (
            keyword_only
        )
        assert set(every_option()) | {"token", "auth", "exit_grace"} == keyword_only

    def test_async_log_accepts_every_option(self) -> None:
        """``AsyncLog`` passes every ``Log`` keyword argument through to its ``Log``."""
        log = AsyncLog("owner/repo", token="t", **every_option())
        try:
            assert log.log.config.segment_bytes == 12345
            assert log.log.config.on_full == "drop"
            assert log.log.config.retry == RetryPolicy(max_attempts=2)
        finally:
            log.log.close()

    def test_github_log_accepts_every_option(self) -> None:
        """``GithubLog`` passes every ``Log`` keyword argument but ``token`` to its ``Log``."""
        log = GithubLog("t", "owner/repo", **every_option())
        assert log.log is not None
        try:
            assert log.log.config.token == "t"
            assert log.log.config.max_pending_bytes == 4000
            assert log.log.config.branch == "dev"
        finally:
            log.log.close()

    def test_wrappers_validate_like_log(self) -> None:
        """A bad argument to a wrapper is refused by ``Log``'s validation, naming it."""
        with pytest.raises(ValueError, match="flush_interval"):
            AsyncLog("owner/repo", path="x", api_url=NOWHERE, pacing=None, flush_interval=0)
        with pytest.raises(ValueError, match="timeout"):
            GithubLog("t", "owner/repo", api_url=NOWHERE, pacing=None, timeout=-1)
