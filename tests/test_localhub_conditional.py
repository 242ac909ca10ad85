"""localhub's cache validators and conditional requests, GitHub App and anonymous repository
answers, and ``GET /rate_limit``, as GitHub has them (see ``gitjsonl.testing._conditional``).
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator

import github
import pytest
import requests

from gitjsonl._github import Credentials, GitHubRepo
from gitjsonl.testing import LocalHub
from gitjsonl.testing._conditional import Validators

from .helpers import rsa_key_pair

REPO = "owner/repo"
PUBLIC = "owner/open"


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    """A hub with two write tokens, a private and a public repository, one commit each."""
    tokens = {"one": "write", "two": "write"}
    with LocalHub(repos=(REPO, PUBLIC), tokens=tokens, public=(PUBLIC,)) as hub:
        hub.seed_commit(REPO, {"a.txt": b"1\n"})
        hub.seed_commit(PUBLIC, {"a.txt": b"1\n"})
        yield hub


def get(hub: LocalHub, path: str, token: str | None = "one", **headers: str) -> requests.Response:
    sent = {"Authorization": f"token {token}"} if token else {}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return requests.get(f"{hub.url}{path}", headers=sent, timeout=10)


def remaining(answer: requests.Response) -> int:
    return int(answer.headers["x-ratelimit-remaining"])


REF = f"/repos/{REPO}/git/ref/heads/main"


class TestValidators:
    @pytest.mark.parametrize(
        "path",
        [f"/repos/{REPO}", REF, f"/repos/{REPO}/contents/a.txt", f"/repos/{REPO}/commits"],
    )
    def test_reads_carry_etag_last_modified_cache_control_and_vary(
        self, hub: LocalHub, path: str
    ) -> None:
        """The reads GitHub dates carry a weak ETag, Last-Modified, private caching and Vary."""
        answer = get(hub, path)
        assert answer.status_code == 200
        assert answer.headers["etag"].startswith('W/"')
        assert email.utils.parsedate_to_datetime(answer.headers["last-modified"]).tzinfo
        assert answer.headers["cache-control"] == "private, max-age=60, s-maxage=60"
        assert "Authorization" in answer.headers["vary"]

    def test_a_blob_has_an_etag_but_no_date(self, hub: LocalHub) -> None:
        """A git blob (immutable, named by its sha) is validated by ETag alone."""
        sha = get(hub, f"/repos/{REPO}/contents/a.txt").json()["sha"]
        answer = get(hub, f"/repos/{REPO}/git/blobs/{sha}")
        assert "etag" in answer.headers
        assert "last-modified" not in answer.headers

    def test_anonymous_answers_are_public_to_caches(self, hub: LocalHub) -> None:
        """Without credentials the answer may be cached by anyone: Cache-Control public."""
        answer = get(hub, f"/repos/{PUBLIC}", token=None)
        assert answer.headers["cache-control"] == "public, max-age=60, s-maxage=60"

    def test_each_token_gets_its_own_etag(self, hub: LocalHub) -> None:
        """The same answer to two tokens has two ETags (GitHub varies on Authorization)."""
        assert get(hub, REF, "one").headers["etag"] != get(hub, REF, "two").headers["etag"]

    def test_a_write_gets_a_strong_etag_and_an_error_none(self, hub: LocalHub) -> None:
        """A created blob's answer has a strong ETag; a 404 has no validators."""
        created = requests.post(
            f"{hub.url}/repos/{REPO}/git/blobs",
            json={"content": "x"},
            headers={"Authorization": "token one"},
            timeout=10,
        )
        assert created.status_code == 201
        assert created.headers["etag"].startswith('"')
        missing = get(hub, f"/repos/{REPO}/git/ref/heads/nope")
        assert missing.status_code == 404
        assert "etag" not in missing.headers


