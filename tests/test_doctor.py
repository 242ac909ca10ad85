"""gitjsonl._doctor without a server: diagnose over hand-built Facts, gather over a stub repo."""

from __future__ import annotations

import dataclasses
from typing import Any

import github
import pytest

from gitjsonl import AuthenticationError, GitHubError, NotFound, PermissionDenied
from gitjsonl._doctor import (
    LOW_RATE_BUDGET,
    MAX_CLOCK_SKEW,
    Check,
    Facts,
    checks_json,
    credentials_kind,
    diagnose,
    format_checks,
    gather,
    passed,
)
from gitjsonl._github import Credentials, RateBudget, RepoInfo

NOW = 1_700_000_000.0
PRIVATE = RepoInfo(full_name="owner/repo", default_branch="main", private=True, can_push=True)


def facts(**changes: Any) -> Facts:
    """Facts of a set-up where everything passes, with ``changes`` applied."""
    good = Facts(
        repo="owner/repo",
        credentials="classic personal access token",
        credentials_error=None,
        info=PRIVATE,
        repo_error=None,
        branch="main",
        branch_given=False,
        branch_exists=True,
        protected=False,
        allow_public=False,
        rate=RateBudget(remaining=4999, limit=5000, server_time=NOW),
        local_time=NOW,
        pacing="80 writes a minute",
    )
    return dataclasses.replace(good, **changes)


def info(**changes: Any) -> RepoInfo:
    return dataclasses.replace(PRIVATE, **changes)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def check(name: str, **changes: Any) -> Check:
    """The check called ``name`` that ``diagnose`` makes of ``facts(**changes)``."""
    return by_name(diagnose(facts(**changes)))[name]


class TestDiagnose:
    def test_a_good_set_up_passes_every_check_in_order(self) -> None:
        """Everything in place: every check but pacing passes, listed in the order to fix them."""
        checks = diagnose(facts())
        assert [c.name for c in checks] == [
            "credentials",
            "repository",
            "push",
            "visibility",
            "branch",
            "protection",
            "rate limit",
            "clock",
            "pacing",
        ]
        assert all(c.ok for c in checks[:-1])
        assert passed(checks)

    def test_pacing_is_information_last(self) -> None:
        """The pacing line is always last, neither pass nor fail, and not required."""
        pacing = diagnose(facts(pacing="off"))[-1]
        assert pacing == Check("pacing", None, "off", required=False)


class TestCredentialsCheck:
    def test_no_token_fails_and_names_every_way_to_give_one(self) -> None:
        """No credentials: ✗, advice naming GITHUB_TOKEN, --token-file and the App variables."""
        got = check("credentials", credentials="none")
        assert got.ok is False
        assert got.detail == "no token"
        for name in ("GITHUB_TOKEN", "--token-file", "GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID"):
            assert name in got.advice

    def test_refused_credentials_fail_with_their_kind_and_the_reason(self) -> None:
        """A 401: ✗ naming the kind and GitHub's answer, advising a new token."""
        got = check("credentials", credentials_error="Bad credentials", info=None)
        assert got.ok is False
        assert "classic personal access token" in got.detail
        assert "Bad credentials" in got.detail
        assert "new one" in got.advice

    def test_accepted_credentials_pass_with_their_kind(self) -> None:
        """Accepted: ✓ naming the kind."""
        got = check("credentials")
        assert got.ok is True
        assert got.detail == "classic personal access token, accepted"


class TestRepositoryCheck:
    def test_a_visible_repository_passes(self) -> None:
        """The repository was read: ✓ with its full name."""
        got = check("repository")
        assert got.ok is True
        assert "owner/repo" in got.detail

    def test_an_unreadable_repository_fails_with_the_reason(self) -> None:
        """Not read: ✗ with GitHub's answer and advice about names and token access."""
        got = check("repository", info=None, repo_error="Not Found")
        assert got.ok is False
        assert got.detail == "owner/repo: Not Found"
        assert "Repository access" in got.advice

    def test_an_unchecked_repository_fails_as_not_checked(self) -> None:
        """Credentials refused, so the repository was never read: ✗ "not checked"."""
        got = check("repository", info=None, credentials_error="Bad credentials")
        assert got.ok is False
        assert "not checked" in got.detail

    def test_without_the_repository_nothing_about_it_is_checked(self) -> None:
        """No repository information: no push, visibility, branch or protection line."""
        names = {c.name for c in diagnose(facts(info=None, repo_error="Not Found"))}
        assert names.isdisjoint({"push", "visibility", "branch", "protection"})


