"""vcrpy configuration for the recorded-cassette tests: normalisation, matching, fixed ids.

Cassettes are recorded against whatever server was at hand (an in-process
localhub, or api.github.com) and replayed against none: every URI, header and
body is rewritten on the way into the cassette so that it names
``PLACEHOLDER_BASE`` and ``owner/repo`` instead, and the replay points the
``Log`` at that same placeholder (vcrpy answers; nothing reaches a network).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import vcr

CASSETTE_DIR = Path(__file__).resolve().parent.parent / "cassettes"
PLACEHOLDER_BASE = "https://api.github.test"
PLACEHOLDER_OWNER = "owner"
PLACEHOLDER_REPO = "owner/repo"

#: Response headers worth keeping; everything else (date, server, etag, request
#: ids, token scopes and expiry, cookies) varies per run or says too much.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "location",
        "link",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
    }
)
#: Rate-limit numbers are pinned; "remaining: 0" is kept because it means something.
FIXED_RATE_HEADERS = {
    "x-ratelimit-limit": "5000",
    "x-ratelimit-used": "1",
    "x-ratelimit-reset": "1767225600",  # 2026-01-01T00:00:00Z
}
MATCH_ON = ("method", "path", "query", "body")


class Normaliser:
    """Rewrites where a conversation was recorded into the placeholder base and repository."""

    def __init__(self, base_url: str, repo: str = PLACEHOLDER_REPO) -> None:
        owner = repo.split("/", 1)[0]
        base = base_url.rstrip("/")
        # Longest first: the base URL before its bare host (git_url, ssh_url), the
        # full name before the bare owner.
        self.replacements: list[tuple[str, str]] = [(base, PLACEHOLDER_BASE)]
        netloc = urlsplit(base).netloc
        if netloc and netloc != urlsplit(PLACEHOLDER_BASE).netloc:
            self.replacements.append((netloc, urlsplit(PLACEHOLDER_BASE).netloc))
        if repo != PLACEHOLDER_REPO:
            self.replacements.append((repo, PLACEHOLDER_REPO))
        if owner != PLACEHOLDER_OWNER:
            self.replacements.append((owner, PLACEHOLDER_OWNER))

    def text(self, value: str) -> str:
        for old, new in self.replacements:
            value = value.replace(old, new)
        return value

    def data(self, value: Any) -> Any:
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8")).encode("utf-8")
        if isinstance(value, str):
            return self.text(value)
        return value

    def request(self, request: Any) -> Any:
        request.uri = self.text(request.uri)
        if request.body:
            request.body = self.data(request.body)
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        body = self.data(response["body"]["string"])
        response["body"]["string"] = body
        headers: dict[str, list[str]] = {}
        for name, values in response["headers"].items():
            key = name.lower()
            if key not in KEPT_HEADERS:
                continue
            if key in FIXED_RATE_HEADERS:
                kept = [FIXED_RATE_HEADERS[key]]
            elif key == "x-ratelimit-remaining":
                kept = ["0" if v == "0" else "4999" for v in values]
            else:
                kept = [self.text(v) for v in values]
            headers[key] = kept
        headers["content-length"] = [str(len(body or b""))]
        response["headers"] = headers
        return response


def make_vcr(record_mode: str, normaliser: Normaliser | None = None) -> vcr.VCR:
    """The one VCR configuration used for recording ("all") and replaying ("none")."""
    norm = normaliser or Normaliser(PLACEHOLDER_BASE)
    return vcr.VCR(
        cassette_library_dir=str(CASSETTE_DIR),
        serializer="yaml",
        record_mode=record_mode,
        match_on=MATCH_ON,
        filter_headers=["authorization", "cookie", "user-agent"],
        before_record_request=norm.request,
        before_record_response=norm.response,
        decode_compressed_response=True,
    )


def use_cassette(
    record_mode: str, path: Path, normaliser: Normaliser | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A cassette at ``path``; each recorded answer plays at most once (a missing request fails)."""
    recorder = make_vcr(record_mode, normaliser)
    return recorder.use_cassette(str(path), allow_playback_repeats=False)  # type: ignore[no-any-return]


@contextlib.contextmanager
def deterministic_ids() -> Iterator[None]:
    """Batch ids and writer ids from counters, so request bodies are the same on every run."""
    batches = itertools.count(1)
    writers = itertools.count(1)

    def batch_id() -> str:
        return f"cassette-batch-{next(batches):04d}"

    def writer_uuid() -> uuid.UUID:
        digest = hashlib.md5(f"writer-{next(writers)}".encode(), usedforsecurity=False)
        return uuid.UUID(bytes=digest.digest())

    fake_uuid = SimpleNamespace(uuid4=writer_uuid)
    patches: list[tuple[str, Callable[..., Any] | SimpleNamespace]] = [
        ("gitjsonl._log.new_batch_id", batch_id),
        ("gitjsonl._migrate.run.new_batch_id", batch_id),
        ("gitjsonl._log.uuid", fake_uuid),
    ]
    with contextlib.ExitStack() as stack:
        for target, value in patches:
            stack.enter_context(mock.patch(target, value))
        yield


def cassette_path(name: str) -> Path:
    return CASSETTE_DIR / f"{name}.yaml"
