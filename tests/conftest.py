"""Shared fixtures: the in-process localhub server from gitjsonl.testing.

The project's own integration tests run against a localhub that behaves like
GitHub where it matters: reads of a branch lag behind writes
(``GITHUB_LIKE_READ_LAG`` seconds, as GitHub's eventually consistent reads do)
and Contents listings stop at 1,000 entries (localhub's default). A guarantee
proven only against a perfectly consistent server is not proven. localhub's
own tests and the conformance replay pin exact server behaviour and get a
consistent hub unless they ask otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# The localhub fixtures come from the pytest11 entry point (pyproject.toml), as
# they do for users: no pytest_plugins line, so the plugin is registered once.


@pytest.fixture(autouse=True, scope="session")
def _own_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The write budgets and branch turns of test runs stay out of the user's cache folder.

    Set in the environment, so that writer processes the tests start inherit it.
    """
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


#: Seconds reads of a branch see the previous head after it moves.
GITHUB_LIKE_READ_LAG = 0.3

#: Tests that pin exact server behaviour: localhub's own, the conformance
#: replay, the Contents-API baseline's known failure modes, and the CLI's
#: commands, each a separate reader of what the one before it wrote (a person
#: typing them would see GitHub's lag too; the CLI's output is what they pin).
_EXACT_SERVER_TESTS = (
    "tests.test_localhub_",
    "tests.test_conformance_",
    "tests.test_contents_",
    "tests.test_cli",
)


@pytest.fixture
def localhub_defaults(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Every hub of an integration test is GitHub-like (see the module docstring)."""
    if request.module.__name__.startswith(_EXACT_SERVER_TESTS):
        return {}
    return {"read_lag": GITHUB_LIKE_READ_LAG}
