"""The naive Contents-API logger against localhub: why gitjsonl exists."""

from __future__ import annotations

import threading

from gitjsonl.testing import LocalHub
from gitjsonl.testing._contents_baseline import ContentsApiLog

REPO = "owner/repo"
PATH = "data/interactions.jsonl"


class TestContentsApiLog:
    """ContentsApiLog: GET the file, append a line, PUT it back."""

    def test_appends_and_loads(self, localhub: LocalHub) -> None:
        """Appends into an empty repository create the file; load_recent reads them back."""
        with ContentsApiLog(localhub.url, localhub.token, REPO) as log:
            assert log.append({"n": 1}) == 201
            assert log.append({"n": 2}) == 200
            assert log.load_recent() == [{"n": 1}, {"n": 2}]
        assert localhub.read_file(REPO, PATH) == b'\n{"n": 1}\n{"n": 2}\n'

    def test_loses_the_log_past_1_mb(self, localhub: LocalHub) -> None:
        """Once the file passes 1 MB, the next append overwrites it with a single record."""
        line = b'{"pad": "' + b"x" * 1000 + b'"}\n'
        localhub.seed_commit(REPO, {PATH: line * 1030})  # just under 1 MB: a fast start
        with ContentsApiLog(localhub.url, localhub.token, REPO) as log:
            size = 0
            while size <= 1024 * 1024:
                assert log.append({"pad": "x" * 1000}) == 200
                current = localhub.read_file(REPO, PATH)
                assert current is not None
                assert current.count(b"\n") >= 1031  # still whole while under 1 MB
                size = len(current)
            assert log.append({"n": "one-more"}) == 200
        after = localhub.read_file(REPO, PATH)
        assert after == b'\n{"n": "one-more"}\n'
        localhub.fsck(REPO)

    def test_concurrent_appends_lose_a_record(self, localhub: LocalHub) -> None:
        """Two appends reading the same sha: one PUT gets 409 and its record is lost."""
        with ContentsApiLog(localhub.url, localhub.token, REPO) as log:
            log.append({"n": 0})
        statuses: list[int] = []
        barrier = threading.Barrier(2)

        class Racing(ContentsApiLog):
            def _get(self) -> tuple[int, str, str | None]:
                got = super()._get()
                barrier.wait()  # both have read the same version before either writes
                return got

        def run(n: int) -> None:
            with Racing(localhub.url, localhub.token, REPO) as log:
                statuses.append(log.append({"n": n}))

        threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200, 409]
        text = localhub.read_file(REPO, PATH)
        assert text is not None
        assert len([line for line in text.splitlines() if line]) == 2
