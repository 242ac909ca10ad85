"""JSON bodies shaped like GitHub's, with every URL built from localhub's own base.

PyGithub refuses to follow a URL whose host, port or prefix differs from its
``base_url``, so nothing here may mention api.github.com.
"""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from typing import Any
from urllib.parse import quote

from ._gitstore import DEFAULT_EMAIL, DEFAULT_NAME, Commit, Person

JSON = dict[str, Any]
DOCS = "https://docs.github.com/rest"
USER_LOGIN = DEFAULT_NAME
USER_ID = 1


def node_id(kind: str, key: str) -> str:
    """A stable opaque global id, in the spirit of GitHub's ``node_id``."""
    return f"{kind}_" + base64.b64encode(key.encode()).decode().rstrip("=")


def b64_lines(data: bytes) -> str:
    """Base64 with a newline after every 60 characters, as GitHub sends it."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def iso(person: Person) -> str:
    """The person's date in UTC, ``YYYY-MM-DDTHH:MM:SSZ``."""
    when = dt.datetime.fromtimestamp(person.timestamp, dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def person_json(person: Person) -> JSON:
    """``{name, email, date}``."""
    return {"name": person.name, "email": person.email, "date": iso(person)}


class Urls:
    """URL builder for one repository on one server."""

    def __init__(self, base: str, full_name: str) -> None:
        self.base = base
        self.full_name = full_name
        self.api = f"{base}/repos/{full_name}"
        self.html = f"{base}/{full_name}"

    def user(self) -> JSON:
        """The token's user, as a simple-user object."""
        u = f"{self.base}/users/{USER_LOGIN}"
        return {
            "login": USER_LOGIN,
            "id": USER_ID,
            "node_id": node_id("U", USER_LOGIN),
            "avatar_url": f"{self.base}/avatars/{USER_LOGIN}",
            "gravatar_id": "",
            "url": u,
            "html_url": f"{self.base}/{USER_LOGIN}",
            "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}",
            "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs",
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events",
            "type": "User",
            "site_admin": False,
        }

    def owner(self, kind: str = "User") -> JSON:
        """The repository owner as a simple-user object (``type`` User or Organization)."""
        login = self.full_name.split("/")[0]
        owner = self.user()
        u = f"{self.base}/users/{login}"
        owner.update(
            login=login,
            id=zlib.crc32(login.encode()),
            node_id=node_id("U", login),
            url=u,
            html_url=f"{self.base}/{login}",
            followers_url=f"{u}/followers",
            following_url=f"{u}/following{{/other_user}}",
            gists_url=f"{u}/gists{{/gist_id}}",
            starred_url=f"{u}/starred{{/owner}}{{/repo}}",
            subscriptions_url=f"{u}/subscriptions",
            organizations_url=f"{u}/orgs",
            repos_url=f"{u}/repos",
            events_url=f"{u}/events{{/privacy}}",
            received_events_url=f"{u}/received_events",
            type=kind,
        )
        return owner

    def repository(
        self,
        default_branch: str,
        created: str,
        pushed: str,
        size: int,
        *,
        organization: bool = False,
        writer: bool = True,
    ) -> JSON:
        """The full-repository object of GET /repos/{owner}/{repo}.

        As GitHub has sent it since 2022 (tests/octokit_fixtures' get-repository,
        and GitHub's OpenAPI description for the keys added later:
        ``has_discussions``, the merge commit title and message settings,
        ``custom_properties``). An organisation's repository names it in
        ``organization``; the merge settings and ``temp_clone_token`` go only to
        a token that may push (``writer``), as GitHub leaves them out for
        readers and anonymous requests.
        """
        a = self.api
        name = self.full_name.split("/")[1]
        host = self.base.split("://", 1)[-1]
        body: JSON = {
            "id": zlib.crc32(self.full_name.encode()),
            "node_id": node_id("R", self.full_name),
            "name": name,
            "full_name": self.full_name,
            "private": True,
            "visibility": "private",
            "owner": self.owner("Organization" if organization else "User"),
            "html_url": self.html,
            "description": None,
            "fork": False,
            "url": a,
            "homepage": None,
            "language": None,
            "license": None,
            "mirror_url": None,
            "clone_url": f"{self.html}.git",
            "git_url": f"git://{host}/{self.full_name}.git",
            "ssh_url": f"git@{host}:{self.full_name}.git",
            "svn_url": self.html,
            "default_branch": default_branch,
            "archived": False,
            "disabled": False,
            "is_template": False,
            "has_issues": False,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": False,
            "has_discussions": False,
            "forks": 0,
            "forks_count": 0,
            "open_issues": 0,
            "open_issues_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "network_count": 0,
            "subscribers_count": 0,
            "size": size,
            "topics": [],
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "custom_properties": {},
            "created_at": created,
            "updated_at": pushed,
            "pushed_at": pushed,
            "permissions": {
                "admin": True,
                "maintain": True,
                "push": True,
                "triage": True,
                "pull": True,
            },
        }
        if writer:
            body.update(_WRITER_SETTINGS)
        if organization:
            body["organization"] = self.owner("Organization")
        for key, suffix in _REPO_URLS.items():
            body[key] = a + suffix
        return body

    def ref(self, refname: str, sha: str, kind: str) -> JSON:
        """A git reference object."""
        plural = {"commit": "commits", "tree": "trees", "blob": "blobs", "tag": "tags"}[kind]
        return {
            "ref": refname,
            "node_id": node_id("REF", f"{self.full_name}:{refname}"),
            "url": f"{self.api}/git/{quote(refname)}",
            "object": {"sha": sha, "type": kind, "url": f"{self.api}/git/{plural}/{sha}"},
        }

    def git_commit(self, commit: Commit) -> JSON:
        """The object of GET/POST /git/commits."""
        return {
            "sha": commit.sha,
            "node_id": node_id("C", commit.sha),
            "url": f"{self.api}/git/commits/{commit.sha}",
            "html_url": f"{self.html}/commit/{commit.sha}",
            "author": person_json(commit.author),
            "committer": person_json(commit.committer),
            "tree": {"sha": commit.tree, "url": f"{self.api}/git/trees/{commit.tree}"},
            "message": commit.message,
            "parents": [
                {
                    "sha": p,
                    "url": f"{self.api}/git/commits/{p}",
                    "html_url": f"{self.html}/commit/{p}",
                }
                for p in commit.parents
            ],
            "verification": _UNSIGNED,
        }

    def listed_commit(self, commit: Commit) -> JSON:
        """One item of GET /commits."""
        return {
            "sha": commit.sha,
            "node_id": node_id("C", commit.sha),
            "commit": {
                "author": person_json(commit.author),
                "committer": person_json(commit.committer),
                "message": commit.message,
                "tree": {"sha": commit.tree, "url": f"{self.api}/git/trees/{commit.tree}"},
                "url": f"{self.api}/git/commits/{commit.sha}",
                "comment_count": 0,
                "verification": _UNSIGNED,
            },
            "url": f"{self.api}/commits/{commit.sha}",
            "html_url": f"{self.html}/commit/{commit.sha}",
            "comments_url": f"{self.api}/commits/{commit.sha}/comments",
            # GitHub links a commit's email to an account, and sends null for an email
            # it links to none (its OpenAPI description: nullable simple-user).
            "author": self.user() if commit.author.email == DEFAULT_EMAIL else None,
            "committer": self.user() if commit.committer.email == DEFAULT_EMAIL else None,
            "parents": [
                {
                    "sha": p,
                    "url": f"{self.api}/commits/{p}",
                    "html_url": f"{self.html}/commit/{p}",
                }
                for p in commit.parents
            ],
        }

    def tree_entry(self, path: str, mode: str, kind: str, sha: str, size: int | None) -> JSON:
        """One entry of a tree listing (mode zero-padded like GitHub's ``040000``)."""
        entry: JSON = {"path": path, "mode": mode.zfill(6), "type": kind, "sha": sha}
        if kind == "blob":
            entry["size"] = size
            entry["url"] = f"{self.api}/git/blobs/{sha}"
        elif kind == "tree":
            entry["url"] = f"{self.api}/git/trees/{sha}"
        return entry

    def content_entry(self, path: str, kind: str, sha: str, size: int, ref: str) -> JSON:
        """The metadata GitHub gives for a file or directory in the Contents API."""
        qpath = quote(path)
        self_url = f"{self.api}/contents/{qpath}?ref={quote(ref, safe='')}"
        git_url = f"{self.api}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}"
        html_url = f"{self.html}/{'tree' if kind == 'dir' else 'blob'}/{quote(ref)}/{qpath}"
        return {
            "type": kind,
            "size": size,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": self_url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": (f"{self.html}/raw/{quote(ref)}/{qpath}" if kind == "file" else None),
            "_links": {"self": self_url, "git": git_url, "html": html_url},
        }


#: The repository settings GitHub shows only to a token that may push (the
#: octokit/fixtures get-repository recording, an admin's, has them all but the
#: merge commit title and message, which GitHub added later in 2022).
_WRITER_SETTINGS: JSON = {
    "temp_clone_token": "",
    "allow_squash_merge": True,
    "allow_merge_commit": True,
    "allow_rebase_merge": True,
    "allow_auto_merge": False,
    "delete_branch_on_merge": False,
    "allow_update_branch": False,
    "use_squash_pr_title_as_default": False,
    "squash_merge_commit_message": "COMMIT_MESSAGES",
    "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
    "merge_commit_message": "PR_TITLE",
    "merge_commit_title": "MERGE_MESSAGE",
}

_UNSIGNED: JSON = {
    "verified": False,
    "reason": "unsigned",
    "signature": None,
    "payload": None,
    "verified_at": None,
}

_REPO_URLS = {
    "forks_url": "/forks",
    "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}",
    "teams_url": "/teams",
    "hooks_url": "/hooks",
    "issue_events_url": "/issues/events{/number}",
    "events_url": "/events",
    "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}",
    "tags_url": "/tags",
    "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}",
    "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages",
    "stargazers_url": "/stargazers",
    "contributors_url": "/contributors",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}",
    "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}",
    "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}",
    "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}",
    "downloads_url": "/downloads",
    "issues_url": "/issues{/number}",
    "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}",
    "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


#: GitHub's license objects (license-simple) by key, as its recordings show them
#: (github3.py's cassettes of 2021 and 2023): what a repository's ``license`` is
#: once GitHub has detected one.
LICENSES: dict[str, JSON] = {
    "bsd-3-clause": {
        "key": "bsd-3-clause",
        "name": 'BSD 3-Clause "New" or "Revised" License',
        "spdx_id": "BSD-3-Clause",
        "url": "https://api.github.com/licenses/bsd-3-clause",
        "node_id": "MDc6TGljZW5zZTU=",
    },
    "other": {
        "key": "other",
        "name": "Other",
        "spdx_id": "NOASSERTION",
        "url": None,
        "node_id": "MDc6TGljZW5zZTA=",
    },
}
