"""The spool on its own (no server), and the SIGKILL acceptance test once Log is wired to it."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import gitjsonl._spool
from gitjsonl._batch import Batch
from gitjsonl._exceptions import SpoolError, SpoolLocked
from gitjsonl._spool import (
    ADOPT_INTERVAL,
    Recovery,
    SlotSpool,
    Spool,
    open_slot,
    parse_spool,
    spool_identity,
    spool_name,
    spool_name_v1,
    spool_name_v2,
    spool_server,
)

from .helpers import committed_records


def line(i: int) -> bytes:
    return json.dumps({"id": i}).encode() + b"\n"


def fill(spool: Spool, first: int, last: int) -> None:
    for seq in range(first, last + 1):
        spool.append(seq, line(seq))


def batch(batch_id: str, first: int, last: int) -> Batch:
    return Batch(batch_id, tuple(line(i) for i in range(first, last + 1)), first)


class TestAppend:
    def test_record_is_in_the_file_when_append_returns(self, tmp_path: Path) -> None:
        """A record appended is readable from the file by another reader before any close."""
        with Spool(tmp_path, "log") as spool:
            spool.append(1, line(1))
            seen = parse_spool((tmp_path / "log.spool").read_bytes())
        assert seen.lines == (line(1),)

    def test_fsync_option_writes_the_same_file(self, tmp_path: Path) -> None:
        """With fsync=True the file holds exactly what it holds without it."""
        with Spool(tmp_path, "log", fsync=True) as spool:
            fill(spool, 1, 3)
        with Spool(tmp_path, "log") as spool:
            assert spool.recover().lines == (line(1), line(2), line(3))

    def test_write_after_close_is_a_spool_error(self, tmp_path: Path) -> None:
        """Appending to a closed spool raises SpoolError rather than losing the record silently."""
        spool = Spool(tmp_path, "log")
        spool.close()
        with pytest.raises(SpoolError):
            spool.append(1, line(1))


class TestRecovery:
    def test_uncommitted_records_come_back_in_order(self, tmp_path: Path) -> None:
        """Records of a committed batch are dropped; the rest come back in append order."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 5)
            spool.batch_formed(batch("b1", 1, 2))
            spool.batch_committed(batch("b1", 1, 2), "sha1")
        with Spool(tmp_path, "log") as spool:
            recovery = spool.recover()
        assert recovery.lines == (line(3), line(4), line(5))
        assert recovery.candidates == ()
        assert recovery.last_commit == "sha1"

    def test_formed_but_unmarked_batch_is_a_candidate_renumbered(self, tmp_path: Path) -> None:
        """A batch formed and not marked committed comes back as a candidate, renumbered."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 6)
            spool.batch_formed(batch("b1", 1, 2))
            spool.batch_committed(batch("b1", 1, 2), "sha1")
            spool.batch_formed(batch("b2", 3, 5))
        with Spool(tmp_path, "log") as spool:
            recovery = spool.recover()
        assert recovery.lines == tuple(line(i) for i in (3, 4, 5, 6))
        (candidate,) = recovery.candidates
        assert (candidate.id, candidate.first_seq, candidate.last_seq) == ("b2", 1, 3)
        assert candidate.lines == (line(3), line(4), line(5))
        assert recovery.remaining_after(candidate) == (line(6),)
        assert recovery.remaining_after(None) == recovery.lines

    def test_recovery_survives_a_second_restart(self, tmp_path: Path) -> None:
        """Reopening twice without committing gives the same records and candidate ids."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 4)
            spool.batch_formed(batch("b1", 2, 3))  # after a hypothetical commit of 1
            spool.batch_committed(batch("b0", 1, 1), "sha0")
        with Spool(tmp_path, "log") as spool:
            first = spool.recover()
        with Spool(tmp_path, "log") as spool:
            second = spool.recover()
        assert first == second
        assert [c.id for c in second.candidates] == ["b1"]

    def test_new_appends_after_recovery_continue_the_numbering(self, tmp_path: Path) -> None:
        """After recovery the Log appends k+1.. and a later recovery sees old and new, in order."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 2)
        with Spool(tmp_path, "log") as spool:
            k = len(spool.recover().lines)
            spool.append(k + 1, line(99))
        with Spool(tmp_path, "log") as spool:
            assert spool.recover().lines == (line(1), line(2), line(99))

    def test_torn_last_line_is_reported_and_not_replayed(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A last line cut short is counted and warned about, and never comes back as a record."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 2)
        path = tmp_path / "log.spool"
        whole = path.read_bytes()
        path.write_bytes(whole[:-7])  # the write of record 2 was cut short
        with caplog.at_level(logging.WARNING, logger="gitjsonl"), Spool(tmp_path, "log") as spool:
            recovery = spool.recover()
        assert recovery.lines == (line(1),)
        assert recovery.torn_lines == 1
        assert "torn" in caplog.text

    def test_torn_line_is_gone_after_recovery(self, tmp_path: Path) -> None:
        """New entries after a torn line are not glued onto it: the next recovery is clean."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 2)
        path = tmp_path / "log.spool"
        path.write_bytes(path.read_bytes()[:-3])
        with Spool(tmp_path, "log") as spool:
            spool.append(2, line(2))
        with Spool(tmp_path, "log") as spool:
            recovery = spool.recover()
        assert recovery.lines == (line(1), line(2))
        assert recovery.torn_lines == 0

    def test_garbled_last_line_with_newline_counts_as_torn(self) -> None:
        """A last line whose checksum fails (zero-filled after power loss) is torn, not replayed."""
        data = b"00000000 R 1 {}\n"
        recovery = parse_spool(data)
        assert recovery.lines == ()
        assert recovery.torn_lines == 1

    def test_corrupt_middle_line_is_skipped_and_counted(self, tmp_path: Path) -> None:
        """A garbled line inside the file is skipped with a counter; its neighbours survive."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 3)
        path = tmp_path / "log.spool"
        lines = path.read_bytes().split(b"\n")
        lines[2] = lines[2].replace(b'"id"', b'"ID"')  # checksum no longer matches
        path.write_bytes(b"\n".join(lines))
        recovery = parse_spool(path.read_bytes())
        assert recovery.lines == (line(1), line(3))
        assert recovery.corrupt_lines == 1
        assert recovery.torn_lines == 0


class TestLock:
    def test_second_open_in_the_same_process_is_refused(self, tmp_path: Path) -> None:
        """Two spools on one file are refused with SpoolLocked, even inside one process."""
        with Spool(tmp_path, "log"), pytest.raises(SpoolLocked):
            Spool(tmp_path, "log")

    def test_lock_is_released_on_close(self, tmp_path: Path) -> None:
        """After close another Spool on the same file opens."""
        Spool(tmp_path, "log").close()
        Spool(tmp_path, "log").close()

    def test_another_process_is_refused(self, tmp_path: Path) -> None:
        """A second process opening a held spool gets SpoolLocked."""
        code = textwrap.dedent(
            f"""
            from gitjsonl._spool import Spool
            from gitjsonl._exceptions import SpoolLocked
            try:
                Spool({str(tmp_path)!r}, "log")
            except SpoolLocked:
                print("locked")
            """
        )
        with Spool(tmp_path, "log"):
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).parent.parent,
            )
        assert out.stdout.strip() == "locked"


class TestCompaction:
    def test_file_shrinks_to_a_header_when_everything_is_committed(self, tmp_path: Path) -> None:
        """Once every record is committed the file holds only its header line."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 50)
            spool.batch_formed(batch("b1", 1, 50))
            spool.batch_committed(batch("b1", 1, 50), "sha1")
            assert spool.pending == 0
            assert (tmp_path / "log.spool").read_bytes().count(b"\n") == 1
        with Spool(tmp_path, "log") as spool:
            recovery = spool.recover()
        assert recovery == Recovery(last_commit="sha1")

    def test_committed_prefix_is_cut_past_compact_bytes(self, tmp_path: Path) -> None:
        """With records still pending, a committed prefix larger than compact_bytes is cut off."""
        with Spool(tmp_path, "log", compact_bytes=200) as spool:
            fill(spool, 1, 20)
            before = spool.size
            spool.batch_formed(batch("b1", 1, 15))
            spool.batch_committed(batch("b1", 1, 15), "sha1")
            assert spool.size < before
            spool.append(21, line(21))
        with Spool(tmp_path, "log") as spool:
            assert spool.recover().lines == tuple(line(i) for i in range(16, 22))

    def test_small_committed_prefix_is_kept(self, tmp_path: Path) -> None:
        """Below compact_bytes the file is only appended to (no rewrite per batch)."""
        with Spool(tmp_path, "log") as spool:
            fill(spool, 1, 3)
            before = spool.size
            spool.batch_formed(batch("b1", 1, 1))
            spool.batch_committed(batch("b1", 1, 1), "sha1")
            assert spool.size > before


