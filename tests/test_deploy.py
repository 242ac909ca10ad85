"""Deployment realities (issue 13) against localhub: public repositories, protected branches,
auth= and GitHub Apps, ``gitjsonl doctor`` / ``Log.check()``, and secrets that never leak.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import string
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import github
import pytest

import gitjsonl
from gitjsonl import (
    AuthenticationError,
    GitJsonlError,
    GitJsonlHandler,
    Log,
    ProtectedBranch,
    PublicRepository,
)
from gitjsonl._cli import main
from gitjsonl._doctor import format_checks, passed
from gitjsonl._github import Credentials, GitHubRepo
from gitjsonl.testing import Fault, LocalHub

from .helpers import PATH, REPO, committed_records, make_log, rsa_key_pair

Factory = Callable[..., LocalHub]
APP_ID = 4242
INSTALLATION_ID = 77
SIDE_BRANCH = "gitjsonl-log"


@pytest.fixture
def hub(localhub_factory: Factory) -> LocalHub:
    """A hub whose repository has a first commit on main (so that main exists)."""
    return localhub_factory(repos=(REPO,), initial_commit=True)


@pytest.fixture
def public_hub(localhub_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> LocalHub:
    """A hub whose repository (with a first commit) is public; its token in GITHUB_TOKEN."""
    hub = localhub_factory(repos=(REPO,), initial_commit=True, public=(REPO,))
    monkeypatch.setenv("GITHUB_TOKEN", hub.token)
    return hub


@pytest.fixture(autouse=True)
def no_credentials_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no token or App from the machine running the tests."""
    for name in (
        "GITHUB_TOKEN",
        "GITHUB_APP_ID",
        "GITHUB_APP_PRIVATE_KEY_FILE",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_REPOSITORY",
        "GITHUB_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def close_quietly(log: Log) -> None:
    """Close a log whose records cannot be committed (close() raises their error again)."""
    with contextlib.suppress(GitJsonlError):
        log.close(timeout=5)


@contextlib.contextmanager
def failing_log(hub: LocalHub, **kwargs: Any) -> Iterator[Log]:
    log = make_log(hub, **kwargs)
    try:
        yield log
    finally:
        close_quietly(log)


def writes(hub: LocalHub, start: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in hub.requests[start:] if r.method in ("POST", "PATCH")]


def patches(hub: LocalHub, start: int = 0) -> int:
    return sum(1 for r in hub.requests[start:] if r.method == "PATCH")


def run_cli(hub: LocalHub, *args: str, repo: str = REPO) -> int:
    return main(["--repo", repo, "--api-url", hub.url, *args])


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("gitjsonl: error:")]


def app_log(hub: LocalHub, auth: object) -> Log:
    """A Log on the hub with App credentials (make_log would add the hub's token)."""
    return Log(REPO, path=PATH, api_url=hub.url, auth=auth, pacing=None, flush_interval=0.05)


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return rsa_key_pair()


# -- public repositories -----------------------------------------------------------------


