"""Committing one batch: blob(s) -> tree on the head's tree -> commit -> fast-forward.

The steady state costs four requests and no reads: the head commit, its tree
and the active segment's bytes are kept from our own last commit. Everything
that can go wrong is an exception from ``_github``; what to do about it is
decided by the pure functions ``is_retryable`` and ``retry_wait`` and carried
out by tenacity:

- ``NotFastForward`` (someone else committed first): forget the head, re-read
  it (and the active segment only if its blob changed), rebuild on top, retry.
- ``TransientError`` on the ref update (a timeout, a dropped connection, a 5xx):
  the update may have landed. Before anything else we look for our batch id in
  the commits above the head we built on; if it is there, the batch is done.
- anything else propagates to the ``Log``, which keeps the records pending.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from ._exceptions import (
    ContentsConflict,
    EmptyRepository,
    NotFastForward,
    NotFound,
    TransientError,
    ValidationFailed,
)
from ._github import GitHubRepo, Identity
from ._pacing import Pacer
from ._segments import ActiveSegment, SegmentWrite, plan_segments, sorted_segments

__all__ = [
    "Batch",
    "Committer",
    "Head",
    "RetryPolicy",
    "batch_id_of",
    "commit_message",
    "is_retryable",
    "new_batch_id",
    "retry_wait",
]

logger = logging.getLogger("gitjsonl")

BATCH_TRAILER = "Gitjsonl-Batch"
RECORDS_TRAILER = "Gitjsonl-Records"
WRITER_TRAILER = "Gitjsonl-Writer"
_BATCH_RE = re.compile(rf"^{BATCH_TRAILER}: *(\S+) *$", re.MULTILINE)

#: How far back (in commits) we look for a batch that may have landed.
LANDED_SEARCH_LIMIT = 1000

LOG_README = """\
# A gitjsonl log

This folder is an append-only JSON-lines log written by gitjsonl.
Segments are named `00000001.jsonl`, `00000002.jsonl`, ... in append order;
each line is one JSON object. To read every record in order:

    cat $(ls | grep -E '^[0-9]{8,}\\.jsonl$' | sort) | jq .

Only the highest-numbered segment still grows; the others never change.
"""


def git_blob_sha(content: bytes) -> str:
    """The object id git (and so GitHub) gives a blob with ``content``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def new_batch_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Batch:
    """Records committed together, in one commit, under one id."""

    id: str
    lines: tuple[bytes, ...]
    first_seq: int  # sequence numbers of the Log's records, inclusive

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.lines) - 1

    @property
    def size(self) -> int:
        return sum(len(line) for line in self.lines)


