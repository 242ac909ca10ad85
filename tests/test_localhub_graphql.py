"""localhub's GraphQL subset (gitjsonl/testing/_graphql.py) against its own rules."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from gitjsonl._github import git_blob_sha, graphql_blobs_query
from gitjsonl.testing import Fault, LocalHub
from gitjsonl.testing._graphql import TEXT_LIMIT, GraphqlError, parse
from tests.helpers import REPO


def post(
    hub: LocalHub, query: Any, *, token: str | None = "default", path: str = "/graphql"
) -> requests.Response:
    headers = (
        {}
        if token is None
        else {"Authorization": f"bearer {hub.token if token == 'default' else token}"}
    )
    body = query if isinstance(query, dict) else {"query": query, "variables": {}}
    return requests.post(hub.url + path, json=body, headers=headers, timeout=30)


def seeded(hub: LocalHub, files: dict[str, bytes]) -> dict[str, str]:
    """Commit ``files`` and return each one's blob sha, by path."""
    hub.seed_commit(REPO, dict(files))
    return {path: git_blob_sha(data) for path, data in files.items()}


class TestParser:
    def test_the_query_gitjsonl_sends_parses(self) -> None:
        """The client's own query (graphql_blobs_query) reads as the lookups it asks."""
        sha = "a" * 40
        query, aliases = graphql_blobs_query("o/r", [sha, "b" * 40])
        parsed = parse(query)
        assert (parsed.owner, parsed.name) == ("o", "r")
        assert [(x.key, x.oid) for x in parsed.lookups] == [("f0", sha), ("f1", "b" * 40)]
        assert parsed.lookups[0].fields == ("text", "isTruncated", "byteSize")
        assert list(aliases) == ["f0", "f1"]

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            (
                '{ repository(owner: "o", name: "r") { f0: object(oid: "' + "a" * 40 + '") '
                "{ ... on Blob { text } } }",
                "Parse error on end of file",
            ),
            ("{ viewer { login } }", "Field 'viewer' doesn't exist on type 'Query'"),
            (
                '{ repository(owner: "o", name: "r") { issues { totalCount } } }',
                "Field 'issues' doesn't exist on type 'Repository'",
            ),
            (
                '{ repository(owner: "o", name: "r") { f0: object(oid: "' + "a" * 40 + '") '
                "{ ... on Blob { isBinary } } } }",
                "Field 'isBinary' doesn't exist on type 'Blob'",
            ),
            (
                '{ repository(owner: "o", name: "r") { f0: object(oid: "zz") '
                "{ ... on Blob { text } } } }",
                "Expected type 'GitObjectID'",
            ),
            (
                '{ repository(owner: "o") { f0: object(oid: "' + "a" * 40 + '") '
                "{ ... on Blob { text } } } }",
                "missing required arguments",
            ),
            (
                'query($o: String!) { repository(owner: $o, name: "r") { x: object(oid: "'
                + "a" * 40
                + '") { ... on Blob { text } } } }',
                "Parse error",
            ),
            (
                '{ repository(owner: "o", name: "r") { f0: object(oid: "' + "a" * 40 + '") '
                "{ ... on Tree { entries } } } }",
                "No such type Tree",
            ),
            (
                '{ repository(owner: "o", name: "r") { f0: object(oid: "' + "a" * 40 + '") '
                '{ ... on Blob { text } } f0: object(oid: "' + "b" * 40 + '") '
                "{ ... on Blob { text } } } }",
                "argument conflict",
            ),
            ("mutation { x }", "Parse error"),
        ],
    )
    def test_anything_outside_the_subset_is_a_graphql_error(self, query: str, message: str) -> None:
        """A query outside the subset is refused with GitHub's (graphql-ruby's) wording."""
        with pytest.raises(GraphqlError) as caught:
            parse(query)
        assert message in caught.value.error["message"]


