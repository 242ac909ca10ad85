"""localhub's Git Data endpoints (refs, blobs, trees, commits) and GET /commits, via PyGithub."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import github
import pytest
import requests
from github import InputGitAuthor, InputGitTreeElement
from github.Repository import Repository

from gitjsonl._github import git_blob_sha
from gitjsonl.testing import LocalHub
from gitjsonl.testing._gitstore import DEFAULT_EMAIL, DEFAULT_NAME

from .test_localhub_openapi import openapi_checked

__all__ = ["openapi_checked"]
pytestmark = pytest.mark.usefixtures("openapi_checked")
REPO = "owner/repo"


def client(hub: LocalHub, token: str | None = None) -> github.Github:
    """A PyGithub client with its retries and throttles off."""
    return github.Github(
        auth=github.Auth.Token(token or hub.token),
        base_url=hub.url,
        retry=0,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


@pytest.fixture
def gh(localhub: LocalHub) -> Iterator[github.Github]:
    """A PyGithub client on the function's localhub."""
    g = client(localhub)
    yield g
    g.close()


@pytest.fixture
def repo(localhub: LocalHub, gh: github.Github) -> Repository:
    """owner/repo with one commit holding README.md."""
    localhub.seed_commit(REPO, {"README.md": b"# repo\n"}, message="Initial commit")
    return gh.get_repo(REPO)


class TestRepository:
    """GET /repos/{o}/{r} and GET /rate_limit."""

    def test_repository_has_default_branch(self, localhub: LocalHub, gh: github.Github) -> None:
        """The repository answer names its default branch and full name."""
        r = gh.get_repo(REPO)
        assert (r.default_branch, r.full_name, r.private) == ("main", REPO, True)

    def test_unknown_repository_is_404(self, gh: github.Github) -> None:
        """An unknown repository answers 404 Not Found."""
        with pytest.raises(github.UnknownObjectException):
            gh.get_repo("owner/nope")

    def test_rate_limit(self, gh: github.Github) -> None:
        """GET /rate_limit reports the 5000/hour core budget."""
        assert gh.get_rate_limit().resources.core.limit == 5000

    def test_rate_headers_on_every_response(self, localhub: LocalHub) -> None:
        """Every response, errors included, carries the x-ratelimit-* headers."""
        with requests.Session() as s:
            for url in ("/repos/owner/repo", "/repos/owner/none", "/nowhere"):
                response = s.get(localhub.url + url, headers={"Authorization": "token t"})
                for name in ("limit", "remaining", "used", "reset", "resource"):
                    assert f"x-ratelimit-{name}" in response.headers
            assert int(response.headers["x-ratelimit-used"]) == 3


class TestEmptyRepository:
    """A repository without commits."""

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "git/blobs", {"content": "x"}),
            ("GET", "git/blobs/" + "a" * 40, None),
            ("POST", "git/trees", {"tree": []}),
            ("GET", "git/trees/main", None),
            ("POST", "git/commits", {"message": "m", "tree": "a" * 40}),
            ("GET", "git/commits/" + "a" * 40, None),
            ("GET", "git/ref/heads/main", None),
            ("GET", "git/matching-refs/heads", None),
            ("POST", "git/refs", {"ref": "refs/heads/x", "sha": "a" * 40}),
            ("PATCH", "git/refs/heads/main", {"sha": "a" * 40}),
            ("DELETE", "git/refs/heads/main", None),
            ("GET", "commits", None),
        ],
    )
    def test_git_data_is_409(
        self, localhub: LocalHub, method: str, path: str, body: object
    ) -> None:
        """Every Git Data endpoint answers 409 "Git Repository is empty."."""
        with requests.Session() as s:
            response = s.request(method, f"{localhub.url}/repos/{REPO}/{path}", json=body)
        assert response.status_code == 409
        assert response.json()["message"] == "Git Repository is empty."

    def test_pygithub_sees_409(self, gh: github.Github) -> None:
        """PyGithub raises a GithubException with status 409 for a blob in an empty repo."""
        with pytest.raises(github.GithubException) as info:
            gh.get_repo(REPO).create_git_blob("x", "utf-8")
        assert info.value.status == 409


