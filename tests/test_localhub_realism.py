"""localhub behaving like GitHub really does: lagging reads, capped listings, real error
bodies, moved repositories (issue 10); visibility, protected branches, expiring and App
tokens, the Date header (issue 13)."""

from __future__ import annotations

import base64
import email.utils
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import github
import pytest
import requests

from gitjsonl.testing import Fault, LocalHub, SecondaryLimits
from gitjsonl.testing._faults import load_faults

from .helpers import rsa_key_pair
from .test_localhub_git import REPO, client
from .test_localhub_openapi import openapi_checked

__all__ = ["openapi_checked"]
pytestmark = pytest.mark.usefixtures("openapi_checked")
Factory = Callable[..., LocalHub]
LAG = 0.4


def _advance(hub: LocalHub, message: str = "next") -> tuple[str, str]:
    """Move main forward through the API; return (old head, new head)."""
    old = hub.git(REPO, "rev-parse", "main").strip()
    with requests.Session() as s:
        tree = s.post(
            f"{hub.url}/repos/{REPO}/git/trees",
            json={
                "base_tree": old,
                "tree": [{"path": "f.txt", "mode": "100644", "type": "blob", "content": message}],
            },
        ).json()["sha"]
        new = s.post(
            f"{hub.url}/repos/{REPO}/git/commits",
            json={"message": message, "tree": tree, "parents": [old]},
        ).json()["sha"]
        r = s.patch(f"{hub.url}/repos/{REPO}/git/refs/heads/main", json={"sha": new})
    assert r.status_code == 200, r.text
    return old, new


def _branch_reads(hub: LocalHub) -> dict[str, str]:
    """The head as seen by each kind of read that names the branch."""
    with requests.Session() as s:
        get = lambda path: s.get(f"{hub.url}/repos/{REPO}{path}").json()  # noqa: E731
        contents = get("/contents/f.txt?ref=main")
        return {
            "ref": get("/git/ref/heads/main")["object"]["sha"],
            "matching": get("/git/matching-refs/heads/main")[0]["object"]["sha"],
            "commits": get("/commits?sha=main")[0]["sha"],
            "commits-default": get("/commits")[0]["sha"],
            "branch": get("/branches/main")["commit"]["sha"],
            "tree": get("/git/trees/main")["sha"],
            "contents": base64.b64decode(contents["content"]).decode(),
        }


class TestReadLag:
    """For read_lag seconds after a ref moves, reads naming the branch see the previous head."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub whose repository has one commit holding f.txt."""
        hub = localhub_factory(initial_commit=True)
        hub.seed_commit(REPO, {"f.txt": b"seed"})
        return hub

    def test_off_by_default(self, hub: LocalHub) -> None:
        """Without read_lag every read sees the new head at once."""
        assert hub.read_lag == 0
        _, new = _advance(hub)
        reads = _branch_reads(hub)
        assert reads["ref"] == reads["commits"] == reads["branch"] == new
        assert reads["contents"] == "next"

    def test_every_read_naming_the_branch_lags(self, hub: LocalHub) -> None:
        """Ref, refs, matching-refs, commit lists, branch, tree and contents all lag."""
        hub.read_lag = LAG
        time.sleep(LAG)  # let the fixture's own seeding settle
        old, new = _advance(hub)
        old_tree = hub.git(REPO, "rev-parse", f"{old}^{{tree}}").strip()
        reads = _branch_reads(hub)
        assert {k: v for k, v in reads.items() if k not in ("tree", "contents")} == {
            "ref": old,
            "matching": old,
            "commits": old,
            "commits-default": old,
            "branch": old,
        }
        assert (reads["tree"], reads["contents"]) == (old_tree, "seed")
        time.sleep(LAG + 0.1)
        reads = _branch_reads(hub)
        assert reads["ref"] == reads["commits"] == reads["branch"] == new
        assert reads["contents"] == "next"

    def test_reads_by_sha_are_exact(self, hub: LocalHub) -> None:
        """The new commit is readable by its sha at once, while the branch still lags."""
        hub.read_lag = LAG
        time.sleep(LAG)  # let the fixture's own seeding settle
        _, new = _advance(hub)
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}/git/commits/{new}")
            listed = s.get(f"{hub.url}/repos/{REPO}/commits?sha={new}").json()
        assert r.status_code == 200
        assert listed[0]["sha"] == new

    def test_writes_see_the_true_head(self, hub: LocalHub) -> None:
        """A fast-forward built on the new head lands although reads still show the old one."""
        hub.read_lag = LAG
        time.sleep(LAG)  # let the fixture's own seeding settle
        _advance(hub, "one")
        _, newest = _advance(hub, "two")
        assert hub.git(REPO, "rev-parse", "main").strip() == newest

    def test_a_new_branch_is_missing_for_a_while(self, hub: LocalHub) -> None:
        """A branch created a moment ago is still 404 to reads."""
        hub.read_lag = LAG
        time.sleep(LAG)  # let the fixture's own seeding settle
        head = hub.git(REPO, "rev-parse", "main").strip()
        with requests.Session() as s:
            s.post(f"{hub.url}/repos/{REPO}/git/refs", json={"ref": "refs/heads/b", "sha": head})
            assert s.get(f"{hub.url}/repos/{REPO}/git/ref/heads/b").status_code == 404
            time.sleep(LAG + 0.1)
            assert s.get(f"{hub.url}/repos/{REPO}/git/ref/heads/b").status_code == 200

    def test_constructor_and_bounds(self, localhub_factory: Factory) -> None:
        """read_lag= sets it at start; negative or over 60 s is a ValueError."""
        hub = localhub_factory(read_lag=1.5)
        assert hub.read_lag == 1.5
        for bad in (-1.0, 61.0):
            with pytest.raises(ValueError, match="read_lag"):
                hub.read_lag = bad


