"""localhub's HTTP layer: auth, bad input, rate limits, faults, request log, concurrency, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import github
import pytest
import requests
from github.Repository import Repository

from gitjsonl.testing import Fault, Gate, LocalHub, RequestRecord, SecondaryLimits

from .test_localhub_git import REPO, client
from .test_localhub_openapi import openapi_checked

__all__ = ["openapi_checked"]
pytestmark = pytest.mark.usefixtures("openapi_checked")
Factory = Callable[..., LocalHub]


def _child_commit(repo: Repository, parent_sha: str, message: str) -> str:
    parent = repo.get_git_commit(parent_sha)
    return repo.create_git_commit(message, parent.tree, [parent]).sha


#: Upper bound on every wait in the hold tests; they pass in milliseconds.
BOUND = 30.0


def _get_in_thread(url: str) -> dict[str, Any]:
    """GET ``url`` from a daemon thread; the dict gets ``status`` and ``done`` set once answered."""
    answer: dict[str, Any] = {"done": threading.Event()}

    def get() -> None:
        try:
            with requests.Session() as s:
                answer["status"] = s.get(url, timeout=BOUND).status_code
        except requests.RequestException as exc:
            answer["status"] = exc
        finally:
            answer["done"].set()

    threading.Thread(target=get, daemon=True).start()
    return answer


class TestPublicSurface:
    """gitjsonl.testing's exports."""

    def test_all_is_sorted_and_complete(self) -> None:
        """__all__ lists exactly the public names, sorted."""
        from gitjsonl import testing

        assert testing.__all__ == [
            "Fault",
            "Gate",
            "LocalHub",
            "MemoryGitHub",
            "RequestRecord",
            "SecondaryLimits",
        ]
        assert testing.__all__ == sorted(testing.__all__)


class TestAuth:
    """Tokens configured per server."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub with one write and one read token."""
        return localhub_factory(tokens={"w-token": "write", "r-token": "read"}, initial_commit=True)

    def test_write_token(self, hub: LocalHub) -> None:
        """hub.token is the write token and it can create blobs."""
        assert hub.token == "w-token"
        g = client(hub)
        try:
            g.get_repo(REPO).create_git_blob("x", "utf-8")
        finally:
            g.close()

    def test_unknown_token_is_401(self, hub: LocalHub) -> None:
        """An unknown token is 401 Bad credentials (BadCredentialsException in PyGithub)."""
        g = client(hub, token="nope")
        try:
            with pytest.raises(github.BadCredentialsException):
                g.get_repo(REPO)
        finally:
            g.close()

    def test_bearer_scheme(self, hub: LocalHub) -> None:
        """Authorization: Bearer X works like token X."""
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}", headers={"Authorization": "Bearer r-token"})
        assert r.status_code == 200

    def test_read_token_cannot_write(self, hub: LocalHub) -> None:
        """A read-only token reads but gets 403 on writes, and nothing is written."""
        g = client(hub, token="r-token")
        try:
            repo = g.get_repo(REPO)
            repo.get_git_ref("heads/main")
            with pytest.raises(github.GithubException) as info:
                repo.create_git_blob("x", "utf-8")
            assert info.value.status == 403
            assert info.value.data["message"] == "Resource not accessible by personal access token"
        finally:
            g.close()


class TestBadInput:
    """Malformed requests get GitHub's statuses, never a traceback or a change."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub whose repository has one commit."""
        return localhub_factory(initial_commit=True)

    def test_malformed_json_is_400(self, hub: LocalHub) -> None:
        """A body that is not JSON is 400 "Problems parsing JSON"."""
        with requests.Session() as s:
            r = s.post(f"{hub.url}/repos/{REPO}/git/blobs", data=b"{not json")
        assert r.status_code == 400
        assert r.json()["message"] == "Problems parsing JSON"

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/nowhere"), ("GET", "/repos/owner/repo/issues"), ("POST", "/repos/owner/repo")],
    )
    def test_unknown_endpoint_is_404(self, hub: LocalHub, method: str, path: str) -> None:
        """An unknown endpoint or method is 404 Not Found."""
        with requests.Session() as s:
            r = s.request(method, hub.url + path)
        assert (r.status_code, r.json()["message"]) == (404, "Not Found")

    def test_patch_without_sha_is_422_and_changes_nothing(self, hub: LocalHub) -> None:
        """PATCH without sha is 422 and the branch does not move."""
        before = hub.git(REPO, "rev-parse", "main")
        with requests.Session() as s:
            r = s.patch(f"{hub.url}/repos/{REPO}/git/refs/heads/main", json={"force": True})
        assert r.status_code == 422
        assert hub.git(REPO, "rev-parse", "main") == before


