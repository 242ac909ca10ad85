"""Batch identity: ids, commit messages and trailers, and finding a batch that landed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gitjsonl._batch import (
    BATCH_TRAILER,
    RECORDS_TRAILER,
    WRITER_TRAILER,
    Batch,
    batch_id_of,
    commit_message,
    find_landed,
    new_batch_id,
    settle_lost_update,
    trailer,
    trailers,
    writes_of,
)


def batch(batch_id: str, first: int, last: int) -> Batch:
    return Batch(batch_id, tuple(b"{}\n" for _ in range(first, last + 1)), first)


def landed(batch_id: str) -> str:
    """The message of a gitjsonl commit holding batch ``batch_id``."""
    return f"gitjsonl: append 1 record to x\n\n{BATCH_TRAILER}: {batch_id}\n{RECORDS_TRAILER}: 1\n"


class TestBatch:
    def test_sequence_numbers_and_size(self) -> None:
        """A batch knows its last sequence number and its size in bytes."""
        three = Batch("b", (b"a\n", b"bb\n", b"ccc\n"), 7)
        assert (three.first_seq, three.last_seq, three.size) == (7, 9, 9)

    def test_new_ids_are_fresh_hex(self) -> None:
        """Each new batch id is 32 hex digits and never repeats."""
        made = {new_batch_id() for _ in range(100)}
        assert len(made) == 100
        assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made)


class TestCommitMessage:
    @pytest.mark.parametrize(
        ("count", "skip_ci", "subject"),
        [
            (3, True, "gitjsonl: append 3 records to data/x [skip ci]"),
            (1, True, "gitjsonl: append 1 record to data/x [skip ci]"),
            (2, False, "gitjsonl: append 2 records to data/x"),
        ],
    )
    def test_subject_counts_records(self, count: int, skip_ci: bool, subject: str) -> None:
        """The subject says how many records went where, with ``[skip ci]`` when asked."""
        message = commit_message(batch("b", 1, count), "data/x", skip_ci=skip_ci, writer="w")
        assert message.splitlines()[0] == subject

    def test_trailers_round_trip(self) -> None:
        """The batch id, record count and writer read back from the message's trailers."""
        message = commit_message(batch("5f0c", 1, 3), "data/x", skip_ci=True, writer="9a1b")
        assert batch_id_of(message) == "5f0c"
        assert trailer(message, RECORDS_TRAILER) == "3"
        assert trailer(message, WRITER_TRAILER) == "9a1b"

    @pytest.mark.parametrize(
        ("value", "writes"),
        [
            ("3", 3),
            ("17", 17),
            ("999999999", 999_999_999),
            ("", None),
            ("-3", None),
            ("3.5", None),
            ("1e9", None),
            ("0x10", None),
            ("1234567890", None),
            ("\u0663", None),
        ],
    )
    def test_writes_trailer_reads_only_plain_counts(self, value: str, writes: int | None) -> None:
        """The writes trailer reads back as the count written, and anything else as unsaid."""
        message = f"subject\n\nGitjsonl-Batch: b\nGitjsonl-Writes: {value}\n"
        assert writes_of(message) == writes

    def test_commit_message_carries_the_writes_it_was_given(self) -> None:
        """A batch's message says what it cost when told; an older one's says nothing."""
        given = commit_message(batch("5f0c", 1, 3), "data/x", skip_ci=True, writer="w", writes=5)
        assert writes_of(given) == 5
        assert (
            writes_of(commit_message(batch("5f0c", 1, 3), "data/x", skip_ci=True, writer="w"))
            is None
        )

    def test_trailers_without_a_writer(self) -> None:
        """Trailers written without a writer carry none, and the others still read back."""
        message = f"subject\n\n{trailers('abc', 5)}"
        assert (batch_id_of(message), trailer(message, RECORDS_TRAILER)) == ("abc", "5")
        assert trailer(message, WRITER_TRAILER) is None