class TestListings:
    """Contents listings stop at 1,000 entries; the Git Trees API lists everything."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub capping Contents listings at 5, with 7 files in folder d."""
        hub = localhub_factory(initial_commit=True, contents_listing_cap=5)
        hub.seed_commit(REPO, {f"d/{i:08d}.jsonl": b"x\n" for i in range(7)})
        return hub

    def test_github_default_is_1000(self, localhub: LocalHub) -> None:
        """The default cap is GitHub's 1,000 entries."""
        assert localhub.contents_listing_cap == 1000

    def test_contents_listing_is_cut_silently(self, hub: LocalHub) -> None:
        """The folder listing shows the first 5 of 7 entries and no sign of the rest."""
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}/contents/d")
        assert r.status_code == 200
        assert [e["name"] for e in r.json()] == [f"{i:08d}.jsonl" for i in range(5)]

    def test_trees_list_everything(self, hub: LocalHub) -> None:
        """GET git/trees/{sha} of the folder lists all 7 entries."""
        sub = hub.git(REPO, "rev-parse", "main:d").strip()
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}/git/trees/{sub}")
        assert (len(r.json()["tree"]), r.json()["truncated"]) == (7, False)

    @pytest.mark.parametrize("spec", ["main:d", "{head}:d", "{tree}:d"])
    def test_tree_ish_with_a_path(self, hub: LocalHub, spec: str) -> None:
        """git/trees/<branch or sha>:<path> is that sub-tree, as on GitHub."""
        head = hub.git(REPO, "rev-parse", "main").strip()
        tree = hub.git(REPO, "rev-parse", "main^{tree}").strip()
        sub = hub.git(REPO, "rev-parse", "main:d").strip()
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}/git/trees/{spec.format(head=head, tree=tree)}")
        assert (r.status_code, r.json()["sha"]) == (200, sub)

    @pytest.mark.parametrize("spec", ["main:nope", "main:README.md", "nope:d", "main:../d"])
    def test_bad_tree_ish_is_404(self, hub: LocalHub, spec: str) -> None:
        """A missing path, a file, a missing branch or a dot-dot path is 404."""
        with requests.Session() as s:
            assert s.get(f"{hub.url}/repos/{REPO}/git/trees/{spec}").status_code == 404

    def test_recursive_truncation_by_entries_and_bytes(self, hub: LocalHub) -> None:
        """Recursive listings stop at tree_truncate_limit entries or tree_truncate_bytes."""
        url = f"{hub.url}/repos/{REPO}/git/trees/main?recursive=1"
        with requests.Session() as s:
            full = s.get(url).json()
            hub.tree_truncate_limit = 3
            by_count = s.get(url).json()
            hub.tree_truncate_limit = 100_000
            hub.tree_truncate_bytes = 600
            by_bytes = s.get(url).json()
        assert (len(full["tree"]), full["truncated"]) == (9, False)
        assert (len(by_count["tree"]), by_count["truncated"]) == (3, True)
        assert by_bytes["truncated"] is True
        assert 0 < len(json.dumps(by_bytes["tree"])) <= 600


