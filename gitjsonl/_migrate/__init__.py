"""``gitjsonl migrate``: move a single-file log into segments, in one commit.

- ``plan``: split into segments, scan every line, plan and verify (pure)
- ``history``: recover the records that overwrites of the file lost (pure)
- ``report``: the report the command line prints (pure)
- ``turn``: where the commit goes on a branch the writers take turns on (pure)
- ``run``: the one-commit migration, with its reads and retries (I/O)
"""

from __future__ import annotations

from .run import MigrationResult, migrate

__all__ = ["MigrationResult", "migrate"]
