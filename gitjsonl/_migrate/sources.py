"""Where ``--recover-history`` reads the source file's versions: a local clone, or the API.

Both give the same thing, the file at every commit that touched it, oldest
first, as ``history.FileVersion``; the recovery itself (``history``) is pure
and shared.

- ``clone.CloneHistory``: ``git log`` and ``git cat-file --batch`` in a clone
  the user made (``git clone`` is one transfer, however long the history): no
  API request at all, seconds for 100,000 commits. The clone must hold the
  branch's head as GitHub has it (``git fetch`` first), so the walk covers
  exactly the history being migrated; nothing in it is trusted (``clone``).
- ``ApiHistory``: a folder listing and a blob per commit (three requests a
  commit, a page of commits per hundred), paced against the token's primary
  rate limit (``PrimaryPacer``): below a reserve it waits for the reset.

``Checkpoints`` saves the walk every so often in a small progress file, so a
walk stopped half-way (a rate limit, a ^C, a crash) goes on where it stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gitjsonl._exceptions import SpoolError
from gitjsonl._github import GitHubRepo, RateBudget
from gitjsonl._reader import find_file
from gitjsonl._spool import open_owned, secure_directory

from .history import FileVersion, HistoryWalk

__all__ = ["ApiHistory", "Checkpoints", "History", "PrimaryPacer"]

#: Requests left to the token below which the walk waits for the reset (for its Logs).
RESERVE = 500
#: Versions read between two looks at the rate limit.
PACE_EVERY = 50
#: Seconds between two saves of the walk.
SAVE_EVERY = 30.0
#: The longest single wait for a reset (GitHub's window is an hour).
MAX_WAIT = 3700.0

OnProgress = Callable[[str], None]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Commit:
    sha: str
    date: str


class PrimaryPacer:
    """Keeps a walk of the API under the token's primary rate limit: waits below ``reserve``."""

    def __init__(
        self,
        rate_limit: Callable[[], RateBudget],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        reserve: int = RESERVE,
        every: int = PACE_EVERY,
    ) -> None:
        self._rate_limit = rate_limit
        self._sleep = sleep
        self._clock = clock
        self._reserve = reserve
        self._every = every
        self._count = 0
        self.waited = 0.0

    def tick(self, progress: OnProgress, before_wait: Callable[[], None]) -> None:
        """Called once a version; every ``every`` versions, asks the rate limit (free on GitHub)."""
        self._count += 1
        if self._count % self._every:
            return
        budget = self._rate_limit()
        if budget.remaining >= self._reserve:
            return
        wait = wait_for_reset(budget, now=self._clock())
        before_wait()
        progress(
            f"rate limit: {budget.remaining} request(s) left; waiting {wait / 60:.0f} min for "
            "the reset (progress saved: ^C and run again to go on from here)"
        )
        self.waited += wait
        self._sleep(wait)


def wait_for_reset(budget: RateBudget, *, now: float) -> float:
    """Seconds until ``budget`` is full again, on the server's clock when it said; bounded."""
    if budget.reset is None:
        return 60.0
    server_now = budget.server_time if budget.server_time is not None else now
    return min(MAX_WAIT, max(1.0, budget.reset - server_now + 1.0))


class ApiHistory:
    """The source's history through the API: its commits, then a listing and a blob each."""

    def __init__(self, repo: GitHubRepo, path: str, head: str, pacer: PrimaryPacer) -> None:
        self.repo = repo
        self.path = path
        self.head = head
        self.pacer = pacer

    def commits(self) -> list[Commit]:
        listed = [Commit(c.sha, c.date) for c in self.repo.iter_commits(self.head, path=self.path)]
        listed.reverse()
        return listed

    def versions(
        self, commits: list[Commit], start: int, progress: OnProgress, save_now: Callable[[], None]
    ) -> Iterator[FileVersion]:
        last: tuple[str, bytes] | None = None
        for index, commit in enumerate(commits[start:], start=start + 1):
            self.pacer.tick(progress, save_now)
            progress(f"reading history {index:,}/{len(commits):,}")
            entry = find_file(self.repo, self.path, commit.sha)
            if entry is None:
                yield FileVersion(commit.sha, commit.date, None)
                continue
            if last is None or last[0] != entry.sha:
                last = (entry.sha, self.repo.get_blob(entry.sha))  # one version in memory
            yield FileVersion(commit.sha, commit.date, last[1], entry.sha)


class Checkpoints:
    """A walk's progress file: where it stopped and what it had found, saved now and then."""

    def __init__(
        self,
        directory: Path | None,
        key: tuple[str, ...],
        *,
        clock: Callable[[], float] = time.monotonic,
        every: float = SAVE_EVERY,
    ) -> None:
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
        self.path = None if directory is None else directory / f"migrate-{digest}.json"
        self._key = list(key)
        self._clock = clock
        self._every = every
        self._saved_at = clock()

    def load(self) -> HistoryWalk | None:
        """The walk saved for this key, or None (none, or unreadable: it starts afresh)."""
        if self.path is None:
            return None
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(saved, dict) or saved.get("key") != self._key:
                return None
            return HistoryWalk.from_state(saved["walk"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:
            logger.warning(
                "gitjsonl: progress file %s is unreadable (%s): starting afresh", self.path, exc
            )
            return None

    def maybe_save(self, walk: HistoryWalk) -> None:
        if self._clock() - self._saved_at >= self._every:
            self.save(walk)

    def save(self, walk: HistoryWalk) -> None:
        """Write the walk atomically (0600); a failure to save only costs a resume."""
        self._saved_at = self._clock()
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        try:
            # Our files only, as the spool's: a 0700 folder, 0600 files, no link followed.
            secure_directory(self.path.parent)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            fd = open_owned(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "progress file")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"key": self._key, "walk": walk.state()}, out)
            os.replace(tmp, self.path)
        except (OSError, SpoolError) as exc:
            logger.warning("gitjsonl: could not save the history walk in %s: %s", self.path, exc)

    def remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()


class History(Protocol):
    """Where the versions come from: ``ApiHistory`` or ``clone.CloneHistory``."""

    def commits(self) -> list[Commit]: ...

    def versions(
        self, commits: list[Commit], start: int, progress: OnProgress, save_now: Callable[[], None]
    ) -> Iterator[FileVersion]: ...


def walk_history(history: History, checkpoints: Checkpoints, progress: OnProgress) -> HistoryWalk:
    """Feed every version to a walk, resuming a saved one; saved now and then and on failure."""
    commits = history.commits()
    walk = checkpoints.load()
    if walk is not None and walk.versions > len(commits):
        walk = None  # not this history after all
    if walk is not None:
        progress(f"resuming the history walk at commit {walk.versions + 1:,}/{len(commits):,}")
    walk = walk or HistoryWalk()
    try:
        saving = walk
        for version in history.versions(
            commits, walk.versions, progress, lambda: checkpoints.save(saving)
        ):
            walk.feed(version)
            checkpoints.maybe_save(walk)
    except BaseException:
        checkpoints.save(walk)
        raise
    return walk
