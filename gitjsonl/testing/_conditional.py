"""Cache validators and conditional requests, as GitHub answers them.

GitHub sends ``ETag`` and ``Cache-Control`` on every successful answer with a
body, ``Last-Modified`` on the reads of a repository, its refs, its contents,
its commits (the octokit/fixtures recordings, tests/octokit_fixtures) and its
trees (github3.py's, tests/github3py_cassettes), and
``Vary: Accept, Authorization, Cookie, X-GitHub-OTP``: the validators belong to
one token, so a second token's ``If-None-Match`` with the first one's ETag gets
the full answer. A ``GET`` whose ``If-None-Match`` names the current ETag (or,
without one, whose ``If-Modified-Since`` is not before ``Last-Modified``) is
answered ``304 Not Modified`` with no body (RFC 9110 section 13.2.2 gives
``If-None-Match`` the precedence).

"Making a conditional request does not count against your primary rate limit
if a 304 response is returned and the request was made while correctly
authorized with an Authorization header" (GitHub's REST docs, "Best practices
for using the REST API", use conditional requests if appropriate): the server
gives the request back to the token's budget (``RateLimiter.refund``); an
anonymous 304 still counts.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping

#: GitHub's Vary on an answer to a token (two Vary lines there, merged here).
VARY = "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding, X-Requested-With"
#: What GitHub caches an answer for; "public" when no Authorization was sent.
CACHE_CONTROL = "{scope}, max-age=60, s-maxage=60"
#: The reads that carry Last-Modified on GitHub (the repository itself, refs,
#: trees, git commits, contents, commits; not blobs or branches, as github3.py's
#: recordings show): paths after /repos/{owner}/{repo}.
_LAST_MODIFIED = re.compile(
    r"\A(?:|/git/refs?(?:/.*)?|/git/trees/.*|/git/commits/.*|/contents(?:/.*)?|/commits(?:/.*)?)\Z"
)
#: How many (URL, token) pairs keep the time their answer last changed.
MEMORY = 10_000


class Validators:
    """Adds validators to answers and turns a matching conditional ``GET`` into a 304.

    ``Last-Modified`` is the whole second at which this hub first gave the
    current answer to that URL and token (strictly later at every change, so
    a change within one second is never hidden behind an older date).
    Forgotten pairs (past :data:`MEMORY`) start again at now: a later date,
    never a 304 that should have been a 200.
    """

    def __init__(self, clock: Callable[[], float], memory: int = MEMORY) -> None:
        self._clock = clock
        self._memory = memory
        self._lock = threading.Lock()
        self._since: OrderedDict[tuple[str, str], tuple[str, int]] = OrderedDict()

    def headers(
        self,
        method: str,
        url: str,
        rest: str,
        request_headers: Mapping[str, str],
        answer: tuple[int, str, bytes],
    ) -> tuple[dict[str, str], bool]:
        """GitHub's cache headers for an answer ``(status, content type, body)`` to a request
        for ``url`` (``rest``: its path after the repository), and whether they make it a 304.

        ``request_headers`` are the request's, lower-cased.
        """
        status, content_type, body = answer
        if not 200 <= status < 300 or not body:
            return {}, False
        authorization = request_headers.get("authorization", "").strip()
        digest = hashlib.sha256()
        for part in (authorization.encode(), content_type.encode(), body):
            digest.update(len(part).to_bytes(8, "big") + part)
        reading = method in ("GET", "HEAD")
        # GitHub's ETags are weak on reads, strong on what a write created.
        etag = f'W/"{digest.hexdigest()}"' if reading else f'"{digest.hexdigest()}"'
        headers = {
            "ETag": etag,
            "Cache-Control": CACHE_CONTROL.format(scope="private" if authorization else "public"),
            "Vary": VARY,
        }
        since = None
        if reading and status == 200 and _LAST_MODIFIED.match(rest):
            since = self._changed_at(url, authorization, etag)
            headers["Last-Modified"] = email.utils.formatdate(since, usegmt=True)
        not_modified = reading and status == 200 and _not_modified(request_headers, etag, since)
        if not_modified:
            # GitHub's 304 repeats the ETag strong, without W/ (as issue 24 reports it; no
            # recorded 304 of GitHub's was found in the corpus searched to confirm it).
            headers["ETag"] = etag.removeprefix("W/")
        return headers, not_modified

    def _changed_at(self, url: str, authorization: str, etag: str) -> int:
        key = (url, hashlib.sha256(authorization.encode()).hexdigest())
        now = int(self._clock())
        with self._lock:
            known = self._since.get(key)
            if known is not None and known[0] == etag:
                self._since.move_to_end(key)
                return known[1]
            since = now if known is None else max(now, known[1] + 1)
            self._since[key] = (etag, since)
            self._since.move_to_end(key)
            while len(self._since) > self._memory:
                self._since.popitem(last=False)
        return since


def _not_modified(request_headers: Mapping[str, str], etag: str, since: int | None) -> bool:
    """Whether the request's conditions say the client already holds this answer."""
    match = request_headers.get("if-none-match")
    if match is not None:
        # Weak comparison (RFC 9110 section 8.8.3.2): W/ does not matter.
        mine = etag.removeprefix("W/")
        given = [tag.strip().removeprefix("W/") for tag in match.split(",")]
        return "*" in given or mine in given
    modified = request_headers.get("if-modified-since")
    if modified is None or since is None:
        return False
    try:
        when = email.utils.parsedate_to_datetime(modified)
    except (TypeError, ValueError, IndexError):
        return False  # an unreadable date is ignored, as RFC 9110 says
    if when.tzinfo is None:
        return False
    return since <= when.timestamp()
