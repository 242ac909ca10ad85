"""localhub words its refusals as GitHub does (issue 24, item 14).

Each row is an answer recorded from GitHub (the source is cited where localhub
builds it: ``gitjsonl/testing/_api.py``, ``_server.py``, ``_conditional.py``).
gitjsonl matches none of these texts itself (it reads statuses, and "rate limit",
"secondary" or "fast forward" in a message): the rows pin localhub, so that a
test written against it sees what a user of GitHub would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests

from gitjsonl.testing import Fault, LocalHub

from .helpers import REPO, rsa_key_pair

Factory = Callable[..., LocalHub]

NOT_A_SHA = "The {} parameter must be exactly 40 characters and contain only [0-9a-f]."


@pytest.fixture
def hub(localhub_factory: Factory) -> LocalHub:
    """localhub with one commit on main."""
    return localhub_factory(initial_commit=True)


def call(
    hub: LocalHub,
    method: str,
    path: str,
    *,
    token: str | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """One request to the repository's API on ``hub`` (with its token unless another given)."""
    sent = {"Authorization": f"token {token or hub.token}", **(headers or {})}
    with requests.Session() as session:
        url = f"{hub.url}/repos/{REPO}{path}"
        return session.request(method, url, headers=sent, json=json, timeout=30)


class TestRefusals:
    def test_a_ref_update_to_a_sha_that_is_not_one(self, hub: LocalHub) -> None:
        """PATCH git/refs with a sha that is not 40 hex digits is 422 naming the sha parameter."""
        answer = call(hub, "PATCH", "/git/refs/heads/main", json={"sha": "fakeshalol" * 4})
        assert answer.status_code == 422
        assert answer.json()["message"] == NOT_A_SHA.format("sha")

    def test_a_commit_of_a_tree_that_is_not_a_sha(self, hub: LocalHub) -> None:
        """POST git/commits with a tree that is not 40 hex digits is 422 naming the tree."""
        body = {"message": "x", "tree": "loltotallynotatree", "parents": []}
        answer = call(hub, "POST", "/git/commits", json=body)
        assert answer.status_code == 422
        assert answer.json()["message"] == NOT_A_SHA.format("tree")

    def test_a_write_with_a_read_only_personal_token(self, hub: LocalHub) -> None:
        """A personal token that may only read is refused 'by personal access token'."""
        hub.add_token("read-only-token", write=False)
        answer = call(hub, "POST", "/git/blobs", token="read-only-token", json={"content": "x"})
        assert answer.status_code == 403
        assert answer.json()["message"] == "Resource not accessible by personal access token"

    def test_a_write_with_a_read_only_installation_token(self, hub: LocalHub) -> None:
        """An App installation token that may only read is refused 'by integration'."""
        private, public = rsa_key_pair()
        hub.register_app(7, public, 70, write=False)
        now = int(time.time())
        app_jwt = jwt.encode({"iat": now - 30, "exp": now + 300, "iss": "7"}, private, "RS256")
        with requests.Session() as session:
            issued = session.post(
                f"{hub.url}/app/installations/70/access_tokens",
                headers={"Authorization": f"Bearer {app_jwt}"},
                timeout=30,
            )
        token = issued.json()["token"]
        assert call(hub, "GET", "/git/ref/heads/main", token=token).status_code == 200
        answer = call(hub, "POST", "/git/blobs", token=token, json={"content": "x"})
        assert answer.status_code == 403
        assert answer.json()["message"] == "Resource not accessible by integration"

    def test_the_content_creation_limit(self, hub: LocalHub) -> None:
        """A write over the secondary limit gets GitHub's content-creation wording."""
        hub.add_fault(Fault(method="POST", action="secondary_limit"))
        answer = call(hub, "POST", "/git/blobs", json={"content": "x"})
        assert answer.status_code == 403
        assert answer.json() == {
            "message": "You have exceeded a secondary rate limit and have been temporarily "
            "blocked from content creation. Please retry your request again later.",
            "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api"
            "#secondary-rate-limits",
        }


class TestNotModified:
    def test_a_304_repeats_the_etag_strong_and_no_media_type(self, hub: LocalHub) -> None:
        """A 304 carries the ETag without W/ and no X-GitHub-Media-Type."""
        first = call(hub, "GET", "/git/ref/heads/main")
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        again = call(hub, "GET", "/git/ref/heads/main", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.headers["etag"] == etag.removeprefix("W/")
        assert "x-github-media-type" not in again.headers
