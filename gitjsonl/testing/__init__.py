"""Test tools for code that talks to GitHub: ``localhub``, a local GitHub REST API.

``LocalHub`` serves the Git Data, Contents and repository endpoints over real
bare git repositories on loopback, with seedable fault injection, modelled
rate limits and a request log::

    from gitjsonl.testing import LocalHub, Fault

    with LocalHub(repos=("owner/repo",), initial_commit=True) as hub:
        gh = github.Github(auth=github.Auth.Token(hub.token), base_url=hub.url)
        hub.add_fault(Fault(method="PATCH", path=r"/git/refs/", action="error_after"))

The pytest fixtures ``localhub`` and ``localhub_factory`` live in
``gitjsonl.testing.pytest_plugin``.
"""

from __future__ import annotations

from ._faults import Fault
from ._hub import LocalHub
from ._ratelimit import SecondaryLimits
from ._server import RequestRecord

__all__ = ["Fault", "LocalHub", "RequestRecord", "SecondaryLimits"]
