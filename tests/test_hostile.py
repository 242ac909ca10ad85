"""Hostile-but-fair inputs and faults (issue 12): one table per kind of attack.

Each row is an attack somebody tried; the next person to find one adds a row
to the table it belongs to (or a new table, with a test saying what a user must
notice). A row that still breaks the library stays, marked
``xfail(strict=True)`` with the bug in its reason, until the fix removes the mark.

localhub's own hardening is pinned in ``tests/test_localhub_hardening.py`` and
not repeated here: repository names and ``%2E%2E`` escapes
(``TestRepositoryNames``), per-segment percent-decoding of ``#`` and ``%2F``
(``TestPathDecoding``), ``git fsck --strict`` refusals (``TestFsckRefusals``),
body caps, malformed lengths and idle timeouts (``TestBodyFraming``), and a
malformed ``--faults`` file for ``python -m gitjsonl.testing serve``
(``TestFaultsFile``). What is here is the library's side of those attacks.

Every row also checks that the token never shows: not in ``repr(log)``, not in
``repr(log.config)``, not in any error raised, not in the command line's output.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import gitjsonl
import gitjsonl._spool
from gitjsonl import GitHubError, GitJsonlError, Identity, RecordError, RetryPolicy, SpoolError
from gitjsonl._cli import main
from gitjsonl._spool import parse_spool
from gitjsonl.testing import Fault, LocalHub

from .helpers import REPO, committed_records, history_is_linear, make_log

Factory = Callable[..., LocalHub]

#: A token that must never be shown: every row looks for it in what a user sees.
SECRET = "SECRETVALUE"
TOKEN = f"ghp_{SECRET}0123456789abcdef"

#: A loopback port nothing listens on: a Log pointed there never reaches a server.
NOWHERE = "http://127.0.0.1:9"


def no_token_in(*shown: object) -> None:
    """None of ``shown`` (objects as ``repr`` and ``str``, or text) shows the token."""
    for thing in shown:
        for text in (repr(thing), str(thing)):
            assert SECRET not in text, f"the token shows in {text!r}"


def ids(records: list[dict[str, Any]]) -> list[Any]:
    return [record["id"] for record in records]


# -- 1. branch names that are not URL-safe ---------------------------------------------------


@pytest.mark.parametrize(
    "branch",
    [
        pytest.param("main#x", id="hash-after-default-branch"),
        pytest.param("issue#12", id="hash"),
        pytest.param("feat%2Fy", id="encoded-slash-literally"),
        pytest.param("100%", id="lone-percent"),
        pytest.param("a+b", id="plus-read-as-space-in-a-query"),
        pytest.param("x&ref=main", id="query-injection"),
        pytest.param("zweig-ü", id="unicode"),
        pytest.param("日志/🚀", id="unicode-with-slash"),
    ],
)
def test_branch_name_is_the_branch_written_and_read(localhub_factory: Factory, branch: str) -> None:
    """Records land on exactly ``branch``, main is untouched, and tail() reads them back."""
    hub = localhub_factory(initial_commit=True)
    main_before = hub.git(REPO, "rev-parse", "refs/heads/main").strip()
    with make_log(hub, branch=branch, token=TOKEN) as log:
        for i in range(3):
            log.append({"id": i})
        log.flush(timeout=30)
        assert ids(log.tail(10)) == [0, 1, 2]
        no_token_in(log, log.config)
    refs = hub.git(REPO, "for-each-ref", "--format=%(refname)").split("\n")
    assert sorted(filter(None, refs)) == sorted(["refs/heads/main", f"refs/heads/{branch}"])
    assert ids(committed_records(hub, ref=f"refs/heads/{branch}")) == [0, 1, 2]
    assert hub.git(REPO, "rev-parse", "refs/heads/main").strip() == main_before


# -- 2. a ref update that lands after the client gave up on it ------------------------------


@pytest.mark.parametrize(
    "delay",
    [pytest.param(1.4, id="patch-lands-0.4s-after-a-1s-timeout")],
)
def test_late_landing_ref_update_commits_once(localhub_factory: Factory, delay: float) -> None:
    """A PATCH that times out on our side and lands later still commits each record once."""
    hub = localhub_factory(initial_commit=True)
    with make_log(hub, token=TOKEN, timeout=1) as log:
        log.append({"id": 0})
        log.flush(timeout=30)
        hub.add_fault(Fault(method="PATCH", path=r"/git/refs/", action="latency", delay=delay))
        for i in range(1, 11):
            log.append({"id": i})
        log.flush(timeout=30)
        assert log.stats().retries >= 1  # the first update did time out on our side
        assert log.stats().committed == 11
    assert ids(committed_records(hub)) == list(range(11))
    assert history_is_linear(hub)


# -- 3 and 4. a full disk under the spool -----------------------------------------------------


class FullDisk:
    """Stands in for the ``os`` module inside ``gitjsonl._spool``: a disk that fills up.

    Spool entries are ``<crc32> <kind> ...``; writes of the kinds in ``full``
    fail with ENOSPC. With ``half_then_full`` the next write puts down half its
    bytes and then the disk is full for every kind. With ``truncate_fails`` the
    spool cannot cut a torn fragment off either.
    """

    def __init__(self) -> None:
        self.full: set[bytes] = set()
        self.half_then_full = False
        self.truncate_fails = False

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        data = bytes(data)
        if self.half_then_full:
            self.half_then_full = False
            self.full = {b"R", b"F", b"P", b"C", b"H"}
            return os.write(fd, data[: len(data) // 2])
        if data[9:10] in self.full or (self.full and data[9:10] not in b"RFPCH"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def ftruncate(self, fd: int, length: int) -> None:
        if self.truncate_fails:
            raise OSError(errno.EIO, "Input/output error")
        os.ftruncate(fd, length)

    def free(self) -> None:
        self.full = set()


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    """The spool's disk, healthy until a test fills it."""
    fake = FullDisk()
    monkeypatch.setattr(gitjsonl._spool, "os", fake)
    return fake


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            b"F",
            id="full-when-a-batch-is-formed",
        ),
        pytest.param(b"P", id="full-when-a-ref-update-is-noted"),
    ],
)
def test_full_spool_disk_is_reported_then_recovered(
    localhub: LocalHub, disk: FullDisk, tmp_path: Path, kind: bytes
) -> None:
    """flush() raises SpoolError and stats() shows it; once space is freed all commit once."""
    spool_dir = tmp_path / "spool"
    with make_log(localhub, token=TOKEN, spool_dir=spool_dir, flush_interval=3600) as log:
        for i in range(5):
            log.append({"id": i})
        disk.full = {kind}
        with pytest.raises(SpoolError) as raised:
            log.flush(timeout=10)
        assert isinstance(log.stats().last_error, SpoolError)
        assert log.stats().committed == 0
        no_token_in(raised.value, log, log.config)
        disk.free()
        log.flush(timeout=10)
        assert log.stats().committed == 5
        assert log.stats().last_error is None
    assert ids(committed_records(localhub)) == list(range(5))
    (spool_file,) = spool_dir.glob("*.spool")
    assert parse_spool(spool_file.read_bytes()).lines == ()


