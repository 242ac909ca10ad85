"""Files go up as UTF-8 text, not base64: the request body, and the fallbacks."""

from __future__ import annotations

import json
import random

import pytest

from gitjsonl._github import Credentials, GitHubRepo, git_blob_sha, utf8_blob_body
from gitjsonl.testing import LocalHub

from .helpers import PATH, REPO, make_log, segment_files


def content_of(body: bytes) -> bytes:
    """What GitHub stores from a UTF-8 blob body."""
    parsed = json.loads(body)
    assert parsed["encoding"] == "utf-8"
    return str(parsed["content"]).encode("utf-8")


class TestUtf8BlobBody:
    @pytest.mark.parametrize(
        "content",
        [
            b'{"text":"hi"}\n',
            b'{"q":"a \\"quoted\\" word","path":"C:\\\\temp"}\n{"n":2}\n',
            '{"text":"héllo 日本 🙂"}\n'.encode(),
            b'{"a":1}\t \r\n{"b":2}\n',  # whitespace JSON allows between tokens
            b"\x00\x01\x1f\x7f\n",  # a corrupt line read from a segment
            b"",
        ],
        ids=["ascii", "escapes", "non-ascii", "whitespace", "control", "empty"],
    )
    def test_carries_the_exact_bytes(self, content: bytes) -> None:
        """Whatever valid UTF-8 a segment holds, the body decodes to exactly those bytes."""
        body = utf8_blob_body(content)
        assert body is not None
        assert content_of(body) == content

    def test_non_ascii_text_is_not_escaped(self) -> None:
        """Non-ASCII text goes as raw UTF-8, not as six-byte \\u escapes."""
        content = ('{"text":"' + "日本語" * 100 + '"}\n').encode()
        body = utf8_blob_body(content)
        assert body is not None
        assert len(body) < len(content) + 60

    @pytest.mark.parametrize(
        "content",
        [b"\xff\xfe", b'{"a":"\xe9"}\n', b"\xed\xa0\x80"],
        ids=["not-utf8", "latin-1", "surrogate"],
    )
    def test_refuses_what_is_not_utf8(self, content: bytes) -> None:
        """Bytes that are not valid UTF-8 get no text body (they go up as base64)."""
        assert utf8_blob_body(content) is None

    def test_random_json_lines_round_trip(self) -> None:
        """Random records, encoded as gitjsonl encodes them, come back byte for byte."""
        rng = random.Random(5)
        alphabet = 'ab"\\/\n\t\r\x00\x1fé日🙂\u2028'
        for _ in range(200):
            record = {"t": "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))}
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            body = utf8_blob_body(line * 3)
            assert body is not None
            assert content_of(body) == line * 3


class TestUploads:
    def test_a_batch_uploads_its_segment_as_text(self, localhub: LocalHub) -> None:
        """A file of JSON lines goes up as text inside the tree: about its own size on the
        wire, not a third more, and no blob request."""
        with make_log(localhub) as log:
            for i in range(200):
                log.append({"id": i, "text": "une phrase accentuée, " * 10})
            log.flush(timeout=30)
        (segment,) = segment_files(localhub).values()
        assert not [r for r in localhub.requests if r.path.endswith("/git/blobs")]
        (upload,) = [
            r for r in localhub.requests if r.method == "POST" and r.path.endswith("/git/trees")
        ]
        assert len(segment) < upload.bytes_in < len(segment) * 1.1

    def test_a_segment_that_is_not_utf8_goes_as_base64(self, localhub: LocalHub) -> None:
        """A file that is not UTF-8 (a corrupt line merged with a batch) goes up as a base64
        blob, exactly, and the tree names it."""
        localhub.seed_commit(REPO, {f"{PATH}/00000001.jsonl": b'{"id":0}\n\xff\xfe\n'})
        with make_log(localhub, segment_bytes=320) as log:  # files under 20 bytes are merged
            log.append({"id": 1})
        assert segment_files(localhub)["00000001.jsonl"] == b'{"id":0}\n\xff\xfe\n{"id":1}\n'
        (upload,) = [r for r in localhub.requests if r.path.endswith("/git/blobs")]
        assert upload.bytes_in > 4 / 3 * len(b'{"id":0}\n\xff\xfe\n{"id":1}\n')

    def test_a_sha_other_than_gits_is_sent_again_as_base64(
        self, localhub: LocalHub, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If GitHub named the text blob otherwise than git names the bytes, base64 settles it."""
        localhub.seed_commit(REPO, {"README.md": b"x\n"})
        repo = GitHubRepo(REPO, Credentials(localhub.url, localhub.token))
        try:
            monkeypatch.setattr(repo, "_post_blob", lambda body: "0" * 40)
            content = b'{"id":1}\n'
            assert repo.create_blob(content) == git_blob_sha(content)
            assert repo.writes == 2
        finally:
            repo.close()