@dataclass(frozen=True, slots=True)
class Head:
    """What we know of the branch we build on."""

    commit: str
    tree: str
    active: ActiveSegment | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a batch is retried before its failure is reported to ``flush()``.

    Conflicts (another writer got there first) are retried quickly, with
    jitter so that racing writers spread out; server and network errors back
    off exponentially from ``initial_wait`` up to ``max_wait``.
    """

    max_attempts: int = 12
    initial_wait: float = 0.5
    max_wait: float = 30.0
    conflict_wait: float = 0.05
    max_conflict_wait: float = 1.0


def is_retryable(exc: BaseException) -> bool:
    """Whether the commit of a batch is tried again at once (within the retry budget)."""
    return isinstance(exc, (NotFastForward, TransientError, ContentsConflict))


def retry_wait(
    exc: BaseException | None, attempt: int, policy: RetryPolicy, rng: random.Random
) -> float:
    """Seconds to sleep before attempt ``attempt + 1``: full jitter, exponential."""
    if isinstance(exc, NotFastForward):
        base, cap = policy.conflict_wait, policy.max_conflict_wait
    else:
        base, cap = policy.initial_wait, policy.max_wait
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def commit_message(batch: Batch, path: str, *, skip_ci: bool, writer: str) -> str:
    noun = "record" if len(batch.lines) == 1 else "records"
    subject = f"gitjsonl: append {len(batch.lines)} {noun} to {path}"
    if skip_ci:
        subject += " [skip ci]"
    return (
        f"{subject}\n\n"
        f"{BATCH_TRAILER}: {batch.id}\n"
        f"{RECORDS_TRAILER}: {len(batch.lines)}\n"
        f"{WRITER_TRAILER}: {writer}\n"
    )


def batch_id_of(message: str) -> str | None:
    """The batch id a gitjsonl commit message names, if any."""
    match = _BATCH_RE.search(message)
    return match.group(1) if match else None


@dataclass(slots=True)
class _Unresolved:
    """A ref update whose answer was lost: it may or may not have landed."""

    batch_id: str
    base: str  # the head we built on
    commit: str  # the commit we tried to move the branch to
    head: Head  # our head, had it landed


class Committer:
    """Commits batches to one log on one branch; used by one thread at a time."""

    def __init__(
        self,
        repo: GitHubRepo,
        *,
        path: str,
        branch: str | None,
        segment_bytes: int,
        policy: RetryPolicy,
        pacer: Pacer | None,
        sleep: Callable[[float], None],
        writer_id: str,
        skip_ci: bool = True,
        author: Identity | None = None,
        committer: Identity | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._repo = repo
        self._path = path.strip("/")
        self._branch = branch
        self._segment_bytes = segment_bytes
        self._policy = policy
        self._pacer = pacer
        self._sleep = sleep
        self._writer_id = writer_id
        self._skip_ci = skip_ci
        self._author = author
        self._committer = committer
        self._rng = rng or random.Random()
        self._head: Head | None = None
        self._unresolved: _Unresolved | None = None
        self._streak: dict[str, int] = {}
        self._uploaded: set[str] = set()  # blobs this batch has uploaded already
        self.conflicts = 0
        self.retries = 0
        self.landed_after_error = 0

    @property
    def branch(self) -> str:
        if self._branch is None:
            self._branch = self._repo.default_branch()
        return self._branch

    @property
    def unresolved_batch_id(self) -> str | None:
        """A batch that must be committed again under the same id (it may have landed)."""
        return self._unresolved.batch_id if self._unresolved else None

    @property
    def head(self) -> Head | None:
        return self._head

    def commit(self, batch: Batch) -> str:
        """Commit ``batch`` exactly once; the sha of the commit that holds it."""
        self._streak = {}
        self._uploaded = set()
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._policy.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        sha: str = retrying(self._attempt, batch)
        return sha

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        # Back off per kind of failure: ten lost races must not make the
        # first 502 that follows wait as if it were the tenth.
        kind = "conflict" if isinstance(exc, NotFastForward) else "error"
        self._streak[kind] = self._streak.get(kind, 0) + 1
        return retry_wait(exc, self._streak[kind], self._policy, self._rng)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        logger.debug("gitjsonl: retrying batch after %r", exc)

    # -- one attempt -----------------------------------------------------------

    def _attempt(self, batch: Batch) -> str:
        if self._unresolved is not None:
            if self._unresolved.batch_id != batch.id:
                raise RuntimeError("a batch that may have landed must be resolved first")
            landed = self._resolve(self._unresolved)
            self._unresolved = None
            if landed is not None:
                return landed
        head = self._head or self._load_head(None)
        writes = plan_segments(head.active, batch.lines, self._segment_bytes)
        if self._pacer is None:
            return self._push(batch, head, writes)
        cost = len(writes) + 3
        delay = self._pacer.delay(cost)
        if delay > 0:
            self._sleep(delay)
        try:
            return self._push(batch, head, writes)
        finally:
            # Stamped when the requests are done: GitHub's window counts them
            # on arrival, which is never earlier than this.
            self._pacer.record(cost)

    def _push(self, batch: Batch, head: Head, writes: list[SegmentWrite]) -> str:
        """Blobs, tree, commit, fast-forward: the four writes of one batch."""
        files: dict[str, str | None] = {}
        for write in writes:
            files[f"{self._path}/{write.name}"] = self._blob(write.content)
        tree = self._repo.create_tree(head.tree, files)
        message = commit_message(batch, self._path, skip_ci=self._skip_ci, writer=self._writer_id)
        sha = self._repo.create_commit(
            message, tree, [head.commit], author=self._author, committer=self._committer
        )
        last: SegmentWrite = writes[-1]
        ours = Head(
            commit=sha,
            tree=tree,
            active=ActiveSegment(last.number, last.content, files[f"{self._path}/{last.name}"]),
        )
        try:
            self._repo.update_ref(self.branch, sha)
        except NotFastForward:
            self.conflicts += 1
            self._head = self._load_head(head)
            raise
        except TransientError as exc:
            if exc.ambiguous:
                self._unresolved = _Unresolved(batch.id, head.commit, sha, ours)
            raise
        self._head = ours
        return sha

    def _blob(self, content: bytes) -> str:
        """Upload ``content`` unless this batch already did (a retry after a conflict)."""
        sha = git_blob_sha(content)
        if sha not in self._uploaded:
            created = self._repo.create_blob(content)
            if created != sha:  # GitHub names blobs exactly as git does
                raise ValidationFailed(f"blob uploaded as {created}, expected {sha}")
            self._uploaded.add(sha)
        return sha

    def _resolve(self, unresolved: _Unresolved) -> str | None:
        """After a lost answer: the sha of the commit holding the batch, or None."""
        tip = self._repo.get_head(self.branch)
        if tip == unresolved.commit:
            self.landed_after_error += 1
            self._head = unresolved.head
            return tip
        if tip != unresolved.base:
            for count, info in enumerate(self._repo.iter_commits(tip)):
                if info.sha == unresolved.base or count >= LANDED_SEARCH_LIMIT:
                    break
                if batch_id_of(info.message) == unresolved.batch_id:
                    self.landed_after_error += 1
                    self._head = self._load_head(self._head)
                    return info.sha
        # It did not land. Whatever the branch holds now is the head to build on.
        self._head = self._load_head(self._head)
        return None

    # -- reading the head --------------------------------------------------------

    def _load_head(self, previous: Head | None) -> Head:
        """Read the branch's head; the active segment's bytes only if they changed."""
        commit = self._branch_head()
        info = self._repo.get_commit(commit)
        entries = self._repo.list_dir(self._path, ref=commit) or []
        by_name = {e.name: e for e in entries if e.type == "file"}
        segments = sorted_segments(by_name)
        if not segments:
            return Head(commit, info.tree_sha, None)
        number, name = segments[-1]
        sha = by_name[name].sha
        cached = previous.active if previous else None
        if cached is not None and cached.number == number and cached.sha == sha:
            content = cached.content
        else:
            content = self._repo.get_blob(sha)
        return Head(commit, info.tree_sha, ActiveSegment(number, content, sha))

    def _branch_head(self) -> str:
        branch = self.branch  # a 404 here is the repository's, not the branch's
        try:
            return self._repo.get_head(branch)
        except EmptyRepository:
            self._bootstrap_empty_repository()
        except NotFound:
            self._create_branch()
        return self._repo.get_head(self.branch)

    def _bootstrap_empty_repository(self) -> None:
        """The Git Data API refuses an empty repository; a Contents PUT makes its first commit."""
        message = f"gitjsonl: start log {self._path}"
        if self._skip_ci:
            message += " [skip ci]"
        try:
            self._repo.put_file(
                f"{self._path}/README.md", message, LOG_README.encode(), branch=None
            )
        except (ValidationFailed, ContentsConflict):
            logger.info("gitjsonl: another writer initialised the repository first")
        # GitHub names the first branch itself; make ours if it is another.
        default = self._repo.default_branch()
        if default != self.branch:
            self._create_branch(default)

    def _create_branch(self, source: str | None = None) -> None:
        source = source or self._repo.default_branch()
        if source == self.branch:
            raise NotFound(f"branch {self.branch!r} does not exist", status=404)
        try:
            self._repo.create_ref(self.branch, self._repo.get_head(source))
        except ValidationFailed:
            logger.info("gitjsonl: branch %s was created by another writer", self.branch)
