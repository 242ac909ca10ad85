"""The ``gitjsonl`` command line: the parser and the dispatch; the commands live in ``_commands``.

Every log command reads the same global options (``--repo``, ``--path``,
``--branch``, ``--api-url``, the token), accepted before or after the command
name; ``serve`` and ``demo`` read none, and refuse them rather than ignore them
(``gitjsonl --token T serve`` is not ``serve --accept-token T``). Errors are
one line on standard error (``gitjsonl: error: ...``); ``--debug`` shows the
traceback instead. Progress of long work goes to standard error, and only when
it is a terminal. Every line printed goes through
``_terminal`` (``printable``, ``json_line``, ``fit``): what a server or a file
says never drives the terminal or forges a line, and a terminal that is not
UTF-8 gets ASCII.

This module imports no more than argparse and gitjsonl's light modules, so that
``--help``, ``--version`` and a usage error cost little more than starting
Python; a command imports PyGithub, requests and the rest when it runs.

Exit status, the same for every command:

====  ====================================================================
0     done; ``verify``: no problem; ``doctor``: ready to write
1     the command ran and found problems: ``verify`` (problems in the log),
      ``doctor`` (a required check failed), ``migrate`` (the read-back does
      not match the plan), ``demo`` (a record missing or duplicated)
2     usage: a command line argparse refuses, a bad option value (``--repo``,
      ``--path``, ``--api-url``...), no token file, a record ``append``
      refuses (nothing is sent), a log option given to ``serve`` or ``demo``;
      ``serve``: a bad repository name or faults file
3     could not run: GitHub refused or did not answer (bad credentials, not
      found, rate limited...), a file could not be read, or an unexpected error
130   interrupted (Ctrl-C)
====  ====================================================================

With ``--json`` (``stats``, ``verify``, ``doctor``) standard output holds one
JSON document (ASCII, ``indent=2``) when the status is 0 or 1, and nothing when
it is 2 or 3 (the error is on standard error).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._console import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    UsageError,
    error,
)
from ._defaults import DEFAULT_API_URL, DEFAULT_LOG_PATH, DEFAULT_SEGMENT_BYTES
from ._exceptions import AuthenticationError, GitJsonlError, NotFound, RecordError
from ._redact import redact, server_text
from ._terminal import printable
from ._version import __version__

__all__ = ["main"]

#: Where the command line hears every module of the package (loggers are named by module).
_PACKAGE_LOGGER = logging.getLogger("gitjsonl")


# -- output helpers --------------------------------------------------------------------------


class _StderrHandler(logging.Handler):
    """Library warnings as ``gitjsonl: warning: ...``, on whatever ``sys.stderr`` is now."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "gitjsonl_raised", False) and self.level > logging.DEBUG:
            return  # main() prints the same error once, as its last line
        message = redact(record.getMessage()).removeprefix("gitjsonl: ")
        sys.stderr.write(f"{PROG}: {record.levelname.lower()}: {printable(message)}\n")


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the flush at exit cannot fail again."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# -- the parser ------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every log command takes; ``suppress`` leaves unset ones out of the namespace."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("log options")
    group.add_argument(
        "--repo",
        metavar="OWNER/NAME",
        default=default(None),
        help="the repository (default: $GITHUB_REPOSITORY)",
    )
    group.add_argument(
        "--path",
        default=default(DEFAULT_LOG_PATH),
        help=f"the log's folder in the repository (default: {DEFAULT_LOG_PATH})",
    )
    group.add_argument(
        "--branch", default=default(None), help="the branch (default: the repository's default)"
    )
    group.add_argument(
        "--api-url",
        default=default(None),
        help=f"GitHub's API URL (default: $GITHUB_API_URL or {DEFAULT_API_URL})",
    )
    group.add_argument(
        "--coordinator",
        metavar="REDIS_URL",
        default=default(None),
        help="a redis:// URL every host on the token shares its budget and turns through "
        "(default: $GITJSONL_COORDINATOR, else none)",
    )
    group.add_argument("--token-file", default=default(None), help="read the token from this file")
    group.add_argument(
        "--token",
        default=default(None),
        help="the token itself (discouraged: it shows in the process list; "
        "use $GITHUB_TOKEN or --token-file)",
    )
    group.add_argument(
        "--allow-public",
        action="store_true",
        default=default(False),
        help="write even to a public repository (refused by default: a log of what users "
        "typed would be published)",
    )
    group.add_argument(
        "--allow-insecure-http",
        action="store_true",
        default=default(False),
        help="accept an http:// --api-url that is not this machine (refused by default: "
        "the token would cross the network in clear text)",
    )
    group.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks"
    )


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error never repeats a value from the command line.

    A mistyped option (``--tokne ghp_...``) would otherwise echo what followed
    it, possibly a token, into a terminal or a CI log.
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {_redact(message)}\n")


