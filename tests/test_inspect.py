"""What stats and verify conclude from one read of a log, without a server."""

from __future__ import annotations

from gitjsonl._batch import trailer
from gitjsonl._github import CommitInfo, DirEntry
from gitjsonl._inspect import (
    Inspection,
    count_records,
    files_of,
    find_problems,
    stats_figures,
    total_records,
    verify_json,
)


def entry(name: str, path: str = "data/log") -> DirEntry:
    return DirEntry(name=name, path=f"{path}/{name}", sha="0" * 40, size=0, type="file")


def commit(
    sha: str, message: str = "x", parents: tuple[str, ...] = ("p",), date: str = ""
) -> CommitInfo:
    return CommitInfo(sha=sha * 40, tree_sha="t" * 40, message=message, parents=parents, date=date)


def inspection(
    segments: list[tuple[DirEntry, bytes]],
    commits: list[CommitInfo] | None = None,
    legacy: tuple[DirEntry, bytes] | None = None,
) -> Inspection:
    return Inspection("main", "h" * 40, segments, legacy, False, commits or [])


class TestFindProblems:
    def test_clean_log_has_no_problems(self) -> None:
        """Parsing lines, segments under the cap and a linear history: nothing to report."""
        found = inspection([(entry("00000001.jsonl"), b'{"a":1}\n{"a":2}\n')], [commit("a")])
        assert find_problems(found, 1024) == []

    def test_corrupt_and_torn_lines_are_reported_with_their_place(self) -> None:
        """A non-JSON line and a missing final newline each name file and line."""
        found = inspection([(entry("00000001.jsonl"), b'{"a":1}\nnope\n{"a":')])
        problems = find_problems(found, 1024)
        assert any("00000001.jsonl:2: corrupt line" in p for p in problems)
        assert any("torn last line" in p for p in problems)

    def test_nan_line_is_reported(self) -> None:
        """A line holding NaN, which append refuses to write, is a corrupt line for verify."""
        found = inspection([(entry("00000001.jsonl"), b'{"a":1}\n{"x":NaN}\n')])
        assert find_problems(found, 1024) == [
            "data/log/00000001.jsonl:2: corrupt line: not JSON (NaN is not JSON)"
        ]

    def test_oversized_segment_is_reported_unless_it_is_one_record(self) -> None:
        """Over the cap with several lines is a problem; one big record alone is allowed."""
        many = b'{"a":1}\n' * 10
        one = b'{"a":"' + b"x" * 100 + b'"}\n'
        found = inspection([(entry("00000001.jsonl"), many), (entry("00000002.jsonl"), one)])
        problems = find_problems(found, 50)
        assert len(problems) == 1
        assert "00000001.jsonl" in problems[0]

    def test_duplicate_batch_ids_and_merges_are_reported(self) -> None:
        """The same batch id twice, and a merge commit, break exactly-once and linearity."""
        message = "append\n\nGitjsonl-Batch: abc\n"
        commits = [commit("b", message), commit("m", "merge", ("p", "q")), commit("a", message)]
        problems = find_problems(inspection([], commits), 1024)
        assert any("duplicate batch abc" in p for p in problems)
        assert any("merge commit" in p for p in problems)


class TestStatsFigures:
    def test_figures_of_a_log_with_a_legacy_file(self) -> None:
        """Segments, records, bytes, batches and writers are counted; the legacy file included."""
        batch = "append\n\nGitjsonl-Batch: {}\nGitjsonl-Writer: {}\n"
        commits = [
            commit("c", batch.format("b3", "w2"), date="2024-05-03"),
            commit("b", batch.format("b2", "w1"), date="2024-05-02"),
            commit("a", "by hand", date="2024-05-01"),
        ]
        legacy = (entry("log.jsonl", "data"), b'{"old":1}\nbad\n')
        segments = [
            (entry("00000001.jsonl"), b'{"a":1}\n'),
            (entry("00000002.jsonl"), b'{"b":2}\n'),
        ]
        figures = stats_figures(
            inspection(segments, commits, legacy), repo="owner/repo", path="data/log"
        )
        assert figures == {
            "repo": "owner/repo",
            "branch": "main",
            "path": "data/log",
            "head": "h" * 40,
            "segments": 2,
            "first_segment": "00000001.jsonl",
            "last_segment": "00000002.jsonl",
            "records": 3,
            "bytes": len(b'{"old":1}\nbad\n{"a":1}\n{"b":2}\n'),
            "legacy_file": "data/log.jsonl",
            "migrated": False,
            "commits": 3,
            "batches": 2,
            "writers": 2,
            "first_commit": {"sha": "a" * 40, "date": "2024-05-01"},
            "last_commit": {"sha": "c" * 40, "date": "2024-05-03"},
        }

    def test_figures_of_an_empty_log(self) -> None:
        """A log without segments or commits has zero counts and no first or last anything."""
        figures = stats_figures(inspection([]), repo="o/r", path="data/log")
        assert figures["segments"] == figures["records"] == figures["commits"] == 0
        assert figures["first_segment"] is figures["last_commit"] is None


class TestVerifyJson:
    def test_the_document_verify_json_prints(self) -> None:
        """The figures, ok and the problems, as verify --json documents them."""
        found = inspection([(entry("00000001.jsonl"), b'{"a":1}\nnope\n')], [commit("a")])
        problems = find_problems(found, 1024)
        document = verify_json(found, problems, repo="o/r", path="data/log")
        assert document == {
            "repo": "o/r",
            "path": "data/log",
            "branch": "main",
            "head": "h" * 40,
            "ok": False,
            "records": 1,
            "segments": 1,
            "commits": 1,
            "problems": problems,
        }
        assert verify_json(found, [], repo="o/r", path="data/log")["ok"] is True


class TestHelpers:
    def test_legacy_file_comes_first(self) -> None:
        """The unmigrated single file is the oldest part of the log."""
        legacy = (entry("log.jsonl", "data"), b'{"old":1}\n')
        seg = (entry("00000001.jsonl"), b'{"new":1}\n')
        assert [e.name for e, _ in files_of(inspection([seg], legacy=legacy))] == [
            "log.jsonl",
            "00000001.jsonl",
        ]

    def test_total_records_counts_every_file(self) -> None:
        """The legacy file's records count with the segments'; corrupt lines do not."""
        legacy = (entry("log.jsonl", "data"), b'{"old":1}\n{"x":NaN}\n')
        seg = (entry("00000001.jsonl"), b'{"new":1}\n')
        assert total_records(inspection([seg], legacy=legacy)) == 2

    def test_count_records_skips_corrupt_lines(self) -> None:
        """Only lines that parse as objects count as records."""
        assert count_records(b'{"a":1}\n[1]\nbad\n\n{"b":2}\n') == 2

    def test_trailer_reads_a_named_value(self) -> None:
        """Trailers are read by name; a missing or empty one is None."""
        message = "subject\n\nGitjsonl-Writer: w1\nGitjsonl-Records: \n"
        assert trailer(message, "Gitjsonl-Writer") == "w1"
        assert trailer(message, "Gitjsonl-Records") is None
        assert trailer(message, "Other") is None