@pytest.mark.parametrize(
    "truncate_fails",
    [
        pytest.param(False, id="half-written-then-cut-back"),
        pytest.param(True, id="half-written-and-cannot-be-cut"),
    ],
)
def test_partial_spool_write_loses_nothing_after_a_crash(
    localhub: LocalHub, disk: FullDisk, tmp_path: Path, truncate_fails: bool
) -> None:
    """After a torn append and a crash, every record whose append returned is committed."""
    spool_dir = tmp_path / "spool"
    log = make_log(
        localhub,
        token=TOKEN,
        spool_dir=spool_dir,
        flush_interval=3600,
        retry=RetryPolicy(max_attempts=1),
    )
    log.append({"id": 1})
    disk.half_then_full = True
    disk.truncate_fails = truncate_fails
    with pytest.raises(SpoolError) as raised:
        log.append({"id": 2, "pad": "p" * 100})
    no_token_in(raised.value)
    disk.free()
    disk.truncate_fails = False
    log.append({"id": 3})
    # The crash: nothing can be committed, and close() gives up at once.
    localhub.add_fault(Fault(action="error", status=500, times=None))
    with pytest.raises(GitJsonlError):
        log.close(timeout=0)
    localhub.clear_faults()
    (spool_file,) = spool_dir.glob("*.spool")
    recovery = parse_spool(spool_file.read_bytes())
    assert [json.loads(line)["id"] for line in recovery.lines] == [1, 3]
    assert recovery.torn_lines == 0
    with make_log(localhub, token=TOKEN, spool_dir=spool_dir) as restarted:
        restarted.flush(timeout=30)
        assert restarted.stats().committed == 2
    assert ids(committed_records(localhub)) == [1, 3]


# -- 5. constructor arguments -----------------------------------------------------------------


