"""Credentials out of text: the one home for scrubbing.

Everything a server says (an error message, a ``Location``, an answer quoted in
an error) and every record PyGithub logs passes through ``redact`` before it
goes anywhere: an exception, a log line, ``stats()``. It removes the tokens this
process was given (``remember_secret``, whatever their shape: a GitHub
Enterprise token or an old 40-hex one looks like nothing in particular) and
anything shaped like a credential: GitHub's token prefixes (``ghp_``,
``github_pat_``, ``ghs_``, ``gho_``, ``ghu_``, ``ghr_``), JWTs, ``Bearer``/
``token`` authorisation values, private keys and JSON ``"token"`` fields.

``server_text`` also cuts what a server said to a bounded length: a 2 MB error
page is not an exception message.

``scrub_url`` is how any URL a user gave (``api_url``, a coordinator's
``redis://``) reaches a message, a ``repr`` or a log line: without its user
information, without the values of credential-like query parameters, whether
or not the URL parses (a password holding ``/``, ``#`` or ``?`` makes a URL
parse as something else, and that is exactly when it gets quoted in an error).
"""

from __future__ import annotations

import re
import threading

__all__ = ["SERVER_TEXT_LIMIT", "redact", "remember_secret", "scrub_url", "server_text"]

#: The most of a server's text (a message, a Location) kept in an error.
SERVER_TEXT_LIMIT = 500

REMOVED = "(secret removed)"

_PATTERNS = (
    re.compile(r'("token"\s*:\s*")[^"]+(")'),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,})"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    # An Authorization header's value, as an echoing server may quote it.
    re.compile(r"(?i)(\b(?:bearer|token|basic)\s+)(?=\S*\d)[A-Za-z0-9._~+/=-]{8,}()"),
)


class _KnownSecrets:
    """The tokens this process was given, and one pattern matching any of them."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.lock = threading.Lock()
        self.pattern: re.Pattern[str] | None = None


_known = _KnownSecrets()

#: Shorter strings are not removed verbatim (they would mangle ordinary words).
_MIN_SECRET = 6


def remember_secret(secret: str | None) -> None:
    """Remove ``secret`` verbatim from every text ``redact`` sees from now on (in this process)."""
    if not secret or len(secret) < _MIN_SECRET:
        return
    with _known.lock:
        if secret in _known.secrets:
            return
        _known.secrets.add(secret)
        # Longest first, so that a token containing another is removed whole.
        alternatives = sorted(_known.secrets, key=len, reverse=True)
        _known.pattern = re.compile("|".join(re.escape(s) for s in alternatives))


def redact(text: str) -> str:
    """``text`` without any credential in it."""
    known = _known.pattern
    if known is not None:
        text = known.sub(REMOVED, text)
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: f"{m.group(1)}{REMOVED}{m.group(2)}" if m.re.groups == 2 else REMOVED,
            text,
        )
    return text


def server_text(value: object, limit: int = SERVER_TEXT_LIMIT) -> str:
    """What a server said, as it may be shown: scrubbed, on one line, at most ``limit`` characters.

    Cut before scrubbing only far past ``limit`` (a secret cut in two there is
    cut off again below), so that a 2 MB page costs no 2 MB of regular expressions.
    """
    text = value if isinstance(value, str) else str(value)
    total = len(text)
    text = redact(text[: limit * 8])
    text = " ".join(text.split())  # a server's newlines would forge lines of a log
    if total > limit or len(text) > limit:
        return f"{text[:limit]}... ({total:,} characters in all)"
    return text


#: What stands for the user information or a credential's value in a scrubbed URL.
HIDDEN = "***"

#: Query parameters whose value is a credential (redis-py takes ``?password=``).
_SECRET_PARAMS = (
    "password|passwd|pwd|pass|token|access_token|refresh_token|id_token|auth|"
    "authorization|key|api_key|apikey|secret|client_secret|sig|signature|credential|credentials"
)
# A secret value runs to the next ``&name=`` (or the end): a ``#`` or a ``&`` in a
# password stays hidden with it.
_SECRET_QUERY = re.compile(
    rf"(?i)(^|[?&;#])((?:{_SECRET_PARAMS})=).*?(?=[&;][A-Za-z0-9_.-]+=|$)", re.S
)
_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*://")
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def scrub_url(url: object, limit: int = SERVER_TEXT_LIMIT) -> str:
    """``url`` as it may be shown: no user information, no credential in its query, one line.

    Never raises and never parses: everything before the last ``@`` of the part
    after the scheme is user information (a password may hold any of
    ``/?#@``; hiding a little too much is the safe way to be wrong), and a
    ``password=``/``token=``/``key=``... value is hidden up to the next
    parameter. Tokens this process knows are removed too (``redact``).
    """
    text = url if isinstance(url, str) else repr(url)
    text = _URL_CONTROL.sub("?", text[: limit * 8])
    scheme = _SCHEME.match(text)
    head = scheme.group(0) if scheme else ""
    rest = text[len(head) :]
    if "@" in rest:
        rest = f"{HIDDEN}@{rest.rpartition('@')[2]}"
    rest = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", rest)
    shown = redact(head + rest)
    return shown if len(shown) <= limit else f"{shown[:limit]}..."
