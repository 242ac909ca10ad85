"""``gitjsonl serve``: run localhub until interrupted, printing its URL first.

``add_serve_arguments`` imports nothing heavy: ``gitjsonl --help`` builds it;
``run_serve`` imports the emulator.

``--accept-token`` and ``--accept-read-token`` name the tokens localhub
accepts; ``--token`` and ``--read-token``, their former spelling, still work
with a warning (``--token`` elsewhere is the user's GitHub token).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

#: The repository served when no ``--repo`` is given (the one examples/README.md uses).
DEFAULT_REPO = "owner/repo"


class _Deprecated(argparse.Action):
    """An old spelling of an option: appends as the new one does, and says the new name."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.new_name = kwargs.pop("new_name")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        sys.stderr.write(
            f"gitjsonl serve: warning: {option_string} is deprecated, use {self.new_name}\n"
        )
        getattr(namespace, self.dest).append(values)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` command line (a contract other tools script against)."""
    parser.add_argument(
        "--root",
        type=Path,
        help="folder of owner/name.git repos, kept (default: a temporary folder, removed at exit)",
    )
    parser.add_argument(
        "--repo",
        dest="serve_repos",  # not the global --repo's: `gitjsonl --repo X serve` is refused
        action="append",
        default=[],
        metavar="OWNER/NAME",
        help=f"repository to serve, created empty if missing (repeatable; default {DEFAULT_REPO})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument(
        "--accept-token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="a token localhub accepts, with write access (repeatable; default: any token)",
    )
    parser.add_argument(
        "--accept-read-token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="a read-only token localhub accepts (repeatable)",
    )
    for old, new in (("--token", "--accept-token"), ("--read-token", "--accept-read-token")):
        parser.add_argument(
            old,
            action=_Deprecated,
            new_name=new,
            dest=new[2:].replace("-", "_"),
            help=argparse.SUPPRESS,
        )
    parser.add_argument(
        "--initial-commit", action="store_true", help="new repos get a README.md commit on main"
    )
    parser.add_argument("--faults", type=Path, help="JSON file: a list of fault objects")
    parser.add_argument(
        "--secondary-limits",
        action="store_true",
        help="enforce GitHub's secondary limits (80 writes/minute, 500/hour per token)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for probabilistic faults")
    parser.add_argument(
        "--secondary-limit-status",
        type=int,
        choices=(403, 429),
        default=403,
        help="status of a secondary-limit answer (GitHub sends either)",
    )
    parser.add_argument(
        "--read-lag",
        type=float,
        default=0.0,
        metavar="S",
        help="reads naming a branch see its previous head for S seconds after it moves",
    )
    parser.add_argument(
        "--contents-listing-cap",
        type=int,
        default=1000,
        metavar="N",
        help="entries a Contents API folder listing shows (GitHub: 1000)",
    )
    parser.add_argument(
        "--public",
        action="append",
        default=[],
        metavar="OWNER/NAME",
        help="make this repository public (repositories are private by default; repeatable)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="close a connection idle for S seconds (default 60)",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the first line of stdout is the base URL.

    A bad repository name or faults file is one line on stderr and exit status 2.
    """
    try:
        return _serve(args)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        sys.stderr.write(f"gitjsonl serve: error: {message}\n")
        return 2


def _serve(args: argparse.Namespace) -> int:
    from ._faults import load_faults
    from ._hub import LocalHub
    from ._names import check_full_name
    from ._ratelimit import SecondaryLimits

    tokens: dict[str, str] | None = None
    if args.accept_token or args.accept_read_token:
        tokens = dict.fromkeys(args.accept_read_token, "read")
        tokens.update(dict.fromkeys(args.accept_token, "write"))
    for name in [*args.serve_repos, *args.public]:
        check_full_name(name)
    faults = load_faults(args.faults) if args.faults else []
    repos = tuple(args.serve_repos) or (DEFAULT_REPO,)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalHub(
            root=args.root,
            repos=repos,
            tokens=tokens,
            initial_commit=args.initial_commit,
            secondary_limits=(
                SecondaryLimits(status=args.secondary_limit_status)
                if args.secondary_limits
                else None
            ),
            faults=faults,
            seed=args.seed,
            host=args.host,
            port=args.port,
            idle_timeout=args.idle_timeout,
            read_lag=args.read_lag,
            contents_listing_cap=args.contents_listing_cap,
            public=tuple(args.public),
        ) as hub:
            sys.stdout.write(hub.url + "\n")
            sys.stdout.flush()
            sys.stderr.write(_where(hub.root, kept=args.root is not None, repos=repos))
            sys.stderr.flush()
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _where(root: Path, *, kept: bool, repos: tuple[str, ...]) -> str:
    """The line saying what is served from where, and whether it outlives the server."""
    where = (
        f"in {root}"
        if kept
        else f"in a temporary folder {root}, removed at exit (--root DIR keeps them)"
    )
    return f"gitjsonl serve: serving {', '.join(repos)} {where}\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m gitjsonl.testing serve ...``."""
    parser = argparse.ArgumentParser(prog="python -m gitjsonl.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(sub.add_parser("serve", help="run localhub"))
    args = parser.parse_args(argv)
    return run_serve(args)
