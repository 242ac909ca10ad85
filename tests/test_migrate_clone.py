"""``migrate --from-clone DIR``: git runs in a folder a user hands us, and trusts nothing in it.

Each attack is a row of a table: what the folder plants, and what must happen
(the migration as the API walk would make it, or a refusal naming why), with a
planted script that leaves a marker file if git ever runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitjsonl import MigrationError
from gitjsonl._github import Credentials, GitHubRepo
from gitjsonl._migrate import migrate
from gitjsonl._migrate.clone import Clone, CloneHistory, blob_sha, git_config, git_env, parse_log
from gitjsonl._segments import MANIFEST_NAME
from gitjsonl.testing import LocalHub

REPO = "owner/repo"
SRC = "data/interactions.jsonl"
DEST = "data/interactions"
RECORDS = [1, 2, 3, 4, 5]  # what the migrated log holds: 1-3 were overwritten, then 4, 5
#: GitHub's history of the file: appends, an overwrite (the old service's clobber), appends.
HISTORY = [[1], [1, 2], [1, 2, 3], [4], [4, 5]]


def jsonl(*ids: int) -> bytes:
    return b"".join(json.dumps({"id": i}).encode() + b"\n" for i in ids)


def git(directory: Path, *args: str, data: bytes | None = None, check: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    done = subprocess.run(
        ["git", "-C", str(directory), *args], input=data, capture_output=True, env=env, check=check
    )
    return done.stdout.decode()


@dataclass
class Scene:
    """A GitHub repository with the file's history, a clone of it and a planted script."""

    hub: LocalHub
    tmp: Path
    clone: Path
    script: Path
    marker: Path

    def github(self) -> GitHubRepo:
        return GitHubRepo(REPO, Credentials(self.hub.url, self.hub.token))

    def migrate(self) -> Any:
        return migrate(
            self.github(), source=SRC, destination=DEST, recover=True, from_clone=self.clone
        )

    def committed(self) -> list[int] | None:
        """The migrated log on GitHub, or None when nothing was committed."""
        if self.hub.read_file(REPO, f"{DEST}/{MANIFEST_NAME}") is None:
            return None
        back = self.hub.read_file(REPO, f"{DEST}/00000001.jsonl") or b""
        return [json.loads(x)["id"] for x in back.splitlines()]

    def config(self, *pairs: str) -> None:
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            git(self.clone, "config", "--replace-all", key, value)

    def old_blob(self) -> str:
        """The blob of the version overwritten, [1, 2, 3]: read only by a history walk."""
        return blob_sha(jsonl(1, 2, 3))

    def loose(self, sha: str) -> Path:
        return self.clone / ".git" / "objects" / sha[:2] / sha[2:]


def clone_from(hub: LocalHub, target: Path, *options: str) -> None:
    source = f"file://{hub.git_dir(REPO)}"
    subprocess.run(["git", "clone", "-q", *options, source, str(target)], check=True)


def signed(work: Path, commit: str, armour: bytes, parent: str | None = None) -> str:
    """``commit`` again with a signature (of the ``armour`` kind), on ``parent`` if given."""
    header, _, message = git(work, "cat-file", "commit", commit).encode().partition(b"\n\n")
    if parent is not None:
        was = git(work, "rev-parse", f"{commit}~1").strip()
        header = header.replace(f"parent {was}".encode(), f"parent {parent}".encode())
    signature = b"gpgsig -----BEGIN %s-----\n \n wsBc\n -----END %s-----" % (armour, armour)
    data = header + b"\n" + signature + b"\n\n" + message
    return git(work, "hash-object", "-t", "commit", "-w", "--stdin", data=data).strip()


def signed_head(hub: LocalHub, work: Path) -> None:
    """GitHub signs the commits it makes: an SSH signature on the head's parent, PGP on the head."""
    clone_from(hub, work)
    parent = signed(work, "HEAD~1", b"SSH SIGNATURE")
    head = signed(work, "HEAD", b"PGP SIGNATURE", parent)
    git(work, "push", "-q", "--force", "origin", f"{head}:refs/heads/main")


@pytest.fixture
def scene(localhub: LocalHub, tmp_path: Path) -> Scene:
    for ids in HISTORY:
        localhub.seed_commit(REPO, {SRC: jsonl(*ids)})
    signed_head(localhub, tmp_path / "work")
    marker = tmp_path / "marker"
    script = tmp_path / "evil.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 1\n')
    script.chmod(0o755)
    clone = tmp_path / "clone"
    clone_from(localhub, clone)
    return Scene(localhub, tmp_path, clone, script, marker)


