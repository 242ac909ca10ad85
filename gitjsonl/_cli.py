"""The ``gitjsonl`` command line: append, tail, cat, stats, verify, migrate, serve, demo.

Every command reads the same global options (``--repo``, ``--path``,
``--branch``, ``--api-url``, the token), accepted before or after the command
name. Errors are one line on standard error (``gitjsonl: error: ...``) and exit
status 1 (2 for a usage error); ``--debug`` shows the traceback instead.
Progress of long work goes to standard error, and only when it is a terminal.
Every line printed goes through ``_terminal`` (``printable``, ``json_line``): what
a server or a file says never drives the terminal or forges a line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from ._budget import MemoryStore, budget_for, host_budget
from ._checkout import read_checkout
from ._config import (
    DEFAULT,
    DEFAULT_API_URL,
    DEFAULT_LOG_PATH,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_SEGMENT_BYTES,
    api_url_from_env,
    app_from_env,
    budget_dir_from_env,
    check_api_url,
    check_branch,
    check_path,
    check_repo,
    coordinator_from,
    legacy_path_for,
    repo_from_env,
    token_from_env,
)
from ._doctor import (
    coordinator_check,
    credentials_kind,
    diagnose,
    format_checks,
    gather,
    passed,
    spool_line,
)
from ._exceptions import (
    AuthenticationError,
    EmptyRepository,
    GitJsonlError,
    NotFound,
    RecordError,
)
from ._github import Credentials, GitHubRepo, app_installation_auth
from ._inspect import Inspection, find_problems, inspect_log, stats_figures, total_records
from ._pacing import Pacing, budget_stats, describe_budget, describe_pacing, prune
from ._progress import Progress, isatty
from ._reader import LogReader
from ._records import BadLine, encode_record, parse_line
from ._redact import redact, server_text
from ._redis import Coordinator, CoordinatorInfo, RedisStore, coordinator_for
from ._stats import BudgetStats
from ._terminal import json_line, printable
from ._turn import BranchTurns
from ._version import __version__

if TYPE_CHECKING:
    from ._log import Log

__all__ = ["main"]

PROG = "gitjsonl"

logger = logging.getLogger("gitjsonl")


class UsageError(Exception):
    """A command line that cannot run (exit status 2)."""


# -- output helpers --------------------------------------------------------------------------


class _StderrHandler(logging.Handler):
    """Library warnings as ``gitjsonl: warning: ...``, on whatever ``sys.stderr`` is now."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "gitjsonl_raised", False) and self.level > logging.DEBUG:
            return  # main() prints the same error once, as its last line
        message = redact(record.getMessage()).removeprefix("gitjsonl: ")
        sys.stderr.write(f"{PROG}: {record.levelname.lower()}: {printable(message)}\n")


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {printable(message)}\n")


def _warn(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {printable(message)}\n")


def _say(text: str) -> None:
    """One line of a command's report on standard output."""
    sys.stdout.write(printable(text) + "\n")


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
    )
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
        "with advice for each that fails. Exit 0 only when every required check passes.",
    )
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    debug = bool(getattr(args, "debug", False))
    handler = _StderrHandler(logging.DEBUG if debug else logging.WARNING)
    logger.addHandler(handler)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (`| head`): that is not an error
        return 0
    except KeyboardInterrupt:
        return 130
    except UsageError as exc:
        if debug:
            raise
        parser.print_usage(sys.stderr)
        _error(str(exc))
        return 2
    except (GitJsonlError, OSError) as exc:
        if debug:
            raise
        _error(_explain(exc, args))
        return 1
    except Exception as exc:  # one line, never a traceback, unless --debug
        if debug:
            raise
        # Not ours (GitHub's answers become GitHubErrors in _github): still, one scrubbed line.
        shown = server_text(str(exc))
        _error(f"unexpected {type(exc).__name__}: {shown} (run with --debug for details)")
        return 1
    finally:
        logger.removeHandler(handler)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return _COMMANDS[args.command](args)
    except EmptyRepository:
        if args.command in ("tail", "cat"):
            return 0  # a repository without a commit holds a log without records
        raise


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


# -- connecting ------------------------------------------------------------------------------