class TestErrorBodies:
    """Faults and limits answer with GitHub's own statuses and messages."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub whose repository has one commit."""
        return localhub_factory(initial_commit=True)

    @pytest.mark.parametrize(
        ("path", "message"),
        [
            (r"/git/refs/", "Reference update failed"),
            (r"/git/refs/", "Reference cannot be updated"),
            (
                r"/git/trees$",
                "Sorry, your request timed out. It's likely that your input was too large "
                "to process.",
            ),
            (r"/git/trees$", "base_tree is not a valid tree oid"),
        ],
    )
    def test_fault_carries_the_message(self, hub: LocalHub, path: str, message: str) -> None:
        """A 422 fault sends exactly the given message with a documentation_url."""
        doc = "https://docs.github.com/rest/git/refs#update-a-reference"
        hub.add_fault(Fault(path=path, status=422, message=message, documentation_url=doc))
        method, target = (
            ("PATCH", "/git/refs/heads/main") if "refs" in path else ("POST", "/git/trees")
        )
        with requests.Session() as s:
            r = s.request(method, f"{hub.url}/repos/{REPO}{target}", json={})
        assert r.status_code == 422
        assert r.json() == {"message": message, "documentation_url": doc, "status": "422"}

    def test_pygithub_sees_the_message(self, hub: LocalHub) -> None:
        """PyGithub raises GithubException(422) with the injected message in .data."""
        hub.add_fault(
            Fault(
                method="PATCH", action="error_after", status=422, message="Reference update failed"
            )
        )
        g = client(hub)
        try:
            ref = g.get_repo(REPO).get_git_ref("heads/main")
            with pytest.raises(github.GithubException) as info:
                ref.edit(ref.object.sha)
        finally:
            g.close()
        assert (info.value.status, info.value.data["message"]) == (422, "Reference update failed")

    @pytest.mark.parametrize(("status", "retry_after"), [(429, 5), (429, None), (403, None)])
    def test_secondary_limit_fault_as_403_or_429(
        self, hub: LocalHub, status: int, retry_after: int | None
    ) -> None:
        """A secondary-limit fault answers 403 or 429, with or without retry-after."""
        hub.add_fault(Fault(action="secondary_limit", status=status, retry_after=retry_after))
        with requests.Session() as s:
            r = s.post(f"{hub.url}/repos/{REPO}/git/blobs", json={"content": "x"})
        assert r.status_code == status
        assert r.json()["message"].startswith("You have exceeded a secondary rate limit")
        assert r.headers.get("retry-after") == (None if retry_after is None else str(retry_after))

    def test_secondary_limits_as_429(self, localhub_factory: Factory) -> None:
        """SecondaryLimits(status=429) answers the request past the budget with 429."""
        hub = localhub_factory(
            initial_commit=True, secondary_limits=SecondaryLimits(per_minute=1, status=429)
        )
        with requests.Session() as s:
            codes = [
                s.post(f"{hub.url}/repos/{REPO}/git/blobs", json={"content": "x"}).status_code
                for _ in range(2)
            ]
        assert codes == [201, 429]

    def test_only_403_or_429_for_secondary_limits(self) -> None:
        """Any other status for a secondary limit is a ValueError."""
        with pytest.raises(ValueError, match="403 or 429"):
            SecondaryLimits(status=500)
        with pytest.raises(ValueError, match="403 or 429"):
            Fault(action="secondary_limit", status=502)

    def test_faults_file_carries_the_new_fields(self, tmp_path: Path) -> None:
        """message, status and documentation_url load from a --faults file."""
        path = tmp_path / "faults.json"
        entry = {"method": "PATCH", "status": 422, "message": "Reference cannot be updated"}
        path.write_text(json.dumps([entry, {"action": "secondary_limit", "status": 429}]))
        assert load_faults(path) == [
            Fault(method="PATCH", status=422, message="Reference cannot be updated"),
            Fault(action="secondary_limit", status=429),
        ]


