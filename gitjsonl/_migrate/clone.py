"""The source's history from a clone a user hands us, read with git and trusting none of it.

The folder is not ours: its ``.git/config``, its hooks, its attributes, its
remote and its objects were all written by someone else. Every git command runs
through ``Clone.run`` or ``Clone.cat``, so that nothing in the folder picks a
program, a protocol or an object:

============================  =======================================================
what the folder could plant   why it runs nothing / changes nothing here
============================  =======================================================
``core.fsmonitor``, hooks,    command-line config wins over every config file:
pager, editor, ssh, proxy,    each key that names a program is set to nothing that
askpass, credential helper,   runs (``PROGRAM_KEYS``), and every such key the clone's
``gpg.*program``,             config lists under a subsection (``diff.<x>.textconv``,
``log.showSignature``,        ``filter.<x>.process``, ``remote.<x>.uploadpack``, ...)
``diff.external``, textconv,  is set too (``PLANTED_KEYS``); no pager (``--no-pager``),
filters, ``uploadpack``       no diff driver (``--raw`` only), no filter (``cat-file``
                              without ``--filters``)
a remote git fetches from     no lazy fetch (``GIT_NO_LAZY_FETCH``, git >= 2.44), no
when an object is missing     protocol at all (``GIT_ALLOW_PROTOCOL=`` empty), partial
(``ext::``, ``file::``)       clones refused before anything reads an object
``refs/replace``, grafts,     ``--no-replace-objects``, ``GIT_GRAFT_FILE=/dev/null``,
a commit-graph, forged        ``core.commitGraph=false``; shallow clones refused;
objects or pack indexes       every commit and tree git walks, and every blob read,
                              is hashed and must be the object named; the last
                              version must be the blob GitHub has
the caller's environment      only ``PATH`` and the locale pass; no system or global
(``GIT_DIR``, ``GIT_PAGER``)  config (but the user's own ``safe.directory``)
============================  =======================================================

A missing object is an error naming it, never "the file was deleted here": a
deletion is what ``git log --raw`` says it is (status ``D``), and git's exit
status and stderr are checked on every call.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

from gitjsonl._exceptions import MigrationError

from .history import FileVersion
from .sources import Commit, OnProgress

__all__ = ["Clone", "CloneHistory", "git_config", "git_env", "parse_log"]

#: Seconds a git command may take.
GIT_TIMEOUT = 600.0
#: Seconds one answer of ``git cat-file --batch`` may take.
ANSWER_TIMEOUT = GIT_TIMEOUT
#: The largest blob read from a clone (GitHub refuses files over 100 MB).
MAX_BLOB = 100 * 1024 * 1024
#: Objects asked of ``cat-file`` at once when checking many (their names fit in a pipe).
BATCH = 300
#: What git says of stderr at most, in an error.
STDERR_CHARS = 600

#: Repository-config keys that choose a program, set on the command line to run none.
PROGRAM_KEYS: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("core.sshCommand", "false"),
    ("core.gitProxy", "false"),
    ("core.askPass", "false"),
    ("core.alternateRefsCommand", "false"),
    ("core.attributesFile", os.devnull),
    ("credential.helper", ""),
    ("gpg.program", "false"),
    ("gpg.openpgp.program", "false"),
    ("gpg.x509.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.ssh.defaultKeyCommand", "false"),
    ("log.showSignature", "false"),
    ("diff.external", ""),
    ("uploadpack.packObjectsHook", "false"),
    ("protocol.allow", "never"),
    ("core.commitGraph", "false"),  # parents from a file, not from the (hashed) commits
)
#: Keys under a subsection the folder names (its own driver, filter or remote), as regexes.
PLANTED_KEYS: tuple[tuple[str, str], ...] = (
    (r"diff\..+\.(textconv|command)", "false"),
    (r"filter\..+\.(clean|smudge|process)", "false"),
    (r"filter\..+\.required", "false"),
    (r"merge\..+\.driver", "false"),
    (r"remote\..+\.(uploadpack|receivepack|proxy|vcs)", "false"),
    (r"remote\..+\.promisor", "false"),
    (r"protocol\..+\.allow", "never"),
    (r"credential\..+\.helper", ""),
    (r"pager\..+", "false"),
    (r"gpg\..+\.program", "false"),
)

#: From the caller's environment, only what finding git and reading bytes need.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT", "TMPDIR")


#: Before every subcommand: no pager, no replacement object, a path is only a path.
OPTIONS = ("--no-pager", "--no-replace-objects", "--literal-pathspecs")


def git_env(
    caller: Mapping[str, str], *, ceiling: str, config: list[tuple[str, str]]
) -> dict[str, str]:
    """The whole environment of a git command: nothing of the caller's ``GIT_*``, no home.

    ``config`` goes in as command-line config (``GIT_CONFIG_KEY_<n>``), which wins
    over every config file; a key passed this way may hold any character (``-c
    key=value`` would split a subsection holding ``=``).
    """
    env = {name: caller[name] for name in PASSED_ENV if name in caller}
    env.update(
        HOME=os.devnull,
        XDG_CONFIG_HOME=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CEILING_DIRECTORIES=ceiling,
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="false",
        SSH_ASKPASS="false",
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_GRAFT_FILE=os.devnull,
        GIT_NO_LAZY_FETCH="1",  # git >= 2.44; before, no protocol is allowed at all
        GIT_PROTOCOL_FROM_USER="0",
        GIT_ALLOW_PROTOCOL="",
        GIT_LITERAL_PATHSPECS="1",
        GIT_OPTIONAL_LOCKS="0",
        GIT_PAGER="cat",
        PAGER="cat",
        GIT_CONFIG_COUNT=str(len(config)),
    )
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def git_config(planted: list[str], trusted: list[str]) -> list[tuple[str, str]]:
    """Each program-choosing key set to run nothing, as command-line config.

    ``planted`` is the clone's config keys (any case); each that matches
    ``PLANTED_KEYS`` is set too. ``trusted`` is the user's own ``safe.directory``.
    """
    settings = list(PROGRAM_KEYS)
    for key in planted:
        for pattern, value in PLANTED_KEYS:
            if re.fullmatch(pattern, key, flags=re.IGNORECASE | re.DOTALL):
                settings.append((key, value))
                break
    settings += [("safe.directory", folder) for folder in trusted]
    return settings


def _stderr(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    text = "".join(c if c.isprintable() or c == "\n" else "?" for c in text)
    return text[:STDERR_CHARS] or "(no message)"


class Clone:
    """A git repository in a folder a user hands us: every git command is run from here."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).absolute()
        # git refuses a clone another user owns and says how to trust it (``git config
        # --global --add safe.directory``): that advice must work without the global config.
        self._trusted = _read_safe_directories()
        self._config = git_config([], self._trusted)
        self._config = git_config(self._config_keys(), self._trusted)

    def _env(self) -> dict[str, str]:
        return git_env(os.environ, ceiling=str(self.directory.parent), config=self._config)

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        return ["git", "-C", str(self.directory), *OPTIONS, *args]

    def run(self, *args: str, ok: Callable[[int], bool] = lambda code: code == 0) -> bytes:
        """git's stdout; a ``MigrationError`` with git's own words when it fails."""
        try:
            done = subprocess.run(
                self._argv(args),
                capture_output=True,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            took = f"took over {GIT_TIMEOUT:.0f} s"
            raise MigrationError(f"git {args[0]} in {self.directory} {took}") from exc
        except OSError as exc:
            raise MigrationError(f"cannot run git for --from-clone: {exc}") from exc
        if not ok(done.returncode):
            raise MigrationError(
                f"git {args[0]} in {self.directory} failed (exit {done.returncode}): "
                f"{_stderr(done.stderr)}"
            )
        return done.stdout

    def _config_keys(self) -> list[str]:
        out = self.run("config", "--list", "--name-only", "--includes", "-z", ok=lambda c: c < 2)
        return [key.decode("utf-8", "replace") for key in out.split(b"\0") if key]

    @contextlib.contextmanager
    def cat(self) -> Iterator[_BatchReader]:
        """``read(sha, kinds)``, ``check(shas, kinds)``: objects, hashed; one ``cat-file``."""
        with (
            tempfile.TemporaryFile() as errors,
            subprocess.Popen(
                self._argv(("cat-file", "--batch")),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=self._env(),
            ) as process,
            _Watchdog(process) as watchdog,
        ):
            if not (process.stdin and process.stdout):
                raise MigrationError("git cat-file started without its pipes")
            reader = _BatchReader(self, process.stdin, process.stdout, errors, watchdog)
            try:
                yield reader
            except BaseException:
                process.kill()  # it may be writing a blob nobody will read
                raise
            finally:
                with contextlib.suppress(OSError):
                    process.stdin.close()
                try:
                    process.wait(timeout=GIT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()


class _BatchReader:
    def __init__(
        self,
        clone: Clone,
        stdin: IO[bytes],
        stdout: IO[bytes],
        errors: IO[bytes],
        watchdog: _Watchdog,
    ) -> None:
        self.clone = clone
        self.stdin = stdin
        self.stdout = stdout
        self.errors = errors
        self.watchdog = watchdog

    def _failed(self, what: str) -> MigrationError:
        self.errors.seek(0)
        said = _stderr(self.errors.read(STDERR_CHARS * 4))
        late = " (no answer in time)" if self.watchdog.fired else ""
        return MigrationError(f"git cat-file in {self.clone.directory} {what}{late}: {said}")

    def read(self, sha: str, kinds: tuple[str, ...] = ("blob",)) -> bytes:
        """The object ``sha``, of one of ``kinds``, hashed: an error unless it is what its name
        says."""
        self._ask([sha])
        return self._answer(sha, kinds)

    def check(self, shas: list[str], kinds: tuple[str, ...]) -> None:
        """Read and hash every object of ``shas``, asking for ``BATCH`` at a time."""
        for start in range(0, len(shas), BATCH):
            chunk = shas[start : start + BATCH]  # 12 kB asked: less than any pipe holds
            self._ask(chunk)
            for sha in chunk:
                self._answer(sha, kinds)

    def _ask(self, shas: list[str]) -> None:
        for sha in shas:
            if not re.fullmatch(r"[0-9a-f]{40}", sha):
                raise MigrationError(f"the clone named {sha[:80]!r} as an object: not a sha-1")
        self.watchdog.waiting()
        try:
            self.stdin.write("".join(f"{sha}\n" for sha in shas).encode())
            self.stdin.flush()
        except OSError as exc:  # a broken pipe: git is gone, not our stdout
            raise self._failed(f"stopped reading ({exc.__class__.__name__})") from exc

    def _answer(self, sha: str, kinds: tuple[str, ...]) -> bytes:
        self.watchdog.waiting()
        header = self.stdout.readline()
        if not header:
            raise self._failed("ended without an answer")
        fields = header.decode("ascii", "replace").split()
        if fields[1:] == ["missing"]:
            self.errors.seek(0)
            said = self.errors.read(STDERR_CHARS * 4)
            raise MigrationError(
                f"the clone {self.clone.directory} is missing object {sha} (a {kinds[0]} of the "
                "history): it was pruned, never fetched, or is corrupt; clone the repository "
                "afresh" + (f" (git: {_stderr(said)})" if said.strip() else "")
            )
        if (
            len(fields) != 3
            or fields[0] != sha
            or fields[1] not in kinds
            or not fields[2].isdigit()
        ):
            raise MigrationError(f"git cat-file answered {header[:120]!r} for {kinds[0]} {sha}")
        kind, size = fields[1], int(fields[2])
        if size > MAX_BLOB:
            raise MigrationError(
                f"{kind} {sha} in the clone is {size:,} bytes: over GitHub's limit"
            )
        data = self.stdout.read(size + 1)
        self.watchdog.answered()
        if len(data) != size + 1:
            raise self._failed(f"ended in the middle of {kind} {sha}")
        data = data[:size]
        if object_sha(kind, data) != sha:
            raise MigrationError(
                f"object {sha} in the clone {self.clone.directory} does not hold what its name "
                "says (a forged or corrupt object): clone the repository afresh"
            )
        return data


def object_sha(kind: str, data: bytes) -> str:
    """The sha git (and GitHub) names ``data`` by as a ``kind`` object."""
    header = b"%s %d\0" % (kind.encode(), len(data))
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


def blob_sha(data: bytes) -> str:
    """The sha git (and GitHub) names ``data`` by as a blob."""
    return object_sha("blob", data)


class _Watchdog:
    """Kills a process that gives no answer within ``ANSWER_TIMEOUT``: every read is bounded."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._limit = ANSWER_TIMEOUT
        self._since: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gitjsonl-git-watch", daemon=True)
        self.fired = False

    def waiting(self) -> None:
        """A question was asked: the answer is due within the limit."""
        self._since = time.monotonic()

    def answered(self) -> None:
        self._since = None

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self._limit)):
            since = self._since
            if since is not None and time.monotonic() - since > self._limit:
                self.fired = True
                with contextlib.suppress(OSError):
                    self._process.kill()
                return

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)


def _read_safe_directories() -> list[str]:
    """The caller's own ``safe.directory`` values (system and global config), or none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = os.sep
    found: list[str] = []
    for scope in ("--system", "--global"):
        try:
            done = subprocess.run(
                ["git", "config", scope, "--get-all", "-z", "safe.directory"],
                capture_output=True,
                env=env,
                cwd=os.sep,
                stdin=subprocess.DEVNULL,
                timeout=60.0,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            found += [v.decode("utf-8", "replace") for v in done.stdout.split(b"\0") if v]
    return [v for v in found if "\n" not in v]


def parse_log(out: bytes, path: str) -> list[tuple[str, str, str | None]]:
    """``git log -z --raw`` as (commit, date, blob sha or None where ``path`` is deleted).

    Every listed commit changed ``path`` (or a file under it, where ``path`` is a
    folder there: it is not a file at that commit, so None).
    """
    tokens = out.split(b"\0")
    commits: list[tuple[str, str, str | None]] = []
    want = path.encode()
    index = 0
    current: list[str | None] | None = None
    while index < len(tokens):
        token = tokens[index].lstrip(b"\n")
        index += 1
        if not token:
            continue
        if token.startswith(b"commit "):
            fields = token.decode("ascii", "replace").split(" ")
            if len(fields) != 3 or not re.fullmatch(r"[0-9a-f]{40}", fields[1]):
                raise MigrationError(f"git log gave {token[:120]!r}, not a commit")
            if current is not None:
                commits.append((str(current[0]), str(current[1]), current[2]))
            current = [fields[1], fields[2], None]
            continue
        if not token.startswith(b":") or current is None or index >= len(tokens):
            raise MigrationError(f"git log gave {token[:120]!r}, not a change")
        changed = tokens[index]
        index += 1
        meta = token.decode("ascii", "replace").split(" ")
        if changed != want:
            continue  # a file under ``path``, where it is a folder
        if len(meta) != 5 or not re.fullmatch(r"[0-9a-f]{40}", meta[3]):
            raise MigrationError(f"git log gave {token[:120]!r}, not a change")
        new_mode, blob, status = meta[1], meta[3], meta[4]
        current[2] = None if status.startswith("D") or new_mode == "000000" else blob
        if new_mode not in ("000000", "100644", "100755"):
            current[2] = None  # a link or a submodule is not the file
    if current is not None:
        commits.append((str(current[0]), str(current[1]), current[2]))
    return commits


class CloneHistory:
    """The source's history from a local clone, read with git (no API request)."""

    def __init__(self, directory: str | os.PathLike[str], path: str, head: str) -> None:
        self.directory = Path(directory)
        self.path = path
        self.head = head
        self._blobs: dict[str, str | None] = {}
        if not (self.directory / ".git").exists() and not (self.directory / "HEAD").is_file():
            raise MigrationError(f"--from-clone {self.directory} is not a git clone")
        if not re.fullmatch(r"[0-9a-f]{40}", head):
            raise MigrationError(f"the branch's head {head[:80]!r} is not a sha-1")
        self.clone = Clone(self.directory)
        self._refuse_partial_or_shallow()
        found = self.clone.run("cat-file", "-t", head, ok=lambda _code: True).strip()
        if found != b"commit":
            raise MigrationError(
                f"the clone {self.directory} does not hold {head[:12]}, the branch's head "
                f"on GitHub: run `git -C {self.directory} fetch` and try again"
            )

    def _refuse_partial_or_shallow(self) -> None:
        shallow = self.clone.run("rev-parse", "--is-shallow-repository").strip()
        if shallow != b"false":
            raise MigrationError(
                f"the clone {self.directory} is shallow: it lacks the history to recover "
                "(clone it without --depth, or run `git fetch --unshallow`)"
            )
        partial = self.clone.run("config", "--get", "extensions.partialClone", ok=lambda c: c < 2)
        promisor = self.clone.run(
            "config", "--get-regexp", r"^remote\..*\.promisor$", ok=lambda c: c < 2
        )
        packs = Path(self.clone.run("rev-parse", "--git-path", "objects/pack").decode().strip())
        if not packs.is_absolute():
            packs = self.directory / packs
        if (
            partial.strip()
            or b" true" in promisor.lower()
            or (packs.is_dir() and any(packs.glob("*.promisor")))
        ):
            raise MigrationError(
                f"the clone {self.directory} is a partial clone (--filter): it lacks the old "
                "versions, and fetching them would run what its config names; clone it "
                "without --filter"
            )

    def _verify_history(self) -> None:
        """Hash every commit and tree git will walk: git trusts an object's name, we do not.

        A forged object file (or pack index) standing for a commit or a tree could
        change the parents git walks or the blob it finds at a path; the blobs are
        hashed as they are read.
        """
        listed = self.clone.run(
            "rev-list", "--objects", "--no-object-names", "--filter=blob:none", self.head
        )
        with self.clone.cat() as reader:
            reader.check(listed.decode("ascii", "replace").split(), ("commit", "tree"))

    def commits(self) -> list[Commit]:
        """Every commit that touched the file, oldest first (as GitHub's ``commits?path=``)."""
        self._verify_history()
        out = self.clone.run(
            "log", "-z", "--raw", "--no-abbrev", "--no-renames", "--root", "--no-textconv",
            "--no-ext-diff", "--diff-merges=first-parent", "--format=commit %H %cI",
            "--reverse", self.head, "--", self.path,
        )  # fmt: skip
        commits: list[Commit] = []
        for sha, date, blob in parse_log(out, self.path):
            self._blobs[sha] = blob
            commits.append(Commit(sha, date))
        return commits

    def versions(
        self, commits: list[Commit], start: int, progress: OnProgress, save_now: Callable[[], None]
    ) -> Iterator[FileVersion]:
        """The file at each of ``commits``: one long-running ``git cat-file --batch``."""
        with self.clone.cat() as reader:
            last: tuple[str, bytes] | None = None
            for index, commit in enumerate(commits[start:], start=start + 1):
                if index % 1000 == 0 or index == len(commits):
                    progress(f"reading history from the clone {index:,}/{len(commits):,}")
                blob = self._blobs[commit.sha]
                if blob is None:
                    yield FileVersion(commit.sha, commit.date, None)
                    continue
                if last is None or last[0] != blob:
                    last = (blob, reader.read(blob))
                yield FileVersion(commit.sha, commit.date, last[1], blob)