@dataclass
class _Target:
    """The log a command works on."""

    repo: GitHubRepo
    name: str
    path: str
    branch: str | None
    credentials: Credentials
    allow_public: bool
    coordinator: str | None = field(default=None, repr=False)  # may hold a password
    _resolved: str | None = field(default=None, repr=False)

    def branch_name(self) -> str:
        if self._resolved is None:
            self._resolved = self.branch or self.repo.default_branch()
        return self._resolved

    def reader(self) -> LogReader:
        return LogReader(
            self.repo,
            path=self.path,
            branch=self.branch_name,
            legacy_path=legacy_path_for(self.path),
            default_branch=self.branch is None,
        )

    def log(self) -> Log:
        from ._log import Log  # the writer thread only exists for commands that write

        return Log(
            self.name,
            path=self.path,
            token=self.credentials.token,
            auth=self.credentials.auth,
            branch=self.branch,
            api_url=self.credentials.api_url,
            allow_public=self.allow_public,
            allow_insecure_http=self.credentials.allow_insecure_http,
            coordinator=self.coordinator,
        )


def _credentials(args: argparse.Namespace) -> tuple[str | None, object | None]:
    """(token, auth): --token, --token-file, $GITHUB_TOKEN, or a GitHub App from the environment."""
    token: str | None = getattr(args, "token", None)
    auth: object | None = None
    if token:
        _warn("--token shows in the process list; prefer GITHUB_TOKEN or --token-file")
    elif getattr(args, "token_file", None):
        token = _read_text(args.token_file, "--token-file").strip()
        if not token:
            raise UsageError(f"{args.token_file} is empty")
    else:
        token = token_from_env()
        if token is None:
            auth = _app_auth()
    args.credentials = bool(token or auth)
    return token, auth


def _app_auth() -> object | None:
    try:
        app = app_from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if app is None:
        return None
    app_id, key_file, installation = app
    key = _read_text(key_file, "GITHUB_APP_PRIVATE_KEY_FILE")
    return app_installation_auth(app_id, key, installation)


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what}: {path} is not UTF-8 text") from exc


def _target(args: argparse.Namespace) -> _Target:
    name = getattr(args, "repo", None) or repo_from_env()
    if not name:
        raise UsageError("--repo OWNER/NAME is required (or set GITHUB_REPOSITORY)")
    branch = getattr(args, "branch", None)
    try:
        args.repo = check_repo(name)
        path = check_path(str(getattr(args, "path", DEFAULT_LOG_PATH)), what="--path")
        if branch is not None:
            check_branch(branch)
        insecure = bool(getattr(args, "allow_insecure_http", False))
        api_url = check_api_url(
            getattr(args, "api_url", None) or api_url_from_env(), allow_insecure_http=insecure
        )
        coordinator = coordinator_from(getattr(args, "coordinator", None) or DEFAULT)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    token, auth = _credentials(args)
    try:
        who = Credentials(api_url, token, auth, allow_insecure_http=insecure)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    return _Target(
        repo=GitHubRepo(name, who),
        name=name,
        path=path,
        branch=branch,
        credentials=who,
        allow_public=bool(getattr(args, "allow_public", False)),
        coordinator=coordinator,
    )


# -- append ----------------------------------------------------------------------------------


def _parse_record(text: str, where: str) -> dict[str, Any]:
    """The record one argument or stdin line holds, judged as ``Log.append`` would judge it."""
    parsed = parse_line(text)
    if isinstance(parsed, BadLine):
        raise RecordError(f"{where}: {parsed}")
    try:
        encode_record(
            parsed, DEFAULT_MAX_RECORD_BYTES
        )  # the size, as a Log with defaults checks it
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}") from exc
    return parsed