class TestSpoolName:
    def test_names_differ_per_log_and_are_filesystem_safe(self) -> None:
        """Different repos, paths or branches get different names without slashes."""
        names = {
            spool_name("o/r", "data/interactions"),
            spool_name("o/r", "data/other"),
            spool_name("o/r2", "data/interactions"),
            spool_name("o/r", "data/interactions", "dev"),
            spool_name("o/r", "data_interactions"),
        }
        assert len(names) == 5
        assert all("/" not in name for name in names)

    @pytest.mark.parametrize(
        ("one", "other"),
        [
            (("o/r", "data/interactions", None), ("o/r", "data__interactions", None)),
            (("o/r", "a/b", "c"), ("o/r", "a", "b/c")),
            (("o/r", "a__b", None), ("o/r", "a/b", None)),
            (("o/r", "data/interactions", None), ("o/r", "data/interactions", "")),
            (("o/r", "x" * 200, None), ("o/r", "x" * 200 + "y", None)),
        ],
    )
    def test_logs_whose_readable_names_collide_get_different_spools(
        self, one: tuple[str, str, str | None], other: tuple[str, str, str | None]
    ) -> None:
        """Triples that read alike (or are cut alike) get different names and identities."""
        assert spool_name(*one) != spool_name(*other)
        assert spool_identity(*one) != spool_identity(*other)

    def test_repository_name_is_compared_without_case(self) -> None:
        """``Owner/Repo`` and ``owner/repo`` are one repository on GitHub, hence one spool."""
        assert spool_name("Owner/Repo", "data") != spool_name_v1("Owner/Repo", "data")
        assert spool_identity("Owner/Repo", "data", None) == spool_identity(
            "owner/repo", "data", None
        )


class _Line:
    def __init__(self, sha: str, message: str) -> None:
        self.sha = sha
        self.message = message