class TestEndpoint:
    def test_blobs_are_read_by_oid_under_their_aliases(self, localhub: LocalHub) -> None:
        """Each alias answers its blob's text, size and whether it was cut, in one request."""
        shas = seeded(localhub, {"a.txt": b"one\n", "b.txt": "dé\n".encode()})
        query, _ = graphql_blobs_query(REPO, [shas["a.txt"], shas["b.txt"], "c" * 40])
        answer = post(localhub, query)
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-resource"] == "graphql"
        assert answer.json() == {
            "data": {
                "repository": {
                    "f0": {"text": "one\n", "isTruncated": False, "byteSize": 4},
                    "f1": {"text": "dé\n", "isTruncated": False, "byteSize": 4},
                    "f2": None,
                }
            }
        }
        assert [(r.method, r.path, r.status) for r in localhub.requests][-1] == (
            "POST",
            "/graphql",
            200,
        )

    def test_text_is_cut_at_512000_bytes_and_binary_is_null(self, localhub: LocalHub) -> None:
        """Blob.text stops at exactly 512,000 bytes with isTruncated; a binary blob's is null."""
        big = b"x" * (TEXT_LIMIT + 10)
        shas = seeded(localhub, {"big.txt": big, "bin.dat": b"\0\1\2"})
        query, _ = graphql_blobs_query(REPO, [shas["big.txt"], shas["bin.dat"]])
        found = post(localhub, query).json()["data"]["repository"]
        assert len(found["f0"]["text"]) == TEXT_LIMIT
        assert found["f0"]["isTruncated"] is True
        assert found["f0"]["byteSize"] == TEXT_LIMIT + 10
        assert found["f1"]["text"] is None

    def test_a_query_is_logged_as_a_read(self, localhub: LocalHub) -> None:
        """The request log counts a GraphQL query (a POST) as a read, a blob upload as a write."""
        query, _ = graphql_blobs_query(REPO, ["a" * 40])
        post(localhub, query)
        requests.post(
            f"{localhub.url}/repos/{REPO}/git/blobs",
            json={"content": "x", "encoding": "utf-8"},
            headers={"Authorization": f"bearer {localhub.token}"},
            timeout=30,
        )
        assert [(r.path, r.write) for r in localhub.requests[-2:]] == [
            ("/graphql", False),
            (f"/repos/{REPO}/git/blobs", True),
        ]

    def test_a_token_is_required(self, localhub: LocalHub) -> None:
        """Without a token GraphQL answers 401 (GitHub has no anonymous GraphQL)."""
        answer = post(
            localhub,
            '{ repository(owner: "o", name: "r") { x: object(oid: "'
            + "a" * 40
            + '") { ... on Blob { text } } } }',
            token=None,
        )
        assert answer.status_code == 401
        assert "requires you to be authenticated" in answer.json()["message"]

    def test_a_repository_the_token_cannot_see_is_not_found(self, localhub: LocalHub) -> None:
        """An unknown repository (or one outside the token's) is a NOT_FOUND error, data null."""
        query, _ = graphql_blobs_query("owner/missing", ["a" * 40])
        body = post(localhub, query).json()
        assert body["data"] == {"repository": None}
        assert body["errors"][0]["type"] == "NOT_FOUND"
        localhub.add_token("narrow", repos=["owner/other"])
        query, _ = graphql_blobs_query(REPO, ["a" * 40])
        assert post(localhub, query, token="narrow").json()["errors"][0]["type"] == "NOT_FOUND"

    def test_caps_on_lookups_and_answer_size_are_errors(self, localhub: LocalHub) -> None:
        """Past max_aliases, or an answer past max_answer_bytes, the answer is 200 with errors."""
        shas = seeded(localhub, {"a.txt": b"a" * 1000, "b.txt": b"b" * 1000})
        query, _ = graphql_blobs_query(REPO, list(shas.values()))
        localhub.graphql.max_aliases = 1
        body = post(localhub, query).json()
        assert "data" not in body
        assert "localhub allows 1" in body["errors"][0]["message"]
        localhub.graphql.max_aliases = 250
        localhub.graphql.max_answer_bytes = 1500
        body = post(localhub, query).json()
        assert body["data"] is None
        assert "Something went wrong" in body["errors"][0]["message"]

    def test_switched_off_it_is_not_found(self, localhub: LocalHub) -> None:
        """With graphql.enabled False the endpoint answers 404, as a server without it."""
        localhub.graphql.enabled = False
        assert post(localhub, {"query": "{ x }"}).status_code == 404

    def test_malformed_bodies_are_refused(self, localhub: LocalHub) -> None:
        """A body that is not JSON is 400; one without a query string is an errors answer."""
        answer = requests.post(
            localhub.url + "/graphql",
            data=b"{",
            headers={"Authorization": f"bearer {localhub.token}"},
            timeout=30,
        )
        assert answer.status_code == 400
        assert "errors" in post(localhub, {"query": 5}).json()

    def test_faults_apply_to_it_as_to_rest(self, localhub: LocalHub) -> None:
        """A fault on POST /graphql answers as injected, and the request is logged."""
        localhub.add_fault(Fault(method="POST", path="/graphql", status=502, times=1))
        assert post(localhub, {"query": "{ x }"}).status_code == 502
        assert localhub.requests[-1].status == 502
