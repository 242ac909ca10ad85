"""gitjsonl: a durable, append-only JSON-lines log kept in a GitHub repository."""

from __future__ import annotations

from ._exceptions import (
    AuthenticationError,
    BufferFull,
    ContentsConflict,
    CorruptLog,
    EmptyRepository,
    FlushTimeout,
    GitHubError,
    GitJsonlError,
    LogClosed,
    MigrationError,
    NotFastForward,
    NotFound,
    PermissionDenied,
    RateLimited,
    RecordError,
    RecordTooLarge,
    SpoolError,
    SpoolLocked,
    TransientError,
    ValidationFailed,
)
from ._version import __version__

__all__ = [
    "AuthenticationError",
    "BufferFull",
    "ContentsConflict",
    "CorruptLog",
    "EmptyRepository",
    "FlushTimeout",
    "GitHubError",
    "GitJsonlError",
    "LogClosed",
    "MigrationError",
    "NotFastForward",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "RecordError",
    "RecordTooLarge",
    "SpoolError",
    "SpoolLocked",
    "TransientError",
    "ValidationFailed",
    "__version__",
]
