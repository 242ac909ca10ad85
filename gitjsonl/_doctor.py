"""``gitjsonl doctor`` and ``Log.check()``: will this work, asked before the first record.

``gather`` does the reading (a handful of GETs, no write) into ``Facts``;
``diagnose`` turns them into a checklist, pure, one ``Check`` per question,
each failed one with a line of advice; ``format_checks`` prints it, and
``checks_json`` is the same checklist for ``gitjsonl doctor --json``::

    {"repo": "owner/name", "path": "data/interactions", "ready": true,
     "checks": [{"name": "credentials", "ok": true, "required": true,
                 "detail": "classic personal access token, accepted", "advice": ""}, ...]}

``ok`` is true (passed), false (failed) or null (information); ``ready`` is
true when no required check failed (``passed``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ._ephemeral import reason as ephemeral_reason
from ._exceptions import AuthenticationError, GitHubError, NotFound
from ._github import Credentials, GitHubRepo, RateBudget, RepoInfo
from ._redis import CoordinatorInfo
from ._terminal import printable

__all__ = [
    "Check",
    "Facts",
    "checks_json",
    "coordinator_check",
    "credentials_kind",
    "diagnose",
    "format_checks",
    "gather",
    "passed",
    "spool_check",
    "spool_line",
]

#: Beyond this much disagreement with GitHub's clock, App JWTs are refused
#: ("'Issued at' claim must be an Integer representing the time in the past").
MAX_CLOCK_SKEW = 30.0
#: Primary rate-limit requests left below which writing is at risk.
LOW_RATE_BUDGET = 100

#: What a token's prefix says it is (GitHub's documented token formats).
_TOKEN_KINDS = (
    ("github_pat_", "fine-grained personal access token"),
    ("ghp_", "classic personal access token"),
    ("ghs_", "GitHub App installation token"),
    ("ghu_", "GitHub App user token"),
    ("gho_", "OAuth token"),
)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist. ``ok`` None: information, neither pass nor fail."""

    name: str
    ok: bool | None
    detail: str
    advice: str = ""
    required: bool = True


@dataclass(frozen=True, slots=True)
class Facts:
    """What ``gather`` found out; every field a plain value."""

    repo: str
    credentials: str  # what kind of credentials, or "none"
    credentials_error: str | None  # GitHub refused them (401), else None
    info: RepoInfo | None
    repo_error: str | None
    branch: str | None  # the branch the log writes (resolved)
    branch_given: bool  # chosen with branch=, not the default branch
    branch_exists: bool | None
    protected: bool | None
    allow_public: bool
    rate: RateBudget | None
    local_time: float
    pacing: str


def credentials_kind(credentials: Credentials) -> str:
    """A name for the credentials, from the token's documented prefix; never the token."""
    token, auth = credentials.token, credentials.auth
    if auth is not None:
        return f"{type(auth).__name__} (PyGithub credentials)"
    if not token:
        return "none"
    for prefix, kind in _TOKEN_KINDS:
        if token.startswith(prefix):
            return kind
    return "token of unknown kind"


def gather(
    repo: GitHubRepo,
    *,
    branch: str | None,
    credentials: str,
    allow_public: bool,
    pacing: str,
    clock: Callable[[], float] = time.time,
) -> Facts:
    """Ask GitHub everything ``diagnose`` needs; reads only."""
    credentials_error = rate = info = repo_error = None
    try:
        rate = repo.rate_limit()
    except AuthenticationError as exc:
        credentials_error = str(exc)
    except GitHubError:
        pass  # a server without /rate_limit (some GitHub Enterprise set-ups)
    if credentials_error is None:
        try:
            info = repo.repository(fresh=True)
        except GitHubError as exc:
            repo_error = str(exc)
    resolved = branch or (info.default_branch if info else None)
    exists = protected = None
    if info is not None and resolved is not None:
        try:
            protected = repo.branch_protected(resolved)
            exists = True
        except NotFound:
            exists = False
        except GitHubError:
            pass
    return Facts(
        repo=repo.full_name,
        credentials=credentials,
        credentials_error=credentials_error,
        info=info,
        repo_error=repo_error,
        branch=resolved,
        branch_given=branch is not None,
        branch_exists=exists,
        protected=protected,
        allow_public=allow_public,
        rate=rate,
        local_time=clock(),
        pacing=pacing,
    )


