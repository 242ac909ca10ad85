"""The one-line progress display on standard error, for the command line and the demo.

Long work (reading every segment, uploading a migration) redraws one status
line in place. It is silent unless the stream is a terminal, so piped or
captured output never holds carriage returns.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["Progress", "isatty"]


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal; False for anything that cannot say (closed, replaced)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """A one-line status on standard error, redrawn in place; silent unless it is a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = isatty(self._stream)
        self._width = 0

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        text = message[:120]
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def done(self) -> None:
        """Clear the line, so that what is printed next starts on a clean one."""
        if self.enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
