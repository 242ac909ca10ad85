"""Shared fixtures: the in-process localhub server from gitjsonl.testing."""

from __future__ import annotations

pytest_plugins = ["gitjsonl.testing.pytest_plugin"]