def coordinator_check(info: CoordinatorInfo | None) -> Check:
    """The coordinator's line: none, unreachable (writing goes on per host), or its figures."""
    if info is None:
        return Check(
            "coordinator",
            None,
            "none: the budget and turns are shared by the processes of this host only "
            "(--coordinator or $GITJSONL_COORDINATOR shares them across hosts)",
            required=False,
        )
    if not info.reachable:
        return Check(
            "coordinator",
            False,
            f"{info.url} does not answer ({info.detail})",
            advice="writers use this host's ledger until it answers; start Redis or fix the URL",
            required=False,
        )
    rtt = 0.0 if info.round_trip is None else info.round_trip * 1000
    return Check(
        "coordinator",
        True,
        f"{info.url}: Redis {info.detail}, round trip {rtt:.1f} ms, "
        f"{info.writers} writer(s) sharing the token now",
        required=False,
    )


def spool_check(folder: str | None, ephemeral: str | None) -> Check:
    """The spool's line: none, looks wiped at a restart (``_ephemeral.guess``'s reason),
    or nothing says so. Never required: a guess, and a spool is optional."""
    if folder is None:
        return Check(
            "spool",
            None,
            "none: what is pending lives in memory until committed "
            "(spool_dir= or $GITJSONL_SPOOL_DIR keeps it on disk)",
            required=False,
        )
    if ephemeral is not None:
        return Check(
            "spool",
            False,
            f"{folder} looks ephemeral, a guess: {ephemeral}",
            advice="a spool there keeps nothing across a restart: put it on storage that "
            "survives (a Space's persistent storage under /data, a Docker volume, a "
            "Kubernetes volume claim)",
            required=False,
        )
    return Check(
        "spool",
        None,
        f"{folder}: nothing says it is wiped at a restart (a guess from the environment, "
        "the container markers and the mounts: make sure it is on storage that survives)",
        required=False,
    )


def spool_line(folder: str | os.PathLike[str] | None) -> Check:
    """``spool_check`` for the spool ``folder`` on this host (``_ephemeral.reason``)."""
    if folder is None:
        return spool_check(None, None)
    return spool_check(os.fspath(folder), ephemeral_reason(folder))


def diagnose(facts: Facts) -> list[Check]:
    """The checklist for ``facts``, in the order a person would fix things."""
    checks = [_credentials(facts), _visible(facts)]
    info = facts.info
    if info is not None:
        checks += [_push(info), _visibility(info, facts.allow_public), *_branch(facts)]
    if facts.rate is not None:
        checks.append(_rate(facts.rate))
        checks.append(_clock(facts.rate, facts.local_time))
    checks.append(Check("pacing", None, facts.pacing, required=False))
    return checks


def passed(checks: list[Check]) -> bool:
    """True when no required check failed."""
    return all(check.ok is not False for check in checks if check.required)


#: The marks of a checklist line: passed, failed, information, and advice's arrow.
UNICODE_MARKS: dict[bool | str | None, str] = {True: "✓", False: "✗", None: "·", "advice": "→"}
#: The same for a terminal that cannot show them (``LANG=C``).
ASCII_MARKS: dict[bool | str | None, str] = {True: "+", False: "x", None: "-", "advice": "->"}


def format_checks(checks: list[Check], *, ascii_only: bool = False) -> str:
    """One line per check (✓, ✗ or ·; +, x or - when ``ascii_only``), each failure
    followed by its advice.

    Each line is ``printable``: a detail quotes what GitHub or Redis said.
    """
    marks = ASCII_MARKS if ascii_only else UNICODE_MARKS
    lines = []
    for check in checks:
        lines.append(printable(f"{marks[check.ok]} {check.name}: {check.detail}"))
        if check.ok is False and check.advice:
            lines.append(printable(f"    {marks['advice']} {check.advice}"))
    return "\n".join(lines)


