"""``gitjsonl migrate``: the I/O around the pure planning (``plan``, ``history``, ``report``).

One attempt reads the branch (head, source entry, destination folder, the
manifest if any), reads the source through the blob API (so any size up to
GitHub's 100 MB works), optionally walks the source's history, plans, and
writes every segment and the manifest in ONE commit: blobs, one tree on the
head's tree, one commit, a fast-forward ref update. A conflict re-runs the
attempt from the top (re-read, re-plan); blobs already uploaded are reused.

The commit itself is not made here: the prepared change (its blobs uploaded,
its files mapped) goes through the write protocol every ``Log`` uses
(``_protocol.CommitProtocol.commit_change``, driven by a ``Committer``): in
the branch's turn, taken with the ``Log``s of the host (and, with a
coordinator, of every host), on the newest commit they left there rather than
the head read (``turn.migration_base``), its writes reserved from the budget
(the turn left to wait for it), its link pending while the ref update is out
and left in the turn for the ``Log``s to build on once it landed.

Every write is paid for from the token's write budget when one is given
(``budget=``; the CLI shares the host's, like every ``Log`` on the token): a
migration of a 100 MB log uploads a hundred blobs, more than GitHub allows in
a minute.

The manifest (``_segments.MANIFEST_NAME``) in the destination makes the
migration idempotent and safe to retry after a lost answer: an attempt that
finds a manifest for the same source blob stops ("already migrated"), or, when
the manifest names this run's batch id, goes straight to verification (our
commit landed although its answer was lost).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gitjsonl._batch import new_batch_id
from gitjsonl._budget import Budget
from gitjsonl._chain import Link
from gitjsonl._commit import Committer
from gitjsonl._config import DEFAULT_SEGMENT_BYTES
from gitjsonl._exceptions import MigrationError
from gitjsonl._github import DirEntry, GitHubRepo
from gitjsonl._protocol import Change, Replan
from gitjsonl._reader import find_file
from gitjsonl._retry import RetryPolicy
from gitjsonl._segments import MANIFEST_NAME, list_log
from gitjsonl._turn import BranchTurns

from .clone import CloneHistory
from .history import RecoveredHistory
from .plan import MigrationPlan, Renumbering, plan_migration, renumber_existing, verify_migration
from .report import format_result
from .sources import ApiHistory, Checkpoints, History, PrimaryPacer, walk_history
from .turn import destination_link, migration_base

__all__ = ["MANIFEST_FORMAT", "MigrationResult", "migrate"]

MANIFEST_FORMAT = 1

#: Times one attempt plans again at a newer commit the turn names, before it commits as
#: without turns (a writer of the destination or source keeps moving it meanwhile).
REPLANS = 3

#: Called with a one-line status while a migration reads, uploads and verifies.
OnProgress = Callable[[str], None]

T = TypeVar("T")


@dataclass(frozen=True)
class MigrationResult:
    """What ``migrate`` did; ``report()`` is what the CLI prints."""

    source: str
    destination: str
    branch: str
    plan: MigrationPlan | None  # None when the destination was already migrated
    recovery: RecoveredHistory | None = None
    discrepancies: list[str] | None = None  # None: not verified (dry run, no-op)
    commit: str | None = None
    dry_run: bool = False
    removed_source: bool = False
    shifted_segments: int = 0  # existing segments renumbered after the migrated ones (--force)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def already_migrated(self) -> bool:
        return self.plan is None

    @property
    def ok(self) -> bool:
        """False only when the read-back verification found a discrepancy."""
        return not self.discrepancies

    def report(self) -> str:
        """What the CLI prints: the plan, the history, problems, and the verification."""
        return format_result(self)


def migrate(
    repo: GitHubRepo,
    *,
    source: str,
    destination: str,
    branch: str | None = None,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    dry_run: bool = False,
    remove_source: bool = False,
    recover: bool = False,
    force: bool = False,
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, shared safely
    sleep: Callable[[float], None] = time.sleep,
    progress: OnProgress | None = None,
    budget: Budget | None = None,
    from_clone: str | os.PathLike[str] | None = None,
    progress_dir: Path | None = None,
    pacer: PrimaryPacer | None = None,
    turns: BranchTurns | None = None,
) -> MigrationResult:
    """Move the single-file log ``source`` into segments under ``destination``, in one commit.

    With ``recover``, the source's history is read from the clone ``from_clone``
    when given (no API request for it), else through the API, paced against
    the primary rate limit (``pacer``); the walk is saved in ``progress_dir``
    now and then, and a run stopped half-way goes on where it stopped.

    With ``turns`` (the CLI's: the host's, and the coordinator's when given),
    the commit takes the branch's turn with the ``Log``s writing it, and builds
    on the newest commit they left there (``turn``).

    Raises ``MigrationError`` when the source is missing, the destination holds
    segments of its own (unless ``force``: they are renumbered to follow the
    migrated ones), or the source changed since an earlier migration.
    """
    source = source.strip("/")
    destination = destination.strip("/")
    if not source or not destination or source == destination:
        raise MigrationError("--from and --to must be two different paths in the repository")
    if segment_bytes < 1:
        raise MigrationError(f"segment size must be at least 1 byte, not {segment_bytes}")
    branch = branch or repo.default_branch()
    run = _Migration(
        repo,
        source=source,
        destination=destination,
        branch=branch,
        segment_bytes=segment_bytes,
        dry_run=dry_run,
        remove_source=remove_source,
        recover=recover,
        force=force,
        progress=progress or (lambda _message: None),
        pay=_payer(budget, sleep),
        from_clone=from_clone,
        progress_dir=progress_dir,
        pacer=pacer or PrimaryPacer(repo.rate_limit, sleep=sleep),
        committer=Committer(
            repo,
            path=destination,
            branch=branch,
            segment_bytes=segment_bytes,
            policy=policy,
            budget=budget,
            sleep=sleep,
            writer_id="migrate",
            turns=turns,
        ),
    )
    result: MigrationResult = policy.retrying(sleep=sleep)(run.attempt)
    run.forget_progress()
    return result


def _payer(budget: Budget | None, sleep: Callable[[float], None]) -> Callable[[Callable[[], T]], T]:
    """Send one write, paid for from ``budget`` (waiting for room) when there is one."""

    def pay(write: Callable[[], T]) -> T:
        with budget.spend(1, sleep) if budget is not None else contextlib.nullcontext():
            return write()

    return pay


@dataclass(frozen=True, slots=True)
class _Ready:
    """A migration planned on a head, its blobs uploaded: what its commit's tree sets."""

    plan: MigrationPlan
    recovery: RecoveredHistory | None
    renumbering: Renumbering  # the existing segments, put after the migrated ones
    files: dict[str, str | None]  # path -> blob sha (None: deleted)
    folder: tuple[DirEntry, ...]  # the destination's entries on that head


class _Migration:
    """One migration run; ``attempt`` may be called again after a conflict."""

    def __init__(
        self,
        repo: GitHubRepo,
        *,
        source: str,
        destination: str,
        branch: str,
        segment_bytes: int,
        dry_run: bool,
        remove_source: bool,
        recover: bool,
        force: bool,
        progress: OnProgress,
        pay: Callable[[Callable[[], Any]], Any],
        from_clone: str | os.PathLike[str] | None = None,
        progress_dir: Path | None = None,
        committer: Committer,
        pacer: PrimaryPacer | None = None,
    ) -> None:
        self.repo = repo
        self.source = source
        self.destination = destination
        self.branch = branch
        self.segment_bytes = segment_bytes
        self.dry_run = dry_run
        self.remove_source = remove_source
        self.recover = recover
        self.force = force
        self.progress = progress
        self.pay = pay
        self.from_clone = from_clone
        self.progress_dir = progress_dir
        self.pacer = pacer or PrimaryPacer(repo.rate_limit)
        self.committer = committer  # the write protocol's driver, for the one commit
        self._checkpoints: list[Checkpoints] = []
        self.batch_id = new_batch_id()
        self._writes_from = repo.writes  # what the commit's trailer says it cost counts from here
        # Survive a retry: blobs are content-addressed, and a source blob's
        # history cannot change without its sha changing.
        self._uploaded: dict[str, str] = {}  # sha256 of content -> blob sha
        self._content: dict[str, tuple[bytes, RecoveredHistory | None]] = {}  # by source blob sha
        self._planned: tuple[MigrationPlan, RecoveredHistory | None, Renumbering] | None = None

    def attempt(self) -> MigrationResult:
        """Read the branch, plan, commit; plan again at a newer commit the turn names
        (at most ``REPLANS`` times, then as without turns: the ref update decides)."""
        head = self.repo.get_head(self.branch)
        replans = 0
        while True:
            ready = self._prepare(head)
            if isinstance(ready, MigrationResult):
                return ready
            landed = self._commit(ready, head, use_chain=replans < REPLANS)
            if isinstance(landed, str):
                return self._verify(ready.plan, ready.recovery, ready.renumbering, landed)
            head, replans = landed.commit, replans + 1

    def _prepare(self, head: str) -> MigrationResult | _Ready:
        """What the commit on ``head`` holds (its blobs uploaded), or the result when there
        is nothing to commit (migrated already, a lost answer's commit landed, a dry run)."""
        source = find_file(self.repo, self.source, head)
        listing = self.repo.list_dir(self.destination, ref=head) or []
        existing = {e.name: e for e in listing if e.type == "file"}
        manifest = self._read_manifest(existing.get(MANIFEST_NAME))
        if manifest is not None:
            if manifest.get("batch") == self.batch_id and self._planned is not None:
                # Our own commit landed even though its answer was lost; others may have
                # written since, so only the migrated segments are checked at the head.
                return self._verify(*self._planned, head, ours=False)
            if source is None or manifest.get("source_sha") == source.sha:
                return self._result(plan=None, manifest=manifest)
            raise MigrationError(
                f"{self.destination} already holds a migration of {manifest.get('source')} "
                f"(blob {manifest.get('source_sha')}), but {self.source} has changed since "
                f"(blob {source.sha}); refusing to migrate it twice"
            )
        if source is None:
            raise MigrationError(f"{self.source} does not exist on branch {self.branch}")
        layout = list_log(listing)
        if layout.segments and not self.force:
            raise MigrationError(
                f"{self.destination} already holds {len(layout.segments)} segment(s) that no "
                "migration wrote; pass --force to put the migrated records ahead of them"
            )
        content, recovery = self._source_content(source, head)
        plan = plan_migration(content, segment_bytes=self.segment_bytes, reserved=layout.reserved)
        renumbering = renumber_existing(layout, plan)
        self._planned = (plan, recovery, renumbering)
        if self.dry_run:
            return self._result(plan=plan, recovery=recovery, shifted=renumbering.renumbered)

        files: dict[str, str | None] = {}
        for index, (name, data) in enumerate(plan.segments, start=1):
            self.progress(f"uploading segment {index}/{len(plan.segments)}")
            files[f"{self.destination}/{name}"] = self._upload(data)
        for name, sha in renumbering.tree().items():
            files[f"{self.destination}/{name}"] = sha
        record = self._manifest(plan, source, recovery)
        files[f"{self.destination}/{MANIFEST_NAME}"] = self._upload(
            json.dumps(record, indent=2).encode() + b"\n"
        )
        if self.remove_source:
            files[self.source] = None
        return _Ready(plan, recovery, renumbering, files, tuple(listing))

    def _commit(self, ready: _Ready, head: str, *, use_chain: bool) -> str | Replan:
        """The commit of ``ready``, through the write protocol (``commit_change``): in the
        branch's turn, on the newest commit it names (``migration_base``); the commit that
        landed, or the newer one to plan at again."""
        self.progress("committing")
        destination, source = self.destination, self.source

        def where(chain: tuple[Link, ...]) -> tuple[str, str | None] | Replan:
            if not use_chain:
                return head, None
            base = migration_base(chain, head, destination=destination, source=source)
            return Replan(base.commit) if base.replan else (base.commit, base.tree)

        def link(commit: str, base: str, tree: str) -> Link | None:
            return destination_link(
                commit=commit,
                base=base,
                tree=tree,
                destination=destination,
                folder=ready.folder,
                files=ready.files,
            )

        change = Change(
            batch=self.batch_id,
            planned_at=head,
            files=ready.files,
            title=(
                f"gitjsonl: migrate {self.source} into {len(ready.plan.segments)} segment(s) "
                f"under {self.destination}"
            ),
            lines=ready.plan.line_count,
            # Every write of the migration, its commit's included: what a Log restarting on
            # an empty disk counts for it (``_budget.Budget.restore``).
            writes_before=self.repo.writes - self._writes_from,
            base=where,
            link=link,
        )
        return self.committer.commit_change(change)

    # -- reading -------------------------------------------------------------

    def _read_manifest(self, entry: DirEntry | None) -> dict[str, Any] | None:
        if entry is None:
            return None
        try:
            manifest = json.loads(self.repo.get_blob(entry.sha))
        except ValueError as exc:
            raise MigrationError(f"{entry.path} is not valid JSON: {exc}") from exc
        if not isinstance(manifest, dict):
            raise MigrationError(f"{entry.path} is not a JSON object")
        return manifest

    def _source_content(self, source: DirEntry, head: str) -> tuple[bytes, RecoveredHistory | None]:
        cached = self._content.get(source.sha)
        if cached is not None:
            return cached
        if self.recover:
            recovery = self._recover(head, source)
            found: tuple[bytes, RecoveredHistory | None] = (recovery.content, recovery)
        else:
            self.progress(f"reading {self.source} ({source.size:,} bytes)")
            found = (self.repo.get_blob(source.sha), None)
        self._content[source.sha] = found
        return found

    def _recover(self, head: str, source: DirEntry) -> RecoveredHistory:
        """Every record the source ever held, from a clone or the API, resuming a saved walk.

        The walk must end on the blob GitHub has at ``head``, or nothing is committed: a
        history that ends elsewhere is not this file's (a forged or incomplete clone).
        """
        history: History
        if self.from_clone is not None:
            history = CloneHistory(self.from_clone, self.source, head)
        else:
            history = ApiHistory(self.repo, self.source, head, self.pacer)
        key = (self.repo.api_url, self.repo.full_name.lower(), self.branch, self.source, head)
        checkpoints = Checkpoints(self.progress_dir, key)
        self._checkpoints.append(checkpoints)
        walk = walk_history(history, checkpoints, self.progress)
        if walk.last_blob != source.sha:
            checkpoints.remove()  # a walk that cannot be this file's is not worth resuming
            raise MigrationError(
                f"the history read ends on blob {walk.last_blob or '(file deleted)'}, but "
                f"{self.source} is blob {source.sha} on GitHub at {head[:12]}: refusing to "
                "commit a recovery of some other file"
            )
        return walk.finish()

    def forget_progress(self) -> None:
        """The migration is done (or planned, for a dry run): its saved walks are not needed."""
        for checkpoints in self._checkpoints:
            checkpoints.remove()

    # -- writing -------------------------------------------------------------

    def _upload(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        if key not in self._uploaded:
            self._uploaded[key] = self.pay(lambda: self.repo.create_blob(data))
        return self._uploaded[key]

    def _manifest(
        self, plan: MigrationPlan, source: DirEntry, recovery: RecoveredHistory | None
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "source": self.source,
            "source_sha": source.sha,
            "source_bytes": source.size,
            "lines": plan.line_count,
            "bytes": plan.byte_count,
            "sha256": plan.sha256,
            "segments": [name for name, _ in plan.segments],
            "segment_bytes": self.segment_bytes,
            "batch": self.batch_id,
            "source_removed": self.remove_source,
        }
        if recovery is not None:
            record["recovered_records"] = recovery.records_recovered
            record["overwrites"] = [
                {"commit": o.commit, "date": o.date, "records_recovered": o.records_recovered}
                for o in recovery.overwrites
            ]
        return record

    # -- checking ------------------------------------------------------------

    def _verify(
        self,
        plan: MigrationPlan,
        recovery: RecoveredHistory | None,
        renumbering: Renumbering,
        commit: str,
        *,
        ours: bool = True,
    ) -> MigrationResult:
        """Read the migrated segments back; at the migration's own commit (``ours``), also check
        every existing segment landed where the renumbering put it and none else is left."""
        listing = self.repo.list_dir(self.destination, ref=commit) or []
        entries = {e.name: e for e in listing}
        read_back: list[bytes] = []
        for index, (name, _) in enumerate(plan.segments, start=1):
            self.progress(f"verifying segment {index}/{len(plan.segments)}")
            entry = entries.get(name)
            if entry is not None:
                read_back.append(self.repo.get_blob(entry.sha))
        discrepancies = verify_migration(plan, read_back)
        if ours:
            discrepancies += renumbering.check({e.name: e.sha for e in list_log(listing).segments})
        return self._result(
            plan=plan,
            recovery=recovery,
            discrepancies=discrepancies,
            commit=commit,
            shifted=renumbering.renumbered,
        )

    def _result(
        self,
        *,
        plan: MigrationPlan | None,
        recovery: RecoveredHistory | None = None,
        discrepancies: list[str] | None = None,
        commit: str | None = None,
        manifest: dict[str, Any] | None = None,
        shifted: int = 0,
    ) -> MigrationResult:
        return MigrationResult(
            source=self.source,
            destination=self.destination,
            branch=self.branch,
            plan=plan,
            recovery=recovery,
            discrepancies=discrepancies,
            commit=commit,
            dry_run=self.dry_run,
            removed_source=self.remove_source and commit is not None,
            shifted_segments=shifted,
            manifest=manifest or {},
        )
