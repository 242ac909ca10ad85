"""localhub against hostile input: names, URL decoding, fsck-level objects, body framing."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from gitjsonl.testing import LocalHub
from gitjsonl.testing._names import check_full_name, valid_component

from .test_localhub_git import REPO
from .test_localhub_openapi import openapi_checked

__all__ = ["openapi_checked"]
pytestmark = pytest.mark.usefixtures("openapi_checked")
Factory = Callable[..., LocalHub]


def _state(hub: LocalHub) -> tuple[str, str]:
    """Every ref and every object of the repository: equal before and after means unchanged."""
    refs = hub.git(REPO, "for-each-ref", "--format=%(refname) %(objectname)")
    objects = hub.git(REPO, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return refs, objects


def _exact(hub: LocalHub, method: str, path: str, body: bytes = b"") -> tuple[int, str]:
    """Send the path exactly as written (requests would re-quote %2E as ".")."""
    host, port = hub.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _raw(hub: LocalHub, data: bytes, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send raw bytes on a fresh connection; return the status and all bytes received."""
    host, port = hub.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(data)
        received = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/") else 0
    return status, received


class TestRepositoryNames:
    """Owner and repository names follow GitHub's rules before touching the filesystem."""

    @pytest.mark.parametrize(
        "name",
        ["o/r", "a-b/c.d_e-f", "x" * 39 + "/" + "y" * 100, "O1/..x", "o/.r"],
    )
    def test_github_names_are_accepted(self, name: str) -> None:
        """Names GitHub allows split into owner and repository."""
        assert check_full_name(name) == tuple(name.split("/"))

    @pytest.mark.parametrize(
        "name",
        [
            "../x",
            "o/..",
            "o/.",
            "-o/r",
            "o_o/r",
            "o.o/r",
            "x" * 40 + "/r",
            "o/" + "y" * 101,
            "o/r/s",
            "o",
            "o/r b",
            "o/r\n",
            "ö/r",
        ],
    )
    def test_other_names_are_refused(self, name: str) -> None:
        """Anything else is a ValueError that says what GitHub allows."""
        with pytest.raises(ValueError, match="not a GitHub repository name"):
            check_full_name(name)

    def test_hub_refuses_a_bad_repository_before_creating_anything(self, tmp_path: Path) -> None:
        """LocalHub(repos=("../x",)) raises ValueError and writes nothing."""
        with pytest.raises(ValueError, match="not a GitHub repository name"):
            LocalHub(root=tmp_path / "root", repos=("../x",))
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        "owner_and_name", ["%2E%2E/victim", "..%2Fvictim/r", "owner/%2E%2E", "%2e%2e/%2e%2e"]
    )
    def test_encoded_dot_dot_never_escapes_the_root(
        self, localhub_factory: Factory, tmp_path: Path, owner_and_name: str
    ) -> None:
        """PUT /repos/%2E%2E/victim/contents/x is 404 and writes nothing outside --root."""
        root = tmp_path / "deep" / "root"
        hub = localhub_factory(root=root)
        (tmp_path / "victim.git").mkdir()
        subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "victim.git")], check=True)
        before = sorted(p.name for p in tmp_path.rglob("*"))
        body = json.dumps({"message": "m", "content": "eA=="}).encode()
        status, _ = _exact(hub, "PUT", f"/repos/{owner_and_name}/contents/x", body)
        assert status == 404
        assert sorted(p.name for p in tmp_path.rglob("*")) == before

    def test_serve_refuses_a_bad_repository_in_one_line(self, tmp_path: Path) -> None:
        """`serve --repo ../x` exits 2 with a one-line error and no traceback."""
        command = [sys.executable, "-m", "gitjsonl.testing", "serve", "--root", str(tmp_path)]
        proc = subprocess.run(
            [*command, "--repo", "../x"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1
        assert "not a GitHub repository name" in proc.stderr
        assert list(tmp_path.iterdir()) == []


class TestPathDecoding:
    """Every path segment is percent-decoded exactly once, as GitHub does."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub whose repository has one commit."""
        return localhub_factory(initial_commit=True)

    def _create_branch(self, hub: LocalHub, branch: str) -> str:
        sha = hub.git(REPO, "rev-parse", "main").strip()
        with requests.Session() as s:
            r = s.post(
                f"{hub.url}/repos/{REPO}/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha}
            )
        assert r.status_code == 201, r.text
        return sha

    def test_hash_in_a_branch_name(self, hub: LocalHub) -> None:
        """git/refs/heads/main%23x is the branch main#x, never main."""
        self._create_branch(hub, "main#x")
        main_before = hub.git(REPO, "rev-parse", "main").strip()
        child = hub.seed_commit(REPO, {"f": b"1"}, branch="side")
        hub.git(REPO, "update-ref", "refs/heads/side", child)
        with requests.Session() as s:
            got = s.get(f"{hub.url}/repos/{REPO}/git/ref/heads/main%23x").json()
            patched = s.patch(
                f"{hub.url}/repos/{REPO}/git/refs/heads/main%23x",
                json={"sha": child, "force": True},
            )
        assert got["ref"] == "refs/heads/main#x"
        assert patched.status_code == 200
        assert patched.json()["ref"] == "refs/heads/main#x"
        assert hub.git(REPO, "rev-parse", "refs/heads/main#x").strip() == child
        assert hub.git(REPO, "rev-parse", "main").strip() == main_before

    def test_encoded_slash_in_a_branch_name(self, hub: LocalHub) -> None:
        """git/ref/heads/feat%2Fy names the branch feat/y."""
        sha = self._create_branch(hub, "feat/y")
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}/git/ref/heads/feat%2Fy")
        assert (r.status_code, r.json()["ref"], r.json()["object"]["sha"]) == (
            200,
            "refs/heads/feat/y",
            sha,
        )

    def test_contents_paths_are_decoded(self, hub: LocalHub) -> None:
        """contents/dir%2Fa%20b.txt is the file "a b.txt" in dir, read back by its name."""
        with requests.Session() as s:
            put = s.put(
                f"{hub.url}/repos/{REPO}/contents/dir%2Fa%20b.txt",
                json={"message": "m", "content": "eA=="},
            )
            got = s.get(f"{hub.url}/repos/{REPO}/contents/dir/a%20b.txt")
        assert put.status_code == 201, put.text
        assert got.json()["path"] == "dir/a b.txt"
        assert hub.read_file(REPO, "dir/a b.txt") == b"x"

    @pytest.mark.parametrize(
        "path",
        [
            "/repos/owner%2Frepo/git/ref/heads/main",
            "/repos/owner/repo/git/ref/heads/ma%FFin",
            "/repos/owner/repo/git/ref/heads/ma%00in",
            "/repos/owner/repo/contents/a%0Ab",
        ],
    )
    def test_undecodable_or_control_bytes_are_404(self, hub: LocalHub, path: str) -> None:
        """An encoded slash in the owner, invalid UTF-8 or a control byte is 404, not 500."""
        status, text = _exact(hub, "GET", path)
        assert (status, json.loads(text)["message"]) == (404, "Not Found")

    def test_head_answers_headers_only(self, hub: LocalHub) -> None:
        """HEAD gets GET's status and headers without a body."""
        host, port = hub.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("HEAD", f"/repos/{REPO}")
            response = conn.getresponse()
            assert response.status == 200
            assert int(response.headers["Content-Length"]) > 0
            assert response.read() == b""
        finally:
            conn.close()


_BAD_ENTRY_NAMES = [
    ".git/x",
    ".GIT/x",
    ".Git",
    "GIT~1/x",
    "git~1",
    ".git./x",
    ".git ",
    ".git. . /x",
    ".git:stream",
    ".g\u200cit/x",
    "\ufeff.git",
    "x/../y",
    "./x",
    "a//b",
    "a/",
    "/a",
    "a\0b",
    "a\nb",
]


class TestFsckRefusals:
    """Objects `git fsck --strict` would reject are refused with 422 before anything is written."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub whose repository has one commit."""
        return localhub_factory(initial_commit=True)

    def _refused(self, hub: LocalHub, method: str, path: str, body: object) -> None:
        before = _state(hub)
        with requests.Session() as s:
            r = s.request(method, f"{hub.url}/repos/{REPO}{path}", json=body)
        assert r.status_code == 422, r.text
        assert isinstance(r.json()["message"], str)
        assert _state(hub) == before
        hub.fsck(REPO)

    @pytest.mark.parametrize("name", _BAD_ENTRY_NAMES)
    def test_tree_entry_names(self, hub: LocalHub, name: str) -> None:
        """A tree path with .git look-alikes, dot segments, empty parts or control bytes is 422."""
        entries = [
            {"path": "fine.txt", "mode": "100644", "type": "blob", "content": "ok"},
            {"path": name, "mode": "100644", "type": "blob", "content": "x"},
        ]
        self._refused(hub, "POST", "/git/trees", {"tree": entries})

    @pytest.mark.parametrize("name", [".gitmodules", "dir/.GITMODULES", "gitmod~1", ".gitmodules."])
    def test_gitmodules_as_a_symlink(self, hub: LocalHub, name: str) -> None:
        """.gitmodules (any spelling) as a symbolic link is 422; as a file it is fine."""
        link = {"path": name, "mode": "120000", "type": "blob", "content": "target"}
        self._refused(hub, "POST", "/git/trees", {"tree": [link]})
        with requests.Session() as s:
            ok = s.post(
                f"{hub.url}/repos/{REPO}/git/trees",
                json={"tree": [{**link, "mode": "100644"}]},
            )
        assert ok.status_code == 201

    @pytest.mark.parametrize("name", [".git/config", "GIT~1/hooks", "a/.git./b", "a/git~1"])
    def test_contents_paths(self, hub: LocalHub, name: str) -> None:
        """A Contents PUT to such a path is 422 and makes no commit."""
        self._refused(hub, "PUT", f"/contents/{name}", {"message": "m", "content": "eA=="})

    @pytest.mark.parametrize(
        "change",
        [
            {"message": "a\0b"},
            {"author": {"name": "n", "email": "e@x", "date": "1969-12-31T23:59:59Z"}},
            {"author": {"name": "n", "email": "e@x", "date": "yesterday"}},
            {"author": {"name": "n", "email": "e@x", "date": 1700000000}},
            {"committer": {"name": "n", "email": "e@x", "date": "1900-01-01T00:00:00+00:00"}},
            {"author": {"name": "a <b", "email": "e@x"}},
            {"author": {"name": "a>", "email": "e@x"}},
            {"committer": {"name": "a\nb", "email": "e@x"}},
            {"author": {"name": "n", "email": "e>@x"}},
            {"committer": {"name": "n", "email": "<e@x"}},
            {"author": {"name": "n", "email": "e@x\n"}},
        ],
    )
    def test_commit_fields(self, hub: LocalHub, change: dict[str, object]) -> None:
        """NUL in the message, dates before 1970 or unparsable, <, > or newline in people: 422."""
        head = hub.git(REPO, "rev-parse", "main").strip()
        tree = hub.git(REPO, "rev-parse", "main^{tree}").strip()
        body = {"message": "m", "tree": tree, "parents": [head], **change}
        self._refused(hub, "POST", "/git/commits", body)

    def test_contents_put_with_nul_in_message(self, hub: LocalHub) -> None:
        """A Contents PUT whose commit message holds NUL is 422."""
        self._refused(hub, "PUT", "/contents/ok.txt", {"message": "a\0b", "content": "eA=="})

    @pytest.mark.parametrize("name", [".gitignore", "a.txt", ".gitmodulesx", "git~2", ".gitx"])
    def test_near_misses_are_accepted(self, name: str) -> None:
        """Names that only resemble .git or .gitmodules are valid entries, even as symlinks."""
        assert valid_component(name, "120000")


class TestBodyFraming:
    """Request bodies are capped however they arrive; malformed framing is 400; idlers time out."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub with a 1,000-byte body cap and a half-second idle timeout."""
        return localhub_factory(initial_commit=True, max_body_bytes=1000, idle_timeout=0.5)

    def _post(self, headers: str, body: bytes = b"") -> bytes:
        head = f"POST /repos/{REPO}/git/blobs HTTP/1.1\r\nHost: x\r\n{headers}\r\n"
        return head.encode() + body

    def test_content_length_over_the_cap_is_413_unread(self, hub: LocalHub) -> None:
        """A declared length over the cap is answered 413 at once, without the body being sent."""
        started = time.monotonic()
        status, raw = _raw(hub, self._post("Content-Length: 1000000000000\r\n"))
        assert status == 413
        assert b"Connection: close" in raw
        assert time.monotonic() - started < 0.5

    def test_chunked_over_the_cap_is_413(self, hub: LocalHub) -> None:
        """Chunks adding up past the cap are 413; nothing is written."""
        before = _state(hub)
        chunk = b"200\r\n" + b"a" * 0x200 + b"\r\n"
        status, _ = _raw(hub, self._post("Transfer-Encoding: chunked\r\n", chunk * 3))
        assert status == 413
        assert _state(hub) == before

    def test_one_huge_chunk_is_413_unread(self, hub: LocalHub) -> None:
        """A single chunk announced larger than the cap is refused before it is read."""
        status, _ = _raw(hub, self._post("Transfer-Encoding: chunked\r\n", b"ffffffffff\r\nab"))
        assert status == 413

    def test_chunked_within_the_cap_works(self, hub: LocalHub) -> None:
        """A chunked body under the cap is read and answered normally."""
        body = b'{"content": "hi"}'
        chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        status, _ = _raw(
            hub, self._post("Transfer-Encoding: chunked\r\nConnection: close\r\n", chunked)
        )
        assert status == 201

    @pytest.mark.parametrize(
        "headers",
        [
            "Content-Length: -1\r\n",
            "Content-Length: abc\r\n",
            "Content-Length: 1e3\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Transfer-Encoding: chunked\r\n",
        ],
    )
    def test_malformed_framing_is_400(self, hub: LocalHub, headers: str) -> None:
        """A negative, non-numeric or conflicting length, or a bad chunk size, is 400."""
        body = b"zz\r\n\r\n" if "chunked" in headers else b"hello"
        status, raw = _raw(hub, self._post(headers, body))
        assert status == 400
        assert b'"message"' in raw

    def test_idle_connection_is_closed(self, hub: LocalHub) -> None:
        """A connection that sends nothing is closed after idle_timeout."""
        host, port = hub.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            started = time.monotonic()
            assert conn.recv(1) == b""
            assert 0.4 < time.monotonic() - started < 3

    def test_stalled_body_is_closed(self, hub: LocalHub) -> None:
        """A body that stops arriving ends the connection without a write."""
        before = _state(hub)
        status, _ = _raw(hub, self._post("Content-Length: 100\r\n", b"{"))
        assert status == 0
        assert _state(hub) == before

    def test_others_are_served_while_a_connection_idles(self, hub: LocalHub) -> None:
        """An idle connection holds no lock: other requests are answered meanwhile."""
        host, port = hub.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5), requests.Session() as s:
            assert s.get(f"{hub.url}/repos/{REPO}").status_code == 200

    @pytest.mark.parametrize("settings", [{"max_body_bytes": -1}, {"idle_timeout": 0.0}])
    def test_bad_settings_are_refused(self, settings: dict[str, float]) -> None:
        """A negative body cap or a non-positive idle timeout is a ValueError."""
        with pytest.raises(ValueError, match="must be"):
            LocalHub(**settings)


