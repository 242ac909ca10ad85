"""The public surface: names, and what never leaks through it."""

from __future__ import annotations

import gitjsonl


class TestPublicNames:
    def test_all_is_sorted_and_importable(self) -> None:
        """__all__ is sorted and every name in it exists."""
        assert gitjsonl.__all__ == sorted(gitjsonl.__all__)
        for name in gitjsonl.__all__:
            assert hasattr(gitjsonl, name), name

    def test_every_exception_derives_from_the_base(self) -> None:
        """One base class catches everything gitjsonl raises."""
        errors = [
            getattr(gitjsonl, n)
            for n in gitjsonl.__all__
            if isinstance(getattr(gitjsonl, n), type)
            and issubclass(getattr(gitjsonl, n), BaseException)
        ]
        assert len(errors) >= 15
        assert all(issubclass(e, gitjsonl.GitJsonlError) for e in errors)

    def test_only_the_seam_imports_pygithub(self) -> None:
        """PyGithub and requests are imported by the seam alone: _github.py and the two
        helpers only it imports (_http.py, its transport; _answers.py, its answer checks)."""
        import pathlib

        package = pathlib.Path(gitjsonl.__file__).parent
        seam = {"_github.py", "_http.py", "_answers.py"}
        offenders = []
        for path in package.rglob("*.py"):
            text = path.read_text()
            # The seam itself, and the test tools (localhub, which is a server).
            if path.name in seam or "testing" in path.relative_to(package).parts:
                continue
            for banned in (
                "import github",
                "from github",
                "import requests",
                "from requests",
                "from ._http",
                "from ._answers",
                "import _http",
                "import _answers",
            ):
                if banned in text:
                    offenders.append(f"{path.name}: {banned}")
        assert offenders == []
