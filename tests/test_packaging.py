"""What a user gets from installing gitjsonl: metadata that tells the truth, and a cheap import."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import gitjsonl

ROOT = Path(__file__).resolve().parent.parent


def _run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


class TestFloors:
    def test_the_lowest_versions_ci_installs_are_the_declared_floors(self) -> None:
        """.ci/lowest.txt pins each runtime dependency (and the redis extra) at its floor."""
        pinned = {}
        for text in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
            pin = text.split("#", 1)[0].strip()
            if pin:
                name, _, version = pin.partition("==")
                pinned[name.lower()] = version
        floors = {}
        for text in metadata.requires("gitjsonl") or []:
            requirement = Requirement(text)
            marker = str(requirement.marker or "")
            if "extra" in marker and "redis" not in marker:
                continue  # test and bench tools: not part of what a user installs
            lower = [s.version for s in requirement.specifier if s.operator == ">="]
            assert len(lower) == 1, f"{requirement.name} declares no single floor"
            floors[requirement.name.lower()] = lower[0]
        assert set(pinned) == set(floors)
        for name, floor in floors.items():
            assert Version(pinned[name]) == Version(floor), name

    def test_requires_python_matches_the_classifiers(self) -> None:
        """The classifiers name 3.10 to 3.13, and requires-python starts at 3.10."""
        meta = metadata.metadata("gitjsonl")
        assert meta["Requires-Python"] == ">=3.10"
        versions = {
            c.rsplit("::", 1)[1].strip()
            for c in meta.get_all("Classifier") or []
            if c.startswith("Programming Language :: Python :: 3.")
        }
        assert versions == {"3.10", "3.11", "3.12", "3.13"}


class TestMetadata:
    def test_license_file_and_metadata_agree(self) -> None:
        """A LICENSE file ships with the MIT text the metadata names."""
        assert "MIT License" in (ROOT / "LICENSE").read_text()
        meta = metadata.metadata("gitjsonl")
        assert meta.get("License-Expression") == "MIT"

    def test_the_changelog_names_this_version(self) -> None:
        """CHANGELOG.md has an entry for the version the package says it is."""
        text = (ROOT / "CHANGELOG.md").read_text()
        assert f"## [{gitjsonl.__version__}]" in text

    def test_version_on_the_command_line(self) -> None:
        """`gitjsonl --version` prints the package's version and exits 0."""
        out = _run_python(
            "import sys; from gitjsonl._cli import main; sys.exit(main(['--version']))"
        )
        assert out == f"gitjsonl {gitjsonl.__version__}"


class TestImportCost:
    def test_import_gitjsonl_loads_no_github_client(self) -> None:
        """`import gitjsonl` imports neither PyGithub nor requests: they load on first use."""
        out = _run_python(
            "import sys, gitjsonl; "
            "print(sorted(m for m in ('github', 'requests', 'urllib3', 'cryptography') "
            "if m in sys.modules))"
        )
        assert out == "[]"

    def test_a_public_name_loads_its_module_on_first_use(self) -> None:
        """Every name in __all__ resolves, to the same object each time."""
        out = _run_python(
            "import gitjsonl; a = gitjsonl.Log; b = gitjsonl.Log; "
            "print(a is b, a.__module__, 'Log' in dir(gitjsonl))"
        )
        assert out == "True gitjsonl._log True"

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        """A misspelt name raises AttributeError, as for any module."""
        with pytest.raises(AttributeError, match="Lgo"):
            _ = gitjsonl.Lgo  # type: ignore[attr-defined]

    def test_the_pytest_plugin_imports_no_emulator_until_a_fixture_runs(self) -> None:
        """Loading the pytest plugin (as pytest does in every project) imports neither
        localhub nor PyGithub."""
        out = _run_python(
            "import sys, gitjsonl.testing.pytest_plugin; "
            "print(sorted(m for m in ('github', 'requests', 'gitjsonl.testing._hub', "
            "'gitjsonl._log') if m in sys.modules))"
        )
        assert out == "[]"

    def test_the_testing_names_resolve(self) -> None:
        """gitjsonl.testing's public names still import as before."""
        from gitjsonl.testing import Fault, Gate, LocalHub, RequestRecord, SecondaryLimits

        assert {Fault.__name__, Gate.__name__, LocalHub.__name__} == {"Fault", "Gate", "LocalHub"}
        assert RequestRecord.__name__ == "RequestRecord"
        assert SecondaryLimits.__name__ == "SecondaryLimits"