class TestSecondaryLimits:
    """Content-generating requests per token in sliding windows."""

    def test_over_the_minute_budget(self, localhub_factory: Factory) -> None:
        """The request past per_minute is a 403 secondary limit with retry-after."""
        hub = localhub_factory(
            initial_commit=True, secondary_limits=SecondaryLimits(per_minute=3, per_hour=100)
        )
        g = client(hub)
        try:
            repo = g.get_repo(REPO)
            for _ in range(3):
                repo.create_git_blob("x", "utf-8")
            repo.get_git_ref("heads/main")  # reads are not counted
            with pytest.raises(github.RateLimitExceededException) as info:
                repo.create_git_blob("x", "utf-8")
        finally:
            g.close()
        assert info.value.status == 403
        assert info.value.data["message"].startswith("You have exceeded a secondary rate limit")
        assert 1 <= int(info.value.headers["retry-after"]) <= 60

    def test_off_by_default(self, localhub_factory: Factory) -> None:
        """Without SecondaryLimits nothing is throttled."""
        hub = localhub_factory(initial_commit=True)
        with requests.Session() as s:
            codes = {
                s.post(f"{hub.url}/repos/{REPO}/git/blobs", json={"content": "x"}).status_code
                for _ in range(30)
            }
        assert codes == {201}


