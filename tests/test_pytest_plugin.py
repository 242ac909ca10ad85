"""The pytest plugin as a user meets it: installed with gitjsonl, found through ``pytest11``."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gitjsonl.testing.pytest_plugin

PLUGIN = "gitjsonl.testing.pytest_plugin"

USER_TEST = """
import requests


def test_a_hub_of_my_own(localhub):
    head = localhub.seed_commit("owner/repo", {"a.txt": b"hi"})
    answer = requests.get(
        f"{localhub.url}/repos/owner/repo/git/ref/heads/main",
        headers={"Authorization": f"token {localhub.token}"},
        timeout=10,
    )
    assert answer.json()["object"]["sha"] == head


def test_and_a_factory(localhub_factory):
    assert localhub_factory(repos=("me/other",)).url.startswith("http://127.0.0.1:")
"""


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in ``folder``, a project of the user's with none of our configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestAUsersTests:
    def test_the_fixtures_need_no_pytest_plugins_line(self, tmp_path: Path) -> None:
        """A user's test asking for localhub and localhub_factory, with no conftest, passes."""
        (tmp_path / "test_mine.py").write_text(USER_TEST)
        result = run_pytest(tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 passed" in result.stdout

    def test_an_old_pytest_plugins_line_still_works(self, tmp_path: Path) -> None:
        """A conftest naming the plugin, as the README once said to, registers it only once."""
        (tmp_path / "conftest.py").write_text(f"pytest_plugins = [{PLUGIN!r}]\n")
        (tmp_path / "test_mine.py").write_text(USER_TEST)
        result = run_pytest(tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_it_can_be_turned_off(self, tmp_path: Path) -> None:
        """-p no:gitjsonl.testing.pytest_plugin: the fixtures are gone."""
        (tmp_path / "test_mine.py").write_text(USER_TEST)
        result = run_pytest(tmp_path, "-p", f"no:{PLUGIN}")
        assert result.returncode != 0
        assert "fixture 'localhub' not found" in result.stdout


class TestRegistration:
    def test_the_entry_point_names_the_plugin(self) -> None:
        """gitjsonl's metadata declares the plugin in the pytest11 group, under its own name."""
        found = [
            ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == PLUGIN
        ]
        assert [ep.value for ep in found] == [PLUGIN]

    def test_this_suite_registers_it_once(self, pytestconfig: pytest.Config) -> None:
        """The project's own tests get the plugin from the entry point alone: one registration."""
        manager = pytestconfig.pluginmanager
        registered = [
            p for _, p in manager.list_name_plugin() if p is gitjsonl.testing.pytest_plugin
        ]
        assert len(registered) == 1
        assert manager.get_plugin(PLUGIN) is gitjsonl.testing.pytest_plugin