class TestBlobs:
    """POST/GET git/blobs."""

    def test_utf8_and_base64_round_trip(self, localhub: LocalHub, repo: Repository) -> None:
        """Blobs in both encodings are stored as real git blobs and read back as base64."""
        a = repo.create_git_blob("héllo\n", "utf-8")
        b = repo.create_git_blob(base64.b64encode(b"\x00\xff").decode(), "base64")
        assert localhub.git(REPO, "cat-file", "-t", a.sha).strip() == "blob"
        assert base64.b64decode(repo.get_git_blob(a.sha).content) == "héllo\n".encode()
        assert base64.b64decode(repo.get_git_blob(b.sha).content) == b"\x00\xff"

    def test_blob_base64_has_newline_every_60(self, repo: Repository) -> None:
        """GET git/blobs wraps base64 at 60 characters like GitHub."""
        blob = repo.create_git_blob("x" * 200, "utf-8")
        got = repo.get_git_blob(blob.sha)
        lines = got.content.split("\n")
        assert all(len(line) == 60 for line in lines[:-2])
        assert (got.encoding, got.size) == ("base64", 200)

    def test_location_header(self, localhub: LocalHub, repo: Repository) -> None:
        """POST git/blobs answers 201 with Location on the server's own base URL."""
        with requests.Session() as s:
            r = s.post(f"{localhub.url}/repos/{REPO}/git/blobs", json={"content": "a"})
        assert r.status_code == 201
        assert r.headers["Location"] == r.json()["url"]
        assert r.headers["Location"].startswith(localhub.url)

    def test_bad_encoding_is_422(self, repo: Repository) -> None:
        """An unknown encoding is a 422 validation error."""
        with pytest.raises(github.GithubException) as info:
            repo.create_git_blob("x", "latin-1")
        assert info.value.status == 422

    def test_invalid_and_missing_sha(self, localhub: LocalHub, repo: Repository) -> None:
        """A malformed blob sha is 422; an unknown one is 404."""
        with requests.Session() as s:
            bad = s.get(f"{localhub.url}/repos/{REPO}/git/blobs/xyz")
            missing = s.get(f"{localhub.url}/repos/{REPO}/git/blobs/{'a' * 40}")
        assert bad.status_code == 422
        assert missing.status_code == 404

    def test_over_100_mb_is_refused(self, localhub: LocalHub, repo: Repository) -> None:
        """A blob over 100 MB is refused with 422 and nothing is stored."""
        before = localhub.git(REPO, "count-objects").strip()
        data = base64.b64encode(b"\0" * (100 * 1024 * 1024 + 1)).decode()
        with requests.Session() as s:
            r = s.post(
                f"{localhub.url}/repos/{REPO}/git/blobs",
                json={"content": data, "encoding": "base64"},
            )
        assert r.status_code == 422
        assert localhub.git(REPO, "count-objects").strip() == before


