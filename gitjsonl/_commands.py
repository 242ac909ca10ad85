"""The ``gitjsonl`` commands, each ``cmd_*(args) -> exit status``; ``_cli`` parses and dispatches.

This module imports what the commands need (PyGithub through ``_github``,
requests, redis-py...): ``_cli`` imports it only once a command line has been
parsed, so ``--help`` and a usage error never pay for it. Exit statuses are
``_cli``'s table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._budget import MemoryStore, budget_for, host_budget
from ._checkout import read_checkout
from ._config import (
    DEFAULT,
    DEFAULT_LOG_PATH,
    DEFAULT_MAX_RECORD_BYTES,
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
from ._console import EXIT_OK, EXIT_PROBLEMS, PROG, UsageError, error, say, warn
from ._doctor import (
    checks_json,
    coordinator_check,
    credentials_kind,
    diagnose,
    format_checks,
    gather,
    passed,
    spool_line,
)
from ._exceptions import EmptyRepository, GitJsonlError, RecordError
from ._github import Credentials, GitHubRepo, app_installation_auth
from ._inspect import (
    Inspection,
    find_problems,
    inspect_log,
    stats_figures,
    total_records,
    verify_json,
)
from ._pacing import Pacing, budget_stats, describe_budget, describe_pacing, prune
from ._progress import Progress, isatty
from ._reader import LogReader
from ._records import BadLine, encode_record, parse_line
from ._redis import Coordinator, CoordinatorInfo, RedisStore, coordinator_for
from ._stats import BudgetStats
from ._terminal import fit, json_line, printable, speaks_unicode
from ._turn import BranchTurns

if TYPE_CHECKING:
    from ._log import Log

__all__ = ["COMMANDS"]


def _print_json(document: dict[str, Any]) -> None:
    """One JSON document on standard output: ASCII, so any terminal and pipe takes it."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


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
        warn("--token shows in the process list; prefer GITHUB_TOKEN or --token-file")
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
        warn("no records to append")
        return EXIT_OK
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
    return EXIT_OK


# -- reading ---------------------------------------------------------------------------------


def _ascii_only() -> bool:
    """Records as ASCII JSON (the same JSON) when standard output is not UTF-8."""
    return not speaks_unicode(sys.stdout)


def cmd_tail(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise UsageError("-n must be 0 or more")
    reader = _target(args).reader()
    ascii_only = _ascii_only()
    try:
        if not args.follow:
            for record in reader.tail(args.n):
                sys.stdout.write(json_line(record, ascii_only=ascii_only))
            sys.stdout.flush()
            return EXIT_OK
        for record in reader.follow(args.n, interval=args.interval, max_polls=args.max_polls):
            sys.stdout.write(json_line(record, ascii_only=ascii_only))
            sys.stdout.flush()  # each record as it lands, whatever buffers stdout
    except EmptyRepository:
        pass  # a repository without a commit holds a log without records
    return EXIT_OK


def cmd_cat(args: argparse.Namespace) -> int:
    progress = Progress()
    count = 0
    ascii_only = _ascii_only()
    try:
        records = (
            read_checkout(args.checkout)
            if args.checkout is not None
            else _target(args).reader().records()
        )
        for record in records:
            sys.stdout.write(json_line(record, ascii_only=ascii_only))
            count += 1
            if count % 10000 == 0:
                progress(f"{count:,} records")
        sys.stdout.flush()
    except EmptyRepository:
        pass  # a repository without a commit holds a log without records
    finally:
        progress.done()
    return EXIT_OK


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
        _print_json(figures)
        return EXIT_OK
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
        say(f"{label:<13}{value}")
    return EXIT_OK


def _span(figures: dict[str, Any]) -> str:
    if not figures["segments"]:
        return "0"
    return f"{figures['segments']} ({figures['first_segment']} .. {figures['last_segment']})"


def cmd_verify(args: argparse.Namespace) -> int:
    target, found = _read_log(args)
    problems = find_problems(found, args.segment_bytes)
    if args.json:
        _print_json(verify_json(found, problems, repo=target.name, path=target.path))
        return EXIT_PROBLEMS if problems else EXIT_OK
    for problem in problems:
        say(problem)
    where = f"{target.name}:{target.path} on {found.branch}"
    summary = (
        f"{total_records(found):,} records in {len(found.segments)} segment(s), "
        f"{len(found.commits):,} commit(s)"
    )
    if problems:
        say(f"{len(problems)} problem(s) in {where}: {summary}")
        return EXIT_PROBLEMS
    say(f"OK {where}: {summary}; every line parses, history is linear")
    return EXIT_OK


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
        say(line)
    if not result.ok:
        error("the migration's read-back does not match what was planned")
        return EXIT_PROBLEMS
    return EXIT_OK


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
    if args.json:
        _print_json(checks_json(checks, repo=target.name, path=target.path))
        return EXIT_OK if passed(checks) else EXIT_PROBLEMS
    ascii_only = not speaks_unicode(sys.stdout)
    say(f"gitjsonl doctor: {target.name}:{target.path}")
    # Each item is printable (format_checks); fit() for what the terminal cannot show.
    sys.stdout.write(fit(format_checks(checks, ascii_only=ascii_only), sys.stdout) + "\n")
    if passed(checks):
        say("ready to write")
        return EXIT_OK
    say(f"not ready: fix what is marked {'x' if ascii_only else '✗'}")
    return EXIT_PROBLEMS


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


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
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