def checks_json(checks: list[Check], *, repo: str, path: str) -> dict[str, Any]:
    """The checklist as ``gitjsonl doctor --json`` prints it (the module docstring's shape)."""
    return {
        "repo": repo,
        "path": path,
        "ready": passed(checks),
        "checks": [asdict(check) for check in checks],
    }


# -- the checks --------------------------------------------------------------------------


def _credentials(facts: Facts) -> Check:
    if facts.credentials == "none":
        return Check(
            "credentials",
            False,
            "no token",
            "set GITHUB_TOKEN (a Space secret), pass --token-file, or set GITHUB_APP_ID, "
            "GITHUB_APP_PRIVATE_KEY_FILE and GITHUB_APP_INSTALLATION_ID",
        )
    if facts.credentials_error is not None:
        return Check(
            "credentials",
            False,
            f"{facts.credentials}, refused: {facts.credentials_error}",
            "the token is wrong, expired or revoked: make a new one",
        )
    return Check("credentials", True, f"{facts.credentials}, accepted")


def _visible(facts: Facts) -> Check:
    if facts.info is not None:
        return Check("repository", True, f"{facts.info.full_name} is visible to the token")
    return Check(
        "repository",
        False,
        f"{facts.repo}: {facts.repo_error or 'not checked'}",
        "check the name; a fine-grained token must list this repository under "
        "'Repository access'; an organisation may have to approve the token",
    )


def _push(info: RepoInfo) -> Check:
    if info.can_push is None:
        return Check("push", None, "GitHub did not say (App token): the first write will tell")
    if info.can_push:
        return Check("push", True, "the token may push")
    return Check(
        "push",
        False,
        "the token may read but not push",
        "give it 'Contents: Read and write' (fine-grained) or the 'repo' scope (classic)",
    )


def _visibility(info: RepoInfo, allow_public: bool) -> Check:
    if info.private:
        return Check("visibility", True, "private")
    if allow_public:
        return Check("visibility", True, "public, allowed with --allow-public")
    return Check(
        "visibility",
        False,
        "public: every record would be published",
        "use a private repository, or --allow-public if the log holds nothing personal",
    )


def _branch(facts: Facts) -> list[Check]:
    name = facts.branch or "?"
    if facts.branch_exists is False:
        can_create = facts.branch_given and facts.info is not None and facts.info.can_push
        return [
            Check(
                "branch",
                True if can_create else None,
                f"{name} does not exist yet; gitjsonl creates it from the default branch",
            )
        ]
    if facts.branch_exists is None:
        return [Check("branch", None, f"{name}: could not be read (see the lines above)")]
    checks = [Check("branch", True, f"{name} exists")]
    if facts.protected:
        checks.append(
            Check(
                "protection",
                False,
                f"{name} is protected: gitjsonl's commits would be refused",
                "give the log a branch of its own: --branch gitjsonl-log (branch= in Python)",
            )
        )
    elif facts.protected is False:
        checks.append(Check("protection", True, f"{name} is not protected"))
    return checks


def _rate(rate: RateBudget) -> Check:
    detail = f"{rate.remaining:,} of {rate.limit:,} requests left this hour"
    if rate.remaining >= LOW_RATE_BUDGET:
        return Check("rate limit", True, detail)
    return Check(
        "rate limit",
        False,
        detail,
        "another tool is spending this token's budget; wait for the reset or use another token",
    )


def _clock(rate: RateBudget, local_time: float) -> Check:
    if rate.server_time is None:
        return Check("clock", None, "GitHub sent no Date header", required=False)
    skew = local_time - rate.server_time
    detail = f"{skew:+.0f} s from GitHub's clock"
    if abs(skew) <= MAX_CLOCK_SKEW:
        return Check("clock", True, detail, required=False)
    return Check(
        "clock",
        False,
        detail,
        "set the clock (NTP): GitHub App tokens are refused when it is off",
        required=False,
    )
