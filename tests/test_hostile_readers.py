"""Readers and what reaches a terminal, attacked (issue 24, items 9 to 13): one table per class.

- headers read as numbers or dates (``Retry-After``, ``X-RateLimit-*``) holding anything
  else: dropped where the answer enters (``_http``), as if GitHub had not sent them;
- control characters from a server or a file on their way to a terminal: escaped by one
  function (``_terminal.printable``) at every print site of the command line, and JSON
  lines by ``_terminal.json_line`` (what ``json`` leaves raw under ``ensure_ascii=False``);
- a checkout's files: one larger than GitHub holds is reported and never read, the rest
  stream (``_checkout``);
- a legacy file written to after its migration: readers warn once, ``verify`` reports it
  (``_reader.legacy_drift``).

``stats()`` of a failing log (item 13) is proven in ``test_stats``.

The hostile server is ``test_hostile_server``'s ``HostileProxy``, in front of localhub.
The next person to find an attack adds a row to the table of its class.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import GithubLog, RateLimited
from gitjsonl._answers import retry_after_seconds, unreadable_headers
from gitjsonl._checkout import read_checkout
from gitjsonl._cli import main
from gitjsonl._doctor import Check, format_checks
from gitjsonl._github import Credentials, DirEntry, GitHubRepo, git_blob_sha
from gitjsonl._migrate import migrate
from gitjsonl._reader import legacy_drift, manifest_source_sha
from gitjsonl._segments import MANIFEST_NAME, segment_name
from gitjsonl._terminal import json_line, printable
from gitjsonl.testing import Fault, LocalHub

from . import test_hostile_server as hostile
from .helpers import PATH, REPO, make_log
from .test_hostile_server import TOKEN, Answer, HostileProxy, _Handler


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


SEGMENT = f"{PATH}/{segment_name(1)}"


def seed_any_name(hub: LocalHub, name: str, data: bytes) -> None:
    """Commit a file named ``name`` (any bytes git takes, which localhub's API refuses) into
    the log's folder on main, with git itself."""

    def git(*args: str, data: bytes | None = None) -> str:
        env = {**os.environ, "GIT_DIR": str(hub.git_dir(REPO))}
        who = ("-c", "user.name=Test", "-c", "user.email=test@example.com")
        run = subprocess.run(
            ["git", *who, *args], input=data, env=env, capture_output=True, check=True
        )
        return run.stdout.decode().strip()

    head = git("rev-parse", "refs/heads/main")
    blob = git("hash-object", "-w", "--stdin", data=data)
    listing = git("ls-tree", "-z", f"{head}:{PATH}").encode()
    folder = git("mktree", "-z", data=listing + f"100644 blob {blob}\t{name}\0".encode())
    tree = git("mktree", data=f"040000 tree {folder}\tinteractions\n".encode())
    root = git("mktree", data=f"040000 tree {tree}\tdata\n".encode())
    commit = git("commit-tree", root, "-p", head, "-m", "a file of any name", data=b"")
    git("update-ref", "refs/heads/main", commit, head)


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


# -- what reaches a terminal ------------------------------------------------------------------

#: What a server or a file may hold to drive a terminal or forge a line of ours.
TERMINAL_ATTACKS = [
    pytest.param("\x1b]0;owned\x07", id="osc-title-and-bel"),
    pytest.param("\x1b[2J\x1b[H", id="clear-screen"),
    pytest.param("\ngitjsonl: error: forged", id="newline-forged-line"),
    pytest.param("\rgitjsonl: error: forged", id="carriage-return-forged-line"),
    pytest.param("\x9b2J", id="c1-csi"),
    pytest.param("\x7f\x08\x08", id="del-and-backspace"),
    pytest.param("\u2028gitjsonl: error: forged", id="line-separator"),
    pytest.param("\u202egnp.", id="bidi-override"),
]

_RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def assert_inert(text: str) -> None:
    """``text`` (what a command printed) holds no control character but its line ends,
    and no line that is not ours."""
    assert not _RAW.search(text), repr(text)
    assert not any(line.startswith("gitjsonl: error: forged") for line in text.split("\n"))


@pytest.fixture
def cli(localhub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """``main`` on localhub, the token in GITHUB_TOKEN."""
    monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
    return lambda *args: main(["--repo", REPO, "--api-url", localhub.url, *args])


class TestTerminal:
    @pytest.mark.parametrize("attack", TERMINAL_ATTACKS)
    @pytest.mark.parametrize("command", ["tail", "cat"])
    def test_record_values_print_as_json_that_reads_back(
        self,
        localhub: LocalHub,
        cli: Callable[..., int],
        capsys: pytest.CaptureFixture[str],
        command: str,
        attack: str,
    ) -> None:
        """A record's value is printed escaped, and the line still reads back as the record."""
        record = {"text": f"hi{attack}", "é": "ü"}
        localhub.seed_commit(REPO, {SEGMENT: jsonl([record])})
        assert cli(command) == 0
        out = capsys.readouterr().out
        assert_inert(out)
        assert [json.loads(line) for line in out.splitlines()] == [record]
        assert "é" in out  # readable, not \\u00e9

    @pytest.mark.parametrize("attack", TERMINAL_ATTACKS)
    @pytest.mark.parametrize("command", ["tail", "cat", "verify"])
    def test_file_names_print_escaped(
        self,
        localhub: LocalHub,
        cli: Callable[..., int],
        capsys: pytest.CaptureFixture[str],
        command: str,
        attack: str,
    ) -> None:
        """A file named like a segment (a warning, a verify problem) is printed escaped."""
        name = f"{command}{attack}.jsonl"
        localhub.seed_commit(REPO, {SEGMENT: b'{"id":1}\n'})
        seed_any_name(localhub, name, b"{}\n")
        cli(command)
        shown = capsys.readouterr()
        assert_inert(shown.out)
        assert_inert(shown.err)
        assert f"{command}{printable(attack)}.jsonl" in shown.out + shown.err

    @pytest.mark.parametrize("attack", TERMINAL_ATTACKS)
    def test_commit_trailers_print_escaped_by_verify(
        self,
        localhub: LocalHub,
        cli: Callable[..., int],
        capsys: pytest.CaptureFixture[str],
        attack: str,
    ) -> None:
        """A batch id from a commit's trailer (a duplicate, which verify reports) is escaped."""
        message = f"append\n\nGitjsonl-Batch: b{attack}x\n"
        for n in (1, 2):
            files = {SEGMENT: jsonl([{"id": i} for i in range(n)])}
            localhub.seed_commit(REPO, files, message=message)
        assert cli("verify") == 1
        out = capsys.readouterr().out
        assert_inert(out)
        assert "duplicate batch" in out

    @pytest.mark.parametrize("attack", TERMINAL_ATTACKS)
    @pytest.mark.parametrize("command", ["tail", "stats"])
    def test_a_servers_error_message_prints_as_one_line(
        self,
        localhub: LocalHub,
        cli: Callable[..., int],
        capsys: pytest.CaptureFixture[str],
        command: str,
        attack: str,
    ) -> None:
        """What GitHub says in an error reaches standard error as one escaped line."""
        localhub.seed_commit(REPO, {SEGMENT: b'{"id":1}\n'})
        localhub.add_fault(Fault(method="GET", status=422, message=f"refused{attack}", times=None))
        assert cli(command) == 3  # could not run
        err = capsys.readouterr().err
        assert_inert(err)
        assert err.count("\n") == 1, err
        assert err.startswith("gitjsonl: error: "), err


class TestPrintable:
    @pytest.mark.parametrize(
        ("text", "shown"),
        [
            ("\x1b[31mred", "\\x1b[31mred"),
            ("a\nb\rc\td", "a\\nb\\rc\\td"),
            ("\x9b\x85\x7f", "\\x9b\\x85\\x7f"),
            ("\u2028\u2029\u202e", "\\u2028\\u2029\\u202e"),
            ("héllo wörld ✓ 日本", "héllo wörld ✓ 日本"),
        ],
    )
    def test_control_characters_are_shown_as_escapes(self, text: str, shown: str) -> None:
        """Every control character shows as its escape; letters of any script stay as they are."""
        assert printable(text) == shown

    def test_json_lines_escape_what_json_leaves_raw(self) -> None:
        """DEL, C1 and line separators become \\u escapes: the same JSON, inert on a terminal."""
        record = {"k\x9b": "\x7f\u2028\x1b", "accent": "é"}
        line = json_line(record)
        assert line == '{"k\\u009b":"\\u007f\\u2028\\u001b","accent":"é"}\n'
        assert json.loads(line) == record

    @pytest.mark.parametrize("attack", TERMINAL_ATTACKS)
    def test_doctor_checks_print_escaped(self, attack: str) -> None:
        """A check's detail and advice (what GitHub or Redis said) print as inert lines."""
        checks = [Check("branch", False, f"main{attack}", f"fix{attack}"), Check("x", True, "ok")]
        shown = format_checks(checks)
        assert_inert(shown)
        assert len(shown.split("\n")) == 3

    @pytest.mark.parametrize("attack", TERMINAL_ATTACKS)
    def test_checkout_file_names_print_escaped(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], attack: str
    ) -> None:
        """cat --checkout warns of a stray file in a clone with its name escaped."""
        folder = tmp_path / "interactions"
        folder.mkdir()
        (folder / segment_name(1)).write_bytes(b'{"id":1}\n')
        (folder / f"checkout{attack}.jsonl").write_bytes(b"{}\n")
        assert main(["cat", "--checkout", str(folder)]) == 0
        shown = capsys.readouterr()
        assert_inert(shown.out + shown.err)
        assert f"checkout{printable(attack)}.jsonl" in shown.err


# -- a checkout's files, bounded ---------------------------------------------------------------

#: Runs ``gitjsonl cat --checkout`` with its address space capped at 1 GiB.
_UNDER_1_GIB = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from gitjsonl._cli import main
sys.exit(main(["cat", "--checkout", sys.argv[1]]))
"""


class TestCheckoutBounds:
    def test_a_4gb_sparse_segment_is_reported_never_loaded(self, tmp_path: Path) -> None:
        """Under a 1 GiB memory limit, cat --checkout names the 4 GB file and prints the rest."""
        folder = tmp_path / "interactions"
        folder.mkdir()
        (folder / segment_name(1)).write_bytes(b'{"id":1}\n')
        with (folder / segment_name(2)).open("wb") as sparse:
            sparse.truncate(4 * 1024**3)
        (folder / segment_name(3)).write_bytes(b'{"id":3}\n')
        run = subprocess.run(
            [sys.executable, "-c", _UNDER_1_GIB, str(folder)],
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert [json.loads(line) for line in run.stdout.splitlines()] == [{"id": 1}, {"id": 3}]
        assert f"{segment_name(2)}: 4,294,967,296 bytes" in run.stderr
        assert "not read" in run.stderr

    def test_streamed_lines_read_as_the_whole_file(self, tmp_path: Path) -> None:
        """Streamed line by line, a file reads as before: corrupt lines skipped, a last line
        without its newline kept."""
        folder = tmp_path / "interactions"
        folder.mkdir()
        (folder / segment_name(1)).write_bytes(b'{"id":1}\nnot json\n{"id":2}')
        assert list(read_checkout(folder)) == [{"id": 1}, {"id": 2}]


# -- a legacy file written to after its migration ---------------------------------------------

LEGACY = f"{PATH}.jsonl"


@pytest.fixture
def migrated(localhub: LocalHub) -> LocalHub:
    """localhub holding a legacy file of [1, 2], migrated (source kept), then appended 3 to by
    an old writer that still writes the single file."""
    localhub.seed_commit(REPO, {LEGACY: jsonl([{"id": 1}, {"id": 2}])})
    migrate(
        GitHubRepo(REPO, Credentials(localhub.url, localhub.token)), source=LEGACY, destination=PATH
    )
    localhub.seed_commit(REPO, {LEGACY: jsonl([{"id": 1}, {"id": 2}, {"id": 3}])})
    return localhub


class TestLegacyAfterMigration:
    def test_readers_warn_once_and_read_the_log(
        self, migrated: LocalHub, caplog: pytest.LogCaptureFixture
    ) -> None:
        """tail and records read the migrated log and say, once, that the legacy file changed."""
        with make_log(migrated, legacy_path=LEGACY) as log:
            assert log.tail(10) == [{"id": 1}, {"id": 2}]
            assert list(log.records()) == [{"id": 1}, {"id": 2}]
        warnings = [
            r.getMessage() for r in caplog.records if "changed since it was" in r.getMessage()
        ]
        assert len(warnings) == 1, warnings
        assert LEGACY in warnings[0]

    def test_verify_reports_the_change(
        self, migrated: LocalHub, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify exits 1 naming the legacy file and both blobs."""
        assert cli("verify") == 1
        out = capsys.readouterr().out
        assert f"{LEGACY} has changed since it was migrated" in out
        assert "1 problem(s)" in out

    def test_an_unchanged_or_removed_legacy_file_is_no_problem(
        self, localhub: LocalHub, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A legacy file as migrated, or removed since, is what the migration left: verify is OK."""
        localhub.seed_commit(REPO, {LEGACY: jsonl([{"id": 1}])})
        migrate(
            GitHubRepo(REPO, Credentials(localhub.url, localhub.token)),
            source=LEGACY,
            destination=PATH,
        )
        assert cli("verify") == 0
        localhub.seed_commit(REPO, {LEGACY: None})
        assert cli("verify") == 0
        assert "OK" in capsys.readouterr().out


class TestLegacyDrift:
    def test_the_same_blob_or_no_file_is_no_drift(self) -> None:
        """A legacy file that is the migrated blob, or is gone, differs in nothing."""
        entry = DirEntry("x.jsonl", "x.jsonl", "a" * 40, 10, "file")
        assert legacy_drift("a" * 40, entry) is None
        assert legacy_drift("a" * 40, None) is None

    def test_another_blob_or_an_unreadable_manifest_is_drift(self) -> None:
        """Another blob, or a manifest that does not say which, is reported naming the file."""
        entry = DirEntry("x.jsonl", "d/x.jsonl", "b" * 40, 10, "file")
        assert "d/x.jsonl has changed since it was migrated" in str(legacy_drift("a" * 40, entry))
        assert "unreadable manifest" in str(legacy_drift(None, entry))

    @pytest.mark.parametrize(
        ("data", "sha"),
        [
            (b'{"source_sha": "' + b"c" * 40 + b'"}', "c" * 40),
            (b'{"source_sha": "nope"}', None),
            (b'{"source_sha": 1}', None),
            (b"[]", None),
            (b"not json", None),
        ],
    )
    def test_manifest_source_sha_is_checked(self, data: bytes, sha: str | None) -> None:
        """Only a 40-hex source_sha of a JSON object is taken from a manifest."""
        assert manifest_source_sha(data) == sha

    @pytest.mark.parametrize(("legacy", "warned"), [([1], False), ([1, 2], True)])
    def test_a_checkout_compares_the_legacy_file_with_the_blob_migrated(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, legacy: list[int], warned: bool
    ) -> None:
        """read_checkout of a migrated log warns when the legacy file is not the blob migrated."""
        folder = tmp_path / "interactions"
        folder.mkdir()
        migrated = jsonl([{"id": 1}])
        (folder / segment_name(1)).write_bytes(migrated)
        manifest = {"source_sha": git_blob_sha(migrated)}
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
        (tmp_path / "interactions.jsonl").write_bytes(jsonl([{"id": i} for i in legacy]))
        assert list(read_checkout(folder)) == [{"id": 1}]
        assert ("has changed since it was migrated" in caplog.text) is warned
