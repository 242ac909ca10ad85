"""The ``gitjsonl`` command line, through ``main([...])``, against localhub."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import NotFound
from gitjsonl._cli import build_parser, main
from gitjsonl._console import EXIT_FAILED, EXIT_PROBLEMS, EXIT_USAGE
from gitjsonl.testing import LocalHub

REPO = "owner/repo"
LOG = "data/interactions"
SEG = f"{LOG}/00000001.jsonl"
IDENTITY = ("-c", "user.name=Test", "-c", "user.email=test@example.com")


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


@pytest.fixture
def cli(localhub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """``main`` with --repo and --api-url pointing at localhub, the token in GITHUB_TOKEN."""
    monkeypatch.setenv("GITHUB_TOKEN", localhub.token)

    def run(*args: str) -> int:
        return main(["--repo", REPO, "--api-url", localhub.url, *args])

    return run


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def writes(hub: LocalHub) -> list[str]:
    return [f"{r.method} {r.path}" for r in hub.requests if r.method != "GET"]


class TestAppend:
    def test_arguments_are_appended_in_one_commit(
        self, cli: Callable[..., int], localhub: LocalHub
    ) -> None:
        """Each JSON argument becomes one line of the log, all in one batch."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        assert cli("append", '{"id": 1}', '{"id": 2, "text": "é"}') == 0
        assert localhub.read_file(REPO, SEG) == '{"id":1}\n{"id":2,"text":"é"}\n'.encode()

    def test_stdin_lines_are_appended(
        self,
        cli: Callable[..., int],
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Without arguments, stdin is read as JSON lines; blank lines are skipped."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        stdin(monkeypatch, '{"id": 1}\n\n{"id": 2}\n')
        assert cli("append") == 0
        assert "appended 2 records in 1 commit" in capsys.readouterr().err
        assert localhub.read_file(REPO, SEG) == b'{"id":1}\n{"id":2}\n'

    def test_bad_json_on_stdin_appends_nothing(
        self,
        cli: Callable[..., int],
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """One bad line is one error line naming it, exit 2, and not a single request sent."""
        localhub.clear_requests()
        stdin(monkeypatch, '{"id": 1}\n{"id": 2,\n{"id": 3}\n')
        assert cli("append") == EXIT_USAGE
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1
        assert err[0].startswith("gitjsonl: error: stdin line 2: not JSON")
        assert localhub.requests == []

    def test_non_object_and_nan_are_refused(
        self, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A JSON array or a NaN is not a record: refused as the input's fault, status 2."""
        assert cli("append", "[1, 2]") == EXIT_USAGE
        assert "argument 1: not a JSON object" in capsys.readouterr().err
        assert cli("append", '{"x": NaN}') == EXIT_USAGE
        assert "argument 1: not JSON" in capsys.readouterr().err

    def test_missing_token_is_explained(
        self,
        localhub_factory: Callable[..., LocalHub],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Without a token a private repository answers 404; the error says none was given."""
        hub = localhub_factory(tokens={"t": "write"}, initial_commit=True)
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        assert main(["--repo", REPO, "--api-url", hub.url, "append", '{"id": 1}']) == EXIT_FAILED
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("gitjsonl: error: 404")
        assert "no token given" in err[-1]
        assert "Traceback" not in "".join(err)

    def test_token_file_is_read(
        self,
        localhub_factory: Callable[..., LocalHub],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """--token-file supplies the token."""
        hub = localhub_factory(tokens={"t": "write"}, initial_commit=True)
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        token_file = tmp_path / "token"
        token_file.write_text("t\n")
        argv = ["--repo", REPO, "--api-url", hub.url, "--token-file", str(token_file)]
        assert main([*argv, "append", '{"id": 1}']) == 0
        assert hub.read_file(REPO, SEG) == b'{"id":1}\n'

    def test_token_argument_warns(
        self, localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--token works but warns that it shows in the process list."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        argv = ["--repo", REPO, "--api-url", localhub.url, "--token", localhub.token]
        assert main([*argv, "append", '{"id": 1}']) == 0
        assert "gitjsonl: warning: --token shows in the process list" in capsys.readouterr().err


class TestErrors:
    def test_unknown_repository_is_one_line(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A repository that does not exist exits 3 (could not run) with one line, no traceback."""
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        assert main(["--repo", "owner/nope", "--api-url", localhub.url, "tail"]) == EXIT_FAILED
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert err[0].startswith("gitjsonl: error: 404")
        assert "owner/nope" in err[0]

    def test_debug_shows_the_exception(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--debug lets the exception (and so its traceback) through."""
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        with pytest.raises(NotFound):
            main(["--debug", "--repo", "owner/nope", "--api-url", localhub.url, "cat"])

    def test_usage_errors_exit_2(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No --repo, or an unknown command, is a usage error: status 2."""
        monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
        assert main(["tail"]) == 2
        assert "--repo OWNER/NAME is required" in capsys.readouterr().err
        assert main(["frobnicate"]) == 2
        assert main(["--help"]) == 0

    def test_global_options_after_the_command(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--repo and friends work after the command name too."""
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}])})
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        assert main(["tail", "--repo", REPO, "--api-url", localhub.url, "--path", LOG]) == 0
        assert capsys.readouterr().out == '{"id":1}\n'


class TestTail:
    def test_last_n_records(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-n N prints the last N records, oldest first, one JSON line each."""
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": i} for i in range(5)])})
        assert cli("tail", "-n", "2") == 0
        assert capsys.readouterr().out == '{"id":3}\n{"id":4}\n'

    def test_empty_repository_has_no_records(
        self, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A repository without a commit is an empty log, not an error."""
        assert cli("tail") == 0
        assert capsys.readouterr().out == ""

    def test_follow_prints_new_records(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--follow prints the tail, then each record committed later, once."""
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}])})
        later = threading.Timer(
            0.3,
            lambda: localhub.seed_commit(
                REPO,
                {
                    SEG: jsonl([{"id": 1}, {"id": 2}]),
                    f"{LOG}/00000002.jsonl": jsonl([{"id": 3}]),
                },
            ),
        )
        later.start()
        try:
            assert cli("tail", "-n", "1", "--follow", "--interval", "0.1", "--max-polls", "8") == 0
        finally:
            later.join()
        lines = capsys.readouterr().out.splitlines()
        assert [json.loads(x)["id"] for x in lines] == [1, 2, 3]

    def test_follow_on_an_idle_log_polls_at_no_cost(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """tail -f on an idle log: 20 polls answered 304, one primary request for the head."""
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}])})
        assert cli("tail", "-f", "--interval", "0.01", "--max-polls", "20") == 0
        heads = [r for r in localhub.requests if r.path.endswith("/git/ref/heads/main")]
        # The snapshot's read of the head, the validators', then the polls: all 304.
        assert [r.status for r in heads] == [200, 200] + [304] * 20
        assert capsys.readouterr().out.splitlines() == ['{"id":1}']