def _pre_1970_author() -> dict[str, Any]:
    return {"author": Identity("n", "e@example.com", date="1969-12-31T23:59:59Z")}


def _bad_date_author() -> dict[str, Any]:
    return {"author": Identity("n", "e@example.com", date="yesterday")}


def _row(
    rid: str,
    error: type[Exception],
    name: str,
    /,
    marks: Any = (),
    build: Callable[[], dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Any:
    """A row: the arguments (or ``build``, run inside the test), the error, the name it names."""
    return pytest.param(build or (lambda: kwargs), error, name, id=rid, marks=marks)


_BAD_ARGUMENTS = [
    _row("path-newline", ValueError, "path", path="data/\nx"),
    _row("path-nul", ValueError, "path", path="data/x\0"),
    _row("path-dot-dot", ValueError, "path", path="data/../x"),
    _row("path-leading-dot-dot", ValueError, "path", path="../x"),
    _row("path-dot", ValueError, "path", path="data/./x"),
    _row("path-empty-segment", ValueError, "path", path="data//x"),
    _row("path-empty", ValueError, "path", path="/"),
    _row("path-dot-git", ValueError, "path", path=".git/x"),
    _row("path-dot-git-uppercase", ValueError, "path", path="data/.GIT"),
    _row("path-dot-git-trailing-dot", ValueError, "path", path="data/.git./x"),
    _row("path-ntfs-dot-git", ValueError, "path", path="GIT~1/x"),
    _row("path-hfs-dot-git", ValueError, "path", path="data/.g\u200cit"),
    _row("path-not-a-string", TypeError, "path", path=b"data"),
    _row("legacy-path-dot-dot", ValueError, "legacy_path", legacy_path="../x.jsonl"),
    _row("branch-dot-dot", ValueError, "branch", branch="a..b"),
    _row("branch-lock", ValueError, "branch", branch="x.lock"),
    _row("branch-HEAD", ValueError, "branch", branch="HEAD"),
    _row("branch-at", ValueError, "branch", branch="@"),
    _row("branch-reflog", ValueError, "branch", branch="a@{1}"),
    _row("branch-leading-dash", ValueError, "branch", branch="-x"),
    _row("branch-space", ValueError, "branch", branch="a b"),
    _row("branch-newline", ValueError, "branch", branch="a\nb"),
    _row("branch-dot-component", ValueError, "branch", branch="a/.b"),
    _row("branch-trailing-slash", ValueError, "branch", branch="a/"),
    _row("branch-empty", ValueError, "branch", branch=""),
    _row("repo-dot-dot-owner", ValueError, "repo", repo="../x"),
    _row("repo-three-parts", ValueError, "repo", repo="a/b/c"),
    _row("repo-encoded-dot-dot", ValueError, "repo", repo="%2E%2E/victim"),
    _row("repo-dot-dot-name", ValueError, "repo", repo="owner/.."),
    _row("repo-no-slash", ValueError, "repo", repo="owner"),
    _row("repo-newline", ValueError, "repo", repo="owner/repo\n"),
    _row("repo-hash", ValueError, "repo", repo="owner/repo#x"),
    _row("repo-not-a-string", TypeError, "repo", repo=None),
    _row("flush-interval-zero", ValueError, "flush_interval", flush_interval=0),
    _row("flush-interval-negative", ValueError, "flush_interval", flush_interval=-1),
    _row("flush-interval-nan", ValueError, "flush_interval", flush_interval=float("nan")),
    _row("flush-interval-string", TypeError, "flush_interval", flush_interval="5"),
    _row("timeout-negative", ValueError, "timeout", timeout=-1),
    _row("timeout-zero", ValueError, "timeout", timeout=0),
    _row("timeout-infinite", ValueError, "timeout", timeout=float("inf")),
    _row("exit-grace-negative", ValueError, "exit_grace", exit_grace=-1),
    _row("shutdown-grace-negative", ValueError, "shutdown_grace", shutdown_grace=-1),
    _row("shutdown-grace-nan", ValueError, "shutdown_grace", shutdown_grace=float("nan")),
    _row("shutdown-grace-string", TypeError, "shutdown_grace", shutdown_grace="10"),
    _row("shutdown-and-exit-grace", ValueError, "exit_grace", shutdown_grace=5, exit_grace=5),
    _row("on-full-unknown", ValueError, "on_full", on_full="x"),
    _row("segment-bytes-zero", ValueError, "segment_bytes", segment_bytes=0),
    _row("segment-bytes-float", TypeError, "segment_bytes", segment_bytes=1.5),
    _row("segment-bytes-bool", TypeError, "segment_bytes", segment_bytes=True),
    _row("batch-bytes-zero", ValueError, "batch_bytes", batch_bytes=0),
    _row("max-batch-bytes-zero", ValueError, "max_batch_bytes", max_batch_bytes=0),
    _row("max-record-bytes-zero", ValueError, "max_record_bytes", max_record_bytes=0),
    _row("max-pending-bytes-negative", ValueError, "max_pending_bytes", max_pending_bytes=-1),
    _row("token-with-newline", ValueError, "token", token=f"{TOKEN}\nX-Evil: 1"),
    _row("author-before-1970", ValueError, "date", build=_pre_1970_author),
    _row("author-bad-date", ValueError, "date", build=_bad_date_author),
]


def _construct(cls: type[Any], bad: Callable[[], dict[str, Any]]) -> None:
    """Build ``cls`` with the row's arguments (the row may raise building them); close it."""
    kwargs: dict[str, Any] = {"path": "data/x", "token": TOKEN, "api_url": NOWHERE}
    kwargs.update(bad())
    made = cls(kwargs.pop("repo", REPO), **kwargs)
    getattr(made, "log", made).close()  # reached only when the arguments were accepted


@pytest.mark.parametrize("cls", [gitjsonl.Log, gitjsonl.AsyncLog], ids=["Log", "AsyncLog"])
@pytest.mark.parametrize(("bad", "error", "name"), _BAD_ARGUMENTS)
def test_bad_constructor_argument_is_refused(
    cls: type[Any], bad: Callable[[], dict[str, Any]], error: type[Exception], name: str
) -> None:
    """A bad argument is a ValueError or TypeError naming it, before any thread or request."""
    with pytest.raises((ValueError, TypeError)) as raised:
        _construct(cls, bad)
    assert isinstance(raised.value, error), repr(raised.value)
    assert name in str(raised.value), str(raised.value)
    no_token_in(raised.value)


# -- 8. a request the server refuses for its size ---------------------------------------------


@pytest.mark.parametrize(
    "max_body_bytes",
    [pytest.param(4000, id="blob-over-the-servers-body-cap")],
)
def test_request_over_the_body_cap_is_reported(
    localhub_factory: Factory, max_body_bytes: int
) -> None:
    """flush() raises the server's 413 promptly; what was committed stays; nothing else lands."""
    hub = localhub_factory(initial_commit=True, max_body_bytes=max_body_bytes)
    log = make_log(hub, token=TOKEN)
    log.append({"id": 0})
    log.flush(timeout=30)
    head = hub.git(REPO, "rev-parse", "refs/heads/main").strip()
    log.append({"id": 1, "pad": "x" * max_body_bytes})
    with pytest.raises(GitHubError) as raised:
        log.flush(timeout=20)
    assert raised.value.status == 413
    assert log.stats().pending == 1
    no_token_in(raised.value, log, log.config)
    with pytest.raises(GitHubError):
        log.close(timeout=5)
    assert hub.git(REPO, "rev-parse", "refs/heads/main").strip() == head
    assert ids(committed_records(hub)) == [0]


# -- 9. records that are not JSON objects in disguise ----------------------------------------


def _deep(depth: int) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for _ in range(depth):
        record = {"a": record}
    return record


class _RaisingMapping(Mapping[str, Any]):
    """A Mapping that lists a key and then fails to produce its value."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])

    def __len__(self) -> int:
        return 1


_BAD_RECORDS = [
    pytest.param(
        lambda: _deep(100_000),
        id="dict-nested-100000-deep",
    ),
    pytest.param(
        lambda: {"id": 9, "inner": _deep(100_000)},
        id="value-nested-100000-deep",
    ),
    pytest.param(
        _RaisingMapping,
        id="mapping-whose-getitem-raises",
    ),
    pytest.param(
        lambda: {1: "a", "1": "b"},
        id="int-and-str-key-collide",
    ),
    pytest.param(
        lambda: {True: "a", "true": "b"},
        id="bool-and-str-key-collide",
    ),
    pytest.param(
        lambda: {"id": 9, "inner": {None: "a", "null": "b"}},
        id="nested-none-and-str-key-collide",
    ),
    pytest.param(lambda: {("a", "b"): 1}, id="tuple-key"),
    pytest.param(lambda: {"id": 9, "blob": b"\x00\xff"}, id="bytes-value"),
    pytest.param(lambda: {"id": 9, "tags": {"a"}}, id="set-value"),
]


@pytest.mark.parametrize("make_record", _BAD_RECORDS)
def test_record_that_is_not_json_is_a_record_error(
    localhub: LocalHub, make_record: Callable[[], Any]
) -> None:
    """append raises RecordError for the bad record; the records around it are committed."""
    with make_log(localhub, token=TOKEN) as log:
        log.append({"id": 1})
        with pytest.raises(RecordError) as raised:
            log.append(make_record())
        no_token_in(raised.value)
        log.append({"id": 2})
    assert committed_records(localhub) == [{"id": 1}, {"id": 2}]
    assert log.stats().appended == 2


# -- 10. the command line ---------------------------------------------------------------------

_DEEP_JSON = '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n"


@dataclass(frozen=True)
class CliAttack:
    """A command line (``{tmp}``, ``{token_file}``, ``{faults}`` filled in) and its stdin."""

    argv: tuple[str, ...]
    stdin: str = ""


def _cli_row(rid: str, *argv: str, stdin: str = "", marks: Any = ()) -> Any:
    return pytest.param(CliAttack(argv, stdin), id=rid, marks=marks)


_CLI_ATTACKS = [
    _cli_row("deep-json-on-stdin", "append", stdin=_DEEP_JSON),
    _cli_row("deep-json-argument", "append", _DEEP_JSON.strip()),
    _cli_row(
        "token-file-not-utf8",
        "--token-file",
        "{token_file}",
        "tail",
    ),
    _cli_row("token-file-is-a-directory", "--token-file", "{tmp}", "tail"),
    _cli_row("path-dot-dot-append", "--path", "../x", "append", '{"id": 1}'),
    _cli_row(
        "path-dot-dot-tail",
        "--path",
        "../x",
        "tail",
    ),
    _cli_row("repo-dot-dot-append", "--repo", "../x", "append", '{"id": 1}'),
    _cli_row(
        "repo-dot-dot-tail",
        "--repo",
        "../x",
        "tail",
    ),
    _cli_row(
        "branch-dot-dot-append",
        "--branch",
        "a..b",
        "append",
        '{"id": 1}',
    ),
    _cli_row("serve-repo-dot-dot", "serve", "--root", "{tmp}", "--repo", "../x"),
    _cli_row("serve-faults-not-json", "serve", "--root", "{tmp}", "--faults", "{faults}"),
    _cli_row("serve-faults-missing", "serve", "--root", "{tmp}", "--faults", "{tmp}/nope.json"),
    _cli_row("mistyped-option-then-value", "tail", "--tokne", SECRET),
    _cli_row("mistyped-option-equals-value", "tail", f"--tokne={SECRET}"),
    _cli_row("mistyped-option-before-command", "--tokne", SECRET, "tail"),
]


@pytest.mark.parametrize("attack", _CLI_ATTACKS)
def test_cli_attack_is_one_line_without_secrets(
    localhub: LocalHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    attack: CliAttack,
) -> None:
    """Non-zero exit, one error line (after argparse's usage), no traceback, no secret."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setattr(sys, "stdin", io.StringIO(attack.stdin))
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xff\xfe" + SECRET.encode() + b"\xc3\n")
    faults = tmp_path / "faults.json"
    faults.write_text('[{"action": "error", "path": "' + SECRET)
    places = {"{tmp}": str(tmp_path), "{token_file}": str(token_file), "{faults}": str(faults)}
    argv = list(attack.argv)
    for key, value in places.items():
        argv = [arg.replace(key, value) for arg in argv]
    if "serve" not in argv:
        argv = ["--repo", REPO, "--api-url", localhub.url, *argv]
    start = len(localhub.requests)
    try:
        status = main(argv)
    except BaseException as exc:  # what a user would see as a traceback
        pytest.fail(f"main() let {exc!r} escape: a traceback")
    out, err = capsys.readouterr()
    assert status != 0
    assert "Traceback" not in out + err
    assert SECRET not in out + err
    lines = err.splitlines()
    assert lines, "no error message"
    assert lines[-1].startswith("gitjsonl"), lines
    assert "error" in lines[-1], lines
    usage = lines[:-1]
    if usage:  # argparse's usage, wrapped: "usage: ..." then indented continuation lines
        assert usage[0].startswith("usage: "), lines
        assert all(line.startswith(" ") for line in usage[1:]), lines
    sent = [r.path for r in localhub.requests[start:]]
    assert all(path.startswith(f"/repos/{REPO}") for path in sent), sent