def _read_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every record of the command line or stdin, all checked before any is appended."""
    if args.records:
        return [_parse_record(text, f"argument {i}") for i, text in enumerate(args.records, 1)]
    if isatty(sys.stdin):
        raise UsageError("no records: pass JSON arguments or pipe JSON lines to stdin")
    records = []
    for number, text in enumerate(sys.stdin, start=1):
        if text.strip():
            records.append(_parse_record(text, f"stdin line {number}"))
    return records


def cmd_append(args: argparse.Namespace) -> int:
    records = _read_records(args)
    target = _target(args)
    if not records:
        _warn("no records to append")
        return 0
    log = target.log()
    try:
        for record in records:
            log.append(record)
    finally:
        # close() flushes and raises when the records could not be committed.
        log.close(timeout=None)
    stats = log.stats()
    noun = "record" if stats.committed == 1 else "records"
    sys.stderr.write(
        printable(
            f"{PROG}: appended {stats.committed} {noun} in {stats.batches} commit(s), "
            f"last {stats.last_commit}"
        )
        + "\n"
    )
    return 0


# -- reading ---------------------------------------------------------------------------------


def cmd_tail(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise UsageError("-n must be 0 or more")
    reader = _target(args).reader()
    if not args.follow:
        for record in reader.tail(args.n):
            sys.stdout.write(json_line(record))
        sys.stdout.flush()
        return 0
    for record in reader.follow(args.n, interval=args.interval, max_polls=args.max_polls):
        sys.stdout.write(json_line(record))
        sys.stdout.flush()  # each record as it lands, whatever buffers stdout
    return 0


def cmd_cat(args: argparse.Namespace) -> int:
    progress = Progress()
    count = 0
    try:
        records = (
            read_checkout(args.checkout)
            if args.checkout is not None
            else _target(args).reader().records()
        )
        for record in records:
            sys.stdout.write(json_line(record))
            count += 1
            if count % 10000 == 0:
                progress(f"{count:,} records")
        sys.stdout.flush()
    finally:
        progress.done()
    return 0


# -- stats and verify ------------------------------------------------------------------------


def _read_log(args: argparse.Namespace) -> tuple[_Target, Inspection]:
    """One read of the whole log for stats and verify, with progress on a terminal."""
    target = _target(args)
    progress = Progress()
    try:
        found = inspect_log(
            target.repo, path=target.path, branch=target.branch_name(), progress=progress
        )
    finally:
        progress.done()
    return target, found


def cmd_stats(args: argparse.Namespace) -> int:
    target, found = _read_log(args)
    figures = stats_figures(found, repo=target.name, path=target.path)
    budget = _host_budget(target)
    figures["budget"] = None if budget is None else dataclasses.asdict(budget)
    if args.json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
        return 0
    rows = [
        ("log", f"{target.name}:{target.path} on {found.branch} at {found.head[:12]}"),
        ("segments", _span(figures)),
        ("records", f"{figures['records']:,}"),
        ("bytes", f"{figures['bytes']:,}"),
    ]
    if figures["legacy_file"] is not None:
        rows.append(("legacy file", f"{figures['legacy_file']} (not migrated; read first)"))
    elif figures["migrated"]:
        rows.append(("migrated", "yes (manifest present)"))
    rows.append(("commits", f"{figures['commits']:,} ({figures['batches']:,} gitjsonl batches)"))
    rows.append(("writers", f"{figures['writers']:,}"))
    for label, key in (("first commit", "first_commit"), ("last commit", "last_commit")):
        commit = figures[key]
        if commit:
            rows.append((label, f"{commit['sha'][:12]} {commit['date']}"))
    rows.append(("budget", describe_budget(budget)))
    for label, value in rows:
        _say(f"{label:<13}{value}")
    return 0


def _span(figures: dict[str, Any]) -> str:
    if not figures["segments"]:
        return "0"
    return f"{figures['segments']} ({figures['first_segment']} .. {figures['last_segment']})"


def cmd_verify(args: argparse.Namespace) -> int:
    target, found = _read_log(args)
    problems = find_problems(found, args.segment_bytes)
    for problem in problems:
        _say(problem)
    where = f"{target.name}:{target.path} on {found.branch}"
    summary = (
        f"{total_records(found):,} records in {len(found.segments)} segment(s), "
        f"{len(found.commits):,} commit(s)"
    )
    if problems:
        _say(f"{len(problems)} problem(s) in {where}: {summary}")
        return 1
    _say(f"OK {where}: {summary}; every line parses, history is linear")
    return 0


# -- migrate, serve, demo --------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    from ._migrate import migrate

    target = _target(args)
    if args.segment_bytes < 1:
        raise UsageError("--segment-bytes must be positive")
    if args.from_clone and not args.recover_history:
        raise UsageError("--from-clone reads the history for --recover-history; give both")
    progress = Progress()
    # The migration's writes come out of the token's budget, shared with every Log on it.
    directory = budget_dir_from_env()
    coordinator = None if target.coordinator is None else coordinator_for(target.coordinator)
    budget = budget_for(Pacing(), target.credentials, directory=directory, coordinator=coordinator)
    # Its commit takes the branch's turn with the Logs writing it, as they take it in turn.
    turns = BranchTurns(
        target.credentials, repo=target.name, directory=directory, coordinator=coordinator
    )
    try:
        result = migrate(
            target.repo,
            source=args.source or legacy_path_for(target.path),
            destination=args.destination or target.path,
            branch=target.branch,
            segment_bytes=args.segment_bytes,
            dry_run=args.dry_run,
            remove_source=args.remove_source,
            recover=args.recover_history,
            force=args.force,
            progress=progress,
            budget=budget,
            from_clone=args.from_clone,
            progress_dir=directory,  # a walk stopped half-way goes on from here
            turns=turns,
        )
    finally:
        turns.release()
        budget.release()
        progress.done()
    for line in result.report().split("\n"):
        _say(line)
    if not result.ok:
        _error("the migration's read-back does not match what was planned")
        return 1
    return 0


def _host_budget(target: _Target) -> BudgetStats | None:
    """What the coordinator (when one answers) or this host's ledger says of the token's
    write budget (None: no ledger yet)."""
    if target.coordinator is not None:
        shared = _shared_budget(target.coordinator, target)
        if shared is not None:
            return shared
    directory = budget_dir_from_env()
    if directory is None:
        return None
    return host_budget(Pacing(), target.credentials, directory=directory)


def _shared_budget(url: str, target: _Target) -> BudgetStats | None:
    """The token's budget as the coordinator holds it; None when Redis does not answer."""
    coordinator = Coordinator(url)
    try:
        store = RedisStore(coordinator, target.credentials.key, MemoryStore(), writer=False)
        state = store.load_only(coordinator)
    except Exception:  # unreachable, or answering nonsense: the host's ledger is asked instead
        return None
    finally:
        coordinator.close()
    now = time.time()
    return budget_stats(prune(state, now, Pacing()), now, Pacing(), shared="hosts")


