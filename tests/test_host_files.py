"""The budget folder's files (ledger, turn files, host-id) held to the spool's rules.

Three classes of attack, each a table: a folder or file that is not this
user's alone (another owner, writable by all, a link, a fifo) is refused with
one WARNING and the in-process fallback; a writer killed mid-write leaves the
old content, never a torn or empty file; a ``host-id.json`` copied to another
host is recognised there, which takes an id of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import _ledger
from gitjsonl._budget import budget_for, ledger_path
from gitjsonl._chain import Link, chain_to_json
from gitjsonl._github import Credentials
from gitjsonl._pacing import Pacing
from gitjsonl._redis import Coordinator
from gitjsonl._turn import Turn

from .redis_support import RedisServer, redis_server

__all__ = ["redis_server"]

URL = "https://api.github.com"
TOKEN = "not-a-real-token-" + "h0st" * 5
PACING = Pacing(per_minute=30, per_hour=200, minute=60.0, hour=3600.0)

is_root = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not is_root, reason="giving a file to another user needs root")


def _ledger_file(directory: Path) -> Path:
    return ledger_path(directory, Credentials(URL, TOKEN).key)


def _link(commit: str, base: str) -> Link:
    return Link(commit, base, f"tree-{commit}", "log", 1, f"blob-{commit}")


def _exhausted(now: float) -> bytes:
    """A ledger saying the hour's writes are all spent: obeyed, it means a long wait."""
    return json.dumps({"format": 1, "spent": [[now, 200, "x", True]]}).encode()


# -- the attacks: each plants something at ``target`` (a file in ``folder``) ---------------------


def _plant(target: Path, content: bytes, *, mode: int = 0o600, owner: int | None = None) -> Path:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod(mode)
    if owner is not None:
        os.chown(target, owner, owner)
    return target


def writable_by_all(folder: Path, target: Path, content: bytes) -> Path:
    return _plant(target, content, mode=0o666)


def another_owner(folder: Path, target: Path, content: bytes) -> Path:
    return _plant(target, content, mode=0o666, owner=65534)


def a_link_to_elsewhere(folder: Path, target: Path, content: bytes) -> Path:
    elsewhere = _plant(folder.parent / "elsewhere" / target.name, content)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.symlink_to(elsewhere)
    return elsewhere


def a_fifo(folder: Path, target: Path, content: bytes) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.mkfifo(target, 0o600)
    return target


def the_lock_is_a_link(folder: Path, target: Path, content: bytes) -> Path:
    elsewhere = _plant(folder.parent / "elsewhere" / "victim", content)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _ledger.lock_path(target).symlink_to(elsewhere)
    return elsewhere


def folder_writable_by_all(folder: Path, target: Path, content: bytes) -> Path:
    folder.mkdir(mode=0o777, parents=True)
    folder.chmod(0o777)
    return _plant(target, content)


def folder_of_another_owner(folder: Path, target: Path, content: bytes) -> Path:
    folder.mkdir(mode=0o700, parents=True)
    os.chown(folder, 65534, 65534)
    return _plant(target, content)


ATTACKS = [
    pytest.param(writable_by_all, id="file-writable-by-all"),
    pytest.param(another_owner, id="file-of-another-owner-0666", marks=needs_root),
    pytest.param(a_link_to_elsewhere, id="file-is-a-link"),
    pytest.param(a_fifo, id="file-is-a-fifo"),
    pytest.param(the_lock_is_a_link, id="lock-is-a-link"),
    pytest.param(folder_writable_by_all, id="folder-writable-by-all"),
    pytest.param(folder_of_another_owner, id="folder-of-another-owner", marks=needs_root),
]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _unchanged(path: Path, before: bytes) -> None:
    if path.is_file():
        assert path.read_bytes() == before


def _use_the_ledger(folder: Path, target: Path) -> None:
    """Decisions on a planted ledger: not obeyed, kept in the process."""
    budget = budget_for(PACING, Credentials(URL, TOKEN), directory=folder)
    try:
        assert budget.delay(1) == 0.0
        for _ in range(3):
            token, wait = budget.reserve(1)
            assert token is not None
            assert wait == 0.0
            budget.settle(token, 1)
        assert budget.stats().last_minute == 3
    finally:
        budget.release()


def _use_the_turn(folder: Path, target: Path) -> None:
    """Two turns taken over a planted turn file: taken in the process."""
    turn = Turn(target)
    for parent, child in (("a", "b"), ("b", "c")):
        with turn.take(wait=1.0) as taken:
            taken.add(_link(child, parent), b"")