class TestCat:
    def test_every_record_in_order(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """cat prints the legacy file, then every segment, in order."""
        localhub.seed_commit(
            REPO,
            {
                f"{LOG}.jsonl": b"\n" + jsonl([{"id": 0}]),
                SEG: jsonl([{"id": 1}, {"id": 2}]),
                f"{LOG}/00000002.jsonl": jsonl([{"id": 3}]),
            },
        )
        assert cli("cat") == 0
        assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == [0, 1, 2, 3]

    def test_closed_pipe_stops_quietly(
        self,
        cli: Callable[..., int],
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A reader that went away (BrokenPipeError) ends cat with status 0 and no message."""
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": i} for i in range(10)])})

        class ClosedPipe(io.StringIO):
            def write(self, text: str) -> int:
                raise BrokenPipeError(32, "Broken pipe")

        monkeypatch.setattr(sys, "stdout", ClosedPipe())
        assert cli("cat") == 0
        assert capsys.readouterr().err == ""

    def test_real_pipe_into_head(self, localhub: LocalHub, tmp_path: Path) -> None:
        """``gitjsonl cat | head -1`` prints one line; cat exits 0 without a traceback."""
        big = [{"id": i, "text": "t" * 200} for i in range(6000)]
        localhub.seed_commit(REPO, {SEG: jsonl(big)})
        env = {**os.environ, "GITHUB_TOKEN": localhub.token}
        cat = subprocess.Popen(
            [sys.executable, "-m", "gitjsonl", "--repo", REPO, "--api-url", localhub.url, "cat"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert cat.stdout is not None
        first = cat.stdout.readline()
        cat.stdout.close()
        _, err = cat.communicate(timeout=60)
        assert json.loads(first)["id"] == 0
        assert cat.returncode == 0
        assert err == b""


class TestStats:
    def test_figures(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """stats counts segments, records, bytes, commits, batches and writers."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        assert cli("append", '{"id": 1}', '{"id": 2}') == 0
        assert cli("append", '{"id": 3}') == 0
        capsys.readouterr()
        assert cli("stats", "--json") == 0
        figures = json.loads(capsys.readouterr().out)
        assert figures["segments"] == 2  # a batch adds a file; small ones merge later
        assert figures["records"] == 3
        assert figures["bytes"] == len(b'{"id":1}\n{"id":2}\n{"id":3}\n')
        assert figures["batches"] == 2
        assert figures["writers"] == 2
        assert figures["last_commit"]["sha"] == figures["head"]
        assert cli("stats") == 0
        assert "records      3" in capsys.readouterr().out


class TestVerify:
    def test_clean_log(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A log written by gitjsonl verifies clean: status 0."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        assert cli("append", '{"id": 1}') == 0
        assert cli("verify") == 0
        assert capsys.readouterr().out.startswith("OK ")

    def test_corrupt_line_and_oversized_segment(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A corrupt line and a segment over the cap are each reported; status 1."""
        localhub.seed_commit(REPO, {SEG: b'{"id": 1}\n{"id": 2\n{"id": 3}\n'})
        assert cli("verify", "--segment-bytes", "20") == EXIT_PROBLEMS
        out = capsys.readouterr().out
        assert f"{SEG}:2: corrupt line" in out
        assert "over the 20-byte cap" in out

    def test_nan_line_is_reported(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A NaN line, which append refuses, is a problem for verify too: status 1."""
        localhub.seed_commit(REPO, {SEG: b'{"id": 1}\n{"id": NaN}\n'})
        assert cli("verify") == EXIT_PROBLEMS
        assert f"{SEG}:2: corrupt line: not JSON (NaN is not JSON" in capsys.readouterr().out

    def test_duplicate_batch_ids(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Two commits naming the same batch id are reported."""
        message = "gitjsonl: append 1 record\n\nGitjsonl-Batch: abc123\nGitjsonl-Records: 1\n"
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}])}, message=message)
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}, {"id": 1}])}, message=message)
        assert cli("verify") == EXIT_PROBLEMS
        assert "duplicate batch abc123" in capsys.readouterr().out

    def test_merge_commit_is_non_linear(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A merge commit that touches the log is reported as non-linear history."""
        a = localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}])})
        b = localhub.seed_commit(REPO, {SEG: jsonl([{"id": 2}])}, branch="side")
        c = localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}, {"id": 2}])}, branch="tmp")
        tree = localhub.git(REPO, "rev-parse", f"{c}^{{tree}}").strip()
        merge = localhub.git(
            REPO, *IDENTITY, "commit-tree", tree, "-p", a, "-p", b, "-m", "merge"
        ).strip()
        localhub.git(REPO, "update-ref", "refs/heads/main", merge)
        assert cli("verify") == EXIT_PROBLEMS
        assert f"merge commit {merge[:12]}" in capsys.readouterr().out


