"""Bare git repositories driven through the real ``git`` executable.

Every object localhub stores is written by ``git`` itself, so ``git fsck
--strict`` and ``git clone`` see exactly what the API wrote. Reads go through
one long-lived ``git cat-file --batch`` process per repository because a
subprocess per read would dominate the cost of a request.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SHA_RE = re.compile(r"\A[0-9a-f]{40}\Z")
ZERO_SHA = "0" * 40
DEFAULT_NAME = "localhub-bot"
DEFAULT_EMAIL = "localhub-bot@users.noreply.github.com"
MAX_READ_LAG = 60.0  # seconds of ref history kept for lagging reads


def git_env() -> dict[str, str]:
    """Return an environment in which git never reads this machine's config."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        HOME=tempfile.gettempdir(),
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
    )
    return env


class GitError(RuntimeError):
    """A git subprocess failed unexpectedly."""


@dataclass(frozen=True)
class Person:
    """An author or committer line of a commit object."""

    name: str
    email: str
    timestamp: int
    offset: str = "+0000"

    def to_line(self) -> str:
        """Render as it appears in a raw commit object."""
        return f"{self.name} <{self.email}> {self.timestamp} {self.offset}"

    @classmethod
    def parse(cls, line: str) -> Person:
        """Parse ``Name <email> 1700000000 +0100``."""
        match = re.match(r"\A(.*?) ?<(.*)> (\d+) ([+-]\d{4})\Z", line)
        if match is None:
            return cls(line, "", 0)
        return cls(match[1], match[2], int(match[3]), match[4])


