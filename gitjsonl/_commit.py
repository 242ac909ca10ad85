"""Committing one batch: a tree on the head's tree -> commit -> fast-forward.

The steady state costs three requests and no reads. The tree carries the
batch's new files as text (``tree[].content``: GitHub writes the blobs itself;
bytes that are not UTF-8 go up first as a base64 blob), and deletes the files
a compaction replaced (``_segments.plan_batch``). What GitHub stored is
checked at no extra request: the root tree's sha is computed locally from the
trees along the log's path (``_gittree``) and compared with the answer; where
those trees are not known (another log of the repository committed in
between) the answer's own listing is hashed and followed down, reading a tree
by sha only where needed. The commit answer must name our tree and parent,
the ref update answer our commit. The head commit, the trees along the path,
the log folder's entries and the bytes of its small files are kept from our
own last commit, or learned
from the commits other writers on this host left on the branch's turn
(``_turn``): writers of one process or host take turns and never race each
other. A ref update's link is left pending in the turn before it is sent, so
an update that landed unanswered (a lost answer, a writer killed as it
landed) is built on by the next writer, not raced (``with_pending``).
Every write is paid for from the token's shared ``Budget``; the writes
of a batch are reserved inside the turn, and a batch that must wait for the
budget leaves the turn to sleep. Everything
that can go wrong is an exception from ``_github``; what to do about it is
decided by ``_retry`` (``RetryPolicy.retrying``) and carried out by tenacity:

- ``NotFastForward`` (someone else committed first, or our commit is on the
  branch all the same: another host built on our pending link while our lease
  ran out): settled like a lost answer, below a head proven newer than the
  one we built on (``_resolve``), then rebuilt on that head, or done.
- ``TransientError`` on the ref update (a timeout, a dropped connection, a 5xx):
  the update may have landed. Before anything else the same update is sent
  again; if the branch has moved on, our batch id is looked for only below a
  head proven newer than the one we built on (``_batch.settle_lost_update``).
- ``StaleRead``: a read of the branch behind what we know; retried like a race.
- anything else propagates to the ``Log``, which keeps the records pending.

Only what the branch proves is trusted. A head that was only read follows the
turn's links once a later read shows the branch moved along them; a branch
that reads as that same head for longer than reads lag (``_lagging``) was
reset by an operator, and the links above it are dropped, not brought
back. A link whose commit GitHub refuses to build on (a refused update, a
commit or tree it does not have) leaves the turn at once and is never
followed again.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

import tenacity

from ._batch import LANDED, UNPROVEN, Batch, commit_message, settle_lost_update
from ._budget import Budget
from ._config import Identity
from ._exceptions import (
    ContentsConflict,
    EmptyRepository,
    GitHubError,
    NotFastForward,
    NotFound,
    ProtectedBranch,
    PublicRepository,
    StaleRead,
    TransientError,
    ValidationFailed,
)
from ._github import COMMITS_PAGE, CreatedTree, DirEntry, GitHubRepo, git_blob_sha
from ._gittree import PathTrees, is_folder, rebuild_path, tree_sha
from ._pacing import LANDED_WRITES
from ._reader import read_blob, warn_ignored
from ._retry import RetryPolicy
from ._segments import (
    BatchPlan,
    list_log,
    plan_batch,
    segment_name,
    segment_number,
    small_run,
)
from ._turn import BranchTurns, CatchUp, Link, Taken, Turn, catch_up

__all__ = ["Committer", "Head", "with_pending"]

logger = logging.getLogger(__name__)

LOG_README = """\
# A gitjsonl log

This folder is an append-only JSON-lines log written by gitjsonl.
Segments are named `00000001.jsonl`, `00000002.jsonl`, ... in append order;
each line is one JSON object. To read every record in order:

    cat $(ls | grep -E '^[0-9]{8,12}\\.jsonl$' | sort) | jq .

A batch adds new files; now and then a few small files at the end are merged
into one (named after the first of them), so at every commit the files, sorted
by name, hold every record exactly once, in order.
"""


@dataclass(frozen=True, slots=True)
class Head:
    """What we know of the branch we build on: a commit, and the log's trees in it."""

    commit: str
    tree: str  # the commit's root tree
    folder: tuple[DirEntry, ...]  # the log folder's entries (empty: no folder yet)
    # The trees above the log folder, root first (``()``: that folder does not exist
    # yet; None: its entries are not known, e.g. after another log's commit).
    levels: tuple[tuple[DirEntry, ...] | None, ...]
    texts: Mapping[str, bytes]  # blob sha -> bytes, for the small files a batch may merge


#: Bytes of JSON a head may take in a turn record; past this (a folder of many files) the
#: next writer elsewhere reads the folder instead. A record keeps a few heads (``_turn``).
SHARED_HEAD_BYTES = 32 * 1024


def _entry_to_json(entry: DirEntry) -> list[object]:
    return [entry.name, entry.path, entry.sha, entry.size, entry.type, entry.mode]


