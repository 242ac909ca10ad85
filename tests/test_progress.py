"""The one-line progress display: redrawn in place on a terminal, silent elsewhere."""

from __future__ import annotations

import io

from gitjsonl._progress import Progress, isatty


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgress:
    def test_silent_unless_a_terminal(self) -> None:
        """Piped or captured output never receives progress lines."""
        stream = io.StringIO()
        progress = Progress(stream)
        progress("reading segment 1/2")
        progress.done()
        assert stream.getvalue() == ""

    def test_redrawn_in_place_and_cleared(self) -> None:
        """Each message overwrites the last (padded over it); done() blanks the line."""
        stream = Terminal()
        progress = Progress(stream)
        progress("reading segment 1/20")
        progress("done 2")
        progress.done()
        assert stream.getvalue() == (
            "\rreading segment 1/20" + "\rdone 2".ljust(21) + "\r" + " " * 6 + "\r"
        )


class TestIsatty:
    def test_a_stream_that_cannot_say_is_no_terminal(self) -> None:
        """A closed stream, or an object without isatty, is not a terminal."""
        closed = io.StringIO()
        closed.close()
        assert not isatty(closed)
        assert not isatty(object())
