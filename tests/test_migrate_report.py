"""gitjsonl._migrate.report: the report ``gitjsonl migrate`` prints."""

from __future__ import annotations

from gitjsonl._migrate.history import recover_history
from gitjsonl._migrate.plan import plan_migration, scan_lines
from gitjsonl._migrate.report import format_recovery, format_report, format_scan
from tests.test_migrate_history import history, line


class TestReports:
    def test_dry_run_report(self) -> None:
        """A dry run names source, destination and segment span, and says nothing was written."""
        plan = plan_migration(b"aa\nbb\ncc", segment_bytes=3)
        text = format_report(
            plan, source="data/interactions.jsonl", destination="data/interactions", dry_run=True
        )
        assert text.splitlines()[0] == (
            "Dry run: would migrate data/interactions.jsonl -> data/interactions"
        )
        assert "3 segment(s) of at most 3 bytes, 3 lines" in text
        assert "data/interactions/00000001.jsonl .. 00000003.jsonl" in text
        assert "newline was added" in text
        assert "line 3: torn last line (no newline)" in text
        assert text.endswith("Nothing was written.")

    def test_recovery_lists_each_overwrite(self) -> None:
        """The history section gives commit, date, lost and recovered counts per overwrite."""
        a, b, x = line({"a": 1}), line({"b": 2}), line({"x": 9})
        recovery = recover_history(history(a, a + b, None, x))
        text = format_recovery(recovery)
        assert "1 overwrite(s); 2 record(s) recovered, 3 records in all" in text
        assert "c3 2024-05-01T00:00:03Z: 2 lost, 2 recovered (file deleted at c2)" in text

    def test_recovery_without_overwrites(self) -> None:
        """A clean history says so in one line."""
        assert format_recovery(recover_history(history(b"{}\n"))) == (
            "History: no overwrites; 1 records."
        )

    def test_problems_are_capped(self) -> None:
        """Only the first problems are listed, then how many more there are."""
        text = format_scan(scan_lines(b"x\n" * 30), limit=5)
        assert text.count("not JSON") == 5
        assert text.endswith("... and 25 more")

    def test_clean_scan(self) -> None:
        """A clean scan is summarised in one line."""
        assert format_scan(scan_lines(b"{}\n{}\n")) == "All 2 lines are JSON objects."

    def test_verification_outcomes(self) -> None:
        """After the commit the report ends with the verification's verdict."""
        plan = plan_migration(b"{}\n", segment_bytes=10)
        ok = format_report(plan, source="s", destination="d", discrepancies=[])
        assert ok.endswith("Verified: 1 lines read back, SHA-256 matches.")
        bad = format_report(plan, source="s", destination="d", discrepancies=["line count: x"])
        assert bad.endswith("Verification FAILED:\n  line count: x")
        assert "Nothing was written" not in bad