class TestNotModified:
    def test_a_matching_etag_is_answered_304_with_no_body(self, hub: LocalHub) -> None:
        """If-None-Match naming the current ETag: 304, no body, the same validators (the ETag
        repeated strong, as GitHub's 304 does)."""
        first = get(hub, REF)
        again = get(hub, REF, if_none_match=first.headers["etag"])
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == first.headers["etag"].removeprefix("W/")
        assert again.headers["last-modified"] == first.headers["last-modified"]
        assert "content-type" not in again.headers

    def test_a_304_to_a_token_costs_no_primary_budget(self, hub: LocalHub) -> None:
        """Ten 304s leave x-ratelimit-remaining where the 200 before them left it."""
        first = get(hub, REF)
        for _ in range(10):
            again = get(hub, REF, if_none_match=first.headers["etag"])
            assert again.status_code == 304
            assert remaining(again) == remaining(first)

    def test_an_anonymous_304_still_counts(self, hub: LocalHub) -> None:
        """GitHub frees only 304s to requests "correctly authorized": anonymous ones count."""
        path = f"/repos/{PUBLIC}/git/ref/heads/main"
        first = get(hub, path, token=None)
        again = get(hub, path, token=None, if_none_match=first.headers["etag"])
        assert again.status_code == 304
        assert remaining(again) == remaining(first) - 1

    def test_another_tokens_etag_gets_the_full_answer(self, hub: LocalHub) -> None:
        """Token two sending token one's ETag gets 200 and the body."""
        etag = get(hub, REF, "one").headers["etag"]
        answer = get(hub, REF, "two", if_none_match=etag)
        assert answer.status_code == 200
        assert answer.json()["ref"] == "refs/heads/main"

    def test_a_moved_branch_is_answered_200_with_a_new_etag(self, hub: LocalHub) -> None:
        """After a commit the old ETag no longer matches: 200, the new head, a new ETag."""
        first = get(hub, REF)
        head = hub.seed_commit(REPO, {"a.txt": b"2\n"})
        again = get(hub, REF, if_none_match=first.headers["etag"])
        assert again.status_code == 200
        assert again.json()["object"]["sha"] == head
        assert again.headers["etag"] != first.headers["etag"]

    def test_if_modified_since_is_answered_304_until_a_change(self, hub: LocalHub) -> None:
        """If-Modified-Since at Last-Modified: 304; after a commit: 200 with a later date."""
        first = get(hub, REF)
        stamp = first.headers["last-modified"]
        assert get(hub, REF, if_modified_since=stamp).status_code == 304
        hub.seed_commit(REPO, {"a.txt": b"2\n"})
        changed = get(hub, REF, if_modified_since=stamp)
        assert changed.status_code == 200
        later = email.utils.parsedate_to_datetime(changed.headers["last-modified"])
        assert later > email.utils.parsedate_to_datetime(stamp)

    def test_if_none_match_wins_over_if_modified_since(self, hub: LocalHub) -> None:
        """A stale ETag with a current date: 200 (RFC 9110 evaluates If-None-Match first)."""
        first = get(hub, REF)
        answer = get(
            hub, REF, if_none_match='W/"stale"', if_modified_since=first.headers["last-modified"]
        )
        assert answer.status_code == 200

    def test_an_unreadable_date_is_ignored(self, hub: LocalHub) -> None:
        """If-Modified-Since that is not an HTTP date: the full answer."""
        assert get(hub, REF, if_modified_since="yesterday").status_code == 200


class TestValidatorMemory:
    def test_a_forgotten_answer_is_dated_anew_never_304(self) -> None:
        """Past its memory, a URL's date starts again at now: a later date, so no false 304."""
        now = [1000.0]
        validators = Validators(lambda: now[0], memory=1)
        answer = (200, "application/json", b"{}")
        first, _ = validators.headers("GET", "/a", "", {}, answer)
        now[0] = 2000.0
        validators.headers("GET", "/b", "", {}, answer)  # pushes /a out
        asked = {"if-modified-since": first["Last-Modified"]}
        again, not_modified = validators.headers("GET", "/a", "", asked, answer)
        assert not not_modified
        assert again["Last-Modified"] != first["Last-Modified"]

    def test_a_change_within_a_second_gets_a_later_date(self) -> None:
        """Two answers in the same second: the second is dated one second later."""
        validators = Validators(lambda: 1000.5)
        first, _ = validators.headers("GET", "/a", "", {}, (200, "x", b"1"))
        second, _ = validators.headers("GET", "/a", "", {}, (200, "x", b"2"))
        dates = [email.utils.parsedate_to_datetime(h["Last-Modified"]) for h in (first, second)]
        assert (dates[1] - dates[0]).total_seconds() == 1


class TestPermissions:
    def test_a_personal_token_is_told_its_permissions(self, hub: LocalHub) -> None:
        """A personal token's repository answer says what it may do."""
        assert get(hub, f"/repos/{REPO}").json()["permissions"]["push"] is True

    def test_an_anonymous_request_is_told_nothing(self, hub: LocalHub) -> None:
        """Without credentials the repository answer has no permissions key."""
        body = get(hub, f"/repos/{PUBLIC}", token=None).json()
        assert "permissions" not in body

    def test_an_app_installation_token_is_told_all_false_and_not_believed(
        self, hub: LocalHub
    ) -> None:
        """An installation token is answered every permission false, as GitHub did in 2021,
        and gitjsonl reads that as "GitHub did not say", never as "may not push"."""
        private, public = rsa_key_pair()
        hub.register_app(4242, public, 77)
        auth = github.Auth.AppAuth(4242, private).get_installation_auth(77)
        repo = GitHubRepo(REPO, Credentials(hub.url, auth=auth))
        try:
            info = repo.repository()
        finally:
            repo.close()
        assert (info.full_name, info.can_push) == (REPO, None)
        assert any(r.token and r.token.startswith("ghs_") for r in hub.requests)
        answered = [r for r in hub.requests if r.path == f"/repos/{REPO}" and r.status == 200]
        assert answered, "the repository was read"
        token = next(r.token for r in answered if r.token)
        body = get(hub, f"/repos/{REPO}", token=token).json()
        assert not any(body["permissions"].values())


class TestRateLimit:
    def test_every_resource_github_lists(self, hub: LocalHub) -> None:
        """GET /rate_limit lists GitHub's resources, core counting this token's requests."""
        get(hub, f"/repos/{REPO}")
        body = get(hub, "/rate_limit").json()
        assert {"core", "search", "graphql", "code_search", "integration_manifest"} <= set(
            body["resources"]
        )
        for resource in body["resources"].values():
            assert set(resource) == {"limit", "used", "remaining", "reset"}
        assert body["resources"]["core"]["used"] == 1
        assert body["rate"] == body["resources"]["core"]
