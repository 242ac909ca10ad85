"""Every exception gitjsonl raises.

No exception of PyGithub, requests, urllib3 or tenacity ever reaches a caller:
the one module that talks to GitHub (``_github.py``) translates them into these,
chaining the original (``raise ... from exc``) for debugging.

Class tree::

    GitJsonlError
    ├── RecordError (ValueError)        append(): this record was refused; others are unaffected
    │   └── RecordTooLarge
    ├── BufferFull                      append(): max_pending_bytes reached and on_full="raise"
    ├── LogClosed                       append()/flush() after close()
    ├── FlushTimeout (TimeoutError)     flush(timeout=...) ran out; records stay pending
    ├── GitHubError                     GitHub (or the network) said no; .status, .message
    │   ├── AuthenticationError         401: the token is missing, wrong or revoked
    │   ├── PermissionDenied            403 without a rate limit: the token may not write here
    │   │   ├── ProtectedBranch         the branch is protected (branch protection or a ruleset)
    │   │   └── PublicRepository        the repository is public and allow_public is not set
    │   ├── NotFound                    404: no such repository, branch, path or object
    │   ├── RateLimited                 403/429 primary or secondary rate limit; .retry_after
    │   ├── EmptyRepository             409 "Git Repository is empty."
    │   ├── NotFastForward              422: the branch moved under us (retried internally)
    │   ├── ContentsConflict            409 on a Contents API PUT: the file changed under us
    │   ├── ValidationFailed            other 422s: GitHub refused the request's content
    │   ├── RepositoryMoved             3xx: renamed or transferred and not followed; .location
    │   └── TransientError              5xx, timeout or dropped connection; .ambiguous
    │       ├── StaleRead               a read of the branch is behind our own writes
    │       └── MalformedAnswer         an answer GitHub would not send (not JSON, wrong types)
    │           └── AnswerTooLarge      an answer larger than GitHub ever sends for that request
    ├── CorruptLog                      a reader met a log it cannot make sense of
    ├── MigrationError                  gitjsonl migrate refused or failed verification
    └── SpoolError                      the local spool is unusable
        └── SpoolLocked                 another process holds the spool
"""

from __future__ import annotations

from ._redact import redact

__all__ = [
    "AnswerTooLarge",
    "AuthenticationError",
    "BufferFull",
    "ContentsConflict",
    "CorruptLog",
    "EmptyRepository",
    "FlushTimeout",
    "GitHubError",
    "GitJsonlError",
    "LogClosed",
    "MalformedAnswer",
    "MigrationError",
    "NotFastForward",
    "NotFound",
    "PermissionDenied",
    "ProtectedBranch",
    "PublicRepository",
    "RateLimited",
    "RecordError",
    "RecordTooLarge",
    "RepositoryMoved",
    "SpoolError",
    "SpoolLocked",
    "StaleRead",
    "TransientError",
    "ValidationFailed",
]


class GitJsonlError(Exception):
    """Base class of every gitjsonl exception."""


class RecordError(GitJsonlError, ValueError):
    """A record passed to ``append`` cannot be logged (not JSON, NaN, not an object...)."""


class RecordTooLarge(RecordError):
    """A record's JSON line is larger than ``max_record_bytes``."""


class BufferFull(GitJsonlError):
    """``max_pending_bytes`` is reached and the log's ``on_full`` policy is ``"raise"``."""


class LogClosed(GitJsonlError):
    """The log was closed; it accepts no more records."""


class FlushTimeout(GitJsonlError, TimeoutError):
    """``flush(timeout=...)`` returned before its records were committed; they stay pending."""


class GitHubError(GitJsonlError):
    """GitHub, or the network on the way to it, refused or failed a request.

    ``status`` is the HTTP status (``None`` when no response arrived) and
    ``message`` GitHub's own message, with any credential in it removed and
    cut to ``MESSAGE_LIMIT`` characters (a server may echo the token, or send
    a megabyte of error page).
    """

    MESSAGE_LIMIT = 2000

    def __init__(self, message: str, *, status: int | None = None) -> None:
        message = redact(message)
        if len(message) > self.MESSAGE_LIMIT:
            message = f"{message[: self.MESSAGE_LIMIT]}... ({len(message):,} characters in all)"
        super().__init__(message if status is None else f"{status}: {message}")
        self.status = status
        self.message = message


class AuthenticationError(GitHubError):
    """401 Bad credentials: the token is missing, wrong, expired or revoked."""


class PermissionDenied(GitHubError):
    """403 that is not a rate limit: the token may read but not write, or not even read."""


class ProtectedBranch(PermissionDenied):
    """GitHub refuses every update of this branch (branch protection or a repository ruleset).

    Not retried: give the log a branch of its own (``branch="gitjsonl-log"``),
    which gitjsonl creates from the default branch.
    """


class PublicRepository(PermissionDenied):
    """The repository is public, and a log of what users typed would be published.

    Raised before anything is written, unless the ``Log`` was created with
    ``allow_public=True``.
    """


class NotFound(GitHubError):
    """404: the repository (or branch, path, object) does not exist or the token cannot see it."""


class RateLimited(GitHubError):
    """A primary or secondary rate limit.

    ``retry_after`` is how many seconds GitHub asked us to wait (from ``retry-after``
    or ``x-ratelimit-reset``), or ``None`` when it did not say.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class EmptyRepository(GitHubError):
    """409 Git Repository is empty: the Git Data API needs a first commit."""


class NotFastForward(GitHubError):
    """422 Update is not a fast forward: another commit landed on the branch first."""


class ContentsConflict(GitHubError):
    """409 from a Contents API write: the file's sha is not the one we sent."""


class ValidationFailed(GitHubError):
    """Any other 422: GitHub refused what the request asked for."""


class RepositoryMoved(GitHubError):
    """The repository was renamed or transferred (GitHub answered 301 or 307).

    gitjsonl follows a move by itself (with one warning naming the new
    name); this is raised only when it cannot find where the repository went.
    ``location`` is where GitHub pointed.
    """

    def __init__(self, message: str, *, status: int | None = None, location: str = "") -> None:
        super().__init__(message, status=status)
        self.location = location


class TransientError(GitHubError):
    """A 5xx, a timeout or a dropped connection.

    ``ambiguous`` is true when the request may have been carried out even though
    no success reached us (a write that timed out, or answered 5xx): the caller
    must check before it tries again.
    """

    def __init__(self, message: str, *, status: int | None = None, ambiguous: bool = True) -> None:
        super().__init__(message, status=status)
        self.ambiguous = ambiguous


class MalformedAnswer(TransientError):
    """GitHub answered something it never sends: not JSON, a field missing or of the wrong type
    (a sha that is not 40 hex digits, a negative size), a body cut short.

    A proxy's error page, a truncated transfer or a lying server: retried like
    any transient failure, and ``ambiguous`` for a write (it may have been
    carried out even though its answer cannot be read).
    """


class AnswerTooLarge(MalformedAnswer):
    """An answer larger than GitHub can send for that request; no more than the cap was read."""


class CorruptLog(GitJsonlError):
    """A log on the branch is laid out in a way gitjsonl cannot read."""


class MigrationError(GitJsonlError):
    """``gitjsonl migrate`` refused to run, or its read-back verification failed."""


class SpoolError(GitJsonlError):
    """The local spool file cannot be used."""


class SpoolLocked(SpoolError):
    """Another process holds the spool's lock."""


class StaleRead(TransientError):
    """A read of the branch is behind what we know it holds (GitHub's reads lag writes).

    Retried like a lost race (short waits, many tries) until the reads catch up.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, ambiguous=False)
