"""Who is calling: personal tokens (optionally expiring) and GitHub App installations.

A token resolves to a :class:`Grant`: read or write access, an optional
expiry, and optionally the only repositories it may see (an installation's).
A GitHub App authenticates with an RS256 JWT signed by its private key and
exchanges it for a short-lived installation token, as PyGithub's
``Auth.AppAuth(...).get_installation_auth(...)`` does.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCESS = ("read", "write")


@dataclass(frozen=True)
class Grant:
    """What a token may do."""

    access: str
    expires_at: float | None = None  # wall-clock seconds
    repos: frozenset[str] | None = None
    kind: str = "pat"  # "pat" | "installation"


@dataclass
class App:
    """A registered GitHub App: its public key and installations (id -> repositories)."""

    app_id: str
    public_key: str
    installations: dict[int, frozenset[str] | None] = field(default_factory=dict)
    token_lifetime: float = 3600.0
    access: str = "write"


class AuthError(Exception):
    """A 401 with GitHub's message."""


class Tokens:
    """The tokens a hub accepts; ``open`` hubs accept any token with write access."""

    def __init__(
        self, tokens: Mapping[str, str] | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.open = tokens is None
        self._clock = clock
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self._apps: dict[str, App] = {}
        for token, access in (tokens or {}).items():
            self.add(token, access=access)

    def add(
        self,
        token: str,
        *,
        access: str = "write",
        expires_in: float | None = None,
        repos: Iterable[str] | None = None,
        kind: str = "pat",
    ) -> Grant:
        """Accept ``token``; it stops working ``expires_in`` seconds from now."""
        if access not in ACCESS:
            raise ValueError(f"token access must be 'read' or 'write', not {access!r}")
        if expires_in is not None and expires_in <= 0:
            raise ValueError("expires_in must be > 0 seconds")
        expires_at = None if expires_in is None else self._clock() + expires_in
        grant = Grant(access, expires_at, None if repos is None else frozenset(repos), kind)
        with self._lock:
            self._grants[token] = grant
        return grant

    def first_write_token(self) -> str | None:
        """A configured, unexpired write token."""
        now = self._clock()
        with self._lock:
            for token, grant in self._grants.items():
                live = grant.expires_at is None or grant.expires_at > now
                if grant.access == "write" and grant.kind == "pat" and live:
                    return token
        return None

    def resolve(self, token: str | None) -> Grant | None:
        """The token's grant; None for no token; AuthError for unknown or expired ones.

        An open hub (created without tokens) lets anyone, with or without a token, write.
        """
        if token is None:
            return Grant("write") if self.open else None
        with self._lock:
            grant = self._grants.get(token)
        if grant is None:
            if self.open:
                return Grant("write")
            raise AuthError("Bad credentials")
        if grant.expires_at is not None and self._clock() >= grant.expires_at:
            raise AuthError("Bad credentials")
        return grant

    # ---- GitHub Apps ---------------------------------------------------------

    def register_app(
        self,
        app_id: int | str,
        public_key_pem: str,
        installation_id: int,
        *,
        repos: Iterable[str] | None,
        token_lifetime: float,
        access: str,
    ) -> None:
        """Register (or extend) an App and one installation of it."""
        if token_lifetime <= 0:
            raise ValueError("token_lifetime must be > 0 seconds")
        if access not in ACCESS:
            raise ValueError(f"installation access must be 'read' or 'write', not {access!r}")
        with self._lock:
            app = self._apps.setdefault(str(app_id), App(str(app_id), public_key_pem))
            app.public_key = public_key_pem
            app.token_lifetime = token_lifetime
            app.access = access
            app.installations[installation_id] = None if repos is None else frozenset(repos)

    def app_for_jwt(self, token: str | None) -> App:
        """The App whose key signed this JWT (RS256, unexpired, ``iss`` = app id)."""
        import jwt  # PyJWT, installed with PyGithub

        if not token:
            raise AuthError("A JSON web token could not be decoded")  # recalled
        try:
            claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("A JSON web token could not be decoded") from None
        with self._lock:
            app = self._apps.get(str(claims.get("iss")))
        if app is None:
            raise AuthError("Integration not found")  # recalled, not sourced
        try:
            jwt.decode(
                token,
                app.public_key,
                algorithms=["RS256"],
                options={"require": ["exp", "iat", "iss"]},
                leeway=60,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(
                "'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires"  # recalled, not sourced
            ) from None
        except jwt.PyJWTError:
            raise AuthError("A JSON web token could not be decoded") from None
        return app

    def issue_installation_token(self, app: App, installation_id: int) -> dict[str, Any] | None:
        """A new installation token's JSON, or None when the installation is unknown."""
        if installation_id not in app.installations:
            return None
        repos = app.installations[installation_id]
        token = "ghs_" + secrets.token_urlsafe(27)[:36]
        grant = self.add(
            token,
            access=app.access,
            expires_in=app.token_lifetime,
            repos=repos,
            kind="installation",
        )
        assert grant.expires_at is not None
        expires = dt.datetime.fromtimestamp(grant.expires_at, dt.timezone.utc)
        level = "write" if app.access == "write" else "read"
        return {
            "token": token,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": {"contents": level, "metadata": "read"},
            "repository_selection": "all" if repos is None else "selected",
        }


def app_endpoint(
    tokens: Tokens, method: str, segments: tuple[str, ...], token: str | None, base_url: str
) -> tuple[int, Any] | None:
    """Answer the GitHub App endpoints PyGithub's App auth uses; None for any other path.

    ``POST /app/installations/{id}/access_tokens`` (what ``AppInstallationAuth``
    calls), ``GET /app/installations/{id}``, ``GET /app`` and
    ``GET /repos/{o}/{r}/installation``, all authenticated with the App's JWT.
    """
    is_app = segments[:1] == ("app",)
    is_repo_installation = (
        len(segments) == 4 and segments[0] == "repos" and segments[3] == "installation"
    )
    if not (is_app or is_repo_installation):
        return None
    doc = "https://docs.github.com/rest/apps/apps"
    try:
        app = tokens.app_for_jwt(token)
    except AuthError as exc:
        return 401, {"message": str(exc), "documentation_url": doc}
    not_found = (404, {"message": "Not Found", "documentation_url": doc})
    if segments == ("app",) and method == "GET":
        return 200, {"id": int(app.app_id), "slug": f"app-{app.app_id}", "name": app.app_id}
    installation_id: int | None = None
    if is_repo_installation:
        full_name = f"{segments[1]}/{segments[2]}"
        installation_id = next(
            (i for i, repos in app.installations.items() if repos is None or full_name in repos),
            None,
        )
        if installation_id is None or method != "GET":
            return not_found
        return 200, _installation_json(app, installation_id, base_url)
    if len(segments) >= 3 and segments[1] == "installations" and segments[2].isdigit():
        installation_id = int(segments[2])
    if installation_id is None or installation_id not in app.installations:
        return not_found
    if segments[3:] == ("access_tokens",) and method == "POST":
        issued = tokens.issue_installation_token(app, installation_id)
        return (201, issued) if issued is not None else not_found
    if len(segments) == 3 and method == "GET":
        return 200, _installation_json(app, installation_id, base_url)
    return not_found


def _installation_json(app: App, installation_id: int, base_url: str) -> dict[str, Any]:
    repos = app.installations[installation_id]
    return {
        "id": installation_id,
        "app_id": int(app.app_id),
        "access_tokens_url": f"{base_url}/app/installations/{installation_id}/access_tokens",
        "repositories_url": f"{base_url}/installation/repositories",
        "repository_selection": "all" if repos is None else "selected",
        "permissions": {"contents": app.access, "metadata": "read"},
        "target_type": "User",
    }