class TestPushCheck:
    def test_push_permission_passes(self) -> None:
        """permissions.push true: ✓."""
        assert check("push").ok is True

    def test_read_only_fails_with_the_scope_to_grant(self) -> None:
        """permissions.push false: ✗, advising contents write or the repo scope."""
        got = check("push", info=info(can_push=False))
        assert got.ok is False
        assert "read but not push" in got.detail
        assert "Contents: Read and write" in got.advice
        assert "'repo' scope" in got.advice

    def test_unknown_permission_is_information(self) -> None:
        """No permissions in the answer (an App token): · neither pass nor fail."""
        got = check("push", info=info(can_push=None))
        assert got.ok is None
        assert passed(diagnose(facts(info=info(can_push=None))))


class TestVisibilityCheck:
    def test_private_passes(self) -> None:
        """A private repository: ✓ private."""
        got = check("visibility")
        assert (got.ok, got.detail) == (True, "private")

    def test_public_fails_unless_allowed(self) -> None:
        """A public repository: ✗ saying records would be published, advising --allow-public."""
        got = check("visibility", info=info(private=False))
        assert got.ok is False
        assert "published" in got.detail
        assert "--allow-public" in got.advice
        assert not passed(diagnose(facts(info=info(private=False))))

    def test_public_passes_when_allowed(self) -> None:
        """A public repository with allow_public: ✓, saying it was allowed."""
        got = check("visibility", info=info(private=False), allow_public=True)
        assert got.ok is True
        assert "--allow-public" in got.detail


class TestBranchCheck:
    def test_an_unprotected_branch_passes_both_lines(self) -> None:
        """The branch exists and is not protected: ✓ branch, ✓ protection."""
        checks = by_name(diagnose(facts()))
        assert (checks["branch"].ok, checks["branch"].detail) == (True, "main exists")
        assert checks["protection"].ok is True
        assert "not protected" in checks["protection"].detail

    def test_a_protected_branch_fails_advising_a_branch_of_its_own(self) -> None:
        """A protected branch: ✗ protection, advising --branch gitjsonl-log (branch= in Python)."""
        got = check("protection", protected=True)
        assert got.ok is False
        assert "main is protected" in got.detail
        assert "--branch gitjsonl-log" in got.advice
        assert "branch=" in got.advice
        assert not passed(diagnose(facts(protected=True)))

    def test_unknown_protection_adds_no_line(self) -> None:
        """Protection could not be read: no protection line at all."""
        assert "protection" not in by_name(diagnose(facts(protected=None)))

    def test_unknown_existence_is_information(self) -> None:
        """Whether the branch exists could not be read: · branch."""
        assert check("branch", branch_exists=None, protected=None).ok is None

    def test_unknown_existence_does_not_claim_the_branch_exists(self) -> None:
        """A branch that could not be read is not reported as existing."""
        got = check("branch", branch_exists=None, protected=None)
        assert got.detail != "main exists"

    def test_a_chosen_branch_that_can_be_created_passes(self) -> None:
        """branch= names a branch that does not exist and the token may push: ✓ will be created."""
        changes = {"branch": "gitjsonl-log", "branch_given": True, "branch_exists": False}
        checks = by_name(diagnose(facts(protected=None, **changes)))
        assert checks["branch"].ok is True
        assert "gitjsonl-log does not exist yet" in checks["branch"].detail
        assert "creates it" in checks["branch"].detail
        assert "protection" not in checks

    def test_a_chosen_branch_without_push_is_information(self) -> None:
        """A branch to create with a read-only token: · branch (the push line says why)."""
        changes = {"branch": "gitjsonl-log", "branch_given": True, "branch_exists": False}
        got = check("branch", info=info(can_push=False), protected=None, **changes)
        assert got.ok is None

    def test_a_missing_default_branch_is_information(self) -> None:
        """The default branch does not exist (no commit yet): · branch, not a failure."""
        got = check("branch", branch_exists=False, protected=None)
        assert got.ok is None
        assert got.detail.startswith("main does not exist yet")

    def test_an_unresolved_branch_shows_a_question_mark(self) -> None:
        """No branch name could be resolved: the line says ? instead of a name."""
        got = check("branch", branch=None, branch_exists=False, protected=None)
        assert got.detail.startswith("? ")