class FakeBranch:
    """A committer and a history over one in-memory branch: what adoption needs, nothing more."""

    def __init__(self, default: str = "main") -> None:
        self.branch = default
        self.commits: list[tuple[str, Batch]] = []  # oldest first
        self.unresolved_batch_id: str | None = None
        self.fail_next = 0
        self.default_asked = 0

    def commit(self, batch: Batch) -> str:
        if self.fail_next:
            self.fail_next -= 1
            from gitjsonl._exceptions import GitHubError

            raise GitHubError("503 from the fake")
        sha = f"c{len(self.commits)}"
        self.commits.append((sha, batch))
        return sha

    def settle(self, batch: Batch, *, commit: str, base: str) -> str | None:
        return next((sha for sha, b in self.commits if b.id == batch.id), None)

    def default_branch(self) -> str:
        self.default_asked += 1
        return self.branch

    def get_head(self, branch: str) -> str:
        return self.commits[-1][0]

    def iter_commits(self, sha: str, path: str | None = None) -> Any:
        for commit_sha, b in reversed(self.commits):
            yield _Line(commit_sha, f"x\n\nGitjsonl-Batch: {b.id}")

    def lines(self) -> list[bytes]:
        return [line for _sha, b in self.commits for line in b.lines]

    def flush_adopted(self, spool: SlotSpool, now: float) -> bool:
        """What the Log's flusher does with an adopted batch: commit it, then mark it through
        the spool; False when there was none."""
        adopted = spool.next_adopted(self, self, now)
        if adopted is not None:
            spool.note_committed(adopted, self.commit(adopted))
        return adopted is not None


def slot(tmp_path: Path, branch: str | None = None) -> SlotSpool:
    return open_slot(tmp_path, "o/r", "data/interactions", branch, max_batch_bytes=100)


def dead_slot(tmp_path: Path, k: int, first: int, last: int, branch: str | None = None) -> Path:
    """A slot a killed process left: records first..last appended, nothing committed."""
    name = f"{spool_name('o/r', 'data/interactions', branch)}.{k}"
    identity = spool_identity("o/r", "data/interactions", branch)
    with Spool(tmp_path, name, identity=identity) as spool:
        fill(spool, first, last)
    return tmp_path / f"{name}.spool"


def adopt_all(spool: SlotSpool, branch: FakeBranch, start: float = 0.0) -> float:
    """Run the flusher's adoption turns until it has nothing more to do; the clock it reached."""
    now = start
    for _ in range(3):  # a look finds one dead slot: a few looks find them all
        now += ADOPT_INTERVAL
        while branch.flush_adopted(spool, now):
            pass
    return now