def _use_the_host_id(folder: Path, target: Path) -> None:
    """A planted host-id.json: never this host's name."""
    with pytest.raises(_ledger.NotOurs, match="refusing to use it"):
        _ledger.host_id(folder)


#: kind -> (file name, its planted content, what uses it, the WARNING that says so)
KINDS: dict[str, tuple[str, Callable[[], bytes], Callable[[Path, Path], None], str]] = {
    "ledger": (
        _ledger_file(Path()).name,
        lambda: _exhausted(time.time()),
        _use_the_ledger,
        "cannot use the write budget's ledger",
    ),
    "turn": (
        "turn-k.json",
        lambda: json.dumps(chain_to_json((_link("b", "a"),))).encode(),
        _use_the_turn,
        "cannot use the turn file",
    ),
    "host-id": (
        "host-id.json",
        lambda: json.dumps({"id": "0123456789abcdef"}).encode(),
        _use_the_host_id,
        "cannot use the host id",
    ),
}


class TestRefused:
    @pytest.mark.parametrize("kind", list(KINDS))
    @pytest.mark.parametrize("attack", ATTACKS)
    def test_a_host_file_not_ours_is_refused(
        self,
        tmp_path: Path,
        kind: str,
        attack: Callable[[Path, Path, bytes], Path],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A planted ledger, turn file or host id is refused with one WARNING and left as it
        is; the budget and the turn are kept in the process."""
        name, content_of, use, says = KINDS[kind]
        folder = tmp_path / "budget"
        content = content_of()
        planted = attack(folder, folder / name, content)
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            use(folder, folder / name)
        (warning,) = _warnings(caplog)
        assert says in warning
        assert "refusing to use it" in warning
        _unchanged(planted, content)

    def test_the_same_ledger_of_ours_is_obeyed(self, tmp_path: Path) -> None:
        """The control: that ledger, this user's and 0600, makes the budget wait."""
        folder = tmp_path / "budget"
        _plant(_ledger_file(folder), _exhausted(time.time()))
        budget = budget_for(PACING, Credentials(URL, TOKEN), directory=folder)
        try:
            assert budget.delay(1) > 60.0
        finally:
            budget.release()

    def test_a_temporary_name_planted_as_a_link_is_never_followed(self, tmp_path: Path) -> None:
        """A link waiting at the name a rewrite writes through is removed, its target untouched."""
        folder = tmp_path / "budget"
        path = _ledger_file(folder)
        victim = tmp_path / "victim"
        victim.write_bytes(b"keep me")
        folder.mkdir(mode=0o700)
        path.with_name(f"{path.name}.tmp").symlink_to(victim)
        budget = budget_for(PACING, Credentials(URL, TOKEN), directory=folder)
        try:
            token, _ = budget.reserve(1)
            assert token is not None
        finally:
            budget.release()
        assert victim.read_bytes() == b"keep me"
        assert json.loads(path.read_bytes())["format"] == 1

    def test_a_huge_file_reads_as_none(self, tmp_path: Path) -> None:
        """A host file past MAX_HOST_FILE (a sparse 4 GB one) is never read whole."""
        folder = tmp_path / "budget"
        path = _ledger_file(folder)
        folder.mkdir(mode=0o700)
        with path.open("wb") as f:
            f.truncate(4 * 1024**3)
        path.chmod(0o600)
        assert _ledger.read_locked_json(path) is None


# -- atomic writes ----------------------------------------------------------------------------

KILLED_MID_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from gitjsonl._budget import budget_for
    from gitjsonl._github import Credentials
    from gitjsonl._pacing import Pacing

    folder, url, token = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    pacing = Pacing(per_minute=30, per_hour=200, minute=60.0, hour=3600.0)
    budget = budget_for(pacing, Credentials(url, token), directory=folder)
    for _ in range(24):
        spent, _ = budget.reserve(1)
        budget.settle(spent, 1)
    print(budget.stats().last_minute, flush=True)
    real_write = os.write
    def killed(fd, data):
        real_write(fd, bytes(data)[: len(data) // 2])  # half of it reached the file
        os.kill(os.getpid(), signal.SIGKILL)
    os.write = killed
    budget.reserve(1)  # its ledger rewrite is cut short by the kill
    """
)


class TestAtomicWrites:
    def test_a_writer_killed_mid_write_leaves_every_write_it_spent(self, tmp_path: Path) -> None:
        """The 24 writes spent before a kill mid-rewrite are still in the ledger after it."""
        folder = tmp_path / "budget"
        child = subprocess.run(
            [sys.executable, "-c", KILLED_MID_WRITE, str(folder), URL, TOKEN],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == -9, child.stderr
        assert child.stdout.split() == ["24"]
        budget = budget_for(PACING, Credentials(URL, TOKEN), directory=folder)
        try:
            assert budget.stats().last_minute == 24
            token, _ = budget.reserve(1)  # and the next writer carries on from them
            assert token is not None
            budget.settle(token, 1)
            assert budget.stats().last_minute == 25
        finally:
            budget.release()
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [_ledger_file(folder).name, _ledger.lock_path(_ledger_file(folder)).name]
        )

    @pytest.mark.parametrize("kind", ["ledger", "turn", "host-id"])
    def test_a_failure_between_write_and_rename_leaves_the_old_file(
        self, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A rewrite that fails before its rename leaves the old content and no temporary file."""
        folder = tmp_path / "budget"
        write: dict[str, Callable[[], Any]] = {
            "ledger": lambda: _ledger_write(folder),
            "turn": lambda: _turn_write(folder),
            "host-id": lambda: _ledger.host_id(folder),
        }
        write[kind]()
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        if kind == "host-id":
            (folder / "host-id.json").write_text("{}")  # forces a new id, so a rewrite
            before["host-id.json"] = b"{}"

        def failing(src: Any, dst: Any) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(_ledger.os, "replace", failing)
        with contextlib.suppress(OSError):  # the host id raises; the ledger and turn fall back
            write[kind]()
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def _ledger_write(folder: Path) -> None:
    budget = budget_for(PACING, Credentials(URL, TOKEN), directory=folder)
    try:
        budget.reserve(1)
    finally:
        budget.release()


def _turn_write(folder: Path) -> None:
    with Turn(folder / "turn-k.json").take(wait=1.0) as taken:
        taken.add(_link("b", "a"), b"")


# -- a copied host id ---------------------------------------------------------------------------


class TestCopiedHostId:
    def test_a_copy_in_another_folder_is_another_host(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """host-id.json copied into a second container's folder gives that host a new id."""
        first = _ledger.host_id(tmp_path / "one")
        (tmp_path / "two").mkdir(mode=0o700)
        shutil.copy2(tmp_path / "one" / "host-id.json", tmp_path / "two" / "host-id.json")
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            second = _ledger.host_id(tmp_path / "two")
        assert second != first
        assert "copied from another host" in caplog.text
        assert _ledger.host_id(tmp_path / "one") == first
        assert _ledger.host_id(tmp_path / "two") == second

    def test_a_copy_over_the_file_in_place_is_another_host(self, tmp_path: Path) -> None:
        """The same bytes put over the file (a restore, rsync's temporary and rename) are a copy."""
        folder = tmp_path / "one"
        first = _ledger.host_id(folder)
        shutil.copy2(folder / "host-id.json", tmp_path / "restored")
        (tmp_path / "restored").replace(folder / "host-id.json")
        assert _ledger.host_id(folder) != first

    def test_the_same_host_keeps_its_id(self, tmp_path: Path) -> None:
        """A restart, or the folder renamed on its file system, keeps the host's id."""
        first = _ledger.host_id(tmp_path / "one")
        assert _ledger.host_id(tmp_path / "one") == first
        (tmp_path / "one").rename(tmp_path / "renamed")
        assert _ledger.host_id(tmp_path / "renamed") == first

    def test_two_hosts_with_one_copied_id_share_as_two_while_redis_fails(
        self, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        """The issue's figure: with host-id.json copied, each host paced at the whole budget
        while Redis was down (80 + 80); now each paces at its half (40 + 40)."""
        pacing = Pacing(per_minute=80, per_hour=1000, minute=60.0, hour=3600.0)
        _ledger.host_id(tmp_path / "one")
        (tmp_path / "two").mkdir(mode=0o700)
        shutil.copy2(tmp_path / "one" / "host-id.json", tmp_path / "two" / "host-id.json")
        hosts = [
            budget_for(
                pacing,
                Credentials(URL, TOKEN),
                directory=tmp_path / name,
                coordinator=Coordinator(redis_server.url),
            )
            for name in ("one", "two")
        ]
        try:
            for _ in range(2):  # each writer counted, then each sees the other
                for budget in hosts:
                    budget.stats()
            redis_server.kill()
            for budget in hosts:
                assert budget.delay(1) == 0.0  # the host ledger decides now
            assert [b.paced().per_minute for b in hosts] == [40, 40]
        finally:
            for budget in hosts:
                budget.release()