class TestTrees:
    """POST/GET git/trees."""

    def test_base_tree_and_nested_paths(self, localhub: LocalHub, repo: Repository) -> None:
        """base_tree keeps other entries and nested paths create intermediate trees."""
        head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
        blob = repo.create_git_blob("line\n", "utf-8")
        tree = repo.create_git_tree(
            [InputGitTreeElement("a/b/c.jsonl", "100644", "blob", sha=blob.sha)],
            base_tree=head.tree,
        )
        paths = {e.path: e.type for e in repo.get_git_tree(tree.sha, recursive=True).tree}
        assert paths == {"README.md": "blob", "a": "tree", "a/b": "tree", "a/b/c.jsonl": "blob"}
        assert localhub.git(REPO, "cat-file", "-t", tree.sha).strip() == "tree"

    def test_without_base_tree_only_listed(self, repo: Repository) -> None:
        """Without base_tree the tree holds only the listed entries."""
        tree = repo.create_git_tree([InputGitTreeElement("x", "100644", "blob", content="x")])
        assert [e.path for e in tree.tree] == ["x"]

    def test_null_sha_deletes(self, repo: Repository) -> None:
        """sha: null deletes a path from the base tree."""
        head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
        tree = repo.create_git_tree(
            [
                InputGitTreeElement("README.md", "100644", "blob", sha=None),
                InputGitTreeElement("k", "100644", "blob", content="k"),
            ],
            base_tree=head.tree,
        )
        assert [e.path for e in tree.tree] == ["k"]

    def test_null_sha_on_missing_path_is_422(self, repo: Repository) -> None:
        """Deleting a path that does not exist is a 422."""
        head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
        with pytest.raises(github.GithubException) as info:
            repo.create_git_tree(
                [InputGitTreeElement("nope", "100644", "blob", sha=None)], base_tree=head.tree
            )
        assert info.value.status == 422
        # What a real user saw (google/go-github#2418); gitjsonl never sends it.
        assert "GitRPC::BadObjectState" in str(info.value.data)

    def test_content_is_written_as_the_utf8_blob(
        self, localhub: LocalHub, repo: Repository
    ) -> None:
        """tree[].content becomes a blob of its UTF-8 bytes, named as git names them."""
        text = '{"é":"\\"quoted\\"","n":"日本"}\n'
        with requests.Session() as s:
            r = s.post(
                f"{localhub.url}/repos/{REPO}/git/trees",
                json={"tree": [{"path": "f", "mode": "100644", "type": "blob", "content": text}]},
            )
        assert r.status_code == 201, r.text
        (entry,) = r.json()["tree"]
        assert entry["sha"] == git_blob_sha(text.encode())
        assert localhub.git(REPO, "cat-file", "-p", entry["sha"]) == text

    @pytest.mark.parametrize(
        "entry",
        [
            {"path": "a", "mode": "100644", "type": "blob", "sha": "a" * 40, "content": "x"},
            {"path": "../a", "mode": "100644", "type": "blob", "content": "x"},
            {"path": "/a", "mode": "100644", "type": "blob", "content": "x"},
            {"path": "a//b", "mode": "100644", "type": "blob", "content": "x"},
            {"path": "a", "mode": "100644", "type": "blob", "sha": "b" * 40},
            {"path": "a", "mode": "999999", "type": "blob", "content": "x"},
            {"path": "a", "mode": "100644", "type": "blob"},
        ],
    )
    def test_bad_entries_are_422(
        self, localhub: LocalHub, repo: Repository, entry: dict[str, str]
    ) -> None:
        """sha with content, malformed paths, unknown objects and bad modes are 422."""
        before = localhub.git(REPO, "count-objects").strip()
        with requests.Session() as s:
            r = s.post(f"{localhub.url}/repos/{REPO}/git/trees", json={"tree": [entry]})
        assert r.status_code == 422, r.text
        assert localhub.git(REPO, "count-objects").strip() == before

    def test_commit_sha_accepted_and_truncation(self, localhub: LocalHub, repo: Repository) -> None:
        """GET git/trees takes a commit sha; a recursive listing truncates past the limit."""
        localhub.seed_commit(REPO, {f"d/{i}": b"x" for i in range(5)})
        head = repo.get_git_ref("heads/main").object.sha
        localhub.tree_truncate_limit = 3
        tree = repo.get_git_tree(head, recursive=True)
        assert len(tree.tree) == 3
        assert tree.raw_data["truncated"] is True
        assert repo.get_git_tree(head).raw_data["truncated"] is False

    def test_missing_tree_is_404(self, repo: Repository) -> None:
        """An unknown tree sha is 404."""
        with pytest.raises(github.UnknownObjectException):
            repo.get_git_tree("c" * 40)


