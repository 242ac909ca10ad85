"""gitjsonl: a durable, append-only JSON-lines log kept in a GitHub repository."""

from __future__ import annotations

from ._async import AsyncLog
from ._checkout import read_checkout
from ._config import Identity
from ._doctor import Check
from ._ephemeral import warn_if_ephemeral
from ._exceptions import (
    AnswerTooLarge,
    AuthenticationError,
    BufferFull,
    ContentsConflict,
    CorruptLog,
    EmptyRepository,
    FlushTimeout,
    GitHubError,
    GitJsonlError,
    LogClosed,
    MalformedAnswer,
    MigrationError,
    NotFastForward,
    NotFound,
    PermissionDenied,
    ProtectedBranch,
    PublicRepository,
    RateLimited,
    RecordError,
    RecordTooLarge,
    RepositoryMoved,
    SpoolError,
    SpoolLocked,
    StaleRead,
    TransientError,
    ValidationFailed,
)
from ._github_log import GithubLog
from ._handler import GitJsonlHandler
from ._log import Log
from ._pacing import Pacing
from ._retry import RetryPolicy
from ._stats import BudgetStats, LogStats
from ._version import __version__

__all__ = [
    "AnswerTooLarge",
    "AsyncLog",
    "AuthenticationError",
    "BudgetStats",
    "BufferFull",
    "Check",
    "ContentsConflict",
    "CorruptLog",
    "EmptyRepository",
    "FlushTimeout",
    "GitHubError",
    "GitJsonlError",
    "GitJsonlHandler",
    "GithubLog",
    "Identity",
    "Log",
    "LogClosed",
    "LogStats",
    "MalformedAnswer",
    "MigrationError",
    "NotFastForward",
    "NotFound",
    "Pacing",
    "PermissionDenied",
    "ProtectedBranch",
    "PublicRepository",
    "RateLimited",
    "RecordError",
    "RecordTooLarge",
    "RepositoryMoved",
    "RetryPolicy",
    "SpoolError",
    "SpoolLocked",
    "StaleRead",
    "TransientError",
    "ValidationFailed",
    "__version__",
    "read_checkout",
    "warn_if_ephemeral",
]