class TestFaults:
    """Fault injection per method and path."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub whose repository has one commit."""
        return localhub_factory(initial_commit=True)

    def test_error_before_work(self, hub: LocalHub) -> None:
        """action=error answers the status and does not do the work."""
        hub.add_fault(Fault(method="PATCH", path=r"/git/refs/", action="error", status=503))
        g = client(hub)
        try:
            repo = g.get_repo(REPO)
            ref = repo.get_git_ref("heads/main")
            child = _child_commit(repo, ref.object.sha, "c")
            with pytest.raises(github.GithubException) as info:
                ref.edit(child)
            assert info.value.status == 503
            assert hub.git(REPO, "rev-parse", "main").strip() != child
            ref.edit(child)  # times=1: the next one goes through
            assert hub.git(REPO, "rev-parse", "main").strip() == child
        finally:
            g.close()

    def test_error_after_patch_did_the_work(self, hub: LocalHub) -> None:
        """action=error_after on PATCH ref answers 502 but the branch did move."""
        hub.add_fault(Fault(method="PATCH", path=r"/git/refs/", action="error_after"))
        g = client(hub)
        try:
            repo = g.get_repo(REPO)
            ref = repo.get_git_ref("heads/main")
            child = _child_commit(repo, ref.object.sha, "c")
            with pytest.raises(github.GithubException) as info:
                ref.edit(child)
            assert info.value.status == 502
            assert hub.git(REPO, "rev-parse", "main").strip() == child
        finally:
            g.close()

    def test_drop_after_commit_did_the_work(self, hub: LocalHub) -> None:
        """action=drop_after on POST commits closes the connection, yet the commit exists."""
        hub.add_fault(Fault(method="POST", path=r"/git/commits$", action="drop_after"))
        g = client(hub)
        try:
            repo = g.get_repo(REPO)
            head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
            with pytest.raises(requests.ConnectionError):
                repo.create_git_commit("lost answer", head.tree, [head])
        finally:
            g.close()
        listing = hub.git(
            REPO, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectname)"
        )
        commits = [line.split()[1] for line in listing.splitlines() if line.startswith("commit")]
        assert "lost answer" in hub.git(REPO, "log", "--no-walk", "--format=%s", *commits)
        dropped = [r for r in hub.requests if r.method == "POST" and r.status == 0]
        assert len(dropped) == 1

    def test_drop_before_work(self, hub: LocalHub) -> None:
        """action=drop closes the connection without writing the blob."""
        hub.add_fault(Fault(method="POST", path=r"/git/blobs", action="drop"))
        before = hub.git(REPO, "count-objects")
        with requests.Session() as s, pytest.raises(requests.ConnectionError):
            s.post(f"{hub.url}/repos/{REPO}/git/blobs", json={"content": "never"})
        assert hub.git(REPO, "count-objects") == before

    def test_latency(self, hub: LocalHub) -> None:
        """action=latency delays the answer by about `delay` seconds."""
        hub.add_fault(Fault(path=r"/git/ref/", action="latency", delay=0.3))
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}/git/ref/heads/main")
        assert r.status_code == 200
        assert r.elapsed.total_seconds() >= 0.3

    def test_hold_keeps_a_request_until_the_gate_opens(self, hub: LocalHub) -> None:
        """action=hold answers nothing while the gate is shut, then answers normally."""
        gate = Gate()
        hub.add_fault(Fault(path=r"/git/ref/", action="hold", gate=gate, delay=BOUND))
        answer = _get_in_thread(f"{hub.url}/repos/{REPO}/git/ref/heads/main")
        assert gate.wait_reached(BOUND), "the request never reached the gate"
        assert not any(r.path.endswith("/git/ref/heads/main") for r in hub.requests)
        assert answer.get("status") is None
        gate.open()
        assert answer["done"].wait(BOUND)
        assert answer["status"] == 200

    def test_hold_lets_go_after_its_bound(self, hub: LocalHub) -> None:
        """A gate never opened keeps a request at most `delay` seconds: no handler is stuck."""
        gate = Gate()
        hub.add_fault(Fault(path=r"/git/ref/", action="hold", gate=gate, delay=0.1))
        answer = _get_in_thread(f"{hub.url}/repos/{REPO}/git/ref/heads/main")
        assert answer["done"].wait(BOUND)
        assert answer["status"] == 200
        assert gate.wait_reached(0)
        assert not gate.is_open

    def test_stop_opens_the_gates(self, hub: LocalHub) -> None:
        """Stopping the hub lets a held request go instead of waiting out its bound."""
        gate = Gate()
        hub.add_fault(Fault(path=r"/git/ref/", action="hold", gate=gate, delay=BOUND))
        answer = _get_in_thread(f"{hub.url}/repos/{REPO}/git/ref/heads/main")
        assert gate.wait_reached(BOUND)
        hub.stop()
        assert gate.is_open
        assert answer["done"].wait(BOUND)

    @pytest.mark.parametrize(
        "options",
        [
            {"action": "hold", "delay": 1.0},
            {"action": "latency", "delay": 1.0, "gate": Gate()},
            {"action": "hold", "gate": Gate()},
        ],
        ids=["hold-without-gate", "gate-without-hold", "hold-without-bound"],
    )
    def test_hold_needs_a_gate_and_a_bound(self, options: dict[str, object]) -> None:
        """A hold fault is refused without its gate or its bound, and a gate without hold."""
        with pytest.raises(ValueError, match="hold"):
            Fault(**options)

    @pytest.mark.parametrize("retry_after", [7, None])
    def test_secondary_limit_fault(self, hub: LocalHub, retry_after: int | None) -> None:
        """action=secondary_limit answers GitHub's 403, with or without retry-after."""
        hub.add_fault(Fault(method="POST", action="secondary_limit", retry_after=retry_after))
        with requests.Session() as s:
            r = s.post(f"{hub.url}/repos/{REPO}/git/blobs", json={"content": "x"})
        assert r.status_code == 403
        assert "secondary rate limit" in r.json()["message"]
        assert r.headers.get("retry-after") == (None if retry_after is None else "7")

    def test_skip_times_and_unlimited(self, hub: LocalHub) -> None:
        """skip lets the first requests through, times bounds the hits, None is unlimited."""
        hub.add_fault(Fault(method="GET", path=r"/repos/owner/repo$", skip=1, times=2, status=500))
        with requests.Session() as s:
            codes = [s.get(f"{hub.url}/repos/{REPO}").status_code for _ in range(5)]
        assert codes == [200, 500, 500, 200, 200]
        hub.clear_faults()
        hub.add_fault(Fault(path=r"/repos/owner/repo$", times=None, status=500))
        with requests.Session() as s:
            codes = [s.get(f"{hub.url}/repos/{REPO}").status_code for _ in range(3)]
        assert codes == [500, 500, 500]

    def test_probability_is_seeded(self, localhub_factory: Factory) -> None:
        """The same seed gives the same sequence of hits."""

        def run(seed: int) -> list[int]:
            fault = Fault(path=r"/repos/owner/repo$", times=None, probability=0.5, status=500)
            hub = localhub_factory(faults=[fault], seed=seed)
            with requests.Session() as s:
                return [s.get(f"{hub.url}/repos/{REPO}").status_code for _ in range(20)]

        first, again, other = run(1), run(1), run(2)
        assert first == again
        assert {200, 500} <= set(first)
        assert first != other

    def test_faults_from_file(self, tmp_path: Path) -> None:
        """Faults load from a JSON list of objects with Fault's fields."""
        from gitjsonl.testing._faults import load_faults

        path = tmp_path / "faults.json"
        path.write_text(json.dumps([{"method": "PATCH", "action": "error_after", "times": None}]))
        assert load_faults(path) == [Fault(method="PATCH", action="error_after", times=None)]

    def test_unknown_action_rejected(self) -> None:
        """An unknown action is a ValueError at construction."""
        with pytest.raises(ValueError, match="unknown fault action"):
            Fault(action="explode")