def unpacked(scene: Scene) -> None:
    """Every object of the clone loose, so that one can be removed or forged."""
    packs = scene.clone / ".git" / "objects" / "pack"
    for pack in sorted(packs.glob("*.pack")):
        moved = scene.tmp / pack.name
        shutil.move(pack, moved)
        pack.with_suffix(".idx").unlink()
        git(scene.clone, "unpack-objects", "-q", data=moved.read_bytes())


def partial(scene: Scene, url: str, *pairs: str) -> None:
    """A partial clone (``--filter=blob:none``) whose remote is now ``url``."""
    shutil.rmtree(scene.clone)
    scene.hub.git(REPO, "config", "uploadpack.allowFilter", "true")
    clone_from(scene.hub, scene.clone, "--filter=blob:none", "--no-checkout")
    missing = git(scene.clone, "rev-list", "--objects", "--missing=print", "HEAD")
    assert f"?{scene.old_blob()}" in missing, "the partial clone holds the old versions"
    scene.config("remote.origin.url", url, *pairs)


def hooks(scene: Scene) -> None:
    folder = scene.tmp / "hooks"
    folder.mkdir()
    for name in ("pre-commit", "post-checkout", "post-index-change", "reference-transaction",
                 "pre-auto-gc", "post-rewrite", "fsmonitor-watchman"):  # fmt: skip
        (folder / name).symlink_to(scene.script)
        (scene.clone / ".git" / "hooks" / name).symlink_to(scene.script)
    scene.config("core.hooksPath", str(folder))


def attributes(scene: Scene) -> None:
    info = scene.clone / ".git" / "info"
    info.mkdir(exist_ok=True)
    (info / "attributes").write_text("* diff=evil filter=evil merge=evil\n*.jsonl diff=a=b\n")


#: Each vector: what the folder plants (in the clone's own config, files or remote).
VECTORS: dict[str, Callable[[Scene], None]] = {
    "gpg": lambda s: s.config("log.showSignature", "true", "gpg.program", str(s.script)),
    "gpg-ssh": lambda s: s.config(
        "log.showSignature",
        "true",
        "gpg.ssh.program",
        str(s.script),
        "gpg.ssh.allowedSignersFile",
        str(s.script),
    ),
    "fsmonitor": lambda s: s.config("core.fsmonitor", str(s.script)),
    "hooks": hooks,
    "pager": lambda s: s.config(
        "core.pager", str(s.script), "pager.log", str(s.script), "pager.cat-file", str(s.script)
    ),
    "diff-textconv": lambda s: (
        attributes(s),
        s.config(
            "diff.evil.textconv",
            str(s.script),
            "diff.evil.command",
            str(s.script),
            "diff.external",
            str(s.script),
            "log.showRoot",
            "false",
        ),
    ),
    "filters": lambda s: (
        attributes(s),
        s.config(
            "filter.evil.smudge",
            str(s.script),
            "filter.evil.clean",
            str(s.script),
            "filter.evil.process",
            str(s.script),
            "filter.evil.required",
            "true",
        ),
    ),
    "include": lambda s: (
        (s.tmp / "included").write_text(f"[log]\nshowSignature\n[gpg]\nprogram = {s.script}\n"),
        s.config("include.path", str(s.tmp / "included")),
    ),
}
#: Vectors that need git to fetch: a partial clone, refused before any object is read.
FETCHING: dict[str, Callable[[Scene], None]] = {
    "lazy-fetch-ext": lambda s: partial(s, f"ext::{s.script}", "protocol.ext.allow", "always"),
    "lazy-fetch-ssh": lambda s: partial(
        s, "ssh://example.invalid/x", "core.sshCommand", str(s.script)
    ),
    "lazy-fetch-uploadpack": lambda s: partial(
        s,
        f"file://{s.hub.git_dir(REPO)}",
        "remote.origin.uploadpack",
        str(s.script),
        "protocol.file.allow",
        "always",
    ),
}