class TestRateLimitCheck:
    @pytest.mark.parametrize(
        ("remaining", "ok"),
        [(4999, True), (LOW_RATE_BUDGET, True), (LOW_RATE_BUDGET - 1, False), (0, False)],
    )
    def test_a_low_budget_fails(self, remaining: int, ok: bool) -> None:
        """Fewer than LOW_RATE_BUDGET requests left: ✗; that many or more: ✓."""
        got = check("rate limit", rate=RateBudget(remaining, 5000, NOW))
        assert got.ok is ok
        assert got.detail == f"{remaining:,} of 5,000 requests left this hour"
        assert bool(got.advice) is not ok

    def test_no_budget_known_means_no_rate_or_clock_lines(self) -> None:
        """No /rate_limit answer: neither a rate-limit nor a clock line."""
        names = {c.name for c in diagnose(facts(rate=None))}
        assert names.isdisjoint({"rate limit", "clock"})


class TestClockCheck:
    @pytest.mark.parametrize(
        ("skew", "ok", "shown"),
        [
            (0.0, True, "+0 s"),
            (MAX_CLOCK_SKEW, True, "+30 s"),
            (-MAX_CLOCK_SKEW, True, "-30 s"),
            (MAX_CLOCK_SKEW + 1, False, "+31 s"),
            (-120.0, False, "-120 s"),
        ],
    )
    def test_skew_beyond_the_limit_fails(self, skew: float, ok: bool, shown: str) -> None:
        """Local minus server time within MAX_CLOCK_SKEW: ✓; beyond: ✗ advising NTP."""
        got = check("clock", local_time=NOW + skew)
        assert got.ok is ok
        assert got.detail == f"{shown} from GitHub's clock"
        assert ("NTP" in got.advice) is not ok

    def test_a_skewed_clock_is_not_required(self) -> None:
        """A bad clock alone does not fail the checklist."""
        checks = diagnose(facts(local_time=NOW - 3600))
        assert by_name(checks)["clock"].ok is False
        assert by_name(checks)["clock"].required is False
        assert passed(checks)

    def test_no_date_header_is_information(self) -> None:
        """GitHub sent no Date: · clock, not required."""
        got = check("clock", rate=RateBudget(4999, 5000, None))
        assert (got.ok, got.required) == (None, False)
        assert "no Date header" in got.detail


class TestPassed:
    @pytest.mark.parametrize(
        ("checks", "expected"),
        [
            ([], True),
            ([Check("a", True, "")], True),
            ([Check("a", None, "")], True),
            ([Check("a", True, ""), Check("b", False, "")], False),
            ([Check("a", False, "", required=False)], True),
            ([Check("a", None, ""), Check("b", False, "", required=False)], True),
        ],
    )
    def test_only_a_failed_required_check_fails(self, checks: list[Check], expected: bool) -> None:
        """Passed unless some required check is ✗; information and optional ✗ do not count."""
        assert passed(checks) is expected