class TestRequestLog:
    """hub.requests records every exchange."""

    def test_records_method_path_status_bytes_token(self, localhub: LocalHub) -> None:
        """Each request is recorded with method, path, query, status, bytes and token."""
        localhub.clear_requests()
        with requests.Session() as s:
            s.post(
                f"{localhub.url}/repos/{REPO}/git/blobs",
                json={"content": "x"},
                headers={"Authorization": "token abc"},
            )
            s.get(f"{localhub.url}/repos/{REPO}/commits?per_page=5")
        first, second = localhub.requests
        assert isinstance(first, RequestRecord)
        assert (first.method, first.path, first.status, first.token) == (
            "POST",
            f"/repos/{REPO}/git/blobs",
            409,
            "abc",
        )
        assert first.bytes_in == len(b'{"content": "x"}')
        assert first.bytes_out > 0
        assert (second.query, second.token) == ("per_page=5", None)
        localhub.clear_requests()
        assert localhub.requests == []


class TestConcurrency:
    """Racing ref updates through the API."""

    def test_racing_patches_are_fast_forwards(self, localhub_factory: Factory) -> None:
        """8 threads racing PATCHes: one of each race wins, history is linear and complete."""
        hub = localhub_factory(initial_commit=True)
        successes: list[str] = []
        lock = threading.Lock()
        errors: list[BaseException] = []
        rejections: list[tuple[int, str]] = []

        def worker(n: int) -> None:
            g = client(hub)
            try:
                repo = g.get_repo(REPO)
                for i in range(6):
                    ref = repo.get_git_ref("heads/main")
                    child = _child_commit(repo, ref.object.sha, f"w{n}-{i}")
                    try:
                        ref.edit(child)
                    except github.GithubException as exc:
                        rejections.append((exc.status, exc.data["message"]))
                    else:
                        with lock:
                            successes.append(child)
            except BaseException as exc:
                errors.append(exc)
            finally:
                g.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert set(rejections) <= {(422, "Update is not a fast forward")}
        history = hub.git(REPO, "rev-list", "--first-parent", "main").split()
        merges = hub.git(REPO, "rev-list", "--min-parents=2", "main").split()
        assert merges == []
        assert set(successes) <= set(history)
        assert len(history) == len(successes) + 1  # plus the initial commit
        hub.fsck(REPO)

    def test_two_racing_updates_one_wins(self, localhub_factory: Factory) -> None:
        """Two siblings PATCHed at once from the same tip: exactly one succeeds."""
        hub = localhub_factory(initial_commit=True)
        g = client(hub)
        try:
            repo = g.get_repo(REPO)
            tip = repo.get_git_ref("heads/main").object.sha
            kids = [_child_commit(repo, tip, f"k{i}") for i in range(2)]
        finally:
            g.close()
        results: list[int] = []
        barrier = threading.Barrier(2)

        def patch(sha: str) -> None:
            with requests.Session() as s:
                barrier.wait()
                r = s.patch(f"{hub.url}/repos/{REPO}/git/refs/heads/main", json={"sha": sha})
                results.append(r.status_code)

        threads = [threading.Thread(target=patch, args=(k,)) for k in kids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200, 422]
        assert hub.git(REPO, "rev-parse", "main").strip() in kids


class TestServeCli:
    """python -m gitjsonl.testing serve."""

    def test_serve_prints_url_and_answers(self, tmp_path: Path) -> None:
        """The first stdout line is the base URL; the server answers; SIGTERM stops it."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gitjsonl.testing",
                "serve",
                "--root",
                str(tmp_path),
                "--repo",
                "o/r",
                "--token",
                "t1",
                "--initial-commit",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            with requests.Session() as s:
                r = s.get(
                    f"{url}/repos/o/r/git/ref/heads/main", headers={"Authorization": "token t1"}
                )
                assert r.status_code == 200
                assert (
                    s.get(f"{url}/repos/o/r", headers={"Authorization": "token x"}).status_code
                    == 401
                )
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert (tmp_path / "o" / "r.git" / "HEAD").is_file()

    def test_serve_without_arguments_serves_owner_repo_from_a_temporary_folder(self) -> None:
        """As examples/README.md writes it (no --root, no --repo): owner/repo is served
        from a temporary folder, said on stderr, and removed at exit."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitjsonl.testing", "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(60, proc.kill)  # a server that never answers fails the test
        watchdog.start()
        try:
            assert proc.stdout is not None
            assert proc.stderr is not None
            url = proc.stdout.readline().strip()
            said = proc.stderr.readline()
            assert url.startswith("http://127.0.0.1:"), said
            assert "owner/repo" in said
            assert "temporary folder" in said
            assert "removed" in said
            root = Path(said.split("temporary folder ", 1)[1].split(",", 1)[0])
            assert (root / "owner" / "repo.git").is_dir()
            headers = {"Authorization": "token localhub-token"}
            with requests.Session() as s:
                assert s.get(f"{url}/repos/owner/repo", headers=headers).status_code == 200
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=15)
            watchdog.cancel()
        assert proc.returncode == 0, err
        assert not root.exists()