@dataclass(frozen=True)
class Commit:
    """A parsed commit object."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    message: str


@dataclass(frozen=True)
class TreeEntry:
    """One entry of ``git ls-tree -l`` output."""

    mode: str
    type: str
    sha: str
    size: int | None
    path: str


@dataclass
class _Batch:
    proc: subprocess.Popen[bytes]
    lock: threading.Lock = field(default_factory=threading.Lock)


class GitRepo:
    """One bare repository and the git processes that serve it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Held across read-check-update of refs so compare-and-swap is atomic.
        self.ref_lock = threading.RLock()
        self._batch: _Batch | None = None
        self._batch_guard = threading.Lock()
        # refname -> [(monotonic time of a move, the value before it)], oldest first:
        # what a lagging read of the ref still sees (see :meth:`lagged_ref`).
        self._moves: dict[str, list[tuple[float, str | None]]] = {}
        self._moves_lock = threading.Lock()

    # ---- processes -------------------------------------------------------

    def run(self, *args: str, data: bytes | None = None, check: bool = True) -> bytes:
        """Run git in this repository and return stdout."""
        proc = subprocess.run(
            ["git", "--git-dir", str(self.path), *args],
            input=data,
            capture_output=True,
            env=git_env(),
            check=False,
        )
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            raise GitError(f"git {' '.join(args)} failed ({proc.returncode}): {err}")
        return proc.stdout

    def returncode(self, *args: str) -> int:
        """Run git and return only its exit status."""
        proc = subprocess.run(
            ["git", "--git-dir", str(self.path), *args],
            capture_output=True,
            env=git_env(),
            check=False,
        )
        return proc.returncode

    def close(self) -> None:
        """Stop the cat-file process."""
        with self._batch_guard:
            batch, self._batch = self._batch, None
        if batch is not None:
            with batch.lock:
                _close_proc(batch.proc)

    def _batch_proc(self) -> _Batch:
        with self._batch_guard:
            if self._batch is None or self._batch.proc.poll() is not None:
                proc = subprocess.Popen(
                    ["git", "--git-dir", str(self.path), "cat-file", "--batch"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=git_env(),
                )
                self._batch = _Batch(proc)
            return self._batch

    # ---- objects ---------------------------------------------------------

    def read_object(self, sha: str) -> tuple[str, bytes] | None:
        """Return ``(type, body)`` of an object, or None when it does not exist."""
        if not SHA_RE.match(sha):
            return None
        batch = self._batch_proc()
        with batch.lock:
            stdin: IO[bytes] | None = batch.proc.stdin
            stdout: IO[bytes] | None = batch.proc.stdout
            assert stdin is not None
            assert stdout is not None
            stdin.write(sha.encode() + b"\n")
            stdin.flush()
            header = stdout.readline().decode().split()
            if len(header) != 3:
                return None
            size = int(header[2])
            body = _read_exact(stdout, size)
            stdout.read(1)  # the newline after the body
        return header[1], body

    def object_type(self, sha: str) -> str | None:
        """Return the type of an object, or None when it does not exist."""
        found = self.read_object(sha)
        return None if found is None else found[0]

    def write_blob(self, data: bytes) -> str:
        """Store a blob and return its sha."""
        return self.run("hash-object", "-w", "--stdin", data=data).decode().strip()

    def write_tree(self, entries: list[tuple[str, str, str, str]]) -> str:
        """Store a tree from ``(mode, type, sha, name)`` entries and return its sha."""
        body = b"".join(
            f"{mode} {kind} {sha}\t".encode() + name.encode() + b"\0"
            for mode, kind, sha, name in entries
        )
        return self.run("mktree", "-z", "--missing", data=body).decode().strip()

    def write_commit(
        self,
        tree: str,
        parents: list[str],
        author: Person,
        committer: Person,
        message: str,
    ) -> str:
        """Store a commit built from exact fields and return its sha."""
        lines = [f"tree {tree}"]
        lines += [f"parent {parent}" for parent in parents]
        lines.append(f"author {author.to_line()}")
        lines.append(f"committer {committer.to_line()}")
        raw = "\n".join(lines).encode() + b"\n\n" + message.encode()
        return self.run("hash-object", "-t", "commit", "-w", "--stdin", data=raw).decode().strip()

    def read_commit(self, sha: str) -> Commit | None:
        """Parse a commit object, or None when ``sha`` is not a commit."""
        found = self.read_object(sha)
        if found is None or found[0] != "commit":
            return None
        head, _, message = found[1].decode(errors="replace").partition("\n\n")
        tree = ""
        parents: list[str] = []
        author = committer = Person("", "", 0)
        for line in head.split("\n"):
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
            elif key == "author":
                author = Person.parse(value)
            elif key == "committer":
                committer = Person.parse(value)
        return Commit(sha, tree, tuple(parents), author, committer, message)

    def tree_of(self, sha: str) -> str | None:
        """Return the tree sha for a tree or commit sha, None otherwise."""
        kind = self.object_type(sha)
        if kind == "tree":
            return sha
        if kind == "commit":
            commit = self.read_commit(sha)
            return None if commit is None else commit.tree
        return None

    def ls_tree(self, tree: str, *, recursive: bool = False) -> list[TreeEntry]:
        """List a tree; recursively includes the subtrees themselves, like GitHub."""
        args = ["ls-tree", "-l", "-z", "--full-tree"]
        if recursive:
            args += ["-r", "-t"]
        out = self.run(*args, tree)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, kind, sha, size = meta.decode().split()
            entries.append(
                TreeEntry(mode, kind, sha, None if size == "-" else int(size), path.decode())
            )
        return entries

    # ---- refs ------------------------------------------------------------

    def resolve_ref(self, ref: str) -> str | None:
        """Return the sha a full ref name points to."""
        out = self.run("rev-parse", "--verify", "-q", ref + "^{object}", check=False)
        text = out.decode().strip()
        return text if SHA_RE.match(text) else None

    def list_refs(self, prefix: str = "refs/") -> list[tuple[str, str]]:
        """Return ``(refname, sha)`` pairs under a prefix, sorted by name."""
        out = self.run("for-each-ref", "--format=%(refname) %(objectname)", prefix)
        pairs = []
        for line in out.decode().splitlines():
            name, _, sha = line.partition(" ")
            if name.startswith(prefix):
                pairs.append((name, sha))
        return pairs

    def is_empty(self) -> bool:
        """True when the repository has no refs (GitHub's "empty repository")."""
        return not self.run("for-each-ref", "--count=1").strip()

    def update_ref(self, ref: str, new: str, old: str | None) -> bool:
        """Compare-and-swap ``ref`` from ``old`` (None = must not exist) to ``new``."""
        moved = self.returncode("update-ref", ref, new, old or ZERO_SHA) == 0
        if moved:
            self._record_move(ref, old)
        return moved

    def delete_ref(self, ref: str, old: str) -> bool:
        """Delete ``ref`` if it still points at ``old``."""
        deleted = self.returncode("update-ref", "-d", ref, old) == 0
        if deleted:
            self._record_move(ref, old)
        return deleted

    def _record_move(self, ref: str, before: str | None) -> None:
        now = time.monotonic()
        with self._moves_lock:
            moves = self._moves.setdefault(ref, [])
            moves.append((now, before))
            while moves and moves[0][0] < now - MAX_READ_LAG:
                moves.pop(0)

    def forget_moves(self, ref: str | None = None) -> None:
        """Treat ``ref`` (every ref when None) as settled long ago: no read lags behind it."""
        with self._moves_lock:
            if ref is None:
                self._moves.clear()
            else:
                self._moves.pop(ref, None)

    def lagged_ref(self, ref: str, lag: float) -> str | None:
        """The sha ``ref`` had ``lag`` seconds ago (None: it did not exist then).

        Models GitHub's eventually consistent reads: for a while after a ref moves,
        reads naming it still see the previous value. Objects never lag.
        """
        current = self.resolve_ref(ref)
        if lag <= 0:
            return current
        horizon = time.monotonic() - lag
        with self._moves_lock:
            moves = list(self._moves.get(ref, ()))
        for when, before in reversed(moves):
            if when <= horizon:
                break
            current = before
        return current

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``ancestor`` is reachable from ``descendant``."""
        return self.returncode("merge-base", "--is-ancestor", ancestor, descendant) == 0

    def default_branch(self) -> str:
        """The branch HEAD names."""
        out = self.run("symbolic-ref", "--short", "HEAD", check=False).decode().strip()
        return out or "main"

    def rev_list(
        self, start: str, path: str | None, skip: int, count: int, since: int | None = None
    ) -> list[str]:
        """Commits reachable from ``start``, newest first, optionally touching ``path``,
        committed at ``since`` (seconds since the epoch) or later."""
        args = ["rev-list", f"--skip={skip}", f"--max-count={count}", start]
        if since is not None:
            args.insert(1, f"--since={since}")
        if path:
            args += ["--", path]
        return self.run(*args).decode().split()

    def count_commits(self, start: str, path: str | None, since: int | None = None) -> int:
        """How many commits :meth:`rev_list` would list in total."""
        args = ["rev-list", "--count", start]
        if since is not None:
            args.insert(1, f"--since={since}")
        if path:
            args += ["--", path]
        return int(self.run(*args).decode().strip() or 0)


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise GitError("git cat-file ended early")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _close_proc(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def init_bare(path: Path, default_branch: str) -> None:
    """Create an empty bare repository with HEAD on ``default_branch``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--bare", "-q", f"--initial-branch={default_branch}", str(path)],
        capture_output=True,
        env=git_env(),
        check=True,
    )