class TestMovedRepositories:
    """A renamed or transferred repository redirects from its old name, as GitHub does."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """owner/repo with one commit, renamed to owner/renamed."""
        hub = localhub_factory(initial_commit=True)
        hub.rename_repo(REPO, "owner/renamed")
        return hub

    def test_reads_get_301_with_location(self, hub: LocalHub) -> None:
        """GET on the old name is 301 to /repositories/{id}/..., query kept, with a body."""
        repo_id = hub.repo_id("owner/renamed")
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}/commits?per_page=1", allow_redirects=False)
        location = f"{hub.url}/repositories/{repo_id}/commits?per_page=1"
        assert (r.status_code, r.headers["Location"]) == (301, location)
        assert r.json()["message"] == "Moved Permanently"
        assert r.json()["url"] == location
        assert r.json()["documentation_url"].endswith("#follow-redirects")

    def test_writes_get_307_and_nothing_is_written(self, hub: LocalHub) -> None:
        """A PUT on the old name is 307; repeating it at Location creates the file."""
        body = {"message": "m", "content": "eA=="}
        with requests.Session() as s:
            r = s.put(f"{hub.url}/repos/{REPO}/contents/a%20b", json=body, allow_redirects=False)
            assert r.status_code == 307
            assert hub.read_file("owner/renamed", "a b") is None
            again = s.put(r.headers["Location"], json=body)
        assert again.status_code == 201
        assert r.headers["Location"].endswith("/contents/a%20b")
        assert hub.read_file("owner/renamed", "a b") == b"x"

    def test_pygithub_follows_the_301(self, hub: LocalHub) -> None:
        """PyGithub's get_repo on the old name lands on the new repository."""
        g = client(hub)
        try:
            repo = g.get_repo(REPO)
            assert (repo.full_name, repo.id) == ("owner/renamed", hub.repo_id("owner/renamed"))
        finally:
            g.close()

    def test_repositories_id_routes_serve_every_endpoint(self, hub: LocalHub) -> None:
        """/repositories/{id}/git/ref/..., /contents and the repository itself all answer."""
        repo_id = hub.repo_id("owner/renamed")
        base = f"{hub.url}/repositories/{repo_id}"
        with requests.Session() as s:
            assert s.get(f"{base}/git/ref/heads/main").status_code == 200
            assert s.get(f"{base}/contents/README.md").status_code == 200
            assert s.get(base).json()["full_name"] == "owner/renamed"
            assert s.get(f"{hub.url}/repositories/1/git/ref/heads/main").status_code == 404

    def test_transfer_keeps_the_id(self, hub: LocalHub) -> None:
        """A transfer to another owner keeps the id; both old names redirect."""
        repo_id = hub.repo_id("owner/renamed")
        hub.rename_repo("owner/renamed", "other/moved")
        assert hub.repo_id("other/moved") == repo_id
        with requests.Session() as s:
            for old in (REPO, "owner/renamed"):
                r = s.get(f"{hub.url}/repos/{old}", allow_redirects=False)
                assert r.headers["Location"] == f"{hub.url}/repositories/{repo_id}"

    def test_bad_renames_are_refused(self, hub: LocalHub) -> None:
        """Renaming onto an existing repository or an invalid name is a ValueError."""
        hub.create_repo("owner/taken")
        with pytest.raises(ValueError, match="already exists"):
            hub.rename_repo("owner/renamed", "owner/taken")
        with pytest.raises(ValueError, match="not a GitHub repository name"):
            hub.rename_repo("owner/renamed", "../x")


