"""The write protocol's vocabulary: the actions a step asks its driver to carry out.

Like h11's events: plain frozen values, no behaviour. A step of
``_protocol.CommitProtocol`` is a generator (``Steps``) that yields one of these
and is sent its answer (or has the failure thrown in); ``_commit.Committer``
carries them out against the world, ``gitjsonl.testing.sim`` against a model
of it. Each says what its answer is.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._batch import LANDED_SEARCH_LIMIT, Batch
from ._chain import Head, Link
from ._exceptions import RateLimited

__all__ = [
    "READ_CALLS",
    "SEAM_CALLS",
    "WRITE_CALLS",
    "Acquire",
    "Action",
    "Drop",
    "Ignored",
    "Intend",
    "Keep",
    "Learn",
    "LeaveTurn",
    "Now",
    "Pushing",
    "ReadHistory",
    "Request",
    "Reserve",
    "Restore",
    "Say",
    "Settle",
    "Sleep",
    "Steps",
    "TakeTurn",
    "WaitForBudget",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Request:
    """A GitHub call through the seam (``_seam.GitHubSeam``): answered with its value, or
    its exception thrown in."""

    call: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReadHistory:
    """The commits below ``tip``, newest first, as (sha, message): read until ``base`` or a
    commit of batch ``batch``, at most ``limit`` (pages are read lazily)."""

    tip: str
    base: str
    batch: str
    limit: int = LANDED_SEARCH_LIMIT


@dataclass(frozen=True, slots=True)
class Sleep:
    """A retry's wait; ``after`` is the failure retried (told to ``stats()`` first)."""

    seconds: float
    after: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Now:
    """The wall clock, seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class TakeTurn:
    """Hold the branch's turn: answered with the ``_turn.Taken`` (the chain as it stands)."""

    branch: str


@dataclass(frozen=True, slots=True)
class LeaveTurn:
    """Let the turn go (the link kept, if any, is written to the chain)."""


@dataclass(frozen=True, slots=True)
class Intend:
    """Leave ``link`` pending in the turn at once: its ref update is about to go (None:
    the one intended was refused or will never be settled)."""

    link: Link | None


@dataclass(frozen=True, slots=True)
class Keep:
    """The link our batch made, what this process keeps of it, and the record's copy."""

    link: Link
    content: Head | None  # None: writers here read the folder (a migration's commit)
    shared: object


@dataclass(frozen=True, slots=True)
class Drop:
    """The branch contradicts the link to ``commit``: it leaves the turn, with those after."""

    commit: str


@dataclass(frozen=True, slots=True)
class Reserve:
    """Reserve ``cost`` writes for ``batch``: answered (token or None, seconds to wait)."""

    cost: int
    force: bool
    batch: str


@dataclass(frozen=True, slots=True)
class WaitForBudget:
    """Sleep until the budget has room (out of the turn): answered True when cut short."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Acquire:
    """Wait for room for ``cost`` writes outside a batch, then reserve them: a token."""

    cost: int


@dataclass(frozen=True, slots=True)
class Settle:
    """The writes reserved under ``token`` cost ``used``."""

    token: str
    used: int


@dataclass(frozen=True, slots=True)
class Learn:
    """GitHub answered a secondary limit: the budget learns from it."""

    error: RateLimited


@dataclass(frozen=True, slots=True)
class Restore:
    """The branch's commits of the last hour (sha, seconds): answered with the writes the
    budget did not know of (an ``OSError`` when its store failed)."""

    commits: list[tuple[str, float]]
    server_now: float


@dataclass(frozen=True, slots=True)
class Pushing:
    """``batch``'s ref update to ``commit`` on ``base`` is about to go (the spool notes it)."""

    batch: Batch
    commit: str
    base: str


@dataclass(frozen=True, slots=True)
class Say:
    """A line for the log: level, message, arguments (``logging`` style)."""

    level: int
    message: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class Ignored:
    """Entries of log ``path``'s folder that are not segments (warned once a process)."""

    path: str
    problems: tuple[str, ...]


Action = (
    Request
    | ReadHistory
    | Sleep
    | Now
    | TakeTurn
    | LeaveTurn
    | Intend
    | Keep
    | Drop
    | Reserve
    | WaitForBudget
    | Acquire
    | Settle
    | Learn
    | Restore
    | Pushing
    | Say
    | Ignored
)

#: A step of the protocol: yields actions, is sent their answers, returns its result.
Steps = Generator[Action, Any, T]


#: The calls that write (each is counted: the commit's trailer, the budget's settlement).
WRITE_CALLS = frozenset(
    {
        "create_blob",
        "create_tree",
        "post_tree",
        "create_commit",
        "update_ref",
        "create_ref",
        "put_file",
    }
)

#: The reads a ``Request`` may name (``_seam.GitHubSeam``'s, and ``create_tree``'s sibling).
READ_CALLS = frozenset(
    {
        "repository",
        "default_branch",
        "get_head",
        "get_commit",
        "recent_commits",
        "read_folder",
        "tree_entries",
        "get_blob",
    }
)

#: Every call a ``Request`` may name: a driver looks up nothing else on its repository.
SEAM_CALLS = READ_CALLS | WRITE_CALLS
