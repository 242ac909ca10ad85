"""Record the cassettes in ``cassettes/``: ``python -m tests.record_cassettes [scenario ...]``.

By default each scenario runs against a fresh in-process localhub. With
``GITJSONL_RECORD_REPO=owner/scratch GITHUB_TOKEN=...`` (and optionally
``GITHUB_API_URL`` and ``GITJSONL_RECORD_READ_TOKEN``, a token that can only
read the scratch repository) they run against that real repository instead;
scenarios that only a localhub can stage are skipped. Each scenario works on
its own branch ``gitjsonl-cassette-<name>``, deleted afterwards (outside the
cassette). The scratch repository must have at least one commit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from unittest import mock

import github
from github import Auth

from gitjsonl._config import DEFAULT_API_URL
from gitjsonl.testing import LocalHub, _hub, _server, _store
from tests.cassette_scenarios import (
    MISSING_REPO_NAME,
    SCENARIOS,
    Context,
    Scenario,
    branch_for,
)
from tests.cassettes_support import (
    CASSETTE_DIR,
    Normaliser,
    cassette_path,
    deterministic_ids,
    use_cassette,
)

LOCAL_WRITE_TOKEN = "localhub-cassette-write"
LOCAL_READ_TOKEN = "localhub-cassette-read"
INVALID_TOKEN = "gitjsonl-cassette-invalid-token"
FIXED_TIME = 1767225600.0  # 2026-01-01T00:00:00Z


def delete_branch(api_url: str, token: str, repo: str, branch: str) -> None:
    """Remove a scenario's branch, if it exists; never recorded."""
    gh = github.Github(auth=Auth.Token(token), base_url=api_url, retry=0)
    try:
        gh.get_repo(repo).get_git_ref(f"heads/{branch}").delete()
    except github.GithubException as exc:
        if exc.status not in (404, 409, 422):
            raise
    finally:
        gh.close()


@contextlib.contextmanager
def localhub_context(scenario: Scenario) -> Iterator[Context]:
    tokens = {LOCAL_WRITE_TOKEN: "write", LOCAL_READ_TOKEN: "read"}
    # The seed commit, the repository's and the server-dated commits' dates, and
    # the request ids in error messages are the same on every recording.
    fixed_time = SimpleNamespace(time=lambda: FIXED_TIME)
    with mock.patch.object(_hub, "time", fixed_time), mock.patch.object(_store, "time", fixed_time):
        hub = LocalHub(tokens=tokens, initial_commit=not scenario.empty_repository)
    hub._api.clock = lambda: FIXED_TIME  # LocalHub takes no clock (yet)
    fixed_uuid = SimpleNamespace(uuid4=lambda: uuid.UUID(int=0))
    with hub, mock.patch.object(_server, "uuid", fixed_uuid):
        yield Context(
            name=scenario.name,
            api_url=hub.url,
            token=LOCAL_WRITE_TOKEN,
            repo="owner/repo",
            read_token=LOCAL_READ_TOKEN,
            bad_token=INVALID_TOKEN,
            missing_repo=f"owner/{MISSING_REPO_NAME}",
            hub=hub,
        )


@contextlib.contextmanager
def github_context(scenario: Scenario, repo: str, token: str, api_url: str) -> Iterator[Context]:
    owner = repo.split("/", 1)[0]
    branch = branch_for(scenario.name)
    delete_branch(api_url, token, repo, branch)  # what a failed earlier run left
    try:
        yield Context(
            name=scenario.name,
            api_url=api_url,
            token=token,
            repo=repo,
            read_token=os.environ.get("GITJSONL_RECORD_READ_TOKEN"),
            bad_token=INVALID_TOKEN,
            missing_repo=f"{owner}/{MISSING_REPO_NAME}",
        )
    finally:
        delete_branch(api_url, token, repo, branch)


def record(scenario: Scenario, ctx: Context) -> dict[str, object]:
    """Run one scenario with vcrpy recording every request (mode "all")."""
    path = cassette_path(scenario.name)
    path.unlink(missing_ok=True)
    with deterministic_ids(), use_cassette("all", path, Normaliser(ctx.api_url, ctx.repo)):
        return scenario.run(ctx)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.record_cassettes", description=__doc__)
    parser.add_argument("scenarios", nargs="*", help="names (default: all)", metavar="scenario")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {sorted(SCENARIOS)}")
    chosen = [SCENARIOS[name] for name in args.scenarios or SCENARIOS]

    repo = os.environ.get("GITJSONL_RECORD_REPO")
    token = os.environ.get("GITHUB_TOKEN")
    api_url = os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
    if repo and not token:
        parser.error("GITJSONL_RECORD_REPO needs GITHUB_TOKEN")
    CASSETTE_DIR.mkdir(exist_ok=True)
    for scenario in chosen:
        if repo and token:
            if scenario.localhub_only:
                print(f"skip {scenario.name}: localhub only ({scenario.localhub_only})")
                continue
            if scenario.needs_read_token and not os.environ.get("GITJSONL_RECORD_READ_TOKEN"):
                print(f"skip {scenario.name}: set GITJSONL_RECORD_READ_TOKEN (read-only token)")
                continue
            context = github_context(scenario, repo, token, api_url)
        else:
            context = localhub_context(scenario)
        with context as ctx:
            outcome = record(scenario, ctx)
        print(f"recorded {cassette_path(scenario.name).relative_to(CASSETTE_DIR.parent)}")
        print(f"  {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