class TestTrailer:
    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            ("subject\n\nGitjsonl-Batch: abc", "abc"),
            ("subject\n\nbody\n\nSigned-off-by: x\nGitjsonl-Batch: abc\n", "abc"),
            ("subject\n\nGitjsonl-Batch:   abc  \n", "abc"),
            ("subject\n\nGitjsonl-Batch:\n", None),
            ("subject\n\nGitjsonl-Batch: \n", None),
            ("subject\n\nGitjsonl-Records: 3\n", None),
            ("", None),
            ("\n\n\n", None),
        ],
    )
    def test_reads_the_last_paragraph(self, message: str, expected: str | None) -> None:
        """The value comes from the message's last paragraph; missing or empty is None."""
        assert batch_id_of(message) == expected

    @pytest.mark.parametrize(
        "message",
        [
            "Gitjsonl-Batch: forged\n\nbody",
            "subject\n\nGitjsonl-Batch: forged\n\nbody\n",
        ],
    )
    def test_lines_outside_the_last_paragraph_are_not_trailers(self, message: str) -> None:
        """A line that only looks like a trailer in a subject or body is not one."""
        assert batch_id_of(message) is None

    def test_a_lone_subject_line_is_not_a_trailer(self) -> None:
        """A message that is only a subject ``Gitjsonl-Batch: x`` names no batch (as for git)."""
        assert batch_id_of("Gitjsonl-Batch: x") is None


class TestFindLanded:
    def test_finds_the_candidate_by_its_trailer(self) -> None:
        """The candidate whose id a commit message names is returned with that commit."""
        commits = [
            ("c3", "foreign commit"),
            ("c2", "gitjsonl: append\n\nGitjsonl-Batch: b2\nGitjsonl-Records: 3\n"),
            ("c1", "older"),
        ]
        candidates = (batch("b2", 1, 3), batch("b1", 1, 2))
        assert find_landed(commits, candidates, stop_at=None) == (candidates[0], "c2")

    def test_stops_at_the_last_known_commit(self) -> None:
        """History below the last commit known to hold our records is not searched."""
        commits = [("c2", "x"), ("c1", "y"), ("c0", landed("b1"))]
        assert find_landed(commits, (batch("b1", 1, 1),), stop_at="c1") is None

    def test_stops_after_the_limit(self) -> None:
        """The walk gives up after ``limit`` commits."""
        commits = [(f"c{i}", "x") for i in range(10)] + [("c", landed("b1"))]
        assert find_landed(commits, (batch("b1", 1, 1),), stop_at=None, limit=10) is None
        assert find_landed(commits, (batch("b1", 1, 1),), stop_at=None, limit=11) is not None

    def test_no_candidates_reads_no_history(self) -> None:
        """Without candidates the commit iterator is not even started."""

        def explode() -> Iterator[tuple[str, str]]:
            raise AssertionError("history was read")
            yield ("never", "reached")

        assert find_landed(explode(), (), stop_at=None) is None

    def test_stops_reading_once_found(self) -> None:
        """History older than the commit that holds a candidate is not fetched."""

        def history() -> Iterator[tuple[str, str]]:
            yield ("c2", landed("b1"))
            raise AssertionError("read past the match")

        found = find_landed(history(), (batch("b1", 1, 1),), stop_at=None)
        assert found is not None
        assert found[1] == "c2"

    def test_other_batches_do_not_count(self) -> None:
        """A gitjsonl commit of a batch that is not a candidate is walked past."""
        commits = [("c2", landed("other")), ("c1", landed("also-other"))]
        assert find_landed(commits, (batch("b1", 1, 1),), stop_at=None) is None


class TestSettleLostUpdate:
    def test_landed_when_the_id_is_above_the_base(self) -> None:
        """The batch's commit, met before the base, is where it landed."""
        commits = [("n", "other"), ("k", landed("b1")), ("base", "x")]
        assert settle_lost_update(iter(commits), "b1", base="base") == ("landed", "k")

    def test_not_landed_when_the_base_is_met_below_a_newer_head(self) -> None:
        """A head proven newer than the base, without the id above it: it never lands."""
        commits = [("n", "other"), ("base", "x"), ("older", landed("b1"))]
        assert settle_lost_update(iter(commits), "b1", base="base") == ("not landed", None)

    def test_a_head_that_is_the_base_itself_proves_nothing(self) -> None:
        """The update was refused, so the branch left the base: a read showing it lags."""
        commits = [("base", "x"), ("older", "y")]
        assert settle_lost_update(iter(commits), "b1", base="base") == ("unproven", None)

    def test_a_walk_that_never_meets_the_base_proves_nothing(self) -> None:
        """A head older than the base (a lagging read): ask again later."""
        assert settle_lost_update(iter([("older", "y")]), "b1", base="base") == ("unproven", None)