class TestVisibilityAndPermissions:
    """Repositories are private unless made public; permissions follow the token."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub with a write and a read token, owner/repo private, owner/open public."""
        return localhub_factory(
            tokens={"w": "write", "r": "read"},
            repos=(REPO, "owner/open"),
            public=("owner/open",),
            initial_commit=True,
        )

    def _repo(self, hub: LocalHub, name: str, token: str | None) -> requests.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        with requests.Session() as s:
            return s.get(f"{hub.url}/repos/{name}", headers=headers)

    def test_private_by_default_public_on_request(self, hub: LocalHub) -> None:
        """private/visibility say which is which; set_visibility changes it."""
        assert self._repo(hub, REPO, "w").json()["visibility"] == "private"
        assert self._repo(hub, "owner/open", "w").json()["private"] is False
        hub.set_visibility(REPO, "public")
        assert self._repo(hub, REPO, "w").json()["visibility"] == "public"

    @pytest.mark.parametrize(
        ("token", "push"),
        [("w", True), ("r", False)],
    )
    def test_permissions_follow_the_token(self, hub: LocalHub, token: str, push: bool) -> None:
        """A write token may push; a read-only one may only pull."""
        permissions = self._repo(hub, REPO, token).json()["permissions"]
        assert permissions == {
            "admin": push,
            "maintain": push,
            "push": push,
            "triage": push,
            "pull": True,
        }

    def test_anonymous_sees_public_only(self, hub: LocalHub) -> None:
        """Without a token a private repository is 404, a public one readable, writes 401."""
        assert self._repo(hub, REPO, None).status_code == 404
        assert self._repo(hub, "owner/open", None).status_code == 200
        with requests.Session() as s:
            r = s.post(f"{hub.url}/repos/owner/open/git/blobs", json={"content": "x"})
        assert (r.status_code, r.json()["message"]) == (401, "Requires authentication")


