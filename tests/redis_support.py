"""A real ``redis-server`` for the coordinator's tests: a free loopback port, no disk.

Never the shared one on 6379: each server is started on a port the kernel
hands out, with ``--save '' --appendonly no`` in a temporary folder, and
stopped after. Where no binary is found the tests skip with the reason, unless
``$GITJSONL_REQUIRE_REDIS`` is set (``.ci/run`` sets it): then they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_PORT = 6379


def redis_binary() -> str:
    """The redis-server to start, or the test skips (fails under ``$GITJSONL_REQUIRE_REDIS``)."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        reason = "no redis-server binary on this machine (install redis-server)"
        if os.environ.get("GITJSONL_REQUIRE_REDIS"):
            pytest.fail(f"{reason}; GITJSONL_REQUIRE_REDIS is set, so this fails")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert port != SHARED_PORT
    return port


class RedisServer:
    """One redis-server process of a test: start it, SIGKILL it, start it again (empty)."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def wait_for_writers(self, count: int, timeout: float) -> bool:
        """Whether, within ``timeout`` s, ``count`` writers are counted on a token and every
        one of them has loaded its budget since the last of them was first counted (so each
        knows its host's share of all ``count``: ``RedisStore.share``)."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5.0)
        deadline = time.monotonic() + timeout
        complete_at: float | None = None  # Redis's time when the count was first complete
        try:
            while time.monotonic() < deadline:
                try:
                    sets = [
                        [score for _, score in client.zrange(key, 0, -1, withscores=True)]
                        for key in client.scan_iter("gitjsonl:writers:*")
                    ]
                except redis.RedisError:
                    sets = []  # a starved machine: a slow answer is asked again
                for seen in sets:
                    if len(seen) < count:
                        continue
                    if complete_at is None:
                        complete_at = max(seen)
                    elif min(seen) > complete_at:
                        return True
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server of this test alone, stopped after it."""
    server = RedisServer(redis_binary(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