class TestServe:
    def test_serve_prints_its_url_and_stops_on_sigterm(self, tmp_path: Path) -> None:
        """serve prints the base URL first, answers, and exits 0 on SIGTERM."""
        command = ["serve", "--root", str(tmp_path), "--repo", "a/b", "--initial-commit"]
        serve = subprocess.Popen(
            [sys.executable, "-m", "gitjsonl", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert serve.stdout is not None
            url = serve.stdout.readline().decode().strip()
            assert url.startswith("http://127.0.0.1:")
            assert main(["--repo", "a/b", "--api-url", url, "--token", "x", "tail"]) == 0
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.communicate(timeout=30)
        assert serve.returncode == 0


class TestDemo:
    @pytest.mark.slow
    def test_demo_lands_every_record_once(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The demo runs writers against an in-process localhub and exits 0."""
        assert main(["demo", "--records", "600", "--writers", "3"]) == 0
        out = capsys.readouterr().out
        assert "600 of 600 on the branch, 0 duplicated, 0 missing" in out
        assert "every record landed exactly once" in out


# -- issue 25: a cheap start, exit codes, --json, any terminal, one meaning per flag ---------

#: Run ``main(argv)`` in a fresh interpreter; print the status and every module imported.
_PROBE = """
import contextlib, io, json, sys
from gitjsonl._cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    status = main(sys.argv[1:])
print(json.dumps([status, sorted(sys.modules)]))
"""
#: What only running a command may import (PyGithub, HTTP, Redis, the emulator).
_HEAVY = ("github", "requests", "urllib3", "redis", "cryptography", "tenacity", "jwt")


class TestStartup:
    @pytest.mark.parametrize(
        ("argv", "status"),
        [
            (["--help"], 0),
            (["--version"], 0),
            (["doctor", "--help"], 0),
            (["serve", "--help"], 0),
            (["tail", "--no-such-option"], 2),
            (["frobnicate"], 2),
        ],
    )
    def test_help_version_and_usage_errors_import_nothing_heavy(
        self, argv: list[str], status: int
    ) -> None:
        """--help, --version and a usage error import no PyGithub, requests, redis or command."""
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        got, modules = json.loads(done.stdout)
        assert got == status
        heavy = [m for m in modules if m.split(".")[0] in _HEAVY]
        assert heavy == []
        assert "gitjsonl._commands" not in modules
        assert "gitjsonl.testing._hub" not in modules


class TestExitCodes:
    def test_problems_found_and_could_not_run_differ(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify exits 1 for a log with problems, 3 when the log cannot be read at all."""
        localhub.seed_commit(REPO, {SEG: b'{"id": 1}\n{"id": 2\n'})
        assert cli("verify") == EXIT_PROBLEMS
        assert main(["--repo", "owner/nope", "--api-url", localhub.url, "verify"]) == EXIT_FAILED
        assert capsys.readouterr().err.startswith("gitjsonl: error: 404")

    def test_a_bad_option_value_is_a_usage_error(
        self, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A value the command refuses (tail -n -1) exits 2 with the usage, like argparse's."""
        assert cli("tail", "-n", "-1") == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.startswith("usage: gitjsonl")
        assert "-n must be 0 or more" in err


class TestJson:
    def test_verify_json_clean(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify --json prints one JSON document: ok, the figures and no problem; status 0."""
        localhub.seed_commit(REPO, {SEG: jsonl([{"id": 1}, {"id": 2}])})
        assert cli("verify", "--json") == 0
        document = json.loads(capsys.readouterr().out)
        head = localhub.git(REPO, "rev-parse", "main").strip()
        assert document == {
            "repo": REPO,
            "path": LOG,
            "branch": "main",
            "head": head,
            "ok": True,
            "records": 2,
            "segments": 1,
            "commits": 1,
            "problems": [],
        }

    def test_verify_json_with_problems(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify --json lists each problem in the document, and still exits 1."""
        localhub.seed_commit(REPO, {SEG: b'{"id": 1}\n{"id": 2\n{"id": 3}'})
        assert cli("verify", "--json") == EXIT_PROBLEMS
        document = json.loads(capsys.readouterr().out)
        assert document["ok"] is False
        assert len(document["problems"]) == 2  # a corrupt line, a torn last line
        assert document["problems"][0].startswith(f"{SEG}:2: corrupt line")

    def test_verify_json_prints_nothing_when_it_cannot_run(
        self,
        localhub: LocalHub,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """When the log cannot be read, standard output stays empty: the error is on stderr."""
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        argv = ["--repo", "owner/nope", "--api-url", localhub.url, "verify", "--json"]
        assert main(argv) == EXIT_FAILED
        out, err = capsys.readouterr()
        assert out == ""
        assert "gitjsonl: error:" in err

    def test_doctor_json(
        self, cli: Callable[..., int], localhub: LocalHub, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """doctor --json prints the checklist as one document; ready, status 0."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        assert cli("doctor", "--json") == 0
        document = json.loads(capsys.readouterr().out)
        assert (document["repo"], document["path"], document["ready"]) == (REPO, LOG, True)
        names = [check["name"] for check in document["checks"]]
        assert names[:3] == ["credentials", "repository", "push"]
        assert set(document["checks"][0]) == {"name", "ok", "required", "detail", "advice"}

    def test_doctor_json_not_ready(
        self,
        localhub_factory: Callable[..., LocalHub],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A check that fails is ok false with its advice; ready false, status 1."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, public=(REPO,))
        monkeypatch.setenv("GITHUB_TOKEN", hub.token)
        assert main(["--repo", REPO, "--api-url", hub.url, "doctor", "--json"]) == EXIT_PROBLEMS
        document = json.loads(capsys.readouterr().out)
        assert document["ready"] is False
        (visibility,) = [c for c in document["checks"] if c["name"] == "visibility"]
        assert visibility["ok"] is False
        assert "--allow-public" in visibility["advice"]


#: A record beyond ASCII: an accent, a mark, a character above the BMP.
WIDE_RECORD = {"text": "café ✓ 😀", "n": 1}


class TestNonUtf8Terminal:
    def run(self, hub: LocalHub, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "GITHUB_TOKEN": hub.token,
            "PYTHONIOENCODING": "ascii",
            "LANG": "C",
            "LC_ALL": "C",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
        argv = [sys.executable, "-m", "gitjsonl", "--repo", REPO, "--api-url", hub.url, *args]
        return subprocess.run(
            argv, env=env, capture_output=True, encoding="ascii", timeout=120, check=False
        )

    def test_doctor_marks_fall_back_to_ascii(self, localhub: LocalHub, tmp_path: Path) -> None:
        """On an ASCII terminal doctor prints + - x marks instead of failing on ✓ · ✗."""
        localhub.seed_commit(REPO, {"README.md": b"hi\n"})
        done = self.run(localhub, tmp_path, "doctor")
        assert (done.returncode, done.stderr) == (0, "")
        assert "+ credentials: " in done.stdout
        assert "- pacing: " in done.stdout
        assert done.stdout.splitlines()[-1] == "ready to write"

    def test_doctor_failure_and_advice_in_ascii(
        self, localhub_factory: Callable[..., LocalHub], tmp_path: Path
    ) -> None:
        """A failed check is marked x, its advice ->, and the verdict names the x mark."""
        hub = localhub_factory(repos=(REPO,), initial_commit=True, public=(REPO,))
        done = self.run(hub, tmp_path, "doctor")
        assert (done.returncode, done.stderr) == (EXIT_PROBLEMS, "")
        assert "x visibility: public" in done.stdout
        assert "    -> use a private repository" in done.stdout
        assert done.stdout.splitlines()[-1] == "not ready: fix what is marked x"

    @pytest.mark.parametrize("command", ["tail", "cat"])
    def test_records_print_as_ascii_json(
        self, localhub: LocalHub, tmp_path: Path, command: str
    ) -> None:
        """tail and cat print records beyond ASCII as \\u escapes: the same JSON, status 0."""
        localhub.seed_commit(REPO, {SEG: (json.dumps(WIDE_RECORD) + "\n").encode()})
        done = self.run(localhub, tmp_path, command)
        assert (done.returncode, done.stderr) == (0, "")
        assert [json.loads(line) for line in done.stdout.splitlines()] == [WIDE_RECORD]

    @pytest.mark.parametrize("command", ["stats", "verify"])
    def test_reports_run(self, localhub: LocalHub, tmp_path: Path, command: str) -> None:
        """stats and verify report on an ASCII terminal too."""
        localhub.seed_commit(REPO, {SEG: (json.dumps(WIDE_RECORD) + "\n").encode()})
        done = self.run(localhub, tmp_path, command)
        assert (done.returncode, done.stderr) == (0, "")


class TestServeFlags:
    def test_old_token_spellings_still_work_and_warn(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """serve --token and --read-token still name the tokens localhub accepts, with a warning."""
        args = build_parser().parse_args(
            ["serve", "--token", "a", "--accept-token", "b", "--read-token", "r"]
        )
        assert (args.accept_token, args.accept_read_token) == (["a", "b"], ["r"])
        err = capsys.readouterr().err
        assert "--token is deprecated, use --accept-token" in err
        assert "--read-token is deprecated, use --accept-read-token" in err

    @pytest.mark.parametrize(
        ("argv", "hint"),
        [
            (["--token", "mine", "serve"], "serve --accept-token TOKEN"),
            (["--repo", "a/b", "serve"], "serve --repo OWNER/NAME, after the command"),
            (["--path", "p", "--allow-public", "demo"], "--path, --allow-public"),
        ],
    )
    def test_log_options_before_serve_or_demo_are_refused(
        self, argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A log option given to serve or demo (which read none) is a usage error, not ignored."""
        assert main(argv) == EXIT_USAGE
        err = capsys.readouterr().err.splitlines()[-1]
        assert err.startswith(f"gitjsonl: error: {argv[-1]} takes no log option: ")
        assert hint in err

    def test_serve_accepts_only_its_tokens(self, tmp_path: Path) -> None:
        """serve --accept-token T: a request with T is answered, one with another token refused."""
        command = ["serve", "--root", str(tmp_path), "--repo", "a/b", "--accept-token", "good"]
        serve = subprocess.Popen(
            [sys.executable, "-m", "gitjsonl", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert serve.stdout is not None
            url = serve.stdout.readline().decode().strip()
            argv = ["--repo", "a/b", "--api-url", url, "tail"]
            assert main(["--token", "good", *argv]) == 0
            assert main(["--token", "bad", *argv]) == EXIT_FAILED
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.communicate(timeout=30)
        assert serve.returncode == 0