class TestProtectedBranches:
    """Ref updates and Contents PUTs on a protected branch are refused with GitHub's words."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory) -> LocalHub:
        """A hub whose repository has one commit on main."""
        return localhub_factory(initial_commit=True)

    def _child(self, hub: LocalHub) -> str:
        head = hub.git(REPO, "rev-parse", "main").strip()
        tree = hub.git(REPO, "rev-parse", "main^{tree}").strip()
        with requests.Session() as s:
            return str(
                s.post(
                    f"{hub.url}/repos/{REPO}/git/commits",
                    json={"message": "c", "tree": tree, "parents": [head]},
                ).json()["sha"]
            )

    @pytest.mark.parametrize(
        ("kind", "message"),
        [
            ("branch_protection", "Protected branch update failed for refs/heads/main."),
            (
                "ruleset",
                "Repository rule violations found\n\nChanges must be made through a pull "
                "request.\n\n",
            ),
        ],
    )
    def test_ref_update_refused(self, hub: LocalHub, kind: str, message: str) -> None:
        """PATCH and DELETE of a protected branch are 422 and the branch stays put."""
        hub.protect_branch(REPO, "main", kind=kind)
        head = hub.git(REPO, "rev-parse", "main").strip()
        child = self._child(hub)
        with requests.Session() as s:
            r = s.patch(f"{hub.url}/repos/{REPO}/git/refs/heads/main", json={"sha": child})
            d = s.delete(f"{hub.url}/repos/{REPO}/git/refs/heads/main")
            branch = s.get(f"{hub.url}/repos/{REPO}/branches/main").json()
        assert (r.status_code, r.json()["message"]) == (422, message)
        assert d.status_code == 422
        assert hub.git(REPO, "rev-parse", "main").strip() == head
        assert branch["protected"] is True

    @pytest.mark.parametrize(
        ("kind", "message"),
        [
            ("branch_protection", "Could not update file: Changes must be made through a pull"),
            ("ruleset", "Repository rule violations found"),
        ],
    )
    def test_contents_put_refused(self, hub: LocalHub, kind: str, message: str) -> None:
        """A Contents PUT to a protected branch is 409 and makes no commit."""
        hub.protect_branch(REPO, "main", kind=kind)
        sha = hub.git(REPO, "rev-parse", "main:README.md").strip()
        head = hub.git(REPO, "rev-parse", "main").strip()
        with requests.Session() as s:
            r = s.put(
                f"{hub.url}/repos/{REPO}/contents/README.md",
                json={"message": "m", "content": "eA==", "sha": sha},
            )
        assert r.status_code == 409
        assert r.json()["message"].startswith(message)
        assert hub.git(REPO, "rev-parse", "main").strip() == head

    def test_other_branches_and_unprotect(self, hub: LocalHub) -> None:
        """Branches of its own are writable; after unprotect_branch main is too."""
        hub.protect_branch(REPO, "main")
        child = self._child(hub)
        with requests.Session() as s:
            made = s.post(
                f"{hub.url}/repos/{REPO}/git/refs", json={"ref": "refs/heads/log", "sha": child}
            )
            hub.unprotect_branch(REPO, "main")
            moved = s.patch(f"{hub.url}/repos/{REPO}/git/refs/heads/main", json={"sha": child})
        assert (made.status_code, moved.status_code) == (201, 200)

    def test_ruleset_refuses_creation(self, hub: LocalHub) -> None:
        """A ruleset on a branch name refuses creating that branch."""
        hub.protect_branch(REPO, "log", kind="ruleset")
        head = hub.git(REPO, "rev-parse", "main").strip()
        with requests.Session() as s:
            r = s.post(
                f"{hub.url}/repos/{REPO}/git/refs", json={"ref": "refs/heads/log", "sha": head}
            )
        assert r.status_code == 422
        assert "Cannot create ref due to creations being restricted." in r.json()["message"]

    def test_unknown_kind_is_refused(self, hub: LocalHub) -> None:
        """Only branch_protection and ruleset exist."""
        with pytest.raises(ValueError, match="protection kind"):
            hub.protect_branch(REPO, "main", kind="lock")


class TestExpiringTokens:
    """Tokens added with expires_in get 401 Bad credentials once expired."""

    def test_token_expires(self, localhub_factory: Factory) -> None:
        """A token works until expires_in, then PyGithub raises BadCredentialsException."""
        hub = localhub_factory(initial_commit=True)
        hub.add_token("short", expires_in=0.3)
        g = client(hub, token="short")
        try:
            g.get_repo(REPO).get_git_ref("heads/main")
            time.sleep(0.4)
            with pytest.raises(github.BadCredentialsException):
                g.get_repo(REPO).get_git_ref("heads/main")
        finally:
            g.close()

    def test_adding_a_token_closes_an_open_hub(self, localhub_factory: Factory) -> None:
        """After add_token, unknown tokens are 401 and hub.token is the added one."""
        hub = localhub_factory(initial_commit=True)
        hub.add_token("mine")
        assert hub.token == "mine"
        with requests.Session() as s:
            r = s.get(f"{hub.url}/repos/{REPO}", headers={"Authorization": "token other"})
        assert (r.status_code, r.json()["message"]) == (401, "Bad credentials")


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    """One RSA key pair for the module (generating one takes a moment)."""
    return rsa_key_pair()


class TestAppInstallations:
    """PyGithub's GitHub App installation auth works against localhub; its tokens expire."""

    @pytest.fixture
    def hub(self, localhub_factory: Factory, keys: tuple[str, str]) -> LocalHub:
        """App 7, installation 42 on owner/repo only; owner/other exists too."""
        hub = localhub_factory(repos=(REPO, "owner/other"), initial_commit=True)
        hub.register_app(7, keys[1], 42, repos=(REPO,), token_lifetime=0.5)
        return hub

    @pytest.fixture
    def gh(self, hub: LocalHub, keys: tuple[str, str]) -> Iterator[github.Github]:
        """A PyGithub client with AppInstallationAuth."""
        auth = github.Auth.AppAuth(7, keys[0]).get_installation_auth(42)
        g = github.Github(
            auth=auth,
            base_url=hub.url,
            retry=0,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        yield g
        g.close()

    def test_pygithub_app_auth_reads_and_writes(self, hub: LocalHub, gh: github.Github) -> None:
        """The installation token reads refs and creates blobs in the installed repository."""
        repo = gh.get_repo(REPO)
        assert repo.get_git_ref("heads/main").object.sha
        repo.create_git_blob("x", "utf-8")
        posts = [r for r in hub.requests if r.path == "/app/installations/42/access_tokens"]
        assert posts
        assert all(r.status == 201 for r in posts)

    def test_other_repositories_are_invisible(self, gh: github.Github) -> None:
        """A repository outside the installation is 404."""
        with pytest.raises(github.UnknownObjectException):
            gh.get_repo("owner/other")

    def test_issued_tokens_expire(self, hub: LocalHub, keys: tuple[str, str]) -> None:
        """An installation token gets 401 Bad credentials after its lifetime."""
        jwt_token = github.Auth.AppAuth(7, keys[0]).create_jwt()
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {jwt_token}"
            issued = s.post(f"{hub.url}/app/installations/42/access_tokens", json={}).json()
            assert issued["token"].startswith("ghs_")
            assert set(issued) >= {"token", "expires_at", "permissions"}
            s.headers["Authorization"] = f"token {issued['token']}"
            assert s.get(f"{hub.url}/repos/{REPO}").status_code == 200
            time.sleep(0.6)
            r = s.get(f"{hub.url}/repos/{REPO}")
        assert (r.status_code, r.json()["message"]) == (401, "Bad credentials")

    def test_jwt_checked_against_the_registered_key(self, hub: LocalHub) -> None:
        """A JWT signed by another key is 401; an unknown installation is 404."""
        other_private, _ = rsa_key_pair()
        forged = github.Auth.AppAuth(7, other_private).create_jwt()
        with requests.Session() as s:
            r = s.post(
                f"{hub.url}/app/installations/42/access_tokens",
                headers={"Authorization": f"Bearer {forged}"},
            )
        assert r.status_code == 401

    def test_installation_lookups(self, hub: LocalHub, keys: tuple[str, str]) -> None:
        """GET /repos/{o}/{r}/installation and /app/installations/{id} answer with the App JWT."""
        jwt_token = github.Auth.AppAuth(7, keys[0]).create_jwt()
        headers = {"Authorization": f"Bearer {jwt_token}"}
        with requests.Session() as s:
            by_repo = s.get(f"{hub.url}/repos/{REPO}/installation", headers=headers)
            other = s.get(f"{hub.url}/repos/owner/other/installation", headers=headers)
            missing = s.get(f"{hub.url}/app/installations/9", headers=headers)
        assert (by_repo.status_code, by_repo.json()["id"]) == (200, 42)
        assert (other.status_code, missing.status_code) == (404, 404)


class TestDateHeader:
    """Every answer carries a Date header; clock_skew shifts it."""

    def test_date_and_skew(self, localhub: LocalHub) -> None:
        """Date is within seconds of now, and clock_skew moves it by that much."""
        with requests.Session() as s:
            plain = s.get(f"{localhub.url}/rate_limit").headers["Date"]
            localhub.clock_skew = 3600
            skewed = s.get(f"{localhub.url}/nowhere").headers["Date"]
        now = time.time()
        assert abs(email.utils.parsedate_to_datetime(plain).timestamp() - now) < 5
        assert abs(email.utils.parsedate_to_datetime(skewed).timestamp() - now - 3600) < 5


class TestServeFlags:
    """`serve` exposes the realism switches."""

    def test_public_read_lag_and_429(self, tmp_path: Path) -> None:
        """--public, --read-lag and --secondary-limit-status reach the served hub."""
        command = [sys.executable, "-m", "gitjsonl.testing", "serve", "--root", str(tmp_path)]
        flags = ["--repo", "o/r", "--public", "o/r", "--token", "t", "--read-lag", "2"]
        limits = ["--secondary-limits", "--secondary-limit-status", "429", "--initial-commit"]
        proc = subprocess.Popen(
            [*command, *flags, *limits],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            with requests.Session() as s:
                body = s.get(f"{url}/repos/o/r").json()
        finally:
            proc.terminate()
            proc.communicate(timeout=15)
        assert (body["visibility"], "permissions" in body) == ("public", False)  # anonymous