def _entry_from_json(row: object) -> DirEntry:
    if not isinstance(row, list) or len(row) != 6:
        raise ValueError("not a tree entry")
    name, path, sha, size, kind, mode = row
    if not all(isinstance(v, str) for v in (name, path, sha, kind, mode)):
        raise ValueError("not a tree entry")
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError("not a tree entry")
    return DirEntry(name, path, sha, size, kind, mode)


def head_to_json(head: Head) -> dict[str, object] | None:
    """``head`` for the turn record, so that a writer on another host builds on it without
    reading the branch; None when it is too big to carry (``SHARED_HEAD_BYTES``).

    Trees only, never a record's text: the small files' bytes stay in this process, and a
    writer elsewhere reads them by sha (``Committer._with_texts``)."""
    data: dict[str, object] = {
        "commit": head.commit,
        "tree": head.tree,
        "folder": [_entry_to_json(e) for e in head.folder],
        "levels": [None if x is None else [_entry_to_json(e) for e in x] for x in head.levels],
    }
    if len(json.dumps(data, separators=(",", ":"))) > SHARED_HEAD_BYTES:
        return None
    return data


def head_from_json(data: object, parts: tuple[str, ...], folder_sha: str) -> Head | None:
    """A turn record's head (without texts), or None unless every tree of it is proven: the
    folder's entries hash to ``folder_sha`` (the link's), the levels to the root tree."""
    if not isinstance(data, dict):
        return None
    try:
        commit, tree = data["commit"], data["tree"]
        if not isinstance(commit, str) or not isinstance(tree, str):
            return None
        folder = tuple(map(_entry_from_json, data["folder"]))
        levels = tuple(
            None if x is None else tuple(map(_entry_from_json, x)) for x in data["levels"]
        )
        if len(levels) != len(parts) or tree_sha(folder) != folder_sha:
            return None
        root = rebuild_path(parts, levels, folder).shas[0]
    except (KeyError, TypeError, ValueError):
        return None
    if root is not None and root != tree:
        return None
    return Head(commit, tree, folder, levels, {})


