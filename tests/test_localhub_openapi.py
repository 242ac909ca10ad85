"""OpenAPI validation of localhub's answers, and the fixture other localhub tests use.

``openapi_checked`` records every (request, response) pair that goes through
``requests`` (PyGithub included) during a test and validates each at teardown
against tests/openapi/github-git-data-api.openapi.json, GitHub's own
description of these endpoints.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from gitjsonl.testing import LocalHub

SPEC_PATH = Path(__file__).parent / "openapi" / "github-git-data-api.openapi.json"
Exchange = tuple[requests.PreparedRequest, requests.Response]


class _GitHubRequest(RequestsOpenAPIRequest):
    """A request seen as if sent to api.github.com, the spec's only server.

    openapi-core's path matcher does not let ``{ref}``/``{path}`` span slashes,
    so the tail they match is percent-encoded into one segment.
    """

    def __init__(self, request: requests.PreparedRequest, template: str) -> None:
        super().__init__(request)
        self._template = template

    @property
    def host_url(self) -> str:
        return "https://api.github.com"

    @property
    def path(self) -> str:
        raw = _canonical_path(super().path)
        fixed = len(self._template.strip("/").split("/")) - 1
        parts = raw.strip("/").split("/")
        if self._template.endswith(("{ref}", "{path}")):
            parts = [*parts[:fixed], quote(unquote("/".join(parts[fixed:])), safe="")]
        return "/" + "/".join(parts)


@functools.cache
def _openapi() -> Any:
    return OpenAPI.from_file_path(str(SPEC_PATH))


@functools.cache
def _documented() -> dict[tuple[str, str], set[str]]:
    spec = json.loads(SPEC_PATH.read_text())
    return {
        (method.upper(), path): set(op["responses"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and "responses" in op
    }


def _operation(method: str, path: str) -> tuple[str, str] | None:
    """The spec path template matching a concrete path ({ref} and {path} may hold slashes)."""
    for m, template in _documented():
        if m != method:
            continue
        pattern = re.sub(r"\{(ref|path)\}", "(.+)", template)
        pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", pattern)
        if re.fullmatch(pattern, path):
            return m, template
    return None


def _canonical_path(path: str) -> str:
    """/repositories/{id}/... aliases /repos/{owner}/{repo}/...: validate it as such."""
    return re.sub(r"\A/repositories/\d+(?=/|\Z)", "/repos/owner/repo", path)


def validate_exchange(request: requests.PreparedRequest, response: requests.Response) -> None:
    """Raise when the response does not match GitHub's OpenAPI description."""
    url = requests.utils.urlparse(request.url or "")
    method = (request.method or "GET").upper()
    op = _operation(method, _canonical_path(url.path))
    status = str(response.status_code)
    ctype = response.headers.get("Content-Type", "")
    if response.status_code == 204:
        assert not response.content
        return
    if "json" not in ctype:
        return  # raw media type: bytes, not a JSON document
    body = response.json()
    if op is None and response.status_code < 300:
        return  # an endpoint outside the subset (branches, GitHub Apps): not described here
    if op is None or status not in _documented()[op]:
        # An answer the subset does not describe (401, injected 5xx, unknown endpoint):
        # it must still be GitHub's error shape.
        assert isinstance(body, dict), body
        assert isinstance(body.get("message"), str), body
        assert isinstance(body.get("documentation_url", ""), str), body
        return
    try:
        _openapi().validate_response(
            _GitHubRequest(request, op[1]), RequestsOpenAPIResponse(response)
        )
    except Exception as exc:
        # Some 409/422 bodies are a oneOf of "Basic/Validation Error" and "Repository rule
        # violation", which has no required fields: any error body matches both branches,
        # so the oneOf fails even for GitHub's own answers. Matching both is a pass.
        if "is valid under each of" not in repr(exc.__cause__) + repr(exc):
            raise


@pytest.fixture
def openapi_checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Exchange]]:
    """Record every requests exchange in the test and validate each one at teardown."""
    seen: list[Exchange] = []
    original = requests.Session.send

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        seen.append((request, response))
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    yield seen
    monkeypatch.undo()
    for request, response in seen:
        try:
            validate_exchange(request, response)
        except Exception as exc:
            raise AssertionError(
                f"{request.method} {request.url} -> {response.status_code}: {exc}\n"
                f"{response.text[:2000]}"
            ) from exc


class TestValidator:
    """The OpenAPI check itself."""

    def test_accepts_a_real_answer(self, localhub: LocalHub) -> None:
        """A localhub ref answer validates against GitHub's schema."""
        localhub.seed_commit("owner/repo", {"a": b"1"})
        with requests.Session() as session:
            response = session.get(f"{localhub.url}/repos/owner/repo/git/ref/heads/main")
        validate_exchange(response.request, response)

    def test_rejects_a_malformed_body(self, localhub: LocalHub) -> None:
        """A body missing required fields fails validation, so the check has teeth."""
        localhub.seed_commit("owner/repo", {"a": b"1"})
        with requests.Session() as session:
            response = session.get(f"{localhub.url}/repos/owner/repo/git/ref/heads/main")
        broken = json.loads(response.content)
        del broken["object"]
        broken["ref"] = 42
        response._content = json.dumps(broken).encode()
        with pytest.raises(Exception, match=r"(?i)invalid|required|not of type"):
            validate_exchange(response.request, response)

    def test_rejects_a_wrong_error_shape(self, localhub: LocalHub) -> None:
        """An undocumented status whose body lacks a message is caught too."""
        with requests.Session() as session:
            response = session.get(f"{localhub.url}/nowhere")
        response._content = b'{"error": 1}'
        with pytest.raises(AssertionError):
            validate_exchange(response.request, response)
