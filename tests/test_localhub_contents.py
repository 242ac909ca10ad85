"""localhub's Contents API: GET/PUT /contents/{path}, through PyGithub and requests."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator

import github
import pytest
import requests

from gitjsonl.testing import LocalHub

from .test_localhub_git import REPO, client
from .test_localhub_openapi import openapi_checked

__all__ = ["openapi_checked"]
pytestmark = pytest.mark.usefixtures("openapi_checked")


@pytest.fixture
def gh(localhub: LocalHub) -> Iterator[github.Github]:
    """A PyGithub client on the function's localhub."""
    g = client(localhub)
    yield g
    g.close()


class TestGetContents:
    """GET contents/{path}."""

    def test_small_file_is_base64(self, localhub: LocalHub, gh: github.Github) -> None:
        """A file up to 1 MB comes back base64 with its blob sha and type "file"."""
        localhub.seed_commit(REPO, {"data/a.jsonl": b'{"a": 1}\n'})
        f = gh.get_repo(REPO).get_contents("data/a.jsonl")
        assert not isinstance(f, list)
        assert (f.type, f.encoding, f.decoded_content) == ("file", "base64", b'{"a": 1}\n')
        assert f.sha == localhub.git(REPO, "rev-parse", "main:data/a.jsonl").strip()

    def test_large_file_has_no_content(self, localhub: LocalHub, gh: github.Github) -> None:
        """Past 1 MB: content "", encoding "none"; decoded_content fails, get_git_blob works."""
        data = b"x" * (1024 * 1024 + 1)
        localhub.seed_commit(REPO, {"big.jsonl": data})
        repo = gh.get_repo(REPO)
        f = repo.get_contents("big.jsonl")
        assert not isinstance(f, list)
        assert (f.content, f.encoding, f.size) == ("", "none", len(data))
        with pytest.raises(AssertionError):
            _ = f.decoded_content
        assert base64.b64decode(repo.get_git_blob(f.sha).content) == data

    def test_raw_media_type(self, localhub: LocalHub) -> None:
        """Accept: application/vnd.github.raw returns the bytes, even past 1 MB."""
        data = b"y" * (1024 * 1024 + 5)
        localhub.seed_commit(REPO, {"big": data})
        with requests.Session() as s:
            for accept in ("application/vnd.github.raw", "application/vnd.github.raw+json"):
                r = s.get(f"{localhub.url}/repos/{REPO}/contents/big", headers={"Accept": accept})
                assert r.status_code == 200
                assert r.content == data

    def test_object_media_type_past_1mb(self, localhub: LocalHub) -> None:
        """The object media type also gives content "" and encoding "none" past 1 MB."""
        localhub.seed_commit(REPO, {"big": b"z" * (1024 * 1024 + 1)})
        with requests.Session() as s:
            r = s.get(
                f"{localhub.url}/repos/{REPO}/contents/big",
                headers={"Accept": "application/vnd.github.object"},
            )
        assert (r.json()["content"], r.json()["encoding"]) == ("", "none")

    def test_directory_listing(self, localhub: LocalHub, gh: github.Github) -> None:
        """A directory path returns the listing of files and subdirectories."""
        localhub.seed_commit(REPO, {"d/a": b"1", "d/sub/b": b"2"})
        listing = gh.get_repo(REPO).get_contents("d")
        assert isinstance(listing, list)
        assert sorted((c.name, c.type) for c in listing) == [("a", "file"), ("sub", "dir")]

    def test_ref_parameter(self, localhub: LocalHub, gh: github.Github) -> None:
        """?ref= reads the file at an older commit."""
        old = localhub.seed_commit(REPO, {"f": b"old"})
        localhub.seed_commit(REPO, {"f": b"new"})
        f = gh.get_repo(REPO).get_contents("f", ref=old)
        assert not isinstance(f, list)
        assert f.decoded_content == b"old"

    @pytest.mark.parametrize("path", ["missing", "f/x", "d/f"])
    def test_missing_is_404(self, localhub: LocalHub, gh: github.Github, path: str) -> None:
        """A missing or malformed path is 404."""
        localhub.seed_commit(REPO, {"f": b"1"})
        with pytest.raises(github.UnknownObjectException):
            gh.get_repo(REPO).get_contents(path)

    def test_dot_dot_path_is_404(self, localhub: LocalHub) -> None:
        """A path with a ".." component (sent verbatim, not normalised) is 404."""
        localhub.seed_commit(REPO, {"f": b"1"})
        conn = http.client.HTTPConnection(localhub.url.removeprefix("http://"), timeout=10)
        try:
            conn.request("GET", f"/repos/{REPO}/contents/a/../f")
            response = conn.getresponse()
            assert response.status == 404
            assert json.loads(response.read())["message"] == "Not Found"
        finally:
            conn.close()

    def test_empty_repository_is_404(self, gh: github.Github) -> None:
        """An empty repository answers 404 "This repository is empty."."""
        with pytest.raises(github.GithubException) as info:
            gh.get_repo(REPO).get_contents("f")
        assert (info.value.status, info.value.data["message"]) == (404, "This repository is empty.")


