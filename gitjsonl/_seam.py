"""The GitHub calls the commit path makes, as one ``typing.Protocol``.

Two implementations: ``GitHubRepo`` (``_github``: PyGithub over HTTP, every
failure translated into ``_exceptions``) and ``gitjsonl.testing.MemoryGitHub``
(an in-memory GitHub with localhub's rules, for unit tests and the simulator).
Only what ``Committer`` and the reader need is here: a new call goes into both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._config import Identity
    from ._github import CommitInfo, CreatedTree, DirEntry, Folder, RepoInfo

__all__ = ["GitHubSeam"]


class GitHubSeam(Protocol):
    """One repository: reads by sha are exact, reads naming a branch may lag behind writes."""

    @property
    def full_name(self) -> str: ...
    @property
    def writes(self) -> int:
        """Write requests sent (or tried), for the budget to count."""
        ...

    def repository(self, *, fresh: bool = False) -> RepoInfo: ...
    def default_branch(self) -> str: ...
    def get_head(self, branch: str) -> str: ...
    def get_commit(self, sha: str) -> CommitInfo: ...
    def iter_commits(self, sha: str, path: str | None = None) -> Iterator[CommitInfo]: ...
    def recent_commits(
        self, branch: str, *, since: float, pages: int = 1
    ) -> tuple[list[tuple[str, float]], float | None]: ...
    def read_folder(self, ref: str, path: str) -> Folder: ...
    def tree_entries(self, sha: str, folder: str) -> tuple[DirEntry, ...]: ...
    def get_blob(self, sha: str) -> bytes: ...
    def create_blob(self, content: bytes) -> str: ...
    def create_tree(self, base_tree: str | None, files: dict[str, str | None]) -> str: ...
    def post_tree(
        self,
        base_tree: str,
        *,
        texts: dict[str, bytes],
        blobs: dict[str, str],
        deletes: list[str],
    ) -> CreatedTree: ...
    def create_commit(
        self,
        message: str,
        tree: str,
        parents: list[str],
        *,
        author: Identity | None = None,
        committer: Identity | None = None,
    ) -> str: ...
    def update_ref(self, branch: str, sha: str) -> None: ...
    def create_ref(self, branch: str, sha: str) -> None: ...
    def put_file(self, path: str, message: str, content: bytes, *, branch: str | None) -> str: ...


if TYPE_CHECKING:
    from ._github import GitHubRepo

    def _satisfied(repo: GitHubRepo) -> GitHubSeam:
        return repo  # mypy proves the HTTP seam implements the protocol