class TestCommits:
    """POST/GET git/commits and GET commits."""

    def test_create_with_exact_author(self, localhub: LocalHub, repo: Repository) -> None:
        """Author and committer (name, email, date with offset) are stored exactly."""
        head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
        who = InputGitAuthor("Ann", "ann@example.com", "2024-05-06T07:08:09+02:00")
        c = repo.create_git_commit("hello\n\nbody", head.tree, [head], author=who, committer=who)
        raw = localhub.git(REPO, "cat-file", "commit", c.sha)
        assert "author Ann <ann@example.com> 1714972089 +0200" in raw
        got = repo.get_git_commit(c.sha)
        assert got.message == "hello\n\nbody"
        assert got.author.date.isoformat() == "2024-05-06T05:08:09+00:00"
        assert [p.sha for p in got.parents] == [head.sha]
        localhub.fsck(REPO)

    def test_default_author_and_root_commit(self, repo: Repository) -> None:
        """Without author the token's user is used; no parents makes a root commit."""
        head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
        c = repo.create_git_commit("root", head.tree, [])
        assert c.author.name == "localhub-bot"
        assert c.parents == []

    def test_parent_not_a_commit_is_422(self, localhub: LocalHub, repo: Repository) -> None:
        """A parent that is not a commit is 422 and writes nothing."""
        head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
        body = {"message": "m", "tree": head.tree.sha, "parents": [head.tree.sha]}
        with requests.Session() as s:
            r = s.post(f"{localhub.url}/repos/{REPO}/git/commits", json=body)
        assert r.status_code == 422

    def test_missing_fields_are_422(self, localhub: LocalHub, repo: Repository) -> None:
        """A commit without message or with a bogus tree is 422; missing sha is 404 on GET."""
        with requests.Session() as s:
            base = f"{localhub.url}/repos/{REPO}/git/commits"
            assert s.post(base, json={"tree": "a" * 40}).status_code == 422
            assert s.post(base, json={"message": "m", "tree": "a" * 40}).status_code == 422
            assert s.get(f"{base}/{'a' * 40}").status_code == 404

    def test_list_commits_paginates_with_link(self, localhub: LocalHub, repo: Repository) -> None:
        """GET commits lists newest first, filters by path and paginates with Link."""
        shas = [localhub.seed_commit(REPO, {f"f{i % 2}": str(i).encode()}) for i in range(5)]
        listed = [c.sha for c in repo.get_commits()]
        assert listed[:5] == shas[::-1]
        f0 = [c.sha for c in repo.get_commits(path="f0")]
        assert f0 == [shas[4], shas[2], shas[0]]
        with requests.Session() as s:
            r = s.get(f"{localhub.url}/repos/{REPO}/commits", params={"per_page": 2, "page": 2})
        assert [c["sha"] for c in r.json()] == [shas[2], shas[1]]
        links = requests.utils.parse_header_links(r.headers["Link"])
        rels = {link["rel"]: link["url"] for link in links}
        assert set(rels) == {"prev", "next", "last", "first"}
        assert all(url.startswith(localhub.url) for url in rels.values())
        assert "page=3" in rels["last"]

    def test_list_commits_since_filters_by_committer_date(
        self, localhub: LocalHub, repo: Repository
    ) -> None:
        """``since`` lists only commits whose committer date is at or after it (whatever the
        author date), and its Link pages keep it; a value that is no time is 422."""
        head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
        parent, made = head, []
        for hour in range(4):
            when = f"2030-01-01T0{hour}:00:00Z"
            # The token's user (an account GitHub links the commit to, as it lists it).
            old = InputGitAuthor(DEFAULT_NAME, DEFAULT_EMAIL, "2001-01-01T00:00:00Z")
            who = InputGitAuthor(DEFAULT_NAME, DEFAULT_EMAIL, when)
            parent = repo.create_git_commit(f"c{hour}", head.tree, [parent], old, who)
            made.append(parent.sha)
        repo.get_git_ref("heads/main").edit(parent.sha)
        url = f"{localhub.url}/repos/{REPO}/commits"
        with requests.Session() as s:
            since = {"sha": "main", "since": "2030-01-01T02:00:00Z"}
            r = s.get(url, params=since)
            assert [c["sha"] for c in r.json()] == made[:1:-1]
            r = s.get(url, params={**since, "since": "2030-01-01T01:00:00Z", "per_page": 2})
            assert [c["sha"] for c in r.json()] == made[:0:-1][:2]
            rels = {
                x["rel"]: x["url"] for x in requests.utils.parse_header_links(r.headers["Link"])
            }
            assert "since=2030-01-01T01" in rels["next"]
            assert [c["sha"] for c in s.get(rels["next"]).json()] == [made[1]]
            assert s.get(url, params={"since": "yesterday"}).status_code == 422

    def test_list_commits_unknown_sha_is_404(self, localhub: LocalHub, repo: Repository) -> None:
        """An unknown starting point is 404."""
        with requests.Session() as s:
            r = s.get(f"{localhub.url}/repos/{REPO}/commits", params={"sha": "nope"})
        assert r.status_code == 404