class TestNothingRuns:
    @pytest.mark.parametrize("plant", VECTORS.values(), ids=VECTORS.keys())
    def test_a_planted_program_never_runs_and_the_migration_is_the_api_s(
        self, scene: Scene, plant: Callable[[Scene], None]
    ) -> None:
        """A clone whose config names a program migrates as a clean one would, running nothing."""
        plant(scene)
        result = scene.migrate()
        assert not scene.marker.exists(), scene.marker.read_text()
        assert result.ok
        assert scene.committed() == RECORDS

    @pytest.mark.parametrize("plant", FETCHING.values(), ids=FETCHING.keys())
    def test_a_clone_that_would_fetch_is_refused_and_runs_nothing(
        self, scene: Scene, plant: Callable[[Scene], None]
    ) -> None:
        """A partial clone is refused as one, whatever its remote, before git could fetch."""
        plant(scene)
        with pytest.raises(MigrationError, match="partial clone"):
            scene.migrate()
        assert not scene.marker.exists(), scene.marker.read_text()
        assert scene.committed() is None

    def test_the_caller_s_git_environment_does_not_reach_git(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """GIT_* variables of the caller (config, pager, another GIT_DIR) change nothing."""
        elsewhere = scene.tmp / "elsewhere"
        git(scene.tmp, "init", "-q", str(elsewhere))
        monkeypatch.setenv(
            "GIT_CONFIG_PARAMETERS",
            f"'log.showsignature'='true' 'gpg.program'='{scene.script}'",
        )
        monkeypatch.setenv("GIT_DIR", str(elsewhere / ".git"))
        monkeypatch.setenv("GIT_PAGER", str(scene.script))
        monkeypatch.setenv("GIT_EXTERNAL_DIFF", str(scene.script))
        result = scene.migrate()
        assert not scene.marker.exists()
        assert result.ok
        assert scene.committed() == RECORDS


#: Commands that would run each planted program: the overrides hold for any git command.
TRIGGERS: dict[str, list[str]] = {
    "gpg": ["log", "-1"],
    "gpg-ssh": ["log", "-2"],
    "fsmonitor": ["status"],
    "hooks": ["update-ref", "refs/heads/other", "HEAD"],
    "diff-textconv": ["diff", "HEAD~3", "HEAD"],
    "filters": ["checkout", "-f", "HEAD~3", "--", SRC],
    "include": ["log", "-1"],
}


class TestOverrides:
    @pytest.mark.parametrize("vector", TRIGGERS)
    def test_a_command_that_would_run_the_program_runs_nothing_through_clone(
        self, scene: Scene, vector: str
    ) -> None:
        """The plant works with plain git; the same command through ``Clone.run`` runs nothing."""
        VECTORS[vector](scene)
        git(scene.clone, *TRIGGERS[vector], check=False)
        assert scene.marker.exists(), "the planted program does not run with plain git"
        scene.marker.unlink()
        Clone(scene.clone).run(*TRIGGERS[vector], ok=lambda _code: True)
        assert not scene.marker.exists(), scene.marker.read_text()

    @pytest.mark.parametrize("plant", FETCHING.values(), ids=FETCHING.keys())
    def test_reading_a_missing_object_fetches_nothing_through_clone(
        self, scene: Scene, plant: Callable[[Scene], None]
    ) -> None:
        """Even past the partial-clone refusal, a missing object is never fetched: no transport."""
        plant(scene)
        git(scene.clone, "cat-file", "-p", scene.old_blob(), check=False)
        assert scene.marker.exists(), "the planted remote does not run with plain git"
        scene.marker.unlink()
        with pytest.raises(MigrationError):
            Clone(scene.clone).run("cat-file", "-p", scene.old_blob())
        assert not scene.marker.exists(), scene.marker.read_text()


class TestObjects:
    def test_a_replaced_object_does_not_forge_a_record(self, scene: Scene) -> None:
        """A refs/replace object standing in for an old version is not read: no forged record."""
        forged = git(scene.clone, "hash-object", "-w", "--stdin", data=jsonl(1, 666, 3)).strip()
        git(scene.clone, "replace", scene.old_blob(), forged)
        assert scene.migrate().ok
        assert scene.committed() == RECORDS

    def test_a_graft_does_not_hide_history(self, scene: Scene) -> None:
        """An info/grafts file that cuts the head's parents off loses no record."""
        head = git(scene.clone, "rev-parse", "HEAD").strip()
        root = git(scene.clone, "rev-list", "--max-parents=0", "HEAD").split()[0]
        (scene.clone / ".git" / "info").mkdir(exist_ok=True)
        (scene.clone / ".git" / "info" / "grafts").write_text(f"{head} {root}\n")
        assert git(scene.clone, "rev-list", "--count", "HEAD").strip() == "2", "no graft"
        assert scene.migrate().ok
        assert scene.committed() == RECORDS

    def test_a_forged_object_is_refused(self, scene: Scene) -> None:
        """An object file holding other bytes than its name says is an error naming it."""
        unpacked(scene)
        loose = scene.loose(scene.old_blob())
        loose.chmod(0o644)
        loose.write_bytes(zlib.compress(b"blob %d\0" % len(jsonl(666)) + jsonl(666)))
        with pytest.raises(MigrationError, match=f"{scene.old_blob()}.*forged or corrupt"):
            scene.migrate()
        assert scene.committed() is None

    @pytest.mark.parametrize("kind", ["commit", "tree"])
    def test_a_forged_commit_or_tree_is_refused(self, scene: Scene, kind: str) -> None:
        """A commit object cutting history short, or a tree hiding a version, is refused."""
        unpacked(scene)
        root = git(scene.clone, "rev-list", "--max-parents=0", "HEAD").split()[0]
        name = git(scene.clone, "rev-parse", "HEAD~2" if kind == "commit" else "HEAD~2^{tree}")
        cat = ["git", "-C", str(scene.clone), "cat-file", kind, name.strip()]
        body = subprocess.run(cat, capture_output=True, check=True).stdout
        if kind == "commit":  # its parent is now the first commit: the overwrite is gone
            lines = [f"parent {root}".encode() if x.startswith(b"parent ") else x
                     for x in body.split(b"\n")]  # fmt: skip
            body = b"\n".join(lines)
        else:  # the file is not there: "deleted"
            body = body.replace(b"data", b"dbta")
        loose = scene.loose(name.strip())
        loose.chmod(0o644)
        loose.write_bytes(zlib.compress(b"%s %d\0" % (kind.encode(), len(body)) + body))
        with pytest.raises(MigrationError, match=f"{name.strip()}.*forged or corrupt"):
            scene.migrate()
        assert scene.committed() is None

    def test_a_missing_version_is_an_error_naming_it_and_nothing_is_committed(
        self, scene: Scene
    ) -> None:
        """A pruned blob is never "the file was deleted here": the object is named, no commit."""
        unpacked(scene)
        scene.loose(scene.old_blob()).unlink()
        with pytest.raises(MigrationError, match=f"missing object {scene.old_blob()}"):
            scene.migrate()
        assert scene.committed() is None

    def test_a_partial_clone_without_its_remote_is_an_error_not_an_empty_log(
        self, scene: Scene
    ) -> None:
        """Blobs never fetched, the promisor config gone: an error, never an empty migration."""
        partial(scene, "file:///nonexistent")
        git(scene.clone, "config", "--unset", "extensions.partialClone", check=False)
        git(scene.clone, "config", "--unset", "remote.origin.promisor")
        for promisor in (scene.clone / ".git" / "objects" / "pack").glob("*.promisor"):
            promisor.unlink()
        with pytest.raises(MigrationError, match="missing object"):
            scene.migrate()
        assert scene.committed() is None

    def test_a_corrupt_object_fails_loudly_on_the_command_line(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """git dying mid-walk is an error with git's reason (exit 1), never a silent exit 0."""
        from gitjsonl._cli import main

        unpacked(scene)
        loose = scene.loose(scene.old_blob())
        loose.chmod(0o644)
        loose.write_bytes(b"not zlib at all")
        monkeypatch.setenv("GITHUB_TOKEN", scene.hub.token)
        monkeypatch.setenv("XDG_CACHE_HOME", str(scene.tmp / "cache"))
        args = ["--repo", REPO, "--api-url", scene.hub.url, "migrate", "--from", SRC]
        code = main([*args, "--recover-history", "--from-clone", str(scene.clone)])
        err = capsys.readouterr().err
        assert code == 3  # could not run (the exit codes of the command line)
        assert scene.old_blob() in err
        assert "corrupt" in err
        assert scene.committed() is None

    def test_a_walk_that_ends_off_github_s_blob_commits_nothing(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A history whose last version is not the source blob GitHub has is refused."""
        listed = CloneHistory.commits
        monkeypatch.setattr(CloneHistory, "commits", lambda self: listed(self)[:-1])
        with pytest.raises(MigrationError, match=r"ends on blob .* on GitHub"):
            scene.migrate()
        assert scene.committed() is None


class TestClonesRefused:
    def test_a_shallow_clone_is_refused_saying_why(self, scene: Scene) -> None:
        """A --depth 1 clone lacks the history: refused, never a recovery of part of it."""
        shutil.rmtree(scene.clone)
        clone_from(scene.hub, scene.clone, "--depth", "1")
        with pytest.raises(MigrationError, match="shallow"):
            scene.migrate()
        assert scene.committed() is None

    def test_a_clone_owned_by_another_user_gets_git_s_reason(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """git's own refusal (dubious ownership) is passed on, not "run git fetch"."""
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        monkeypatch.setenv("HOME", str(scene.tmp))
        subprocess.run(["chown", "-R", "12345:12345", str(scene.clone)], check=True)
        with pytest.raises(MigrationError, match="dubious ownership") as caught:
            scene.migrate()
        assert "fetch" not in str(caught.value)

    def test_git_s_advice_for_another_user_s_clone_works(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The user's own safe.directory (git's advice) is honoured, all other global config not."""
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        (scene.tmp / ".gitconfig").write_text(
            f"[safe]\n\tdirectory = {scene.clone}\n[log]\n\tshowSignature\n"
            f"[gpg]\n\tprogram = {scene.script}\n"
        )
        monkeypatch.setenv("HOME", str(scene.tmp))
        subprocess.run(["chown", "-R", "12345:12345", str(scene.clone)], check=True)
        assert scene.migrate().ok
        assert not scene.marker.exists()
        assert scene.committed() == RECORDS


class TestPure:
    def test_the_environment_keeps_nothing_of_the_caller_s_git(self) -> None:
        """Only PATH and the locale pass; every GIT_* is ours; no home to read a config from."""
        env = git_env(
            {"PATH": "/bin", "GIT_DIR": "x", "GIT_SSH": "x", "HOME": "/h", "LANG": "C"},
            ceiling="/c",
            config=[("diff.a=b.textconv", "false")],
        )
        assert env["PATH"] == "/bin"
        assert env["LANG"] == "C"
        assert env["HOME"] == os.devnull
        assert "GIT_DIR" not in env
        assert "GIT_SSH" not in env
        assert env["GIT_ALLOW_PROTOCOL"] == ""
        assert env["GIT_NO_LAZY_FETCH"] == "1"
        assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"]) == ("1", "diff.a=b.textconv")

    def test_every_planted_program_key_is_overridden(self) -> None:
        """Keys under a subsection the clone names are set on the command line, in any case."""
        config = git_config(
            ["diff.Evil.textconv", "filter.x.process", "remote.origin.uploadpack", "user.name"],
            ["/trusted"],
        )
        assert ("diff.Evil.textconv", "false") in config
        assert ("filter.x.process", "false") in config
        assert ("remote.origin.uploadpack", "false") in config
        assert ("safe.directory", "/trusted") in config
        assert not any(key == "user.name" for key, _ in config)

    def test_the_log_says_deleted_only_where_git_says_so(self) -> None:
        """A D status is a deletion; a change of a file under the path (a folder there) too."""
        a, b = "a" * 40, "b" * 40
        out = (
            f"commit {a} 2024-01-01\0\n:000000 100644 {'0' * 40} {b} A\0data/x\0"
            f"commit {b} 2024-01-02\0\n:100644 000000 {b} {'0' * 40} D\0data/x\0"
            f"commit {a} 2024-01-03\0\n:000000 100644 {'0' * 40} {b} A\0data/x/y\0"
        ).encode()
        assert parse_log(out, "data/x") == [
            (a, "2024-01-01", b),
            (b, "2024-01-02", None),
            (a, "2024-01-03", None),
        ]

    @pytest.mark.parametrize(
        "out",
        [b"commit nothex 2024\0", b":100644 100644 x y M\0data/x\0", b"commit " + b"a" * 40],
        ids=["bad-sha", "change-without-commit", "no-date"],
    )
    def test_a_log_that_is_not_one_is_refused(self, out: bytes) -> None:
        """Output git log would not give is an error, never a guess."""
        with pytest.raises(MigrationError, match="git log gave"):
            parse_log(out, "data/x")


class TestBounds:
    def test_a_git_that_never_answers_is_stopped_with_an_error(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A cat-file that hangs is killed once the limit passes: an error, never a hang."""
        from gitjsonl._migrate import clone

        real = shutil.which("git")
        bin_dir = scene.tmp / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "git"
        fake.write_text(
            '#!/bin/sh\ncase "$*" in *"cat-file --batch"*) exec sleep 60;; esac\n'
            f'exec {real} "$@"\n'
        )
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setattr(clone, "ANSWER_TIMEOUT", 1.0)
        with pytest.raises(MigrationError, match="no answer in time"):
            scene.migrate()
        assert scene.committed() is None
