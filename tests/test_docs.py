"""The docs say what the code does: every variable read, every public name, every test cited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gitjsonl

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _package_sources() -> list[Path]:
    return [p for p in (ROOT / "gitjsonl").rglob("*.py") if "testing" not in p.parts]


class TestEnvironmentPage:
    def test_every_variable_the_package_reads_is_documented(self) -> None:
        """Each GITHUB_* and GITJSONL_* name the library's code spells out is in environment.md."""
        names = set()
        for path in _package_sources():
            names |= set(re.findall(r"[\"'](GIT(?:HUB|JSONL)_[A-Z_]+)[\"']", path.read_text()))
        assert names, "no variable found: the scan is broken"
        page = (DOCS / "environment.md").read_text()
        missing = sorted(n for n in names if f"`{n}`" not in page)
        assert missing == []


class TestApiReference:
    def test_every_public_name_has_a_reference_entry(self) -> None:
        """Each name in gitjsonl.__all__ (but the version) is rendered by the API reference."""
        page = (DOCS / "reference" / "api.md").read_text()
        missing = [
            n for n in gitjsonl.__all__ if n != "__version__" and f"::: gitjsonl.{n}\n" not in page
        ]
        assert missing == []


def _cited_tests() -> list[str]:
    text = (DOCS / "guarantees.md").read_text()
    return sorted(set(re.findall(r"`(tests/[\w/]+\.py(?:::[\w\[\]-]+)*)", text)))


class TestGuaranteesCiteRealTests:
    def test_the_page_cites_tests(self) -> None:
        """The guarantees page names its tests (the scan below has something to check)."""
        assert len(_cited_tests()) > 40

    @pytest.mark.parametrize("cited", _cited_tests())
    def test_each_cited_test_exists(self, cited: str) -> None:
        """A test file, class or function the guarantees page cites exists under that name."""
        path, *names = cited.split("::")
        source = (ROOT / path).read_text()
        for name in names:
            bare = name.split("[", 1)[0]
            assert re.search(rf"^\s*(?:class|def|async def) {re.escape(bare)}\b", source, re.M), (
                f"{cited}: no {bare} in {path}"
            )
