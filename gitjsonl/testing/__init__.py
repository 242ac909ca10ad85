"""Test tools for code that talks to GitHub: ``localhub``, a local GitHub REST API.

``LocalHub`` serves the Git Data, Contents and repository endpoints over real
bare git repositories on loopback, with seedable fault injection, modelled
rate limits and a request log::

    from gitjsonl.testing import LocalHub, Fault

    with LocalHub(repos=("owner/repo",), initial_commit=True) as hub:
        gh = github.Github(auth=github.Auth.Token(hub.token), base_url=hub.url)
        hub.add_fault(Fault(method="PATCH", path=r"/git/refs/", action="error_after"))

It is meant to be at least as harsh as GitHub:

- names: owners and repositories must follow GitHub's rules (``ValueError``
  at construction, 404 over HTTP); each URL path segment is percent-decoded
  once; objects ``git fsck --strict`` would reject are refused with 422.
- framing: bodies over ``max_body_bytes`` are 413, malformed lengths 400,
  connections idle for ``idle_timeout`` seconds are closed.
- ``read_lag=`` seconds (assignable: ``hub.read_lag = 2.0``; default 0): reads
  naming a branch see its previous head for that long after it moves.
- ``contents_listing_cap=`` (default 1,000, GitHub's): Contents folder
  listings are cut silently; ``git/trees/{sha}``, ``{branch}`` and
  ``{tree-ish}:{path}`` list everything, truncated past ``tree_truncate_limit``
  entries or ``tree_truncate_bytes``.
- ``Fault(status=, message=, documentation_url=)`` sends GitHub's own error
  bodies; secondary limits answer 403 or 429 (``SecondaryLimits(status=)``).
- ``Fault(action="hold", gate=Gate(), delay=bound)`` keeps matching requests
  until the test calls ``gate.open()`` (``gate.wait_reached(timeout)`` says one
  is held), so a test can act while a request is in flight.
- ``hub.rename_repo(old, new)``: the old name answers 301 (reads) or 307
  (writes) to ``/repositories/{id}/...``, which serves every endpoint.
- repositories are private unless ``public=`` / ``hub.set_visibility()``;
  ``permissions`` follow the token; ``hub.protect_branch(repo, branch,
  kind="branch_protection" | "ruleset")`` refuses ref updates and Contents PUTs;
  ``hub.add_token(token, expires_in=)`` tokens expire (401 Bad credentials);
  ``hub.register_app(app_id, public_key_pem, installation_id, repos=,
  token_lifetime=)`` serves PyGithub's ``Auth.AppAuth(...).get_installation_auth()``;
  every answer has a ``Date`` header, shifted by ``hub.clock_skew``.

``MemoryGitHub`` is the same rules without a server, for unit tests of code
that takes gitjsonl's GitHub seam (as ``httpx.MockTransport`` is for httpx);
``gitjsonl.testing.sim`` runs writers against it on a seeded scheduler
(``./dev sim``).

The pytest fixtures ``localhub`` and ``localhub_factory`` live in
``gitjsonl.testing.pytest_plugin``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._faults import Fault, Gate
    from ._hub import LocalHub
    from ._memory import MemoryGitHub
    from ._ratelimit import SecondaryLimits
    from ._server import RequestRecord

# Imported on first use (PEP 562), so that the pytest plugin beside this module,
# which pytest loads wherever gitjsonl is installed, costs an unrelated project nothing.
_HOMES: dict[str, str] = {
    "Fault": "._faults",
    "Gate": "._faults",
    "LocalHub": "._hub",
    "MemoryGitHub": "._memory",
    "RequestRecord": "._server",
    "SecondaryLimits": "._ratelimit",
}

__all__ = ["Fault", "Gate", "LocalHub", "MemoryGitHub", "RequestRecord", "SecondaryLimits"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