def _redact(message: str) -> str:
    head, colon, rest = message.partition(": ")
    if head in ("unrecognized arguments", "ambiguous option") and colon:
        options = [word.split("=", 1)[0] for word in rest.split() if word.startswith("-")]
        return f"{head}: {' '.join(options) or '(values hidden)'}"
    return re.sub(r"'[^']*'", "(value hidden)", message) if "invalid" in message else message


def build_parser() -> argparse.ArgumentParser:
    # No abbreviations: `migrate --to` must never be read as the global `--token`.
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description="An append-only JSON-lines log kept in a GitHub repository.",
        epilog="The token comes from $GITHUB_TOKEN, or --token-file.",
    )
    _global_options(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    common = _Parser(add_help=False, allow_abbrev=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, allow_abbrev=False, **kwargs)

    append = add(
        "append",
        parents=[common],
        help="append records (JSON arguments, or JSON lines on stdin)",
        description="Append records: each argument is one JSON object; without arguments, "
        "standard input is read as JSON lines (blank lines are skipped). Every record is "
        "checked before anything is sent: one bad line appends nothing.",
    )
    append.add_argument("records", nargs="*", metavar="JSON", help="a JSON object")

    tail = add("tail", parents=[common], help="print the last records")
    tail.add_argument("-n", type=int, default=10, metavar="N", help="how many (default 10)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    tail.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between polls (5)"
    )
    tail.add_argument("--max-polls", type=int, default=None, help=argparse.SUPPRESS)

    cat = add("cat", parents=[common], help="print every record in order (streaming, for pipes)")
    cat.add_argument(
        "--checkout",
        metavar="DIR",
        default=None,
        help="read the log from a checkout instead: DIR is the log's folder in a clone "
        "(no token, no request)",
    )

    stats = add("stats", parents=[common], help="segments, records, bytes, commits, writers")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")

    verify = add(
        "verify",
        parents=[common],
        help="check every line and the history (exit 1 on problems)",
        description="Read the whole log and check every line and the history. "
        "Exit 0: no problem; 1: problems found (listed); 3: could not read the log.",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument(
        "--segment-bytes",
        type=int,
        default=DEFAULT_SEGMENT_BYTES,
        metavar="N",
        help="the segment cap to check against (default 1 MiB)",
    )

    migrate = add(
        "migrate",
        parents=[common],
        help="move a single-file log into segments, in one commit",
        description="Move a single-file JSONL log into gitjsonl's segments in one commit, "
        "verify it by reading it back, and leave a manifest that makes a second run a no-op.",
    )
    migrate.add_argument(
        "--from",
        dest="source",
        metavar="SRC",
        help="the single file (default: the log's path + .jsonl)",
    )
    migrate.add_argument(
        "--to", dest="destination", metavar="DEST", help="the segments' folder (default: --path)"
    )
    migrate.add_argument(
        "--segment-bytes",
        type=int,
        default=DEFAULT_SEGMENT_BYTES,
        metavar="N",
        help="segment cap (1 MiB)",
    )
    migrate.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    keep = migrate.add_mutually_exclusive_group()
    keep.add_argument(
        "--keep-source",
        dest="remove_source",
        action="store_false",
        default=False,
        help="leave the source file in place (default; the manifest tells readers)",
    )
    keep.add_argument(
        "--remove-source",
        dest="remove_source",
        action="store_true",
        help="delete the source in the migration commit",
    )
    migrate.add_argument(
        "--recover-history",
        action="store_true",
        help="restore records that overwrites of the source lost, from its git history",
    )
    migrate.add_argument(
        "--from-clone",
        metavar="DIR",
        help="read that history from a local git clone (no API request for it; git fetch first)",
    )
    migrate.add_argument(
        "--force",
        action="store_true",
        help="migrate even though the destination holds segments (they are renumbered after)",
    )

    doctor = add(
        "doctor",
        parents=[common],
        help="check that this will work: token, repository, push, branch, limits",
        description="Answer 'will this work?' before the first record: one line per check, "
        "with advice for each that fails. Exit 0 only when every required check passes, "
        "1 when one fails.",
    )
    doctor.add_argument("--json", action="store_true", help="print the checklist as JSON")
    doctor.add_argument(
        "--spool-dir",
        default=os.environ.get("GITJSONL_SPOOL_DIR"),
        metavar="DIR",
        help="the spool folder the app uses: says when it looks wiped at a restart "
        "(default $GITJSONL_SPOOL_DIR)",
    )

    serve = add("serve", help="run localhub, a local GitHub API for tests")
    _add_serve_arguments(serve)

    demo = add("demo", help="run writers against an in-process localhub and check the result")
    demo.add_argument("--records", type=int, default=4000, help="records in all (4000)")
    demo.add_argument("--writers", type=int, default=4, help="writer threads (4)")
    demo.add_argument(
        "--logs", type=int, default=2, help="Log instances the threads share, like processes (2)"
    )
    demo.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from .testing._serve import add_serve_arguments
    except ImportError:  # the test tools are not installed: say so when it is run
        parser.set_defaults(serve_missing=True)
        return
    add_serve_arguments(parser)


# -- main ------------------------------------------------------------------------------------


#: What to use instead of a log option given to a command that reads none.
_INSTEAD = {
    "serve": {
        "--token": "serve --accept-token TOKEN names the tokens localhub accepts",
        "--repo": "serve --repo OWNER/NAME, after the command, names the repositories to serve",
    },
}


def _misplaced_log_options(args: argparse.Namespace) -> str | None:
    """What is wrong when log options (``--token``, ``--repo``...) were given to ``serve`` or
    ``demo``, which read none (they would be silently ignored); None when nothing is."""
    if args.command not in ("serve", "demo"):
        return None
    defaults = argparse.ArgumentParser(add_help=False)
    _global_options(defaults, suppress=False)
    given = [
        f"--{dest.replace('_', '-')}"
        for dest, default in vars(defaults.parse_args([])).items()
        if dest != "debug" and getattr(args, dest, default) != default
    ]
    if not given:
        return None
    hints = [_INSTEAD.get(args.command, {}).get(option) for option in given]
    hint = "; ".join(h for h in hints if h)
    return f"{args.command} takes no log option: {', '.join(given)}" + (
        f" ({hint})" if hint else ""
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status (the module docstring's table)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    handler = _StderrHandler(logging.DEBUG if debug else logging.WARNING)
    _PACKAGE_LOGGER.addHandler(handler)
    try:
        misplaced = _misplaced_log_options(args)
        if misplaced is not None:
            raise UsageError(misplaced)
        return _dispatch(args)
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (`| head`): that is not an error
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except UsageError as exc:
        if debug:
            raise
        parser.print_usage(sys.stderr)
        error(str(exc))
        return EXIT_USAGE
    except RecordError as exc:  # a record given on the command line or stdin: nothing sent
        if debug:
            raise
        error(str(exc))
        return EXIT_USAGE
    except (GitJsonlError, OSError) as exc:
        if debug:
            raise
        error(_explain(exc, args))
        return EXIT_FAILED
    except Exception as exc:  # one line, never a traceback, unless --debug
        if debug:
            raise
        # Not ours (GitHub's answers become GitHubErrors in _github): still, one scrubbed line.
        shown = server_text(str(exc))
        error(f"unexpected {type(exc).__name__}: {shown} (run with --debug for details)")
        return EXIT_FAILED
    finally:
        _PACKAGE_LOGGER.removeHandler(handler)


def _dispatch(args: argparse.Namespace) -> int:
    from ._commands import COMMANDS  # PyGithub, requests and the rest: only to run a command

    return COMMANDS[args.command](args)


def _explain(exc: BaseException, args: argparse.Namespace) -> str:
    if isinstance(exc, (AuthenticationError, NotFound)) and not getattr(args, "credentials", None):
        # Without a token GitHub answers 404, not 401, for a private repository.
        return f"{exc} (no token given: set GITHUB_TOKEN or pass --token-file)"
    if isinstance(exc, NotFound):
        return (
            f"{exc}: {getattr(args, 'repo', None)} (the repository, branch or path does not "
            "exist, or the token cannot see it)"
        )
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc) or type(exc).__name__