@dataclass(slots=True)
class _Unresolved:
    """A ref update whose answer was lost: it may or may not have landed."""

    batch: Batch
    base: str  # the head we built on
    commit: str  # the commit we tried to move the branch to
    head: Head | None  # our head, had it landed (None: read it when needed)
    # The update was refused: it did not move the branch, but the commit may be on it all
    # the same (another host built on our pending link while our lease ran out).
    refused: bool = False


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
        budget: Budget | None,
        sleep: Callable[[float], None],
        writer_id: str,
        skip_ci: bool = True,
        author: Identity | None = None,
        committer: Identity | None = None,
        rng: random.Random | None = None,
        before_update: Callable[[Batch, str, str], None] | None = None,
        allow_public: bool = False,
        turns: BranchTurns | None = None,
        on_retry: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._repo = repo
        # Told of each failed attempt that is tried again: stats() shows it at once.
        self._on_retry = on_retry
        self._path = path.strip("/")
        self._branch = branch
        self._segment_bytes = segment_bytes
        self._policy = policy
        self._budget = budget
        self._turns = turns
        self._own_turn = Turn(None)  # without turns: a turn nobody else takes
        self._sleep = sleep
        self._writer_id = writer_id
        self._skip_ci = skip_ci
        self._author = author
        self._committer = committer
        self._rng = rng or random.Random()
        # Told (batch, commit, base) before each ref update: the spool keeps it.
        self._before_update = before_update
        self._allow_public = allow_public
        self._checked = False  # the repository was checked before our first write
        self._head: Head | None = None
        self._stale: Head | None = None  # the head a lost race proved old: its segment may serve
        # Trust only what the branch proves: our head's commit when it was only read (the
        # turn's links above it are followed once a read shows them), the commit the turn's
        # links moved our head to (proven by our update's outcome), the links the branch
        # contradicted (never followed again), and reads that showed the branch below proof.
        self._read_at: str | None = None
        self._guess: str | None = None
        self._refuted: collections.deque[str] = collections.deque(maxlen=REFUTED_KEPT)
        self._lag: tuple[str, int, float] = ("", 0, 0.0)  # commit read, times, since waited
        self._waited = 0.0  # seconds slept between attempts, in all
        self._stale_reads = 0  # reads since a refusal that still showed the head we built on
        self._unresolved: _Unresolved | None = None
        self._uploaded: set[str] = set()  # blobs this batch has uploaded already
        self._parts = tuple(part for part in self._path.split("/") if part)
        self._inline = True  # send files as text in the tree (False after a tree mismatch)
        self._reload = False  # read the head from the branch: what we knew was contradicted
        self._restored = budget is None  # the budget knows what the branch says was spent
        self._batch_started = 0  # the repository's write count when this batch began
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
        return self._unresolved.batch.id if self._unresolved else None

    @property
    def head(self) -> Head | None:
        return self._head

    def known_head(self) -> str | None:
        """The newest commit known to be on the branch (ours, or one read and proven)."""
        head = self._head
        return head.commit if head is not None else None

    def close(self) -> None:
        """Let go of the shared budget and turn (the ``Log`` is closed)."""
        if self._budget is not None:
            self._budget.release()
        if self._turns is not None:
            self._turns.release()

    def commit(self, batch: Batch) -> str:
        """Commit ``batch`` exactly once; the sha of the commit that holds it."""
        self._uploaded = set()
        self._batch_started = self._repo.writes
        retrying = self._policy.retrying(
            sleep=self._wait, rng=self._rng, before_sleep=self._before_sleep
        )
        sha: str = retrying(self._attempt, batch)
        return sha

    def _wait(self, seconds: float) -> None:
        """A retry's sleep, counted: a read is taken to lag only for so long (``_proven``)."""
        self._waited += seconds
        self._sleep(seconds)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        logger.debug("gitjsonl: retrying batch after %r", exc)
        if self._on_retry is not None:
            self._on_retry(exc)

    # -- one attempt -----------------------------------------------------------

    def _attempt(self, batch: Batch) -> str:
        if not self._checked:
            self._check_repository()
        if not self._restored:
            self._restore_budget()
        if self._unresolved is not None:
            if self._unresolved.batch.id != batch.id:
                raise RuntimeError("a batch that may have landed must be resolved first")
            landed = self._resolve(self._unresolved)  # raises while it cannot tell
            if landed is not None:
                return landed
        force = False
        while True:
            with self._turn().take() as taken:
                try:
                    head = self._catch_up(taken)
                    if head is not None:
                        plan = self._plan(head, batch)
                        reservation, wait = self._reserve(self._cost(plan), batch, force=force)
                        if wait <= 0:
                            return self._push_paid(batch, head, plan, reservation, taken)
                except (NotFastForward, NotFound, ValidationFailed) as exc:
                    self._contradicted(taken, exc)
                    raise
            # Out of the turn: others may go meanwhile.
            if head is None:
                self._head = self._load_head(self._stale)  # may write (bootstrap) and wait
                self._read_at, self._guess = self._head.commit, None
                self._stale, self._reload = None, False
            else:
                force = self._wait_for_budget(wait)

    def _contradicted(self, taken: Taken, exc: GitHubError) -> None:
        """GitHub refused what was built on the commit the turn's links moved our head to (or
        could not find it): that link is dropped, never followed again, and the batch is
        tried again at once, on the branch as read."""
        guess, self._guess = self._guess, None
        if guess is None:
            return
        self._refute(taken, guess)
        self._head = None
        if not isinstance(exc, NotFastForward):
            raise StaleRead(
                f"the turn's link to {guess[:12]} is not on the branch ({exc.message.strip()}); "
                "reading the branch"
            ) from exc

    def _refute(self, taken: Taken, commit: str) -> None:
        logger.info("gitjsonl: the branch contradicts the turn's link to %s: dropped", commit[:12])
        taken.drop(commit)
        self._refuted.append(commit)

    def _turn(self) -> Turn:
        return self._turns.get(self.branch) if self._turns is not None else self._own_turn

    def _catch_up(self, taken: Taken) -> Head | None:
        """Our head, moved on to the newest commit other writers here left on the branch.

        None when we know no head yet, and no writer of this process has left one (a
        link of this process is proven by its writer's update; one from a file or the
        coordinator is followed only from a head of ours, or once a read proves it).
        """
        head = self._head
        if head is None and self._stale is None and not self._reload:
            head = self._local_head(taken)  # never after a lost race: that head is what lost
        if head is None:
            return None
        self._head = head
        found = catch_up(self._links(taken), head.commit, self._path)
        if found is None:
            return head
        if self._read_at == head.commit:
            # Our head is only a read: the links above it are followed once a read shows them.
            found = self._proven(taken, head, found)
            if found is None:
                return self._head
        self._guess = found.commit
        moved = self._moved(head, found, taken)
        self._head = moved if moved is not None else self._load_head_at(found.commit, head)
        return self._head

    def _links(self, taken: Taken) -> tuple[Link, ...]:
        """The turn's chain, with its pending link, cut before any link to or on a commit
        the branch refuted."""
        links = with_pending(taken.chain, taken.pending)
        refuted = set(self._refuted)
        for index, link in enumerate(links):
            if link.commit in refuted or link.base in refuted:
                return links[:index]
        return links

    def _proven(self, taken: Taken, head: Head, found: CatchUp) -> CatchUp | None:
        """``found`` once the branch proves it: a read shows the branch moved past our head
        along the links (any of them: reads lag, and the links go on from there).

        A read still at our head lags (``StaleRead``: read again after a wait),
        until the branch has read as that commit ``LAGGING_READS`` times: then the
        links above it are not on the branch (an operator reset it), and are
        dropped rather than brought back. None: build on our head as it is now
        (``self._head``, the commit the branch reads as).
        """
        tip = self._read_head(self.branch)
        if tip != head.commit and all(link.commit != tip for link in found.newer):
            # A commit nobody here made: built on as read, unless links go on above it.
            head = self._head = self._load_head_at(tip, head)
            self._read_at = tip
            again = catch_up(self._links(taken), tip, self._path)
            if again is None:
                return None
            found = again
        if tip != head.commit:
            self._lag = ("", 0, 0.0)
            return found
        if self._lagging(tip):
            raise StaleRead(
                f"the branch reads as {tip[:12]}, below {found.commit[:12]} that this host "
                "committed (GitHub's reads lag behind writes)"
            )
        self._refute(taken, found.newer[0].commit)
        return None

    def _lagging(self, commit: str) -> bool:
        """Does a read showing ``commit`` (again) below what is proven lag, or is it the
        branch (an operator reset it)? It lags until it has shown that commit more than
        ``LAGGING_READS`` times over more than ``READ_LAG`` seconds of waiting."""
        same = self._lag[0] == commit
        reads, since = (self._lag[1] + 1, self._lag[2]) if same else (1, self._waited)
        if reads <= LAGGING_READS or self._waited - since < READ_LAG:
            self._lag = (commit, reads, since)
            return True
        self._lag = ("", 0, 0.0)
        return False

    def _moved(self, head: Head, found: CatchUp, taken: Taken) -> Head | None:
        """``head`` moved to ``found`` without a read, or None when a read is needed.

        A read is needed when a commit nobody here made lies between (not
        ``exact``), when the newest commit to this log was made by another
        process (its folder is not known here), or when another log's path lies
        inside this one's folder. A commit to another log changes the trees the
        two paths share: they are taken from its writer when it is of this
        process, else forgotten (the next tree answer is then checked by
        following it down, see ``_check_tree``).
        """
        if not found.exact:
            return None
        newer = found.newer
        base = head
        if found.segment is not None:
            state = self._known(taken, found.segment)
            if state is None:
                return None
            base = state
            newer = newer[newer.index(found.segment) + 1 :]
        levels = list(base.levels)
        for link in newer:
            if link.path.startswith(f"{self._path}/"):
                return None
            theirs = self._known(taken, link)
            trees = None if theirs is None else (*theirs.levels, theirs.folder)
            for index in range(min(_shared(link.path, self._parts) + 1, len(levels))):
                levels[index] = trees[index] if trees is not None else None
        return Head(found.commit, found.tree, base.folder, tuple(levels), base.texts)

    def _local_head(self, taken: Taken) -> Head | None:
        """The last commit a writer of this process made on the branch, as our head.

        A link from this process is of this repository for sure (one from a file
        might not be: it is only trusted once our own head is found in the
        chain), and reading it by sha is exact where reading the branch may lag.
        """
        link = taken.local_tip
        if link is None:
            return None
        state = self._known(taken, link) if link.path == self._path else None
        if state is not None:
            return state
        return self._load_head_at(link.commit, None)

    def _known(self, taken: Taken, link: Link) -> Head | None:
        """The head ``link``'s writer left: of this process, or proven from the turn record
        (another process or host); None when neither is known."""
        state = taken.content(link)
        if state is not None and not isinstance(state, Head):
            parts = tuple(part for part in link.path.split("/") if part)
            state = head_from_json(state, parts, link.segment_sha)
            if state is not None and state.commit == link.commit and link.path == self._path:
                state = self._with_texts(state)
        return state if state is not None and state.commit == link.commit else None

    def _with_texts(self, head: Head) -> Head:
        """``head`` with the bytes of its small files: those this writer knows, the rest read
        by sha (a turn record carries no record's text)."""
        known = {
            **(self._stale.texts if self._stale else {}),
            **(self._head.texts if self._head else {}),
        }
        return Head(
            head.commit, head.tree, head.folder, head.levels, self._texts(head.folder, known)
        )

    def _plan(self, head: Head, batch: Batch) -> BatchPlan:
        """What the batch writes on ``head`` (``plan_batch``, over what the head knows)."""
        listing = list_log(head.folder)
        contents = {
            segment.number: head.texts[entry.sha]
            for segment, entry in zip(listing.files(), listing.segments, strict=True)
            if entry.sha in head.texts
        }
        return plan_batch(
            listing.files(),
            batch.lines,
            segment_bytes=self._segment_bytes,
            next_number=listing.next_number,
            contents=contents,
        )

    def _cost(self, plan: BatchPlan) -> int:
        """The writes ``plan`` costs: tree, commit, ref update, and a blob per binary file."""
        blobs = [w for w in plan.writes if not self._as_text(w.content)]
        return 3 + sum(1 for w in blobs if git_blob_sha(w.content) not in self._uploaded)

    def _as_text(self, content: bytes) -> bool:
        """Does ``content`` go up inline, as text in the tree (else as a base64 blob)?"""
        if not self._inline:
            return False
        if content.isascii():
            return True
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def _reserve(self, cost: int, batch: Batch, *, force: bool) -> tuple[str | None, float]:
        if self._budget is None:
            return None, 0.0
        return self._budget.reserve(cost, force=force, batch=batch.id)

    def _restore_budget(self) -> None:
        """Teach the budget what the branch's commits of the last hour cost (one read, two
        pages for a log past 100 commits an hour): a process starting on an empty disk
        must not take the hour for a fresh one. Best effort: a failed read is today's
        behaviour (the budget knows only what the host's ledger says)."""
        budget = self._budget
        assert budget is not None
        self._restored = True
        pacing = budget.pacing
        # Since an hour and a minute ago on our clock: a server clock a minute ahead of
        # ours loses nothing; older commits are dropped by their age on the server's clock.
        since = time.time() - pacing.hour - pacing.minute
        pages = max(1, min(RESTORE_PAGES, -(-pacing.per_hour // (LANDED_WRITES * COMMITS_PAGE))))
        try:
            commits, server_now = self._repo.recent_commits(self.branch, since=since, pages=pages)
        except GitHubError as exc:
            logger.info("gitjsonl: could not read the branch's recent commits (%s)", exc)
            return
        try:
            added = budget.restore(commits, time.time() if server_now is None else server_now)
        except OSError as exc:
            logger.info("gitjsonl: could not restore the write budget (%s)", exc)
            return
        if added:
            logger.info(
                "gitjsonl: the branch's commits of the last hour cost %d writes this host's "
                "budget did not know of (a restart on an empty disk?): counted",
                added,
            )

    def _wait_for_budget(self, wait: float) -> bool:
        """Sleep until the budget has room; True when the sleep was cut short (closing)."""
        assert self._budget is not None
        return self._budget.sleep_for(wait, self._sleep)

    def _push_paid(
        self,
        batch: Batch,
        head: Head,
        plan: BatchPlan,
        reservation: str | None,
        taken: Taken,
    ) -> str:
        """``_push``, settling its reservation with the writes really sent."""
        if self._budget is None:
            return self._push(batch, head, plan, taken).commit
        sent = self._repo.writes
        with self._budget.settling(reservation, lambda: self._repo.writes - sent):
            return self._push(batch, head, plan, taken).commit

    @contextlib.contextmanager
    def _spend(self, cost: int) -> Iterator[None]:
        """Around writes outside a batch (bootstrap, a new branch, a lost answer's re-send)."""
        if self._budget is None:
            yield
            return
        with self._budget.spend(cost, self._sleep):
            yield

    def _push(self, batch: Batch, head: Head, plan: BatchPlan, taken: Taken) -> Head:
        """Tree, commit, fast-forward: the three writes of one batch (a blob before them
        for bytes that are not UTF-8); our new head, left in the turn as a link (and as
        the pending link while the ref update is out: it may land unanswered)."""
        texts: dict[str, bytes] = {}
        blobs: dict[str, str] = {}
        for write in plan.writes:
            path = f"{self._path}/{write.name}"
            if self._as_text(write.content):
                texts[path] = write.content
            else:
                blobs[path] = self._blob(write.content)
        # Only names of the folder we build on: GitHub refuses to delete an absent path.
        deletes = [f"{self._path}/{segment_name(number)}" for number in plan.deletes]
        folder = self._new_folder(head.folder, plan)
        expected = rebuild_path(self._parts, head.levels, folder)
        answer = self._repo.post_tree(head.tree, texts=texts, blobs=blobs, deletes=deletes)
        levels = self._check_tree(batch, head, answer, expected)
        # Every write this batch sent, its commit and ref update to come included: the
        # cost a process restarting on an empty disk reads back (``_budget.restore``).
        writes = self._repo.writes - self._batch_started + 2
        message = commit_message(
            batch, self._path, skip_ci=self._skip_ci, writer=self._writer_id, writes=writes
        )
        sha = self._repo.create_commit(
            message, answer.sha, [head.commit], author=self._author, committer=self._committer
        )
        ours = Head(sha, answer.sha, folder, levels, self._small_texts(head, plan, folder))
        folder_sha = expected.shas[-1]
        assert folder_sha is not None  # the folder holds the batch's files
        if self._before_update is not None:
            self._before_update(batch, sha, head.commit)
        number = segment_number(list_log(folder).segments[-1].name) or 0
        link = Link(sha, head.commit, answer.sha, self._path, number, folder_sha)
        taken.intend(link)
        try:
            self._update_ref(batch, head, sha, ours)
        finally:
            if self._head is not ours and not self._settling(sha):
                # Refused, or failed in a way this writer will not settle: should the
                # update have landed all the same, nobody may build on it (its batch is
                # sent again), so the turn forgets it.
                taken.intend(None)
        taken.add(link, ours, shared=head_to_json(ours))
        return ours

    def _settling(self, commit: str) -> bool:
        """Will this writer settle whether its update to ``commit``, sent and unanswered,
        landed (``_resolve``)? (A refused one may be on the branch too, but only under a
        commit already built on it: nobody needs to build on it now.)"""
        lost = self._unresolved
        return lost is not None and lost.commit == commit and not lost.refused

    def _update_ref(self, batch: Batch, head: Head, sha: str, ours: Head) -> None:
        """The ref update of a batch: our head is ``ours`` once it landed."""
        try:
            self._repo.update_ref(self.branch, sha)
        except ProtectedBranch as exc:
            raise ProtectedBranch(
                f"branch {self.branch!r} of {self._repo.full_name} is protected and refuses "
                f"gitjsonl's commits ({exc.message.strip()}). Give the log a branch of its "
                "own, e.g. branch='gitjsonl-log' (gitjsonl creates it from the default branch)",
                status=exc.status,
            ) from exc
        except NotFastForward:
            self.conflicts += 1
            # A lost race, or our commit is on the branch all the same (another host built on
            # our pending link): settled before the batch is built again (``_resolve``).
            self._unresolved = _Unresolved(batch, head.commit, sha, ours, refused=True)
            self._head, self._stale = None, head
            raise
        except TransientError as exc:
            if exc.ambiguous:
                self._unresolved = _Unresolved(batch, head.commit, sha, ours)
            raise
        self._head, self._guess = ours, None

    def _new_folder(self, folder: tuple[DirEntry, ...], plan: BatchPlan) -> tuple[DirEntry, ...]:
        """The log folder's entries once ``plan`` is carried out."""
        gone = {segment_name(number) for number in plan.deletes}
        written = {
            write.name: DirEntry(
                write.name,
                f"{self._path}/{write.name}",
                git_blob_sha(write.content),
                len(write.content),
                "file",
                "100644",
            )
            for write in plan.writes
        }
        kept = [e for e in folder if e.name not in gone and e.name not in written]
        return (*kept, *written.values())

    def _small_texts(
        self, head: Head, plan: BatchPlan, folder: tuple[DirEntry, ...]
    ) -> dict[str, bytes]:
        """The bytes the next batch may merge: those of the small files at the folder's end."""
        known = dict(head.texts)
        known.update((git_blob_sha(w.content), w.content) for w in plan.writes)
        listing = list_log(folder)
        run = small_run(listing.files(), self._segment_bytes)
        shas = {entry.sha for entry in listing.segments[len(listing.segments) - len(run) :]}
        return {sha: known[sha] for sha in shas if sha in known}

    def _check_tree(
        self, batch: Batch, head: Head, answer: CreatedTree, expected: PathTrees
    ) -> tuple[tuple[DirEntry, ...] | None, ...]:
        """Is ``answer`` the tree we asked for? The trees above the log folder in it.

        Compared with the root's sha computed locally when every level is known;
        otherwise the answer's own listing (hashed) is followed down the path, a
        level read by sha where its sha is not known, until a computed sha.
        """
        if expected.shas[0] is not None:
            if answer.sha != expected.shas[0]:
                self._mismatch(batch, f"root tree {answer.sha[:12]}, not {expected.shas[0][:12]}")
            return expected.levels[:-1]
        rows, learned = answer.entries, []
        if not answer.truncated and _hash(rows) != answer.sha:
            self._mismatch(batch, f"root tree {answer.sha[:12]}, listed as other entries")
        for index, name in enumerate(self._parts):
            learned.append(rows)
            entry = next((e for e in rows if e.name == name and is_folder(e)), None)
            path = "/".join(self._parts[: index + 1])
            if entry is None:
                self._mismatch(batch, f"no folder {path}")
            want = expected.shas[index + 1]
            if want is not None:
                if entry.sha != want:
                    self._mismatch(
                        batch, f"folder {path} as tree {entry.sha[:12]}, not {want[:12]}"
                    )
                return (*learned, *expected.levels[index + 1 : -1])
            rows = self._repo.tree_entries(entry.sha, path)
            if _hash(rows) != entry.sha:
                self._mismatch(batch, f"folder {path} as tree {entry.sha[:12]}, listed otherwise")
        raise AssertionError("the log folder's sha is always computed")  # pragma: no cover

    def _mismatch(self, batch: Batch, what: str) -> NoReturn:
        """GitHub stored another tree than the batch's: nothing is committed on it."""
        # Build on a fresh read next time, and upload files as blobs (checked by sha).
        if self._inline:
            logger.warning(
                "gitjsonl: GitHub stored %s for batch %s; this log's files now go up as "
                "blobs, each checked by its sha",
                what,
                batch.id,
            )
        self._head, self._reload, self._inline = None, True, False
        raise GitHubError(
            f"GitHub stored {what} for batch {batch.id}: not what was sent. Nothing was "
            "committed on it; the records stay pending"
        )

    def _blob(self, content: bytes) -> str:
        """Upload ``content`` unless this batch already did (a retry after a conflict)."""
        sha = git_blob_sha(content)
        if sha not in self._uploaded:
            created = self._repo.create_blob(content)
            if created != sha:  # GitHub names blobs exactly as git does
                raise ValidationFailed(f"blob uploaded as {created}, expected {sha}")
            self._uploaded.add(sha)
        return sha

    def _resolve(self, lost: _Unresolved) -> str | None:
        """After a lost answer: the sha of the commit holding the batch, or None to build anew.

        Reads of a branch may lag behind writes, so "is it there?" is first
        asked of the one thing that is consistent, the ref update itself: the
        same fast-forward to the same commit is sent again. Success means the
        commit is on the branch now, exactly once (it is one object, whichever
        request moved the branch). A refusal means the branch moved past the
        head we built on; then history is searched from a head *proven* newer
        than that one (``settle_lost_update``), never from a possibly stale read.
        An update that was refused is not sent again, but settled the same way:
        refused, it may be on the branch all the same, under a commit another
        host built on it. A history that has not reached the head we built on
        for longer than reads lag (``_lagging``) no longer holds it (a planted
        link, an operator's reset): the batch is built again on what was read.
        """
        if not lost.refused:
            try:
                with self._spend(1):
                    self._repo.update_ref(self.branch, lost.commit)
            except NotFastForward:
                pass
            else:
                return self._landed(lost, lost.commit, lost.head)
        tip = self._read_head(self.branch)
        if tip == lost.commit:
            return self._landed(lost, tip, lost.head)
        commits = ((info.sha, info.message) for info in self._repo.iter_commits(tip))
        outcome, sha = settle_lost_update(commits, lost.batch.id, base=lost.base)
        if outcome == UNPROVEN and lost.refused and tip == lost.base:
            self._stale_reads += 1
            if self._stale_reads <= STALE_READS_SKIPPED:
                # Refused, so the branch has moved past this commit: a read that still shows
                # it most likely lags. Read again before spending writes on it (a few times:
                # a refusal may also have been spurious); then build on it, never along a
                # link through our commit (were it on the branch, that is refused too).
                raise NotFastForward(
                    f"update refused, and the branch still reads as {tip[:12]} "
                    "(GitHub's reads lag behind writes)",
                    status=422,
                )
        elif outcome == UNPROVEN and self._lagging(f"{lost.commit}:unproven"):
            # A stale read (it does not even reach the head we built on): ask again later.
            raise StaleRead(
                f"cannot tell yet whether batch {lost.batch.id} landed: "
                f"the branch read as {tip[:12]}, not above {lost.base[:12]}"
            )
        # The head is loaded before the verdict is let go: a read that fails here (a 5xx, a
        # limit) leaves the batch unresolved, so the retry settles it again rather than
        # building it anew (found by ./dev sim: a landed batch sent a second time).
        head = self._load_head_at(tip, self._head or self._stale)
        self._unresolved, self._stale_reads = None, 0
        self._head = head
        self._read_at, self._guess, self._stale = tip, None, None
        if outcome == LANDED:
            assert sha is not None
            self.landed_after_error += 1
            return sha
        # Not in the history read: built again on the head read, never along links through
        # our commit (nor through the head we built on, when the history never reached it:
        # should reads have lagged that long, the rebuilt commit is refused, and settled).
        self._refuted.append(lost.commit)
        if outcome == UNPROVEN and tip != lost.base:
            self._refuted.append(lost.base)
        return None

    def _check_repository(self) -> None:
        """Before the first write: refuse a public repository unless allowed (one request)."""
        info = self._repo.repository()
        if not info.private and not self._allow_public:
            raise PublicRepository(
                f"{info.full_name} is public: every record of this log would be published. "
                "Use a private repository, or pass allow_public=True (CLI: --allow-public) "
                "if the log holds nothing personal"
            )
        self._checked = True

    def _landed(self, lost: _Unresolved, sha: str, head: Head | None) -> str:
        loaded = head if head is not None else self._load_head_at(sha, self._head)
        self._unresolved, self._guess, self._stale = None, None, None  # only once loaded
        self.landed_after_error += 1
        self._head = loaded
        return sha

    def settle(self, batch: Batch, *, commit: str, base: str) -> str | None:
        """Did ``batch``, last sent as a ref update to ``commit`` on ``base``, land?

        For a restart: the spool knows the commit a batch's last ref update
        named, but not the answer. Settled exactly as a lost answer in this
        process (``_resolve``), with the usual retries; the sha of the commit
        holding the batch, or None when it did not land (and now never will).
        """
        lost = _Unresolved(batch, base, commit, None)
        retrying = self._policy.retrying(sleep=self._sleep, rng=self._rng)
        try:
            result: str | None = retrying(self._resolve, lost)
        finally:
            self._unresolved = None
        return result

    # -- reading the head --------------------------------------------------------

    def _load_head(self, previous: Head | None) -> Head:
        """Read the branch's head; the small files' bytes only if they changed."""
        return self._load_head_at(self._branch_head(), previous)

    def _load_head_at(self, commit: str, previous: Head | None) -> Head:
        """The head at ``commit``: the trees along the path, the log folder, and the bytes
        of its small files (those ``previous`` knows are not read again)."""
        folder = self._repo.read_folder(commit, self._path)
        entries = tuple(folder.entries or ())
        levels: tuple[tuple[DirEntry, ...] | None, ...] = folder.levels
        if len(levels) != len(self._parts):  # a file where a folder of the path should be
            levels = (None,) * len(self._parts)
        warn_ignored(self._path, list_log(entries).ignored)
        texts = self._texts(entries, previous.texts if previous is not None else {})
        return Head(commit, folder.root_tree, entries, levels, texts)

    def _texts(self, folder: tuple[DirEntry, ...], known: Mapping[str, bytes]) -> dict[str, bytes]:
        """The bytes of the small files at ``folder``'s end (a batch may merge them): from
        ``known``, else read by sha."""
        listing = list_log(folder)
        run = small_run(listing.files(), self._segment_bytes)
        return {
            entry.sha: known.get(entry.sha) or read_blob(self._repo, entry)
            for entry in listing.segments[len(listing.segments) - len(run) :]
        }

    def _branch_head(self) -> str:
        """The branch's head; the repository's first commit or the branch made if missing.

        Right after a commit or a branch is made, reads of the branch may still
        miss it (GitHub's reads lag writes): what we made ourselves is taken from
        the answer that made it, never read back.
        """
        branch = self.branch  # a 404 here is the repository's, not the branch's
        try:
            return self._repo.get_head(branch)
        except EmptyRepository:
            return self._bootstrap_empty_repository()
        except NotFound:
            return self._create_branch()

    def _bootstrap_empty_repository(self) -> str:
        """The Git Data API refuses an empty repository; a Contents PUT makes its first commit."""
        message = f"gitjsonl: start log {self._path}"
        if self._skip_ci:
            message += " [skip ci]"
        first: str | None
        try:
            with self._spend(1):
                first = self._repo.put_file(
                    f"{self._path}/README.md", message, LOG_README.encode(), branch=None
                )
        except (ValidationFailed, ContentsConflict):
            logger.info("gitjsonl: another writer initialised the repository first")
            first = None
        # GitHub names the first branch itself; make ours if it is another.
        default = self._repo.default_branch()
        if first is None:
            first = self._read_head(default)
        if default != self.branch:
            return self._create_branch(default, at=first)
        return first

    def _create_branch(self, source: str | None = None, *, at: str | None = None) -> str:
        """Make the branch at ``source``'s head (or ``at``); the commit it points at."""
        source = source or self._repo.default_branch()
        if source == self.branch:
            # The default branch of a repository with commits exists: this read lags.
            raise _lagging(self.branch)
        sha = at or self._read_head(source)
        try:
            with self._spend(1):
                self._repo.create_ref(self.branch, sha)
        except ValidationFailed:
            logger.info("gitjsonl: branch %s was created by another writer", self.branch)
            return self._read_head(self.branch)
        return sha

    def _read_head(self, branch: str) -> str:
        """A branch known to exist; a 404 means the read lags, and is retried."""
        try:
            return self._repo.get_head(branch)
        except NotFound as exc:
            raise _lagging(branch) from exc


def with_pending(chain: Sequence[Link], pending: Link | None) -> tuple[Link, ...]:
    """The chain a writer catches up along: with the turn's pending link at its end when
    that ref update was sent on the chain's tip (an empty chain: on whatever it names).

    The update may have landed without its writer saying so (its answer lost, or the
    writer killed before it left the link): a writer at the tip builds on it. The guess
    is proven like any link (the writer's own head must be its base, or in the chain
    below it), and a wrong one costs one refused update, never a duplicate: a commit on
    the pending one is a fast-forward only while the branch is at the pending one or at
    its base, and then it carries the pending batch, once (a writer leaves its update
    pending only while it, or a restart from its spool, settles that same commit, which
    finds the batch under ours). A pending link sent on an older commit says nothing:
    the chain has moved on past it, so it can never land.
    """
    links = tuple(chain)
    if pending is None or any(link.commit == pending.commit for link in links):
        return links
    if links and links[-1].commit != pending.base:
        return links
    return (*links, pending)


def _shared(path: str, parts: tuple[str, ...]) -> int:
    """How many leading folders ``path`` shares with ``parts``."""
    theirs = [part for part in path.split("/") if part]
    shared = 0
    while shared < min(len(theirs), len(parts)) and theirs[shared] == parts[shared]:
        shared += 1
    return shared


def _hash(entries: tuple[DirEntry, ...]) -> str | None:
    """The sha git gives a tree of ``entries``; None when git could not hold them."""
    try:
        return tree_sha(entries)
    except ValueError:
        return None


#: Pages of commits a restore reads at most (the newest 200 commits: GitHub's hour
#: lets through about 166 batches of 3 writes).
RESTORE_PAGES = 2

#: After a refused update, reads still showing the head it was built on are retried this
#: many times before the batch is built on that head anyway.
STALE_READS_SKIPPED = 3

#: Reads of a branch at a head below the turn's links that are taken for lag (each after a
#: retry's wait), and the seconds of waiting they must span (GitHub's reads lag by up to
#: about 1 s): past both, the links are taken as undone (an operator reset the branch) and
#: what the read shows is built on.
LAGGING_READS = 8
READ_LAG = 3.0

#: Commits whose links the branch contradicted, remembered so as never to follow them again.
REFUTED_KEPT = 64


def _lagging(branch: str) -> StaleRead:
    return StaleRead(
        f"branch {branch!r} exists but reads as missing (GitHub's reads lag behind writes)"
    )
