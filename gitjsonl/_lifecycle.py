"""Process lifecycle: flush live logs at interpreter exit, and stay correct across ``fork()``.

Every ``Log`` registers itself here (a weak registry: registering keeps
nothing alive). Two process-wide hooks are installed once:

- ``atexit``: each live log is closed (flushed) within a bounded grace period,
  the smallest of its own ``exit_grace`` and what is left of the longest one;
  how many records could not be committed is reported (logged at ERROR) and
  returned. The flusher threads are daemons, so without this a process that
  ends leaves its pending records behind (in the spool, if there is one).
- ``os.register_at_fork(after_in_child=...)``: in a forked child each log drops
  the records its parent still has pending (the parent commits them; the
  child re-sending them would duplicate them), gets fresh locks (a lock held
  by another parent thread at fork time would never be released in the
  child), a fresh HTTP connection pool and a flusher thread of its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["DEFAULT_EXIT_GRACE", "flush_all_at_exit", "live_logs", "register", "unregister"]

logger = logging.getLogger("gitjsonl")

#: Seconds a log may take to commit its pending records at interpreter exit.
DEFAULT_EXIT_GRACE = 10.0


class Managed(Protocol):
    """What the registry needs from a log."""

    @property
    def exit_grace(self) -> float: ...

    def exit_flush(self, timeout: float) -> int:
        """Close within ``timeout``; the number of records left uncommitted."""
        ...

    def after_fork_in_child(self) -> None:
        """Forget the parent's pending records; new locks, connections and flusher."""
        ...


class _Registry:
    """The live logs, and whether the process-wide hooks are installed."""

    def __init__(self) -> None:
        self.logs: weakref.WeakSet[Managed] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.installed = False


_registry = _Registry()


def register(log: Managed) -> None:
    """Track ``log`` for exit flushing and fork safety (installs the hooks on first use)."""
    with _registry.lock:
        _registry.logs.add(log)
        if not _registry.installed:
            atexit.register(_at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
            _registry.installed = True


def unregister(log: Managed) -> None:
    """Stop tracking ``log`` (it was closed)."""
    with _registry.lock:
        _registry.logs.discard(log)


def live_logs() -> list[Managed]:
    """The logs registered and not yet closed."""
    with _registry.lock:
        return list(_registry.logs)


def flush_all_at_exit(clock: Callable[[], float] = time.monotonic) -> int:
    """Close every live log within its grace period; the number of records left uncommitted."""
    now = clock
    logs = live_logs()
    if not logs:
        return 0
    deadline = now() + max(log.exit_grace for log in logs)
    left = 0
    for log in logs:
        remaining = max(0.0, min(log.exit_grace, deadline - now()))
        try:
            left += log.exit_flush(remaining)
        except Exception:  # never let one log stop the others from flushing
            logger.exception("gitjsonl: error while flushing a log at exit")
    if left:
        logger.error(
            "gitjsonl: %d record(s) could not be committed before the interpreter exited "
            "(kept in the spool if spool_dir is set, otherwise lost)",
            left,
        )
    return left


def _at_exit() -> None:
    flush_all_at_exit()


def _after_fork_in_child() -> None:
    _registry.lock = threading.Lock()  # another parent thread may have held it at fork time
    for log in list(_registry.logs):
        try:
            log.after_fork_in_child()
        except Exception:
            logger.exception("gitjsonl: could not reset a log after fork")
