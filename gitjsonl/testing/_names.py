"""The names GitHub accepts: owners, repositories, tree paths, people and dates.

Everything here is checked *before* it reaches the filesystem or the object
store: an owner of ``..`` must never become a directory name, and a tree
entry that ``git fsck --strict`` would reject must never be written (GitHub
refuses both).
"""

from __future__ import annotations

import re
import unicodedata

# GitHub's sign-up form: alphanumerics and single hyphens, at most 39 characters,
# not starting with a hyphen (older accounts may end with one, so that is allowed).
_OWNER_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,38}\Z")
# GitHub's "new repository" form: ASCII letters, digits, ".", "-" and "_", at most 100.
_REPO_RE = re.compile(r"\A[A-Za-z0-9._-]{1,100}\Z")

# Code points HFS+ ignores when comparing names (git's utf8.c, is_hfs_dotgit).
_HFS_IGNORED = frozenset(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)
# git's is_ntfs_dotgit: ".git" or its 8.3 name "git~1", then only dots and spaces up
# to the end, a path separator or an alternate-data-stream colon.
_NTFS_DOTGIT = re.compile(r"(?i)\A(?:\.git|git~1)[. ]*(?:\Z|[\\/:])")


def _ntfs_short_names(long_name: str, hash_prefix: str) -> str:
    """git's is_ntfs_dot_generic as a pattern: ``.name``, ``nameab~1``..``~4``, hashed forms."""
    forms = [re.escape("." + long_name), re.escape(long_name[:6]) + "~[1-4]"]
    for keep in range(len(hash_prefix), -1, -1):
        digits = 8 - keep - 2
        forms.append(re.escape(hash_prefix[:keep]) + "~[1-9]" + r"\d" * digits)
    return rf"(?i)\A(?:{'|'.join(forms)})[. ]*(?:\Z|:)"


_NTFS_DOTGITMODULES = re.compile(_ntfs_short_names("gitmodules", "gi7eba"))


def check_full_name(full_name: str) -> tuple[str, str]:
    """Split ``owner/name``; raise ValueError unless both parts are names GitHub allows."""
    owner, slash, name = full_name.partition("/")
    if not slash or not is_owner(owner) or not is_repo_name(name):
        raise ValueError(
            f"not a GitHub repository name: {full_name!r} (owner: letters, digits and "
            "hyphens, at most 39, not starting with a hyphen; name: letters, digits, "
            "'.', '-' and '_', at most 100, not '.' or '..')"
        )
    return owner, name


def is_owner(owner: str) -> bool:
    """True for a user or organisation login GitHub could have issued."""
    return _OWNER_RE.match(owner) is not None


def is_repo_name(name: str) -> bool:
    """True for a repository name GitHub accepts."""
    return _REPO_RE.match(name) is not None and name not in (".", "..")


def _hfs_fold(name: str) -> str:
    return "".join(c for c in name if ord(c) not in _HFS_IGNORED).lower()


def is_dotgit(name: str) -> bool:
    """True for every spelling of ``.git`` that some filesystem would treat as ``.git``."""
    return _hfs_fold(name) == ".git" or _NTFS_DOTGIT.match(name) is not None


def is_dotgitmodules(name: str) -> bool:
    """True for every spelling of ``.gitmodules`` (git refuses it as a symlink)."""
    return _hfs_fold(name) == ".gitmodules" or _NTFS_DOTGITMODULES.match(name) is not None


def valid_component(name: str, mode: str | None = None) -> bool:
    """True for a tree entry name ``git fsck --strict`` accepts (with ``mode`` when known).

    Refused: empty, ``.``, ``..``, any ``.git`` look-alike (case, 8.3 short name,
    trailing dots or spaces, HFS-ignored code points), ``/``, NUL and control
    characters, and ``.gitmodules`` as a symbolic link.
    """
    if name in ("", ".", "..") or "/" in name or is_dotgit(name):
        return False
    if any(unicodedata.category(c) == "Cc" for c in name):
        return False
    return not (mode == "120000" and is_dotgitmodules(name))


def valid_path(path: str, mode: str | None = None) -> bool:
    """True for a relative path whose every component is valid (``mode`` is the leaf's)."""
    if not path:
        return False
    *parents, leaf = path.split("/")
    return all(valid_component(part) for part in parents) and valid_component(leaf, mode)
