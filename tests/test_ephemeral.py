"""Guessing whether a spool folder is wiped at a restart, and saying so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import gitjsonl
from gitjsonl._cli import main
from gitjsonl._doctor import spool_check
from gitjsonl._ephemeral import Host, Mount, guess, host, parse_mountinfo
from gitjsonl.testing import LocalHub

from .helpers import REPO

OVERLAY_ROOT = Mount("/", "overlay")
MOUNTINFO = """\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/x
23 22 0:22 / /proc rw - proc proc rw
24 22 0:23 / /tmp rw - tmpfs tmpfs rw
25 22 8:1 /volumes/spool /data rw,relatime - ext4 /dev/sda1 rw
26 22 8:1 /v /srv/my\\040spool rw - ext4 /dev/sda1 rw
not a mount line
"""


def space(*mounts: Mount) -> Host:
    return Host("SPACE_ID is set", "/.dockerenv exists", (OVERLAY_ROOT, *mounts))


class TestGuess:
    def test_a_space_keeps_only_its_persistent_storage(self) -> None:
        """On a Space, a folder outside /data is wiped; /data survives once mounted."""
        assert "outside it" in (guess("/home/user/app/spool", space()) or "")
        assert guess("/data/spool", space(Mount("/data", "ext4"))) is None

    def test_a_space_without_persistent_storage_wipes_data_too(self) -> None:
        """On a Space, /data with nothing mounted there is the container's disk."""
        assert "not enabled" in (guess("/data/spool", space()) or "")

    def test_memory_and_boot_emptied_folders_are_ephemeral_anywhere(self) -> None:
        """A tmpfs, or /tmp, /dev/shm, /run: ephemeral on any host."""
        plain = Host(None, None, (Mount("/", "ext4"), Mount("/mnt/ram", "tmpfs")))
        assert "tmpfs" in (guess("/mnt/ram/spool", plain) or "")
        assert "/tmp" in (guess("/tmp/spool", plain) or "")
        assert guess("/var/lib/app/spool", plain) is None

    def test_a_container_keeps_only_its_volumes(self) -> None:
        """In a container, the root filesystem is the container's own; a volume survives."""
        box = Host(None, "/.dockerenv exists", (OVERLAY_ROOT, Mount("/data", "ext4")))
        assert "not on a mounted volume" in (guess("/app/spool", box) or "")
        assert guess("/data/spool", box) is None
        assert guess("/datastore/spool", box) is not None  # a prefix of a name is not a folder

    def test_mountinfo_is_parsed_with_its_escapes(self) -> None:
        """Mount points and file system types, octal escapes undone, junk skipped."""
        assert parse_mountinfo(MOUNTINFO) == (
            Mount("/", "overlay"),
            Mount("/proc", "proc"),
            Mount("/tmp", "tmpfs"),
            Mount("/data", "ext4"),
            Mount("/srv/my spool", "ext4"),
        )

    def test_the_host_is_read_from_its_environment_markers_and_mounts(self, tmp_path: Path) -> None:
        """SPACE_ID or SYSTEM=spaces, /.dockerenv or a runtime in /proc/1/cgroup, and
        /proc/self/mountinfo; none of them: nothing guessed."""
        (tmp_path / "proc/self").mkdir(parents=True)
        (tmp_path / "proc/1").mkdir(parents=True)
        (tmp_path / "proc/self/mountinfo").write_text(MOUNTINFO)
        (tmp_path / "proc/1/cgroup").write_text("0::/kubepods/besteffort/pod1\n")
        found = host({"SYSTEM": "spaces"}, root=str(tmp_path))
        assert found.space == "SYSTEM=spaces"
        assert found.container == "/proc/1/cgroup names kubepods"
        assert Mount("/data", "ext4") in found.mounts
        (tmp_path / ".dockerenv").touch()
        assert host({"SPACE_ID": "u/app"}, root=str(tmp_path)).container == "/.dockerenv exists"
        bare = host({}, root=str(tmp_path / "nothing"))
        assert bare == Host(None, None, ())


class TestSayingSo:
    def test_the_app_logs_one_warning_for_an_ephemeral_spool(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """warn_if_ephemeral: one WARNING naming the folder and the reason; none without
        a spool folder."""
        monkeypatch.setenv("SPACE_ID", "someone/app")
        with caplog.at_level(logging.WARNING, logger="gitjsonl"):
            reason = gitjsonl.warn_if_ephemeral(tmp_path / "spool")
            assert gitjsonl.warn_if_ephemeral(None) is None
        assert reason is not None
        assert "HuggingFace Space" in reason
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "spool" in warnings[0]
        assert "looks ephemeral" in warnings[0]

    def test_doctor_lines(self) -> None:
        """The spool line: none, a guessed ephemeral folder (not required), or no sign."""
        assert spool_check(None, None).ok is None
        flagged = spool_check("/app/spool", "on a HuggingFace Space ...")
        assert flagged.ok is False
        assert not flagged.required
        assert "a guess" in flagged.detail
        assert "/data" in flagged.advice
        assert spool_check("/data/spool", None).ok is None

    def test_doctor_says_when_the_spool_folder_looks_ephemeral(
        self,
        localhub: LocalHub,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """gitjsonl doctor --spool-dir (or $GITJSONL_SPOOL_DIR) prints the guess and how it
        was made, and it does not fail the checklist."""
        monkeypatch.setenv("GITHUB_TOKEN", localhub.token)
        monkeypatch.setenv("SPACE_ID", "someone/app")
        monkeypatch.setenv("GITJSONL_SPOOL_DIR", str(tmp_path / "spool"))
        status = main(["--repo", REPO, "--api-url", localhub.url, "doctor"])
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if "spool:" in line)
        assert line.startswith("✗ spool:")
        assert "looks ephemeral" in line
        assert "SPACE_ID is set" in line
        assert status == 0