class TestRefs:
    """git/ref, git/matching-refs and git/refs."""

    def _commit_on(self, repo: Repository, parent_sha: str, message: str) -> str:
        parent = repo.get_git_commit(parent_sha)
        return repo.create_git_commit(message, parent.tree, [parent]).sha

    def test_get_and_missing(self, repo: Repository) -> None:
        """GET git/ref returns the branch; a missing one is 404."""
        ref = repo.get_git_ref("heads/main")
        assert (ref.ref, ref.object.type) == ("refs/heads/main", "commit")
        with pytest.raises(github.UnknownObjectException):
            repo.get_git_ref("heads/nope")

    def test_fast_forward_and_non_fast_forward(self, localhub: LocalHub, repo: Repository) -> None:
        """PATCH fast-forwards; a non-descendant is 422 "not a fast forward" unless forced."""
        ref = repo.get_git_ref("heads/main")
        base = ref.object.sha
        child = self._commit_on(repo, base, "child")
        ref.edit(child)
        assert localhub.git(REPO, "rev-parse", "main").strip() == child
        sibling = self._commit_on(repo, base, "sibling")
        with pytest.raises(github.GithubException) as info:
            ref.edit(sibling)
        assert info.value.status == 422
        assert info.value.data["message"] == "Update is not a fast forward"
        assert localhub.git(REPO, "rev-parse", "main").strip() == child
        ref.edit(sibling, force=True)
        assert localhub.git(REPO, "rev-parse", "main").strip() == sibling

    def test_patch_missing_object_is_422(self, repo: Repository) -> None:
        """PATCH to an object that does not exist is 422 "Object does not exist"."""
        ref = repo.get_git_ref("heads/main")
        with pytest.raises(github.GithubException) as info:
            ref.edit("d" * 40)
        assert (info.value.status, info.value.data["message"]) == (422, "Object does not exist")

    def test_create_matching_delete(self, localhub: LocalHub, repo: Repository) -> None:
        """POST creates (201), a duplicate is 422, matching-refs lists, DELETE removes (204)."""
        sha = repo.get_git_ref("heads/main").object.sha
        created = repo.create_git_ref("refs/heads/feature/x", sha)
        assert created.ref == "refs/heads/feature/x"
        with pytest.raises(github.GithubException) as info:
            repo.create_git_ref("refs/heads/feature/x", sha)
        assert info.value.data["message"] == "Reference already exists"
        names = [r.ref for r in repo.get_git_matching_refs("heads/feature")]
        assert names == ["refs/heads/feature/x"]
        created.delete()
        assert "feature" not in localhub.git(REPO, "for-each-ref")

    @pytest.mark.parametrize("name", ["heads/x", "refs/x", "refs/heads/bad..name"])
    def test_invalid_ref_name_is_422(self, repo: Repository, name: str) -> None:
        """A ref name without refs/ and two slashes, or not valid for git, is 422."""
        sha = repo.get_git_ref("heads/main").object.sha
        with pytest.raises(github.GithubException) as info:
            repo.create_git_ref(name, sha)
        assert info.value.status == 422

    def test_delete_missing_is_422(self, localhub: LocalHub, repo: Repository) -> None:
        """Deleting a ref that does not exist is 422."""
        with requests.Session() as s:
            r = s.delete(f"{localhub.url}/repos/{REPO}/git/refs/heads/nope")
        assert r.status_code == 422

    def test_clone_shows_api_writes(
        self, localhub: LocalHub, repo: Repository, tmp_path: Path
    ) -> None:
        """A git clone of the bare repository shows what the API committed."""
        ref = repo.get_git_ref("heads/main")
        head = repo.get_git_commit(ref.object.sha)
        tree = repo.create_git_tree(
            [InputGitTreeElement("log/a.jsonl", "100644", "blob", content='{"a":1}\n')],
            base_tree=head.tree,
        )
        ref.edit(repo.create_git_commit("add log", tree, [head]).sha)
        assert localhub.read_file(REPO, "log/a.jsonl") == b'{"a":1}\n'
        localhub.fsck(REPO)
        clone = tmp_path / "clone"
        subprocess.run(
            ["git", "clone", "-q", str(localhub.git_dir(REPO)), str(clone)],
            check=True,
            capture_output=True,
        )
        assert (clone / "log" / "a.jsonl").read_bytes() == b'{"a":1}\n'
