"""What every command shares: the program's name, the exit statuses, the one-line messages.

``_cli`` (the parser and the dispatch) and ``_commands`` (the commands) both speak
through these, so they live in neither: ``_cli`` imports ``_commands`` only when a
command runs, and ``_commands`` needs nothing of ``_cli``. Like ``_cli``, this module
imports nothing heavy.
"""

from __future__ import annotations

import sys

from ._terminal import fit, printable

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "PROG",
    "UsageError",
    "error",
    "say",
    "warn",
]

PROG = "gitjsonl"

#: The exit statuses of the table in ``_cli``'s docstring.
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line that cannot run (exit status 2)."""


def error(message: str) -> None:
    """One ``gitjsonl: error: ...`` line on standard error."""
    sys.stderr.write(f"{PROG}: error: {printable(message)}\n")


def warn(message: str) -> None:
    """One ``gitjsonl: warning: ...`` line on standard error."""
    sys.stderr.write(f"{PROG}: warning: {printable(message)}\n")


def say(text: str) -> None:
    """One line of a command's report on standard output, as the terminal can show it."""
    sys.stdout.write(fit(printable(text), sys.stdout) + "\n")