class TestPublicRepository:
    def test_a_public_repository_is_refused_before_anything_is_written(
        self, public_hub: LocalHub
    ) -> None:
        """flush() raises PublicRepository; no POST or PATCH was sent; the records stay pending."""
        with failing_log(public_hub) as log:
            log.append({"id": 1})
            log.append({"id": 2})
            with pytest.raises(PublicRepository) as raised:
                log.flush(timeout=10)
            assert log.stats().pending == 2
        assert writes(public_hub) == []
        message = str(raised.value)
        assert f"{REPO} is public" in message
        assert "published" in message
        assert "allow_public=True" in message
        assert isinstance(raised.value, gitjsonl.PermissionDenied)

    def test_allow_public_writes(self, public_hub: LocalHub) -> None:
        """allow_public=True: the records are committed to the public repository."""
        with make_log(public_hub, allow_public=True) as log:
            log.append({"id": 1})
            log.flush(timeout=10)
        assert committed_records(public_hub) == [{"id": 1}]

    def test_private_is_the_default(self, hub: LocalHub) -> None:
        """localhub repositories are private and a Log refuses public ones unless told."""
        with make_log(hub) as log:
            assert log.config.allow_public is False
            log.append({"id": 1})
            log.flush(timeout=10)
        assert committed_records(hub) == [{"id": 1}]

    def test_a_repository_made_public_later_is_refused_by_a_new_log(self, hub: LocalHub) -> None:
        """Visibility is read by each Log before its first write."""
        with make_log(hub) as log:
            log.append({"id": 1})
        hub.set_visibility(REPO, "public")
        with failing_log(hub) as log:
            log.append({"id": 2})
            with pytest.raises(PublicRepository):
                log.flush(timeout=10)
        assert committed_records(hub) == [{"id": 1}]

    def test_cli_append_refuses_a_public_repository(
        self, public_hub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --allow-public: exit 3, ending on an error line saying why; nothing written."""
        assert run_cli(public_hub, "append", '{"id": 1}') == 3  # could not run
        err = capsys.readouterr().err
        last = err.splitlines()[-1]
        assert last.startswith("gitjsonl: error: owner/repo is public")
        assert "--allow-public" in last
        assert "Traceback" not in err
        assert writes(public_hub) == []

    def test_cli_append_refusal_is_one_line(
        self, public_hub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The refusal is one line on standard error, as every CLI error is."""
        assert run_cli(public_hub, "append", '{"id": 1}') == 3
        assert len(capsys.readouterr().err.splitlines()) == 1

    def test_cli_append_with_allow_public_writes(self, public_hub: LocalHub) -> None:
        """--allow-public: exit 0 and the record is committed."""
        assert run_cli(public_hub, "--allow-public", "append", '{"id": 1}') == 0
        assert committed_records(public_hub) == [{"id": 1}]


# -- protected branches ------------------------------------------------------------------

KINDS = ["branch_protection", "ruleset"]


class TestProtectedBranch:
    @pytest.mark.parametrize("kind", KINDS)
    def test_flush_raises_naming_the_branch_and_suggesting_branch(
        self, hub: LocalHub, kind: str
    ) -> None:
        """ProtectedBranch names the branch and suggests branch=; the records stay pending."""
        hub.protect_branch(REPO, "main", kind=kind)
        with failing_log(hub) as log:
            log.append({"id": 1})
            with pytest.raises(ProtectedBranch) as raised:
                log.flush(timeout=10)
            assert log.stats().pending == 1
        message = str(raised.value)
        assert "'main'" in message
        assert "protected" in message
        assert "branch='gitjsonl-log'" in message
        assert hub.git(REPO, "rev-list", "--count", "main").strip() == "1"

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_protected_branch_is_not_retried(self, hub: LocalHub, kind: str) -> None:
        """One refused ref update per flush, and the flusher does not spin on it afterwards."""
        hub.protect_branch(REPO, "main", kind=kind)
        # The real clock and sleep: the flusher's own failure backoff is what is measured.
        with failing_log(hub, sleep=None, clock=time.monotonic) as log:
            log.append({"id": 1})
            with pytest.raises(ProtectedBranch):
                log.flush(timeout=10)
            assert patches(hub) == 1
            start = len(hub.requests)
            time.sleep(1.0)
            assert patches(hub, start) <= 2
            assert log.stats().pending == 1

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_branch_of_its_own_writes(self, hub: LocalHub, kind: str) -> None:
        """branch='gitjsonl-log' is created from the protected default branch and written."""
        hub.protect_branch(REPO, "main", kind=kind)
        with make_log(hub, branch=SIDE_BRANCH) as log:
            log.append({"id": 1})
            log.flush(timeout=10)
        assert committed_records(hub, ref=SIDE_BRANCH) == [{"id": 1}]
        main_head = hub.git(REPO, "rev-parse", "main").strip()
        parents = hub.git(REPO, "rev-list", "--parents", "-n", "1", SIDE_BRANCH).split()
        assert parents[1:] == [main_head]


# -- auth= -------------------------------------------------------------------------------


class TestAuth:
    def test_token_and_auth_together_are_refused(self, hub: LocalHub) -> None:
        """token= and auth= at once: ValueError saying to give one."""
        with pytest.raises(ValueError, match="not both"):
            Log(REPO, path=PATH, api_url=hub.url, token="t", auth=github.Auth.Token("t"))

    def test_auth_must_be_a_pygithub_credentials_object(self, hub: LocalHub) -> None:
        """auth="a string": TypeError naming what was given."""
        with pytest.raises(TypeError, match="str"):
            Log(REPO, path=PATH, api_url=hub.url, auth="ghp_not_an_auth_object")

    def test_app_installation_tokens_refresh_and_nothing_is_lost(
        self,
        hub: LocalHub,
        app_key: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Appending across several installation-token lifetimes commits every record once."""
        private, public = app_key
        hub.register_app(APP_ID, public, INSTALLATION_ID, token_lifetime=2.5)
        # PyGithub refreshes 20 s before expiry; scaled down with the token's lifetime.
        monkeypatch.setattr(
            github.Auth, "TOKEN_REFRESH_THRESHOLD_TIMEDELTA", dt.timedelta(seconds=1)
        )
        auth = github.Auth.AppAuth(APP_ID, private).get_installation_auth(INSTALLATION_ID)
        count = 0
        with app_log(hub, auth) as log:
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                log.append({"id": count})
                count += 1
                if count % 5 == 0:
                    log.flush(timeout=10)
                time.sleep(0.05)
        assert [r["id"] for r in committed_records(hub)] == list(range(count))
        used = {r.token for r in hub.requests if r.token and r.token.startswith("ghs_")}
        assert len(used) >= 2
        assert not [r for r in hub.requests if r.status == 401]

    def test_a_log_on_an_app_installation_token_end_to_end(
        self, hub: LocalHub, app_key: tuple[str, str]
    ) -> None:
        """GitHub says nothing of permissions to an App token; append, flush and tail still work."""
        private, public = app_key
        hub.register_app(APP_ID, public, INSTALLATION_ID)
        auth = github.Auth.AppAuth(APP_ID, private).get_installation_auth(INSTALLATION_ID)
        with app_log(hub, auth) as log:
            log.append({"id": 1})
            log.append({"id": 2})
            log.flush(timeout=10)
            assert log.tail(5) == [{"id": 1}, {"id": 2}]
        repo = GitHubRepo(REPO, Credentials(hub.url, auth=auth))
        try:
            assert repo.repository().can_push is None
        finally:
            repo.close()
        assert committed_records(hub) == [{"id": 1}, {"id": 2}]

    def test_an_expired_personal_token_fails_and_keeps_the_records(self, hub: LocalHub) -> None:
        """After expires_in: flush() raises AuthenticationError; the records stay pending."""
        hub.add_token("ghp_short_lived", expires_in=1.0)
        with failing_log(hub, token="ghp_short_lived") as log:
            log.append({"id": 1})
            log.flush(timeout=10)
            time.sleep(1.1)
            log.append({"id": 2})
            with pytest.raises(AuthenticationError):
                log.flush(timeout=10)
            assert log.stats().pending == 1
        assert committed_records(hub) == [{"id": 1}]


# -- CLI: GitHub App credentials ---------------------------------------------------------


def app_environment(
    hub: LocalHub, app_key: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Register an App on the hub and describe it in the three environment variables."""
    private, public = app_key
    hub.register_app(APP_ID, public, INSTALLATION_ID)
    key_file = tmp_path / "app.pem"
    key_file.write_text(private)
    monkeypatch.setenv("GITHUB_APP_ID", str(APP_ID))
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_FILE", str(key_file))
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", str(INSTALLATION_ID))


class TestCliAppCredentials:
    def test_app_variables_let_the_cli_append(
        self,
        hub: LocalHub,
        app_key: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """GITHUB_APP_ID, _PRIVATE_KEY_FILE and _INSTALLATION_ID stand in for GITHUB_TOKEN."""
        app_environment(hub, app_key, monkeypatch, tmp_path)
        assert run_cli(hub, "append", '{"id": 1}') == 0
        assert committed_records(hub) == [{"id": 1}]
        assert "appended 1 record" in capsys.readouterr().err
        assert any(r.token and r.token.startswith("ghs_") for r in hub.requests)

    def test_doctor_names_app_credentials(
        self,
        hub: LocalHub,
        app_key: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """doctor with the App variables: ✓ credentials naming the App's installation auth, and
        · push, as GitHub tells an installation token nothing of its permissions."""
        app_environment(hub, app_key, monkeypatch, tmp_path)
        assert run_cli(hub, "doctor") == 0
        out = capsys.readouterr().out
        assert "✓ credentials: AppInstallationAuth (PyGithub credentials), accepted" in out
        assert "GitHub did not say" in line(out, "·", "push")

    @pytest.mark.parametrize(
        "given",
        [
            ("GITHUB_APP_ID",),
            ("GITHUB_APP_PRIVATE_KEY_FILE",),
            ("GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID"),
            ("GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_INSTALLATION_ID"),
        ],
    )
    def test_some_app_variables_are_a_usage_error(
        self,
        hub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        given: tuple[str, ...],
    ) -> None:
        """Only some of the three set: exit 2, one error line naming the missing ones."""
        key_file = tmp_path / "app.pem"
        key_file.write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
        values = {
            "GITHUB_APP_ID": str(APP_ID),
            "GITHUB_APP_PRIVATE_KEY_FILE": str(key_file),
            "GITHUB_APP_INSTALLATION_ID": str(INSTALLATION_ID),
        }
        for name in given:
            monkeypatch.setenv(name, values[name])
        assert run_cli(hub, "append", '{"id": 1}') == 2
        err = capsys.readouterr().err
        (line,) = error_lines(err)
        for name in set(values) - set(given):
            assert name in line.split("missing:")[1]
        assert "secret" not in err
        assert writes(hub) == []


# -- doctor and Log.check() --------------------------------------------------------------


def doctor(hub: LocalHub, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = run_cli(hub, *args, "doctor")
    return status, capsys.readouterr().out


def line(out: str, mark: str, name: str) -> str:
    """The checklist line ``<mark> <name>: ...``; fails the test when it is not there."""
    found = [text for text in out.splitlines() if text.startswith(f"{mark} {name}:")]
    assert found, f"no '{mark} {name}' line in:\n{out}"
    return found[0]


def advice_after(out: str, mark: str, name: str) -> str:
    lines = out.splitlines()
    at = lines.index(line(out, mark, name))
    assert lines[at + 1].startswith("    → ")
    return lines[at + 1]


class TestDoctor:
    def test_a_good_set_up_passes(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 0, a ✓ line for every check, "ready to write"."""
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        status, out = doctor(hub, capsys)
        assert status == 0
        for name in ("credentials", "repository", "push", "visibility", "branch", "protection"):
            line(out, "✓", name)
        line(out, "✓", "rate limit")
        line(out, "✓", "clock")
        line(out, "·", "pacing")
        assert "✗" not in out
        assert out.splitlines()[-1] == "ready to write"

    def test_nothing_is_written(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """doctor only reads, even for a branch that does not exist yet."""
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        status, out = doctor(hub, capsys, "--branch", SIDE_BRANCH)
        assert status == 0
        assert "gitjsonl-log does not exist yet" in line(out, "✓", "branch")
        assert [r.method for r in hub.requests if r.method != "GET"] == []

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_protected_branch_fails(
        self,
        hub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        kind: str,
    ) -> None:
        """✗ protection, advising a branch of its own; exit 1."""
        hub.protect_branch(REPO, "main", kind=kind)
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        status, out = doctor(hub, capsys)
        assert status == 1
        assert "main is protected" in line(out, "✗", "protection")
        assert "--branch gitjsonl-log" in advice_after(out, "✗", "protection")
        assert out.splitlines()[-1] == "not ready: fix what is marked ✗"

    def test_a_protected_branch_is_fine_with_a_branch_of_its_own(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--branch gitjsonl-log on a repository whose main is protected: exit 0."""
        hub.protect_branch(REPO, "main")
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        status, _ = doctor(hub, capsys, "--branch", SIDE_BRANCH)
        assert status == 0

    def test_a_public_repository_fails_unless_allowed(
        self, public_hub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """✗ visibility advising --allow-public; with --allow-public, exit 0."""
        status, out = doctor(public_hub, capsys)
        assert status == 1
        assert "public" in line(out, "✗", "visibility")
        assert "--allow-public" in advice_after(out, "✗", "visibility")
        status, out = doctor(public_hub, capsys, "--allow-public")
        assert status == 0
        line(out, "✓", "visibility")

    def test_a_read_only_token_fails_push(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A token that may read but not push (permissions.push false): ✗ push; exit 1."""
        hub.add_token("ghp_read_only", write=False)
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_read_only")
        status, out = doctor(hub, capsys)
        assert status == 1
        line(out, "✓", "credentials")
        assert "read but not push" in line(out, "✗", "push")
        assert "Contents: Read and write" in advice_after(out, "✗", "push")

    def test_a_missing_repository_fails(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A repository that does not exist: ✗ repository with advice; exit 1."""
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        status = run_cli(hub, "doctor", repo="owner/missing")
        out = capsys.readouterr().out
        assert status == 1
        assert "owner/missing" in line(out, "✗", "repository")
        assert "Repository access" in advice_after(out, "✗", "repository")

    def test_a_bad_token_fails(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A token GitHub refuses: ✗ credentials with its kind and advice; exit 1."""
        hub.add_token("ghp_the_good_one")
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_a_wrong_one")
        status, out = doctor(hub, capsys)
        assert status == 1
        credentials = line(out, "✗", "credentials")
        assert "classic personal access token, refused" in credentials
        assert "Bad credentials" in credentials
        assert "new one" in advice_after(out, "✗", "credentials")
        assert "ghp_a_wrong_one" not in out

    def test_no_token_fails(self, hub: LocalHub, capsys: pytest.CaptureFixture[str]) -> None:
        """No token at all: ✗ credentials "no token", advising GITHUB_TOKEN; exit 1."""
        status, out = doctor(hub, capsys)
        assert status == 1
        assert "no token" in line(out, "✗", "credentials")
        assert "GITHUB_TOKEN" in advice_after(out, "✗", "credentials")

    def test_clock_skew_shows_but_is_not_required(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The server's Date two minutes ahead: ✗ clock with advice, exit 0 all the same."""
        hub.clock_skew = 120
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        status, out = doctor(hub, capsys)
        assert status == 0
        clock = line(out, "✗", "clock")
        assert "-120 s" in clock or "-119 s" in clock
        assert "NTP" in advice_after(out, "✗", "clock")

    def test_log_check_returns_the_same_checks(
        self, hub: LocalHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Log.check() lists the checks doctor prints, with the same marks."""
        hub.protect_branch(REPO, "main")
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        _, out = doctor(hub, capsys)
        printed = [text.split(":")[0] for text in out.splitlines()[1:-1] if text[:1] in "✓✗·"]
        with make_log(hub, pacing=gitjsonl.Pacing()) as log:
            checks = log.check()
            assert log.stats().pending == 0
        listed = [text.split(":")[0] for text in format_checks(checks).splitlines()]
        assert [text for text in listed if text[:1] in "✓✗·"] == printed
        assert not passed(checks)
        assert [r.method for r in hub.requests if r.method != "GET"] == []


# -- secrets never leak ------------------------------------------------------------------


class Capture(logging.Handler):
    """Every record, at every level, from every logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[str]:
        for record in self.records:
            yield record.getMessage()
            yield repr(record.args)
            yield str(record.msg)
            if record.exc_info and record.exc_info[1] is not None:
                yield "".join(traceback.format_exception(*record.exc_info))


@pytest.fixture
def capture_everything() -> Iterator[Capture]:
    """A DEBUG handler on the root logger, so PyGithub's and urllib3's records are seen too.

    PyGithub sets its own logger to INFO on import; it is lowered to DEBUG, as
    ``github.enable_console_debug_logging()`` would.
    """
    root, pygithub = logging.getLogger(), logging.getLogger("github")
    levels = root.level, pygithub.level
    handler = Capture()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    pygithub.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        pygithub.setLevel(levels[1])


def distinctive_token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))


def chained(exc: BaseException) -> Iterator[BaseException]:
    """An exception and every exception it was raised from or during."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class TestSecretsNeverLeak:
    def test_a_planted_token_appears_nowhere(
        self,
        hub: LocalHub,
        tmp_path: Path,
        capture_everything: Capture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Logs at DEBUG, reprs, errors, the spool, commits and CLI --debug output: no token."""
        secret = distinctive_token()
        wrong = distinctive_token()  # refused by the hub: it reaches GitHub, then a 401
        hub.add_token(secret)
        hub.add_token("handler-token")
        texts: list[str] = []

        def record_error(exc: BaseException) -> None:
            for each in chained(exc):
                texts.extend([str(each), repr(each)])
            texts.append("".join(traceback.format_exception(exc)))

        shipped = make_log(hub, token="handler-token", path="data/app-logs")
        app_logger = logging.getLogger("deploy-test-app")
        handler = GitJsonlHandler(shipped)
        app_logger.addHandler(handler)
        spool = tmp_path / "spool"
        try:
            with make_log(hub, token=secret, spool_dir=spool) as log:
                texts.extend([repr(log), repr(log.config), str(log.config)])
                for i in range(5):
                    log.append({"id": i})
                    app_logger.info("appended %d with %s", i, log)
                log.flush(timeout=10)
                hub.add_fault(Fault(method="PATCH", path=".*/git/refs/.*", status=502))
                hub.add_fault(Fault(method="POST", path=".*/git/trees", action="drop"))
                log.append({"id": 5})
                log.flush(timeout=10)
                hub.add_fault(Fault(method="POST", path=".*/git/trees", status=403, times=None))
                log.append({"id": 6})
                with pytest.raises(GitJsonlError) as forbidden:
                    log.flush(timeout=10)
                record_error(forbidden.value)
                hub.clear_faults()
                log.flush(timeout=10)
                texts.append(repr(log.stats()))
                texts.extend(format_checks(log.check()).splitlines())
            with failing_log(hub, token=secret, repo="owner/missing") as missing:
                missing.append({"id": 1})
                with pytest.raises(GitJsonlError) as not_found:
                    missing.flush(timeout=10)
                record_error(not_found.value)
            with failing_log(hub, token=wrong) as refused:
                refused.append({"id": 1})
                with pytest.raises(AuthenticationError) as bad:
                    refused.flush(timeout=10)
                record_error(bad.value)
                texts.extend(format_checks(refused.check()).splitlines())
        finally:
            app_logger.removeHandler(handler)
            shipped.close(timeout=10)

        token_file = tmp_path / "token"
        token_file.write_text(secret + "\n")
        capsys.readouterr()
        assert run_cli(hub, "--token-file", str(token_file), "--debug", "append", '{"id": 7}') == 0
        assert run_cli(hub, "--token-file", str(token_file), "--debug", "doctor") == 0
        assert run_cli(hub, "--token-file", str(token_file), "--debug", "tail", "-n", "3") == 0
        with pytest.raises(GitJsonlError) as cli_failure:
            run_cli(hub, "--token-file", str(token_file), "--debug", "tail", repo="owner/missing")
        record_error(cli_failure.value)
        output = capsys.readouterr()

        places: dict[str, str] = {
            "log records": "\n".join(capture_everything.texts()),
            "reprs and errors": "\n".join(texts),
            "spool": "\n".join(
                f.read_bytes().decode("utf-8", "replace") for f in spool.rglob("*") if f.is_file()
            ),
            "commits": hub.git(REPO, "log", "--all", "-p", "--format=%H%n%an %ae%n%cn %ce%n%B"),
            "cli stdout": output.out,
            "cli stderr": output.err,
        }
        assert capture_everything.records, "nothing was logged: the test would prove nothing"
        assert any(r.name.startswith("github") for r in capture_everything.records)
        assert any(r.name.startswith("urllib3") for r in capture_everything.records)
        assert places["spool"], "no spool was written"
        assert "app-logs" in places["commits"]
        for token in (secret, wrong):
            leaked = [where for where, text in places.items() if token in text]
            assert leaked == []
        assert [r["id"] for r in committed_records(hub)] == list(range(8))

    @staticmethod
    def app_run(hub: LocalHub, app_key: tuple[str, str]) -> tuple[set[str], set[str], list[str]]:
        """Append and flush with App credentials: (installation tokens, JWTs, reprs)."""
        private, public = app_key
        hub.register_app(APP_ID, public, INSTALLATION_ID)
        auth = github.Auth.AppAuth(APP_ID, private).get_installation_auth(INSTALLATION_ID)
        with app_log(hub, auth) as log:
            log.append({"id": 1})
            log.flush(timeout=10)
            texts = [repr(log), repr(log.config)]
        tokens = {r.token for r in hub.requests if r.token}
        issued = {token for token in tokens if token.startswith("ghs_")}
        jwts = {token for token in tokens if token.startswith("ey")}
        assert issued, "no installation token was used"
        assert jwts, "no JWT was used"
        return issued, jwts, texts

    def test_the_app_key_and_jwt_appear_in_no_log_record(
        self,
        hub: LocalHub,
        app_key: tuple[str, str],
        capture_everything: Capture,
    ) -> None:
        """Neither the App's private key nor the JWT signed with it is logged or shown."""
        _, jwts, texts = self.app_run(hub, app_key)
        key_body = "".join(app_key[0].splitlines()[1:-1])
        logged = "\n".join([*capture_everything.texts(), *texts])
        for secret in (*jwts, key_body[:64], key_body[-64:]):
            assert secret not in logged

    def test_installation_tokens_appear_in_no_log_record(
        self,
        hub: LocalHub,
        app_key: tuple[str, str],
        capture_everything: Capture,
    ) -> None:
        """The installation tokens the App's credentials fetch are never logged."""
        issued, _, texts = self.app_run(hub, app_key)
        logged = "\n".join([*capture_everything.texts(), *texts])
        assert [token for token in issued if token in logged] == []
