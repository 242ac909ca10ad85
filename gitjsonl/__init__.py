"""gitjsonl: a durable, append-only JSON-lines log kept in a GitHub repository.

Every public name is re-exported here, and imported on first use (PEP 562): ``import
gitjsonl`` costs next to nothing, and PyGithub (with requests and cryptography) is loaded
only when something that talks to GitHub is first used. Type checkers see the plain
imports below.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

# Every module logs to a logger named after it, under "gitjsonl"; an application that
# configures no logging hears nothing from a library (the logging HOWTO's advice).
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ._async import AsyncLog
    from ._checkout import read_checkout
    from ._config import Identity, LogConfig, LogOptions
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
    from ._records import json_default
    from ._retry import RetryPolicy
    from ._stats import (
        BudgetStats,
        LogStats,
    )

#: Where each public name lives (the module is imported when the name is first used).
_HOMES: dict[str, str] = {
    "AnswerTooLarge": "._exceptions",
    "AsyncLog": "._async",
    "AuthenticationError": "._exceptions",
    "BudgetStats": "._stats",
    "BufferFull": "._exceptions",
    "Check": "._doctor",
    "ContentsConflict": "._exceptions",
    "CorruptLog": "._exceptions",
    "EmptyRepository": "._exceptions",
    "FlushTimeout": "._exceptions",
    "GitHubError": "._exceptions",
    "GitJsonlError": "._exceptions",
    "GitJsonlHandler": "._handler",
    "GithubLog": "._github_log",
    "Identity": "._config",
    "LogConfig": "._config",
    "LogOptions": "._config",
    "Log": "._log",
    "LogClosed": "._exceptions",
    "LogStats": "._stats",
    "MalformedAnswer": "._exceptions",
    "MigrationError": "._exceptions",
    "NotFastForward": "._exceptions",
    "NotFound": "._exceptions",
    "Pacing": "._pacing",
    "PermissionDenied": "._exceptions",
    "ProtectedBranch": "._exceptions",
    "PublicRepository": "._exceptions",
    "RateLimited": "._exceptions",
    "RecordError": "._exceptions",
    "RecordTooLarge": "._exceptions",
    "RepositoryMoved": "._exceptions",
    "RetryPolicy": "._retry",
    "SpoolError": "._exceptions",
    "SpoolLocked": "._exceptions",
    "StaleRead": "._exceptions",
    "TransientError": "._exceptions",
    "ValidationFailed": "._exceptions",
    "json_default": "._records",
    "read_checkout": "._checkout",
    "warn_if_ephemeral": "._ephemeral",
}

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
    "LogConfig",
    "LogOptions",
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
    "json_default",
    "read_checkout",
    "warn_if_ephemeral",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
