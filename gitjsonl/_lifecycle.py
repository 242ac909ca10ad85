"""Process lifecycle: commit what is pending when the process is told to stop, at interpreter
exit, and stay correct across ``fork()``.

Every ``Log`` registers itself here (a weak registry: registering keeps
nothing alive). Process-wide hooks are installed once:

- ``atexit``: each live log is closed (flushed) before a deadline shorter than
  the host's shutdown grace (``shutdown_grace``: Docker's 10 s by default),
  counted from the SIGTERM when one came, else from the exit; a log that could
  not commit everything says in one ERROR line how many and why. The flusher
  threads are daemons, so without this a process that ends leaves its pending
  records behind (in the spool, if there is one).
- ``SIGTERM`` (POSIX, main thread, unless ``$GITJSONL_SIGTERM=off``): a handler
  that chains whatever handler was there. When the signal comes it notes the
  time (the grace starts then), tells every live log to commit what is pending
  now (a notifier thread does, woken through a ``queue.SimpleQueue``, whose
  ``put`` is reentrant: a signal handler may run while the main thread holds
  a log's lock), and then:

  ======================  ===========================================================
  handler it replaced     what it does
  ======================  ===========================================================
  a Python callable       blocks SIGTERM in the main thread (while a log is live) and
                          calls it. A server that re-raises the signal once its
                          graceful shutdown is over, with the default disposition
                          (uvicorn does), leaves it pending: the exit flush runs,
                          then unblocks it, and the process dies of SIGTERM as the
                          server meant.
  the default             while a log is live, holds the signal back the same way
                          and raises ``SystemExit(143)``: the interpreter unwinds,
                          the exit flush runs, and the process dies of the SIGTERM
                          (the default would have killed it on the spot). A second
                          SIGTERM meanwhile changes nothing: the flush is bounded.
                          With no live log: the default, at once.
  ignored, or from C      not installed.
  ======================  ===========================================================

- ``os.register_at_fork(after_in_child=...)``: in a forked child each log drops
  the records its parent still has pending (the parent commits them; the
  child re-sending them would duplicate them), gets fresh locks (a lock held
  by another parent thread at fork time would never be released in the
  child), a fresh HTTP connection pool and a flusher thread of its own; the
  SIGTERM state starts afresh.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
import queue
import signal
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from ._config import close_deadline, sigterm_handler_wanted

__all__ = [
    "close_time_left",
    "flush_all_at_exit",
    "live_logs",
    "register",
    "report_loss",
    "time_left",
    "unregister",
    "why_not_committed",
]

logger = logging.getLogger(__name__)


def _unheard(where: logging.Logger) -> bool:
    """Whether a record logged at ``where`` reaches no handler but ``NullHandler``s (an app
    that configured no logging: the package's ``NullHandler`` then silences ``lastResort``)."""
    current: logging.Logger | None = where
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return False
        if not current.propagate:
            return True
        current = current.parent
    return True


def report_loss(where: logging.Logger, message: str, *args: object, **kwargs: Any) -> None:
    """Log ``message`` at ERROR: records were lost or left behind. Data loss is never silent:
    where no handler would hear it (the app configured no logging), it is written to
    standard error too, as Python's ``lastResort`` would have without the ``NullHandler``."""
    where.error(message, *args, **kwargs)
    last = logging.lastResort
    if last is not None and where.isEnabledFor(logging.ERROR) and _unheard(where):
        record = where.makeRecord(where.name, logging.ERROR, "", 0, message, args, None)
        # Standard error closed at exit: nothing more can be said.
        with contextlib.suppress(Exception):
            last.handle(record)


#: What a process dies of when the host stops it; absent on some platforms.
SIGTERM: signal.Signals | None = getattr(signal, "SIGTERM", None)


class Managed(Protocol):
    """What the registry needs from a log."""

    @property
    def shutdown_grace(self) -> float: ...

    def exit_flush(self, timeout: float) -> int:
        """Close within ``timeout``; the number of records left uncommitted."""
        ...

    def shutdown_started(self) -> None:
        """The process was told to stop: commit what is pending now (appends still welcome)."""
        ...

    def after_fork_in_child(self) -> None:
        """Forget the parent's pending records; new locks, connections and flusher."""
        ...


class _Registry:
    """The live logs, the process-wide hooks, and what SIGTERM left (the global state)."""

    def __init__(self) -> None:
        self.logs: weakref.WeakSet[Managed] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.installed = False
        self.sigterm_installed = False
        self.previous: Any = None  # the SIGTERM handler ours chains
        self.sigterm_at: float | None = None  # monotonic time of the first SIGTERM
        self.exiting = False  # SystemExit raised for a default disposition
        self.blocked = False  # SIGTERM blocked in the main thread until the exit flush
        self.sigterms: queue.SimpleQueue[int] | None = None  # what the notifier waits on


_registry = _Registry()


def register(log: Managed) -> None:
    """Track ``log`` for exit flushing, SIGTERM and fork safety (installs the hooks)."""
    with _registry.lock:
        _registry.logs.add(log)
        if not _registry.installed:
            atexit.register(_at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
            _registry.installed = True
        if not _registry.sigterm_installed:
            _install_sigterm()


def unregister(log: Managed) -> None:
    """Stop tracking ``log`` (it was closed)."""
    with _registry.lock:
        _registry.logs.discard(log)


def live_logs() -> list[Managed]:
    """The logs registered and not yet closed."""
    with _registry.lock:
        return list(_registry.logs)


# -- deadlines -------------------------------------------------------------------------------


def time_left(grace: float, since: float | None, now: float) -> float:
    """Seconds a close may still take at ``now``: its deadline within ``grace`` counts from
    ``since`` (the SIGTERM, or when the exit flush began), or from ``now`` when there is none
    or the grace is over (the host did not kill the process when it would have).       pure"""
    start = now if since is None or now - since >= grace else since
    return max(0.0, start + close_deadline(grace) - now)


def close_time_left(grace: float, clock: Callable[[], float] = time.monotonic) -> float:
    """What ``close()`` may take by default: the deadline within ``grace``, counted from the
    SIGTERM this process received, if any, else from now."""
    return time_left(grace, _registry.sigterm_at, clock())


def why_not_committed(
    *,
    paused_for: float,
    budget_wait: float,
    last_error: str | None,
    retries: int = 0,
    wall_now: float,
) -> str:
    """Why records are still pending when a close's deadline came, for its ERROR line.  pure

    ``paused_for``: seconds GitHub told the token to wait; ``budget_wait``: seconds
    until the token's write budget has room for the next batch; ``last_error``: the
    last attempt's failure; ``retries``: requests of the batch in flight that failed and
    were being retried; ``wall_now``: the time (``time.time()``) to name the end.
    """

    def until(seconds: float) -> str:
        end = datetime.datetime.fromtimestamp(wall_now + seconds, tz=datetime.timezone.utc)
        return f"{end:%H:%M:%S} UTC, {seconds:.0f} s later"

    if paused_for > 0:
        return f"GitHub paused the token's writes until {until(paused_for)}"
    if budget_wait > 0:
        return f"the token's write budget had no room for the batch until {until(budget_wait)}"
    if last_error is not None:
        return f"the last attempt failed: {last_error}"
    if retries > 0:
        return f"the batch was being retried after {retries} failed request(s) (see DEBUG lines)"
    return "a batch was still on its way to GitHub"


# -- interpreter exit ------------------------------------------------------------------------


def flush_all_at_exit(clock: Callable[[], float] = time.monotonic) -> int:
    """Close every live log before its deadline; the number of records left uncommitted.

    The deadlines count from the SIGTERM when one came, else from now; each log
    that could not commit everything has said so in one ERROR line (``close()``).
    """
    logs = live_logs()
    if not logs:
        return 0
    since = clock() if _registry.sigterm_at is None else _registry.sigterm_at
    left = 0
    for log in logs:
        try:
            left += log.exit_flush(time_left(log.shutdown_grace, since, clock()))
        except Exception:  # never let one log stop the others from flushing
            logger.exception("gitjsonl: error while flushing a log at exit")
    return left


def _at_exit() -> None:
    try:
        flush_all_at_exit()
    finally:
        _release_sigterm()


# -- SIGTERM ---------------------------------------------------------------------------------


def _install_sigterm() -> None:
    """Install the handler (called with the registry's lock held); where it cannot be, don't."""
    if (
        SIGTERM is None
        or not hasattr(signal, "pthread_sigmask")  # Windows: nothing to hold the signal with
        or threading.current_thread() is not threading.main_thread()  # a later Log may be
        or not sigterm_handler_wanted()
    ):
        return
    previous = signal.getsignal(SIGTERM)
    if previous is None or previous == signal.SIG_IGN:  # a C handler cannot be chained
        _registry.sigterm_installed = True
        return
    _start_notifier()
    _registry.previous = previous
    signal.signal(SIGTERM, _on_sigterm)
    _registry.sigterm_installed = True


def _start_notifier() -> None:
    sigterms: queue.SimpleQueue[int] = queue.SimpleQueue()
    _registry.sigterms = sigterms
    threading.Thread(
        target=_notify_logs, args=(sigterms,), name="gitjsonl-sigterm", daemon=True
    ).start()


def _notify_logs(sigterms: queue.SimpleQueue[int]) -> None:
    """The notifier thread: each item is a SIGTERM; tell every live log."""
    while True:
        sigterms.get()
        for log in live_logs():
            try:
                log.shutdown_started()
            except Exception:  # never end the notifier
                logger.exception("gitjsonl: could not tell a log that the process is stopping")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Runs in the main thread between two bytecodes, maybe inside a log's locked
    # section: it takes no lock; the notifier thread does the rest.
    if _registry.sigterm_at is None:
        _registry.sigterm_at = time.monotonic()
    if _registry.sigterms is not None:
        _registry.sigterms.put(signum)  # reentrant, takes no lock another frame may hold
    previous = _registry.previous
    pending = len(_registry.logs) > 0  # no lock: a weak set's length takes none
    if callable(previous):
        if pending:  # before calling it: it may raise (SystemExit, KeyboardInterrupt)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
            _registry.blocked = True
        previous(signum, frame)
        return
    if not pending:  # every log is closed: end the process as the default would have
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        return
    if not _registry.exiting:
        _registry.exiting = True
        # Held until the exit flush is done, then it ends the process as the default
        # would have (a supervisor tells "stopped" from "failed" by it: gunicorn does).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
        _registry.blocked = True
        signal.raise_signal(signum)
        raise SystemExit(128 + signum)


def _release_sigterm() -> None:
    """After the exit flush: let a SIGTERM held back meanwhile end the process, as the
    server that raised it meant (the default, not our handler, which would hold it again)."""
    if not _registry.blocked or SIGTERM is None:
        return
    _registry.blocked = False
    if SIGTERM in signal.sigpending() and signal.getsignal(SIGTERM) is _on_sigterm:
        signal.signal(SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {SIGTERM})


# -- fork ------------------------------------------------------------------------------------


def _after_fork_in_child() -> None:
    _registry.lock = threading.Lock()  # another parent thread may have held it at fork time
    _registry.sigterm_at = None
    _registry.exiting = False
    if _registry.blocked and SIGTERM is not None:
        _registry.blocked = False
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {SIGTERM})
    if _registry.sigterms is not None:
        _start_notifier()  # the parent's is not in this process
    for log in list(_registry.logs):
        try:
            log.after_fork_in_child()
        except Exception:
            logger.exception("gitjsonl: could not reset a log after fork")