class TestPutContents:
    """PUT contents/{path}."""

    def test_create_in_empty_repository(self, localhub: LocalHub, gh: github.Github) -> None:
        """PUT into an empty repository creates its first commit on the default branch (201)."""
        result = gh.get_repo(REPO).create_file("data/log.jsonl", "first", b"one\n")
        assert localhub.read_file(REPO, "data/log.jsonl") == b"one\n"
        assert localhub.git(REPO, "rev-parse", "main").strip() == result["commit"].sha
        assert localhub.git(REPO, "rev-list", "--count", "main").strip() == "1"
        localhub.fsck(REPO)

    def test_update_needs_current_sha(self, localhub: LocalHub, gh: github.Github) -> None:
        """Updating with the current sha answers 200 and adds one commit."""
        repo = gh.get_repo(REPO)
        created = repo.create_file("f", "c", b"1")
        updated = repo.update_file("f", "u", b"2", created["content"].sha)
        assert localhub.read_file(REPO, "f") == b"2"
        assert [p.sha for p in updated["commit"].parents] == [created["commit"].sha]

    def test_wrong_sha_is_409(self, localhub: LocalHub, gh: github.Github) -> None:
        """A stale sha is 409 "<path> does not match <sha>" and nothing changes."""
        repo = gh.get_repo(REPO)
        repo.create_file("f", "c", b"1")
        with pytest.raises(github.GithubException) as info:
            repo.update_file("f", "u", b"2", "a" * 40)
        assert info.value.status == 409
        assert info.value.data["message"] == f"f does not match {'a' * 40}"
        assert localhub.read_file(REPO, "f") == b"1"

    def test_missing_sha_is_422(self, localhub: LocalHub, gh: github.Github) -> None:
        """Overwriting an existing file without sha is 422 ("sha" wasn't supplied)."""
        repo = gh.get_repo(REPO)
        repo.create_file("f", "c", b"1")
        with pytest.raises(github.GithubException) as info:
            repo.create_file("f", "again", b"2")
        assert info.value.status == 422
        assert '"sha" wasn\'t supplied' in info.value.data["message"]

    @pytest.mark.parametrize(
        "body",
        [
            {"content": "eA=="},
            {"message": "m"},
            {"message": "m", "content": "not base64!"},
        ],
    )
    def test_bad_bodies_are_422(self, localhub: LocalHub, body: dict[str, str]) -> None:
        """Missing message or content, or content that is not base64, is 422."""
        with requests.Session() as s:
            r = s.put(f"{localhub.url}/repos/{REPO}/contents/f", json=body)
        assert r.status_code == 422
        assert localhub.read_file(REPO, "f") is None

    def test_branch_and_committer(self, localhub: LocalHub) -> None:
        """branch and committer are honoured."""
        localhub.seed_commit(REPO, {"a": b"1"})
        localhub.git(REPO, "branch", "dev", "main")
        body = {
            "message": "m",
            "content": base64.b64encode(b"x").decode(),
            "branch": "dev",
            "committer": {"name": "C", "email": "c@example.com"},
        }
        with requests.Session() as s:
            r = s.put(f"{localhub.url}/repos/{REPO}/contents/n", json=body)
        assert r.status_code == 201
        assert localhub.read_file(REPO, "n", ref="dev") == b"x"
        assert localhub.read_file(REPO, "n", ref="main") is None
        assert (
            localhub.git(REPO, "log", "-1", "--format=%cn %ce", "dev").strip() == "C c@example.com"
        )
