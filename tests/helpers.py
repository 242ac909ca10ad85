"""Small tools shared by the writer's tests."""

from __future__ import annotations

import json
import threading
from typing import Any

from gitjsonl import Log
from gitjsonl._segments import sorted_segments
from gitjsonl.testing import LocalHub

REPO = "owner/repo"
PATH = "data/interactions"
WRITES = ("POST", "PATCH", "PUT", "DELETE")


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)


def make_log(hub: LocalHub, **kwargs: Any) -> Log:
    """A Log on the hub tuned for tests: no pacing, quick flushes, no real backoff sleeps."""
    kwargs.setdefault("path", PATH)
    kwargs.setdefault("api_url", hub.url)
    kwargs.setdefault("token", hub.token)
    kwargs.setdefault("pacing", None)
    kwargs.setdefault("flush_interval", 0.05)
    if "sleep" not in kwargs:
        clock = FakeClock()
        kwargs.setdefault("clock", clock.time)
        kwargs["sleep"] = clock.sleep
    return Log(kwargs.pop("repo", REPO), **kwargs)


def segment_files(hub: LocalHub, path: str = PATH, ref: str = "main") -> dict[str, bytes]:
    """Every segment file of the log at ``ref``, by name, in append order, read with git."""
    listing = hub.git(REPO, "ls-tree", "--name-only", f"{ref}:{path}").split()
    files: dict[str, bytes] = {}
    for _, name in sorted_segments(listing):
        data = hub.read_file(REPO, f"{path}/{name}", ref=ref)
        assert data is not None
        files[name] = data
    return files


def committed_records(hub: LocalHub, path: str = PATH, ref: str = "main") -> list[dict[str, Any]]:
    """Every record of the log at ``ref``, in order, straight from the git repository."""
    data = b"".join(segment_files(hub, path, ref).values())
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def history_is_linear(hub: LocalHub, ref: str = "main") -> bool:
    """No commit reachable from ``ref`` has more than one parent."""
    return hub.git(REPO, "rev-list", "--merges", ref).strip() == ""


def writes_between(hub: LocalHub, start: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in hub.requests[start:] if r.write]


def rsa_key_pair() -> tuple[str, str]:
    """(private key PEM, public key PEM) of a fresh 2048-bit RSA key, for GitHub App tests."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
