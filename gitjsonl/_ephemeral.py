"""Does a folder survive a restart of this host? A guess, said with how it was made.

A spool folder on a disk that is wiped at every restart keeps nothing: the
records it held are gone with it. Nothing on a host says for sure what
survives, so this guesses from what the host shows, in order:

- a HuggingFace Space (``SPACE_ID`` set, or ``SYSTEM=spaces``): only its
  persistent storage, mounted at ``/data`` when enabled, survives; anything
  else (and ``/data`` itself when nothing is mounted there) is wiped;
- a folder on a ``tmpfs``/``ramfs`` mount (memory) is lost at every reboot;
- a folder under ``/tmp``, ``/dev/shm`` or ``/run`` is emptied at boot on most hosts;
- inside a container (``/.dockerenv``, ``/run/.containerenv``, or a container
  runtime named in ``/proc/1/cgroup``), a folder on the container's own root
  filesystem, not on a mounted volume (``/proc/self/mountinfo``), is not in the
  next container.

``guess`` is pure (the host's facts as plain values); ``host`` reads them;
``warn_if_ephemeral`` is what an app calls at start to log one WARNING.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Host",
    "Mount",
    "guess",
    "host",
    "parse_mountinfo",
    "reason",
    "warn_if_ephemeral",
]

logger = logging.getLogger(__name__)

#: Where a HuggingFace Space's persistent storage is mounted, when enabled.
SPACE_STORAGE = "/data"
#: Folders most hosts empty at boot (or hold in memory).
BOOT_EMPTIED = ("/tmp", "/dev/shm", "/run")
#: File systems held in memory.
MEMORY_FS = frozenset({"tmpfs", "ramfs"})
#: Words in ``/proc/1/cgroup`` that name a container runtime.
CONTAINER_WORDS = ("docker", "kubepods", "containerd", "libpod", "lxc")
#: Bytes read of a /proc file at most (a host with thousands of mounts stays bounded).
PROC_READ_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of ``/proc/self/mountinfo``: where a file system is mounted, and which."""

    point: str
    fstype: str


@dataclass(frozen=True, slots=True)
class Host:
    """What the host shows of itself, as plain values."""

    space: str | None  # the reason to think this is a HuggingFace Space, or None
    container: str | None  # the reason to think this is a container, or None
    mounts: tuple[Mount, ...]  # empty: not known (no /proc)


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """The mounts of a ``/proc/self/mountinfo`` text (malformed lines skipped)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or dash + 1 >= len(fields):
            continue
        mounts.append(Mount(_unescape(fields[4]), fields[dash + 1]))
    return tuple(mounts)


def _unescape(point: str) -> str:
    """mountinfo writes a space, tab, newline and backslash in octal (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        point = point.replace(code, char)
    return point


def _under(path: str, folder: str) -> bool:
    return folder in ("/", path) or path.startswith(folder.rstrip("/") + "/")


def _mount_of(path: str, mounts: tuple[Mount, ...]) -> Mount | None:
    """The mount holding ``path``: the longest mount point above it (the last one wins)."""
    found: Mount | None = None
    for mount in mounts:
        if _under(path, mount.point) and (found is None or len(mount.point) >= len(found.point)):
            found = mount
    return found


def guess(folder: str, host: Host) -> str | None:
    """Why ``folder`` (absolute, resolved) looks wiped at a restart, or None when nothing
    says so (which is no promise that it survives)."""
    path = posixpath.normpath(folder)
    mount = _mount_of(path, host.mounts)
    if host.space is not None:
        if not _under(path, SPACE_STORAGE):
            return (
                f"on a HuggingFace Space ({host.space}) only the persistent storage at "
                f"{SPACE_STORAGE} survives a restart, and {path} is outside it"
            )
        if host.mounts and (mount is None or not _under(mount.point, SPACE_STORAGE)):
            return (
                f"on a HuggingFace Space ({host.space}) nothing is mounted at "
                f"{SPACE_STORAGE}: its persistent storage is not enabled, so {path} is wiped"
            )
        return None
    if mount is not None and mount.fstype in MEMORY_FS:
        return f"{path} is on a {mount.fstype} mounted at {mount.point}: held in memory"
    for boot in BOOT_EMPTIED:
        if _under(path, boot):
            return f"{path} is under {boot}, which most hosts empty at boot"
    if host.container is not None and mount is not None and mount.point == "/":
        return (
            f"inside a container ({host.container}), {path} is on the container's own "
            f"filesystem ({mount.fstype} at /), not on a mounted volume: the next container "
            "starts without it"
        )
    return None


def host(environ: Mapping[str, str] | None = None, root: str = "/") -> Host:
    """This host's facts: the environment, container markers, and its mounts (``root``:
    where the host's ``/`` is, for a test)."""
    env = os.environ if environ is None else environ
    space = None
    if env.get("SPACE_ID"):
        space = "SPACE_ID is set"
    elif env.get("SYSTEM") == "spaces":
        space = "SYSTEM=spaces"
    container = None
    for marker in ("/.dockerenv", "/run/.containerenv"):
        if os.path.exists(os.path.join(root, marker.lstrip("/"))):
            container = f"{marker} exists"
            break
    else:
        cgroup = _read(os.path.join(root, "proc/1/cgroup"))
        word = next((w for w in CONTAINER_WORDS if w in cgroup), None)
        if word is not None:
            container = f"/proc/1/cgroup names {word}"
    return Host(space, container, parse_mountinfo(_read(os.path.join(root, "proc/self/mountinfo"))))


def _read(path: str) -> str:
    """A small /proc file, or "" when it cannot be read (not Linux, no permission)."""
    try:
        with open(path, "rb") as file:
            return file.read(PROC_READ_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def warn_if_ephemeral(folder: str | os.PathLike[str] | None) -> str | None:
    """Log one WARNING when the spool ``folder`` looks wiped at a restart; the reason, or
    None (no folder, or nothing says so).

    Call it once at start with the ``spool_dir`` given to the ``Log``: a spool
    there keeps nothing across a restart, only what ``close()`` commits within
    the host's grace is kept. It is a guess (see this module), never an error.
    """
    if folder is None:
        return None
    resolved = _resolved(folder)
    found = guess(resolved, host())
    if found is not None:
        logger.warning(
            "gitjsonl: the spool folder %s looks ephemeral (%s): it keeps nothing across a "
            "restart; put it on storage that survives (a Space's persistent storage under "
            "/data, a Docker volume, a Kubernetes volume claim)",
            resolved,
            found,
        )
    return found


def reason(folder: str | os.PathLike[str]) -> str | None:
    """``guess`` for ``folder`` on this host (no log line): what ``doctor`` shows."""
    return guess(_resolved(folder), host())


def _resolved(folder: str | os.PathLike[str]) -> str:
    return os.path.realpath(Path(folder).expanduser())