class TestSlots:
    def test_each_live_log_claims_a_slot_of_its_own(self, tmp_path: Path) -> None:
        """Four Logs on one spool folder each get a slot: none is refused with SpoolLocked."""
        spools = [slot(tmp_path) for _ in range(4)]
        try:
            assert len({s.path for s in spools}) == 4
            assert [s.name.rsplit(".", 1)[1] for s in spools] == ["0", "1", "2", "3"]
        finally:
            for s in spools:
                s.close()

    def test_a_restarted_process_recovers_the_slot_its_predecessor_left(
        self, tmp_path: Path
    ) -> None:
        """A slot whose lock is free is claimed by the next Log, which recovers its records."""
        dead_slot(tmp_path, 0, 1, 3)
        with slot(tmp_path) as spool:
            assert spool.recover().lines == (line(1), line(2), line(3))

    def test_live_log_adopts_a_dead_slot_and_commits_it_once(self, tmp_path: Path) -> None:
        """Records a dead process left in another slot are committed once, and its file removed."""
        path = dead_slot(tmp_path, 1, 1, 5)
        with slot(tmp_path) as spool:
            assert spool.name.endswith(".0")
            branch = FakeBranch()
            adopt_all(spool, branch)
            assert branch.lines() == [line(i) for i in range(1, 6)]
            assert not path.exists()
            adopt_all(spool, branch, start=100.0)
            assert len(branch.lines()) == 5, "adopted twice"

    def test_a_slot_held_by_a_live_log_is_not_adopted(self, tmp_path: Path) -> None:
        """A slot whose lock is held (its Log is alive) is left alone, records and all."""
        with slot(tmp_path) as alive, slot(tmp_path) as other:
            alive.append(1, line(1))
            branch = FakeBranch()
            adopt_all(other, branch)
            assert branch.lines() == []
            assert alive.pending == 1

    def test_a_batch_that_landed_before_the_death_is_not_committed_again(
        self, tmp_path: Path
    ) -> None:
        """A dead slot's formed batch that is on the branch is settled, not sent again."""
        name = f"{spool_name('o/r', 'data/interactions')}.1"
        branch = FakeBranch()
        identity = spool_identity("o/r", "data/interactions", None)
        with Spool(tmp_path, name, identity=identity) as dead:
            fill(dead, 1, 4)
            landed = batch("b1", 1, 2)
            dead.batch_formed(landed)
            dead.batch_pushing(landed, "c0", "base")
            branch.commits.append(("c0", landed))  # it landed; the answer never came
        with slot(tmp_path) as spool:
            adopt_all(spool, branch)
        assert branch.lines() == [line(i) for i in range(1, 5)]

    def test_adoption_stops_at_a_failure_and_goes_on_after_it(self, tmp_path: Path) -> None:
        """A failed adopted batch is kept in its file and committed on a later turn, once."""
        from gitjsonl._exceptions import GitHubError

        path = dead_slot(tmp_path, 1, 1, 3)
        branch = FakeBranch()
        branch.fail_next = 1
        with slot(tmp_path) as spool:
            with pytest.raises(GitHubError):
                branch.flush_adopted(spool, ADOPT_INTERVAL)
            assert parse_spool(path.read_bytes()).lines == tuple(line(i) for i in range(1, 4))
            adopt_all(spool, branch, start=1000.0)
        assert branch.lines() == [line(i) for i in range(1, 4)]

    def test_a_failed_committed_mark_in_an_adopted_slot_commits_nothing_twice(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A full disk refusing an adopted batch's "committed" mark does not send it again."""
        import gitjsonl._spool as module

        dead_slot(tmp_path, 1, 1, 5)
        branch = FakeBranch()
        real_write = os.write
        refused: list[bytes] = []

        def full_disk(fd: int, data: Any) -> int:
            body = bytes(data).partition(b" ")[2]
            if body.startswith(b"C ") and not refused:
                refused.append(body)
                raise OSError(28, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(module.os, "write", full_disk)
        with slot(tmp_path) as spool:
            adopt_all(spool, branch)
            adopt_all(spool, branch, start=100.0)
        assert refused, "the mark was never refused: the test proves nothing"
        assert branch.lines() == [line(i) for i in range(1, 6)]

    def test_the_last_adopted_batch_lets_the_slot_go_in_the_same_step(self, tmp_path: Path) -> None:
        """The step that commits a dead slot's last records also removes its file: a Log
        closed as soon as they landed leaves nothing behind."""
        path = dead_slot(tmp_path, 1, 1, 3)
        branch = FakeBranch()
        with slot(tmp_path) as spool:
            assert branch.flush_adopted(spool, ADOPT_INTERVAL)
            assert branch.lines() == [line(i) for i in range(1, 4)]
            assert not path.exists()
            assert spool.next_adopted(branch, branch, 2 * ADOPT_INTERVAL) is None

    def test_a_closed_adopter_leaves_the_rest_for_the_next(self, tmp_path: Path) -> None:
        """An adopter closed mid-way releases the slot with what is left; the next one ends it."""
        dead_slot(tmp_path, 1, 1, 30)  # 30 records of 9 bytes: several batches of 100 bytes
        branch = FakeBranch()
        with slot(tmp_path) as spool:
            branch.flush_adopted(spool, ADOPT_INTERVAL)  # claims it and commits one batch
            assert 0 < len(branch.lines()) < 30
        with slot(tmp_path) as spool:
            adopt_all(spool, branch)
        assert branch.lines() == [line(i) for i in range(1, 31)]

    def test_no_adoption_while_the_committer_owes_a_resend_of_its_own(self, tmp_path: Path) -> None:
        """While the Log's own batch may have landed, an adopted one never goes first."""
        dead_slot(tmp_path, 1, 1, 3)
        branch = FakeBranch()
        branch.unresolved_batch_id = "ours"
        with slot(tmp_path) as spool:
            assert spool.next_adopted(branch, branch, ADOPT_INTERVAL) is None
        assert branch.lines() == []

    def test_an_adopted_batch_owed_a_resend_is_given_again_unchanged(self, tmp_path: Path) -> None:
        """An adopted batch whose commit may have landed is given again under its id, nothing
        else; its ref update was noted in the adopted file."""
        path = dead_slot(tmp_path, 1, 1, 30)
        branch = FakeBranch()
        with slot(tmp_path) as spool:
            sent = spool.next_adopted(branch, branch, ADOPT_INTERVAL)
            assert sent is not None
            spool.batch_pushing(sent, "c0", "base")
            branch.unresolved_batch_id = sent.id  # the answer to its ref update was lost
            assert spool.next_adopted(branch, branch, 2 * ADOPT_INTERVAL) is sent
            assert parse_spool(path.read_bytes()).pushes == {sent.id: ("c0", "base")}

    def test_slots_of_the_other_branch_spelling_are_adopted(self, tmp_path: Path) -> None:
        """Records spooled with branch=None are committed by a Log with branch="main", and back."""
        dead_slot(tmp_path, 0, 1, 2, branch=None)
        branch = FakeBranch()
        with slot(tmp_path, branch="main") as spool:
            adopt_all(spool, branch)
        assert branch.lines() == [line(1), line(2)]
        dead_slot(tmp_path, 0, 3, 4, branch="main")
        with slot(tmp_path, branch=None) as spool:
            adopt_all(spool, branch)
        assert branch.lines() == [line(i) for i in range(1, 5)]

    def test_another_branch_is_not_the_default_branch(self, tmp_path: Path) -> None:
        """A slot spooled with branch=None is not committed to a branch that is not the default."""
        path = dead_slot(tmp_path, 0, 1, 2, branch=None)
        branch = FakeBranch(default="main")
        with slot(tmp_path, branch="dev") as spool:
            adopt_all(spool, branch)
        assert branch.lines() == []
        assert path.exists()

    def test_the_default_branch_is_asked_only_when_such_files_exist(self, tmp_path: Path) -> None:
        """Without spools of the other spelling, looking for them costs no request."""
        branch = FakeBranch()
        with slot(tmp_path, branch="main") as spool:
            adopt_all(spool, branch)
        assert branch.default_asked == 0

    def test_a_spool_of_the_previous_version_is_recovered(self, tmp_path: Path) -> None:
        """A spool under the previous version's name (no identity entry) is recovered."""
        with Spool(tmp_path, spool_name_v1("o/r", "data/interactions")) as old:
            fill(old, 1, 2)
        with slot(tmp_path) as spool:
            assert spool.recover().lines == (line(1), line(2))
            spool.batch_formed(batch("b1", 1, 2))
            spool.batch_committed(batch("b1", 1, 2), "sha")
        with slot(tmp_path) as spool:
            assert spool.recover().lines == ()

    def test_a_spool_of_another_log_is_refused(self, tmp_path: Path) -> None:
        """A file whose identity entry names another log is refused, not recovered into this one."""
        name = f"{spool_name('o/r', 'data/interactions')}.0"
        with Spool(tmp_path, name, identity=spool_identity("o/r", "data/other", None)) as foreign:
            fill(foreign, 1, 2)
        with pytest.raises(SpoolError, match="another log"):
            slot(tmp_path)
        assert parse_spool((tmp_path / f"{name}.spool").read_bytes()).lines == (line(1), line(2))

    def test_a_foreign_file_in_a_slot_to_adopt_is_left_alone(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A slot file of another log met while adopting is reported and never committed."""
        name = f"{spool_name('o/r', 'data/interactions')}.1"
        with Spool(tmp_path, name, identity=spool_identity("o/r", "data/other", None)) as foreign:
            fill(foreign, 1, 2)
        branch = FakeBranch()
        with caplog.at_level(logging.ERROR, logger="gitjsonl"), slot(tmp_path) as spool:
            adopt_all(spool, branch)
        assert branch.lines() == []
        assert "another log" in caplog.text


GHE = "https://ghe.example.com/api/v3"


def slot_on(tmp_path: Path, api_url: str) -> SlotSpool:
    return open_slot(
        tmp_path, "o/r", "data/interactions", None, api_url=api_url, max_batch_bytes=100
    )


def dead_slot_on(tmp_path: Path, api_url: str, first: int, last: int) -> Path:
    """A slot a killed process on ``api_url`` left: records first..last, nothing committed."""
    name = f"{spool_name('o/r', 'data/interactions', None, api_url)}.0"
    identity = spool_identity("o/r", "data/interactions", None, api_url)
    with Spool(tmp_path, name, identity=identity) as spool:
        fill(spool, first, last)
    return tmp_path / f"{name}.spool"


def serverless_spool(tmp_path: Path, version: int) -> Path:
    """A spool an earlier version left, holding records 1..2: no server in its name or file."""
    if version == 1:
        name, identity = spool_name_v1("o/r", "data/interactions"), None
    else:
        name = f"{spool_name_v2('o/r', 'data/interactions')}.0"
        identity = spool_identity("o/r", "data/interactions", None, None)
    with Spool(tmp_path, name, identity=identity) as old:
        fill(old, 1, 2)
    return tmp_path / f"{name}.spool"


class TestServers:
    @pytest.mark.parametrize(
        ("one", "other"),
        [
            ("https://api.github.com", "https://API.GitHub.com:443/"),
            ("http://127.0.0.1:8080/api/v3/", "HTTP://127.0.0.1:8080/api/v3"),
        ],
    )
    def test_spellings_of_one_server_name_one_spool(self, one: str, other: str) -> None:
        """Case, a default port and a trailing slash do not make another server."""
        assert spool_server(one) == spool_server(other)
        assert spool_name("o/r", "p", None, one) == spool_name("o/r", "p", None, other)

    @pytest.mark.parametrize(
        "other",
        [
            GHE,
            "https://ghe.example.com",  # same host, another API path
            "http://127.0.0.1:8001",  # two localhubs
            "https://api.github.com:8443",
        ],
    )
    def test_each_server_has_its_own_name_and_identity(self, other: str) -> None:
        """The same repository, path and branch on another server is another spool."""
        base = "http://127.0.0.1:8000" if other.startswith("http:") else "https://api.github.com"
        assert spool_name("o/r", "p", None, base) != spool_name("o/r", "p", None, other)
        assert spool_identity("o/r", "p", None, base) != spool_identity("o/r", "p", None, other)

    def test_the_name_shows_the_server(self) -> None:
        """A person listing the folder sees which server each spool is for."""
        assert spool_name("o/r", "data", None, GHE).startswith("ghe.example.com__o__r__data.")

    def test_a_dead_slot_of_another_server_is_never_adopted(self, tmp_path: Path) -> None:
        """A Log on one server leaves the records another server's dead Log spooled alone."""
        left = dead_slot_on(tmp_path, "https://api.github.com", 1, 3)
        branch = FakeBranch()
        with slot_on(tmp_path, GHE) as spool:
            assert spool.recover().lines == ()
            adopt_all(spool, branch)
        assert branch.lines() == []
        assert parse_spool(left.read_bytes()).lines == tuple(line(i) for i in range(1, 4))
        with slot_on(tmp_path, "https://api.github.com") as spool:
            assert spool.recover().lines == tuple(line(i) for i in range(1, 4))

    def test_a_file_of_another_server_under_this_ones_name_is_refused(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A spool file copied or renamed from another server's is refused, claimed or adopted."""
        for k in (0, 1):
            name = f"{spool_name('o/r', 'data/interactions', None, GHE)}.{k}"
            foreign = spool_identity("o/r", "data/interactions", None, "https://api.github.com")
            with Spool(tmp_path, name, identity=foreign) as spool:
                fill(spool, 1, 2)
        with pytest.raises(SpoolError, match="another log or server"):
            slot_on(tmp_path, GHE)
        (tmp_path / f"{spool_name('o/r', 'data/interactions', None, GHE)}.0.spool").unlink()
        branch = FakeBranch()
        with caplog.at_level(logging.ERROR, logger="gitjsonl"), slot_on(tmp_path, GHE) as spool:
            adopt_all(spool, branch)
        assert branch.lines() == []
        assert "another log or server" in caplog.text

    def test_a_serverless_file_under_a_servers_name_is_refused(self, tmp_path: Path) -> None:
        """A file without an identity entry under a server's name is refused (none writes one)."""
        name = f"{spool_name('o/r', 'data/interactions', None, GHE)}.0"
        with Spool(tmp_path, name) as spool:
            fill(spool, 1, 2)
        with pytest.raises(SpoolError, match="no log"):
            slot_on(tmp_path, GHE)

    @pytest.mark.parametrize("version", [1, 2])
    def test_an_earlier_versions_spool_is_recovered_on_githubs_own_api(
        self, tmp_path: Path, version: int
    ) -> None:
        """A spool that names no server is taken by a Log on https://api.github.com."""
        serverless_spool(tmp_path, version)
        branch = FakeBranch()
        with slot_on(tmp_path, "https://api.github.com") as spool:
            recovered = list(spool.recover().lines)
            adopt_all(spool, branch)
        assert recovered + branch.lines() == [line(1), line(2)]

    @pytest.mark.parametrize("version", [1, 2])
    def test_an_earlier_versions_spool_is_left_by_another_server_with_a_warning(
        self, tmp_path: Path, version: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A Log on another server never takes a spool that names none; it says so once."""
        left = serverless_spool(tmp_path, version)
        before = left.read_bytes()
        branch = FakeBranch()
        with caplog.at_level(logging.WARNING, logger="gitjsonl"), slot_on(tmp_path, GHE) as spool:
            assert spool.recover().lines == ()
            adopt_all(spool, branch)
        assert branch.lines() == []
        assert left.read_bytes() == before
        (warning,) = [r for r in caplog.records if "name no server" in r.getMessage()]
        assert left.name in warning.getMessage()


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


class TestFiles:
    def test_folders_are_0700_and_files_0600(self, tmp_path: Path) -> None:
        """The spool folder (and the parents we make) are 0700, spool and lock files 0600."""
        folder = tmp_path / "a" / "spool"
        with slot(folder) as spool:
            spool.append(1, line(1))
            assert mode(folder) == mode(folder.parent) == 0o700
            assert mode(spool.path) == 0o600
            assert mode(folder / f"{spool.name}.lock") == 0o600

    @pytest.mark.parametrize("which", ["spool", "lock", "spool.tmp"])
    def test_a_symlink_planted_at_a_spool_path_is_never_followed(
        self, tmp_path: Path, which: str
    ) -> None:
        """A link at the spool, lock or temporary path: its target is never truncated or written."""
        folder = tmp_path / "spool"
        folder.mkdir(mode=0o700)
        target = tmp_path / "victim"
        target.write_bytes(b"precious\n")
        name = f"{spool_name('o/r', 'data/interactions')}.0"
        (folder / f"{name}.{which}").symlink_to(target)
        if which == "spool.tmp":  # a stale temporary name: removed and made anew, never followed
            with slot(folder) as spool:
                spool.append(1, line(1))
                spool.batch_formed(batch("b", 1, 1))
                spool.batch_committed(batch("b", 1, 1), "sha")  # compacts: a rewrite
        else:
            with pytest.raises(SpoolError, match="cannot open spool"):
                slot(folder)
        assert target.read_bytes() == b"precious\n"

    @pytest.mark.parametrize("bits", [0o020, 0o002])
    def test_a_folder_others_can_write_is_refused(self, tmp_path: Path, bits: int) -> None:
        """A spool folder writable by group or others is refused with SpoolError, not used."""
        folder = tmp_path / "spool"
        folder.mkdir()
        folder.chmod(0o700 | bits)
        with pytest.raises(SpoolError, match="writable by group or others"):
            slot(folder)

    def test_a_spool_file_others_can_write_is_refused(self, tmp_path: Path) -> None:
        """An existing spool file writable by others is refused rather than recovered."""
        path = dead_slot(tmp_path, 0, 1, 1)
        path.chmod(0o666)
        with pytest.raises(SpoolError, match="writable by group or others"):
            slot(tmp_path)

    @pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
    def test_a_file_of_another_owner_is_refused(self, tmp_path: Path) -> None:
        """A lock file that belongs to another user is refused with SpoolError."""
        name = f"{spool_name('o/r', 'data/interactions')}.0"
        lock = tmp_path / f"{name}.lock"
        lock.touch(mode=0o600)
        os.chown(lock, 65534, 65534)
        with pytest.raises(SpoolError, match="belongs to uid 65534"):
            slot(tmp_path)

    def test_a_folder_that_is_a_file_is_refused(self, tmp_path: Path) -> None:
        """A spool_dir that is a plain file is a clear SpoolError."""
        folder = tmp_path / "spool"
        folder.write_bytes(b"")
        with pytest.raises(SpoolError):
            slot(folder)


WRITER = textwrap.dedent(
    """
    import sys, time
    from gitjsonl import Log
    url, token, spool_dir, start, count = sys.argv[1:6]
    log = Log("owner/repo", path="data/interactions", api_url=url, token=token,
              pacing=None, flush_interval=0.02, batch_bytes=400, spool_dir=spool_dir)
    for i in range(int(start), int(start) + int(count)):
        log.append({"id": i})
        print(i, flush=True)
        time.sleep(0.002)
    log.close()
    print("closed", flush=True)
    """
)


class TestKillAndRestart:
    def test_sigkill_mid_stream_then_restart_commits_every_record_once(
        self, localhub_factory: object, tmp_path: Path
    ) -> None:
        """A writer SIGKILLed mid-stream and restarted leaves every record exactly once."""
        from gitjsonl.testing import Fault, LocalHub

        assert callable(localhub_factory)
        hub: LocalHub = localhub_factory(initial_commit=True)
        # Slow ref updates widen the window in which a commit lands but is not yet marked.
        hub.add_fault(
            Fault(method="PATCH", path=r"/git/refs/", action="latency", delay=0.05, times=None)
        )
        spool_dir = tmp_path / "spool"
        root = Path(__file__).parent.parent
        env = {**os.environ, "PYTHONPATH": str(root)}
        args = [sys.executable, "-c", WRITER, hub.url, hub.token, str(spool_dir)]
        proc = subprocess.Popen(
            [*args, "0", "400"], stdout=subprocess.PIPE, text=True, env=env, cwd=root
        )
        assert proc.stdout is not None
        appended = -1
        deadline = time.monotonic() + 30
        while appended < 150 and time.monotonic() < deadline:
            appended = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # The writer may have gone on past the line read before the kill came: every id it
        # printed was appended (it prints after append).
        printed = [int(line) for line in proc.stdout.read().split() if line.isdigit()]
        appended = max([appended, *printed])
        proc.stdout.close()
        (spool_file,) = spool_dir.glob("*.spool")
        assert parse_spool(spool_file.read_bytes()).lines, "nothing was pending at the kill"
        # The second run recovers the spool, then appends 10 more of its own.
        out = subprocess.run(
            [*args, "100000", "10"],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=60,
            check=True,
        )
        assert out.stdout.strip().endswith("closed")
        ids = [record["id"] for record in committed_records(hub)]  # read with git itself
        expected = [*range(appended + 1), *range(100000, 100010)]
        assert len(ids) == len(set(ids)), "a record was committed twice"
        assert set(expected) <= set(ids), "a record appended before the kill is missing"
        # The record being appended when the kill came may or may not have made it.
        assert set(ids) <= {*expected, appended + 1}
        assert ids == sorted(ids), "order was not kept"
        hub.fsck("owner/repo")

    def test_batch_that_landed_before_the_crash_is_not_committed_again(
        self, localhub_factory: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A batch whose ref update landed but was never marked in the spool is not sent twice.

        The crashed process noted the update (its commit and base) before sending
        it; the restart sends that same update again, which settles it exactly,
        however stale the branch's reads are.
        """
        from gitjsonl import Log
        from gitjsonl._batch import batch_id_of
        from gitjsonl.testing import LocalHub

        assert callable(localhub_factory)
        hub: LocalHub = localhub_factory(initial_commit=True)
        options = {"api_url": hub.url, "token": hub.token, "pacing": None, "flush_interval": 0.05}
        with Log("owner/repo", path="data/interactions", **options) as first:
            for i in range(3):
                first.append({"id": i})
        landed_id = batch_id_of(hub.git("owner/repo", "log", "-1", "--format=%B", "main"))
        assert landed_id is not None
        # The crashed process's spool: records 0..4, batch 0..2 formed, never marked committed.
        spool_dir = tmp_path / "spool"
        # Written by the first version: its name, no identity entry (an upgrade loses nothing,
        # on GitHub's own API, which the hub stands for here).
        monkeypatch.setattr(gitjsonl._spool, "SERVERLESS_SERVER", hub.url)
        with Spool(spool_dir, spool_name_v1("owner/repo", "data/interactions")) as spool:
            for seq in range(1, 6):
                spool.append(seq, json.dumps({"id": seq - 1}).encode() + b"\n")
            landed = Batch(landed_id, (b"",) * 3, 1)
            spool.batch_formed(landed)
            commit = hub.git("owner/repo", "rev-parse", "main").strip()
            base = hub.git("owner/repo", "rev-parse", "main~1").strip()
            spool.batch_pushing(landed, commit, base)
        with Log("owner/repo", path="data/interactions", spool_dir=spool_dir, **options) as log:
            log.flush(timeout=30)
            ids = [record["id"] for record in log.records()]
        assert ids == [0, 1, 2, 3, 4]


class TestLogOnSlots:
    def test_recovery_is_a_warning_with_the_count(
        self, localhub_factory: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Records recovered from a dead process's slot are logged at WARNING, with how many."""
        from gitjsonl import Log
        from gitjsonl.testing import LocalHub

        assert callable(localhub_factory)
        hub: LocalHub = localhub_factory(initial_commit=True)
        name = f"{spool_name('owner/repo', 'data/interactions', None, hub.url)}.0"
        identity = spool_identity("owner/repo", "data/interactions", None, hub.url)
        with Spool(tmp_path, name, identity=identity) as dead:
            fill(dead, 1, 3)
        with (
            caplog.at_level(logging.WARNING, logger="gitjsonl"),
            Log(
                "owner/repo",
                path="data/interactions",
                api_url=hub.url,
                token=hub.token,
                pacing=None,
                spool_dir=tmp_path,
            ),
        ):
            pass
        (warning,) = [r for r in caplog.records if "recovered from the spool" in r.getMessage()]
        assert warning.levelno == logging.WARNING
        assert warning.getMessage().startswith("gitjsonl: 3 record(s)")
        assert [r["id"] for r in committed_records(hub)] == [1, 2, 3]

    def test_a_crash_with_branch_none_is_committed_by_a_restart_naming_the_branch(
        self, localhub_factory: object, tmp_path: Path
    ) -> None:
        """Records spooled by a Log with branch=None reach the branch when it restarts as "main"."""
        from gitjsonl import Log
        from gitjsonl.testing import LocalHub

        assert callable(localhub_factory)
        hub: LocalHub = localhub_factory(initial_commit=True)
        name = f"{spool_name('owner/repo', 'data/interactions', None, hub.url)}.0"
        identity = spool_identity("owner/repo", "data/interactions", None, hub.url)
        with Spool(tmp_path, name, identity=identity) as dead:
            fill(dead, 1, 3)
        with Log(
            "owner/repo",
            path="data/interactions",
            branch="main",
            api_url=hub.url,
            token=hub.token,
            pacing=None,
            flush_interval=0.05,
            spool_dir=tmp_path,
        ):
            deadline = time.monotonic() + 20
            while "append" not in hub.git("owner/repo", "log", "--format=%s", "main"):
                assert time.monotonic() < deadline, "the adopted records were never committed"
                time.sleep(0.05)
        assert [r["id"] for r in committed_records(hub)] == [1, 2, 3]
        assert not (tmp_path / f"{name}.spool").exists()

    def test_two_servers_with_one_repository_name_keep_their_own_records(
        self, localhub_factory: object, tmp_path: Path
    ) -> None:
        """Sharing a spool_dir, a Log on one server never commits what another server's Log left."""
        from gitjsonl import Log
        from gitjsonl.testing import LocalHub

        assert callable(localhub_factory)
        one: LocalHub = localhub_factory(initial_commit=True)
        other: LocalHub = localhub_factory(initial_commit=True)
        # What a Log on `one` killed with 3 records unsent leaves in the shared folder.
        name = f"{spool_name('owner/repo', 'data/interactions', None, one.url)}.0"
        identity = spool_identity("owner/repo", "data/interactions", None, one.url)
        with Spool(tmp_path, name, identity=identity) as dead:
            fill(dead, 1, 3)
        options: dict[str, Any] = {"pacing": None, "flush_interval": 0.05, "spool_dir": tmp_path}
        with Log(
            "owner/repo", path="data/interactions", api_url=other.url, token=other.token, **options
        ) as log:
            log.append({"id": 100})
            log.flush(timeout=30)  # the flusher looked for dead slots before this batch
        assert [r["id"] for r in committed_records(other)] == [100]
        assert len(parse_spool((tmp_path / f"{name}.spool").read_bytes()).lines) == 3
        with Log(
            "owner/repo", path="data/interactions", api_url=one.url, token=one.token, **options
        ) as log:
            log.flush(timeout=30)
        assert [r["id"] for r in committed_records(one)] == [1, 2, 3]

    def test_a_dead_slots_records_count_in_stats_as_the_logs_own(
        self, localhub_factory: object, tmp_path: Path
    ) -> None:
        """stats() counts the records and commits of a slot the Log adopted (committed, batches)."""
        from gitjsonl.testing import LocalHub

        assert callable(localhub_factory)
        hub: LocalHub = localhub_factory(initial_commit=True)
        dead = dead_slot_of(tmp_path, hub.url, 1, 3)
        with adopter(hub, tmp_path) as log:
            log.append({"id": 100})
            log.flush(timeout=30)  # a dead slot's batch goes first, one a turn
            stats = log.stats()
        assert [r["id"] for r in committed_records(hub)] == [1, 2, 3, 100]
        assert not dead.exists()
        assert (stats.committed, stats.batches, stats.pending) == (4, 2, 0)

    def test_a_failing_dead_slot_does_not_hold_back_the_logs_own_records(
        self, localhub_factory: object, tmp_path: Path
    ) -> None:
        """A dead slot's batch that failed waits out the flusher's backoff while flush() commits
        the Log's own records (a failure the caller's records never met is not raised to its
        flush(), but stats() tell it), and it goes after them."""
        from gitjsonl.testing import Fault, LocalHub

        assert callable(localhub_factory)
        hub: LocalHub = localhub_factory(initial_commit=True)
        dead = dead_slot_of(tmp_path, hub.url, 1, 3)
        hub.add_fault(Fault(method="POST", action="error", status=403, times=1))
        # A clock that stands still: a failure's backoff never ends by itself.
        with adopter(hub, tmp_path, flush_interval=0.05, clock=lambda: 0.0) as log:
            log.append({"id": 100})
            log.flush(timeout=30)  # the dead slot's batch went first, failed; ours went on
            stats = log.stats()
            assert stats.failures == 1  # told; cleared from last_error once ours landed
            assert [r["id"] for r in committed_records(hub)] == [100]
            log.append({"id": 101})  # ours landed: the backoff starts afresh, theirs go first
            log.flush(timeout=30)
        assert [r["id"] for r in committed_records(hub)] == [100, 1, 2, 3, 101]
        assert not dead.exists()
        assert log.stats().last_error is None


def dead_slot_of(tmp_path: Path, api_url: str, first: int, last: int) -> Path:
    """Slot 1 of a Log on localhub that was killed with records first..last unsent (slot 0
    is free: the next Log claims it and adopts this one)."""
    name = f"{spool_name('owner/repo', 'data/interactions', None, api_url)}.1"
    identity = spool_identity("owner/repo", "data/interactions", None, api_url)
    with Spool(tmp_path, name, identity=identity) as dead:
        fill(dead, first, last)
    return tmp_path / f"{name}.spool"


def adopter(hub: Any, tmp_path: Path, **options: Any) -> Any:
    """A Log on localhub's owner/repo spooling in ``tmp_path``, where it adopts dead slots."""
    from gitjsonl import Log

    where = {"path": "data/interactions", "spool_dir": tmp_path, "pacing": None}
    return Log("owner/repo", api_url=hub.url, token=hub.token, **where, **options)