def _coordinator_info(target: _Target) -> CoordinatorInfo | None:
    """What the coordinator answers, for ``doctor`` (None: no coordinator)."""
    if target.coordinator is None:
        return None
    return Coordinator(target.coordinator).info(target.credentials.key)


def cmd_doctor(args: argparse.Namespace) -> int:
    target = _target(args)
    facts = gather(
        target.repo,
        branch=target.branch,
        credentials=credentials_kind(target.credentials),
        allow_public=target.allow_public,
        pacing=f"{describe_pacing(Pacing())}; now: {describe_budget(_host_budget(target))}",
    )
    checks = [
        *diagnose(facts),
        coordinator_check(_coordinator_info(target)),
        spool_line(args.spool_dir or None),
    ]
    _say(f"gitjsonl doctor: {target.name}:{target.path}")
    sys.stdout.write(format_checks(checks) + "\n")  # each item printable (format_checks)
    ok = passed(checks)
    _say("ready to write" if ok else "not ready: fix what is marked ✗")
    return 0 if ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    if getattr(args, "serve_missing", False):
        raise GitJsonlError("serve needs gitjsonl's test tools: pip install 'gitjsonl[test]'")
    from .testing._serve import run_serve

    return run_serve(args)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.records < 1 or args.writers < 1:
        raise UsageError("--records and --writers must be positive")
    from ._demo import run_demo

    return run_demo(records=args.records, writers=args.writers, logs=args.logs)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "append": cmd_append,
    "tail": cmd_tail,
    "cat": cmd_cat,
    "stats": cmd_stats,
    "verify": cmd_verify,
    "doctor": cmd_doctor,
    "migrate": cmd_migrate,
    "serve": cmd_serve,
    "demo": cmd_demo,
}
