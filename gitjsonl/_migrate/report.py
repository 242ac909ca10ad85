"""The report ``gitjsonl migrate`` prints: plan, history, problems, verification.

Pure: plain values in, text out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitjsonl._segments import MANIFEST_NAME

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .history import RecoveredHistory
    from .plan import MigrationPlan, ScanReport
    from .run import MigrationResult

__all__ = ["format_plan", "format_recovery", "format_report", "format_result", "format_scan"]


def format_scan(scan: ScanReport, *, limit: int = 20) -> str:
    """Describe the scan's problems, at most ``limit`` of them, one per line."""
    if scan.ok:
        return f"All {scan.line_count} lines are JSON objects."
    lines = [f"{len(scan.problems)} problem(s) in {scan.line_count} lines (kept in place):"]
    lines += [f"  line {p.line_number}: {p.reason}" for p in scan.problems[:limit]]
    if len(scan.problems) > limit:
        lines.append(f"  ... and {len(scan.problems) - limit} more")
    return "\n".join(lines)


def format_recovery(recovery: RecoveredHistory) -> str:
    """Describe each overwrite found in the history and what recovery restores."""
    if not recovery.overwrites:
        return f"History: no overwrites; {len(recovery.lines)} records."
    lines = [
        f"History: {len(recovery.overwrites)} overwrite(s); "
        f"{recovery.records_recovered} record(s) recovered, "
        f"{len(recovery.lines)} records in all:"
    ]
    for o in recovery.overwrites:
        note = f" (file deleted at {o.deleted_at})" if o.deleted_at else ""
        lines.append(
            f"  {o.commit} {o.date}: {o.records_lost} lost, {o.records_recovered} recovered{note}"
        )
    return "\n".join(lines)


def format_plan(plan: MigrationPlan, *, destination: str = "") -> str:
    """Describe the segments a migration writes, with its line count and hash."""
    prefix = f"{destination.rstrip('/')}/" if destination else ""
    lines = [
        f"{len(plan.segments)} segment(s) of at most {plan.segment_bytes} bytes, "
        f"{plan.line_count} lines, {plan.byte_count} bytes, sha256 {plan.sha256}"
    ]
    if plan.segments:
        first, last = plan.segments[0][0], plan.segments[-1][0]
        span = first if first == last else f"{first} .. {last}"
        lines.append(f"  {prefix}{span}")
    if plan.normalised:
        lines.append("  a newline was added after the torn last line")
    if plan.oversized:
        lines.append(
            f"  {len(plan.oversized)} segment(s) over the cap, each a single longer line: "
            + ", ".join(plan.oversized)
        )
    return "\n".join(lines)


def format_report(
    plan: MigrationPlan,
    *,
    source: str,
    destination: str,
    recovery: RecoveredHistory | None = None,
    discrepancies: Sequence[str] | None = None,
    dry_run: bool = False,
    problem_limit: int = 20,
) -> str:
    """The migration report the CLI prints: plan, history, problems, verification.

    ``discrepancies`` is :func:`verify_migration`'s answer, or ``None`` before (or
    instead of, with ``dry_run``) the commit.
    """
    verb = "Dry run: would migrate" if dry_run else "Migrating"
    parts = [f"{verb} {source} -> {destination}", format_plan(plan, destination=destination)]
    if recovery is not None:
        parts.append(format_recovery(recovery))
    parts.append(format_scan(plan.scan, limit=problem_limit))
    if discrepancies is not None:
        if discrepancies:
            parts.append("Verification FAILED:\n" + "\n".join(f"  {d}" for d in discrepancies))
        else:
            parts.append(f"Verified: {plan.line_count} lines read back, SHA-256 matches.")
    elif dry_run:
        parts.append("Nothing was written.")
    return "\n".join(parts)


def format_result(result: MigrationResult) -> str:
    """What ``gitjsonl migrate`` prints once a run is over (or was a dry run, or a no-op)."""
    if result.plan is None:
        manifest = result.manifest
        return (
            f"Already migrated: {result.destination}/{MANIFEST_NAME} records {result.source} "
            f"at blob {manifest.get('source_sha')} "
            f"({manifest.get('lines')} lines, batch {manifest.get('batch')}). "
            "Nothing to do."
        )
    text = format_report(
        result.plan,
        source=result.source,
        destination=result.destination,
        recovery=result.recovery,
        discrepancies=result.discrepancies,
        dry_run=result.dry_run,
    )
    extra: list[str] = []
    if result.shifted_segments:
        verb = "would be renumbered" if result.dry_run else "renumbered"
        extra.append(
            f"{result.shifted_segments} existing segment(s) {verb} to follow the migrated ones."
        )
    if result.commit is not None:
        extra.append(f"Committed {result.commit} on {result.branch}.")
        if result.removed_source:
            extra.append(f"{result.source} was removed in the same commit.")
    return "\n".join([text, *extra])
