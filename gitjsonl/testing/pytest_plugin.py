"""pytest fixtures for localhub: ``localhub``, ``localhub_factory`` and ``localhub_defaults``.

pytest loads it by itself wherever gitjsonl is installed (the ``pytest11``
entry point, named ``gitjsonl.testing.pytest_plugin`` like the module, so an
old ``pytest_plugins`` line naming it is harmless);
``-p no:gitjsonl.testing.pytest_plugin`` turns it off. Override
``localhub_defaults`` in a conftest to give every hub of the tests there the
same settings (GitHub-like read lag, say); arguments given to the factory win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    # The emulator is imported by the fixtures that use it, not when pytest loads this
    # plugin: a project that has gitjsonl installed and never uses them pays nothing.
    from ._hub import LocalHub


@pytest.fixture
def localhub_defaults() -> dict[str, Any]:
    """``LocalHub`` keyword arguments every hub of a test starts from (none by default)."""
    return {}


@pytest.fixture
def localhub(tmp_path: Path, localhub_defaults: dict[str, Any]) -> Iterator[LocalHub]:
    """A LocalHub serving ``owner/repo`` (empty) under tmp_path, accepting any token."""
    from ._hub import LocalHub

    with LocalHub(root=tmp_path / "localhub", repos=("owner/repo",), **localhub_defaults) as hub:
        yield hub


@pytest.fixture
def localhub_factory(
    tmp_path: Path, localhub_defaults: dict[str, Any]
) -> Iterator[Callable[..., LocalHub]]:
    """A callable taking LocalHub's keyword arguments; every hub is stopped at teardown."""
    from ._hub import LocalHub

    hubs: list[LocalHub] = []

    def make(**kwargs: Any) -> LocalHub:
        hub = LocalHub(
            **{"root": tmp_path / f"localhub-{len(hubs)}", **localhub_defaults, **kwargs}
        )
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()
