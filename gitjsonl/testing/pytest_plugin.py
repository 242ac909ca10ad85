"""pytest fixtures for localhub: ``localhub`` and ``localhub_factory``.

Enable with ``pytest_plugins = ["gitjsonl.testing.pytest_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._hub import LocalHub


@pytest.fixture
def localhub(tmp_path: Path) -> Iterator[LocalHub]:
    """A LocalHub serving ``owner/repo`` (empty) under tmp_path, accepting any token."""
    with LocalHub(root=tmp_path / "localhub", repos=("owner/repo",)) as hub:
        yield hub


@pytest.fixture
def localhub_factory(tmp_path: Path) -> Iterator[Callable[..., LocalHub]]:
    """A callable taking LocalHub's keyword arguments; every hub is stopped at teardown."""
    hubs: list[LocalHub] = []

    def make(**kwargs: Any) -> LocalHub:
        kwargs.setdefault("root", tmp_path / f"localhub-{len(hubs)}")
        hub = LocalHub(**kwargs)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()