class TestFaultsFile:
    """A malformed --faults file is one clear line, never a traceback."""

    @pytest.mark.parametrize(
        "text",
        [
            "{not json",
            '{"action": "error"}',
            '[{"acton": "error"}]',
            '[{"action": "explode"}]',
            '[{"status": "502"}]',
            '[{"path": "("}]',
            '[{"probability": 2}]',
            "[1]",
        ],
    )
    def test_serve_reports_the_entry(self, tmp_path: Path, text: str) -> None:
        """serve exits 2 with one line naming the faults file."""
        faults = tmp_path / "faults.json"
        faults.write_text(text)
        command = [sys.executable, "-m", "gitjsonl.testing", "serve", "--root", str(tmp_path)]
        proc = subprocess.run(
            [*command, "--faults", str(faults)],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1
        assert "faults file" in proc.stderr


class TestRequestSmuggling:
    """RFC 9112 framing: a request that could be read two ways is refused, its connection closed."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        return localhub_factory(initial_commit=True)

    SMUGGLED = f"GET /repos/{REPO}/git/refs/heads/main HTTP/1.1\r\nHost: x\r\n\r\n".encode()

    @pytest.mark.parametrize(
        "framing",
        [
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            "Transfer-Encoding: xchunked\r\n",
        ],
        ids=["length-then-chunked", "chunked-then-length", "two-codings", "two-headers", "unknown"],
    )
    def test_ambiguous_framing_is_400_and_the_next_request_is_never_answered(
        self, hub: LocalHub, framing: str
    ) -> None:
        """Content-Length with Transfer-Encoding (or a coding we cannot frame): 400, closed."""
        before = _state(hub)
        body = b"0\r\n\r\n"
        head = f"POST /repos/{REPO}/git/blobs HTTP/1.1\r\nHost: x\r\n{framing}\r\n".encode()
        status, raw = _raw(hub, head + body + self.SMUGGLED)
        assert status == 400
        assert b"Connection: close" in raw
        assert raw.count(b"HTTP/1.1 ") == 1, "a smuggled second request was answered"
        assert _state(hub) == before

    def test_one_chunked_coding_still_works(self, hub: LocalHub) -> None:
        """The refusal is narrow: a plain chunked body is still read and answered."""
        body = b'{"content": "hi"}'
        chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        head = f"POST /repos/{REPO}/git/blobs HTTP/1.1\r\nHost: x\r\n"
        head += "Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n"
        status, _ = _raw(hub, head.encode() + chunked)
        assert status == 201


class TestHandlerCap:
    """Connections are served by a bounded number of threads; past the cap, 503 and close."""

    def test_past_the_cap_a_connection_gets_503_and_is_closed(
        self, localhub_factory: Factory
    ) -> None:
        """With two idle connections holding the two handlers, a third is answered 503 at once."""
        hub = localhub_factory(initial_commit=True, idle_timeout=5.0)
        server = hub._server
        server.max_handlers = 2
        host, port = hub.url.removeprefix("http://").split(":")
        idlers = [socket.create_connection((host, int(port)), timeout=5) for _ in range(2)]
        try:
            deadline = time.monotonic() + 5
            while server.handlers < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.monotonic()
            status, raw = _raw(hub, f"GET /repos/{REPO} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert status == 503
            assert b"Connection: close" in raw
            assert time.monotonic() - started < 2
        finally:
            for conn in idlers:
                conn.close()
        deadline = time.monotonic() + 5
        while server.handlers and time.monotonic() < deadline:
            time.sleep(0.01)
        with requests.get(f"{hub.url}/repos/{REPO}", timeout=5) as answer:
            assert answer.status_code == 200  # the threads came back: served again

    def test_the_cap_is_bounded_by_default(self, localhub: LocalHub) -> None:
        """A hub never runs an unbounded number of handler threads."""
        from gitjsonl.testing._server import DEFAULT_MAX_HANDLERS

        assert localhub._server.max_handlers == DEFAULT_MAX_HANDLERS <= 1024


class TestTreeishWithDotDot:
    """A tree-ish or sub-path with ``..`` names nothing: 404, never 500 (or a file outside)."""

    @pytest.mark.parametrize(
        "treeish",
        [
            "..",
            "main..main",
            "main:..",
            "main:../x",
            "main:data/../..",
            "main:a%2F..%2F..",
            "refs/heads/../../config",
            "refs%2Fheads%2F..%2F..%2Fconfig",
            "main/..",
            "..%2F..%2F..",
        ],
    )
    def test_dot_dot_in_a_tree_ish_is_404(self, localhub_factory: Factory, treeish: str) -> None:
        """GET git/trees/<tree-ish with ..> answers 404 Not Found."""
        hub = localhub_factory(initial_commit=True)
        status, body = _exact(hub, "GET", f"/repos/{REPO}/git/trees/{treeish}")
        assert status == 404, body
        assert "Not Found" in body