class TestFormatChecks:
    def test_marks_and_advice_lines(self) -> None:
        """✓, ✗ and · lead their lines; only a ✗ is followed by its advice."""
        checks = [
            Check("credentials", True, "accepted", advice="never shown"),
            Check("push", False, "read only", advice="grant write"),
            Check("clock", False, "+99 s", required=False),
            Check("pacing", None, "off", advice="never shown either"),
        ]
        assert format_checks(checks) == (
            "✓ credentials: accepted\n"
            "✗ push: read only\n"
            "    → grant write\n"
            "✗ clock: +99 s\n"
            "· pacing: off"
        )

    def test_ascii_marks(self) -> None:
        """For a terminal that is not UTF-8: +, x, - and -> in place of ✓, ✗, · and →."""
        checks = [
            Check("credentials", True, "accepted"),
            Check("push", False, "read only", advice="grant write"),
            Check("pacing", None, "off"),
        ]
        text = format_checks(checks, ascii_only=True)
        assert (
            text == "+ credentials: accepted\nx push: read only\n    -> grant write\n- pacing: off"
        )
        assert text.isascii()

    def test_nothing_to_format(self) -> None:
        """No checks: an empty string."""
        assert format_checks([]) == ""


URL = "https://api.github.com"
SECRET = "0123456789abcdefghijklmnopqrstuvwxyzAB"


class TestCredentialsKind:
    @pytest.mark.parametrize(
        ("prefix", "kind"),
        [
            ("github_pat_", "fine-grained personal access token"),
            ("ghp_", "classic personal access token"),
            ("ghs_", "GitHub App installation token"),
            ("ghu_", "GitHub App user token"),
            ("gho_", "OAuth token"),
            ("xyz_", "token of unknown kind"),
            ("", "token of unknown kind"),
        ],
    )
    def test_the_prefix_names_the_kind_never_the_token(self, prefix: str, kind: str) -> None:
        """Each documented prefix gives its kind; the token itself is never part of the answer."""
        token = prefix + SECRET
        got = credentials_kind(Credentials(URL, token))
        assert got == kind
        assert SECRET not in got

    @pytest.mark.parametrize("token", [None, ""])
    def test_no_token_is_none(self, token: str | None) -> None:
        """No token and no auth object: "none"."""
        assert credentials_kind(Credentials(URL, token)) == "none"

    def test_an_auth_object_is_named_by_its_class(self) -> None:
        """PyGithub credentials are named by their class, without the token inside."""
        auth = github.Auth.Token("ghp_" + SECRET)
        got = credentials_kind(Credentials(URL, auth=auth))
        assert got == "Token (PyGithub credentials)"
        assert SECRET not in got

    def test_a_token_and_an_auth_object_are_refused(self) -> None:
        """Credentials are a token or an auth object, never both: there is nothing to describe."""
        with pytest.raises(ValueError, match="not both"):
            Credentials(URL, "ghp_" + SECRET, auth=github.Auth.Token("ghp_" + SECRET))


class StubRepo:
    """The reads ``gather`` makes, answering from fixed values or raising."""

    full_name = "owner/repo"

    def __init__(
        self,
        *,
        rate: RateBudget | Exception = RateBudget(4999, 5000, NOW),  # noqa: B008 - frozen
        repository: RepoInfo | Exception = PRIVATE,
        protected: bool | Exception = False,
    ) -> None:
        self._rate = rate
        self._repository = repository
        self._protected = protected
        self.calls: list[str] = []
        self.fresh: list[bool] = []

    @staticmethod
    def _answer(value: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        return value

    def rate_limit(self) -> RateBudget:
        self.calls.append("rate_limit")
        return self._answer(self._rate)  # type: ignore[no-any-return]

    def repository(self, *, fresh: bool = False) -> RepoInfo:
        self.calls.append("repository")
        self.fresh.append(fresh)
        return self._answer(self._repository)  # type: ignore[no-any-return]

    def branch_protected(self, branch: str) -> bool:
        self.calls.append(f"branch_protected {branch}")
        return self._answer(self._protected)  # type: ignore[no-any-return]


def gathered(repo: StubRepo, *, branch: str | None = None, allow_public: bool = False) -> Facts:
    stub: Any = repo
    return gather(
        stub,
        branch=branch,
        credentials="classic personal access token",
        allow_public=allow_public,
        pacing="off",
        clock=lambda: NOW + 5,
    )


class TestGather:
    def test_a_good_set_up_reads_three_things(self) -> None:
        """Rate limit, a fresh read of the repository, the default branch's protection."""
        repo = StubRepo()
        got = gathered(repo)
        assert repo.calls == ["rate_limit", "repository", "branch_protected main"]
        assert repo.fresh == [True]
        assert got == facts(local_time=NOW + 5, pacing="off")

    def test_a_chosen_branch_is_the_one_checked(self) -> None:
        """branch= is checked, and marked as chosen."""
        repo = StubRepo()
        got = gathered(repo, branch="gitjsonl-log")
        assert repo.calls[-1] == "branch_protected gitjsonl-log"
        assert (got.branch, got.branch_given) == ("gitjsonl-log", True)

    def test_refused_credentials_stop_there(self) -> None:
        """A 401 from /rate_limit: credentials_error set, the repository not asked."""
        refused = AuthenticationError("Bad credentials", status=401)
        repo = StubRepo(rate=refused)
        got = gathered(repo)
        assert repo.calls == ["rate_limit"]
        assert got.credentials_error == str(refused)
        assert (got.info, got.rate, got.branch, got.branch_exists) == (None, None, None, None)

    def test_a_server_without_rate_limit_goes_on(self) -> None:
        """Another error from /rate_limit: no budget known, everything else still read."""
        repo = StubRepo(rate=NotFound("Not Found", status=404))
        got = gathered(repo)
        assert got.rate is None
        assert got.credentials_error is None
        assert got.info == PRIVATE

    def test_an_unreadable_repository_is_its_error(self) -> None:
        """A 404 for the repository: repo_error, and no branch read."""
        missing = NotFound("Not Found", status=404)
        repo = StubRepo(repository=missing)
        got = gathered(repo)
        assert got.repo_error == str(missing)
        assert got.info is None
        assert (got.branch, got.branch_exists, got.protected) == (None, None, None)
        assert "branch_protected main" not in repo.calls

    def test_a_missing_branch_does_not_exist(self) -> None:
        """A 404 for the branch: branch_exists False, protection unknown."""
        got = gathered(StubRepo(protected=NotFound("Branch not found", status=404)))
        assert (got.branch_exists, got.protected) == (False, None)

    def test_another_branch_error_leaves_it_unknown(self) -> None:
        """Another error reading the branch: existence and protection unknown."""
        got = gathered(StubRepo(protected=PermissionDenied("Forbidden", status=403)))
        assert (got.branch_exists, got.protected) == (None, None)

    def test_a_protected_branch(self) -> None:
        """The branch says protected: protected True."""
        assert gathered(StubRepo(protected=True)).protected is True

    def test_allow_public_is_carried(self) -> None:
        """allow_public reaches the facts unchanged."""
        assert gathered(StubRepo(), allow_public=True).allow_public is True

    def test_gather_raises_nothing_github_says(self) -> None:
        """Every GitHubError becomes a fact, never an exception out of gather."""
        error = GitHubError("server error", status=500)
        got = gathered(StubRepo(rate=error, repository=error))
        assert got.repo_error == str(error)


class TestChecksJson:
    def test_the_document_doctor_json_prints(self) -> None:
        """Every check with its fields, and ready false when a required check failed."""
        checks = [
            Check("credentials", True, "accepted"),
            Check("push", False, "read only", advice="grant write"),
            Check("clock", False, "+99 s", required=False),
        ]
        document = checks_json(checks, repo="o/r", path="data/log")
        assert document["ready"] is False
        assert (document["repo"], document["path"]) == ("o/r", "data/log")
        assert document["checks"][1] == {
            "name": "push",
            "ok": False,
            "detail": "read only",
            "advice": "grant write",
            "required": True,
        }
        assert checks_json(checks[::2], repo="o/r", path="data/log")["ready"] is True
