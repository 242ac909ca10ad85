"""What GitHub's answers must look like before anything is built on them.

A server that lies (or a proxy's error page, or a transfer cut short) sends
JSON that does not parse, a field of the wrong type, a sha that is not one.
``_github`` reads each field it uses through these checks; a bad one raises
``AnswerShapeError`` (a ``ValueError``: what PyGithub's own parsing raises too),
which ``_github`` turns into ``MalformedAnswer``, naming the field and what
GitHub sent. No ``JSONDecodeError``, ``TypeError`` or ``AssertionError`` from a
hostile answer reaches the flusher, ``tail()`` or a caller.

Headers are read as numbers or dates twice: by PyGithub (``int(float(...))`` of
``X-RateLimit-*`` on every answer, where ``inf`` raises ``OverflowError``) and
by ``_github`` (``Retry-After``, a spent limit's reset). ``unreadable_headers``
names those that are not what GitHub sends; ``_http`` drops them as the answer
enters, so that a bad header reads as an absent one (``Retry-After: soon`` is a
rate limit that did not say how long).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
import re
from collections.abc import Mapping
from typing import Any

from github import BadAttributeException

from ._exceptions import MalformedAnswer
from ._redact import server_text

__all__ = [
    "MALFORMED",
    "AnswerShapeError",
    "blob_content",
    "count",
    "flag",
    "graphql_blob_texts",
    "items",
    "malformed_answer",
    "mapping",
    "pick",
    "retry_after_seconds",
    "sha",
    "shown_cause",
    "text",
    "tree_listing",
    "unreadable_headers",
]

_SHA = re.compile(r"\A[0-9a-f]{40}\Z")


class AnswerShapeError(ValueError):
    """A field of GitHub's answer is missing or not what GitHub sends."""


#: What PyGithub (and json, base64) raise on an answer they cannot make sense of.
MALFORMED: tuple[type[BaseException], ...] = (
    ValueError,  # json.JSONDecodeError, binascii.Error, AnswerShapeError
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    AssertionError,
    BadAttributeException,
)


def malformed_answer(exc: BaseException, *, write: bool) -> MalformedAnswer:
    """The ``MalformedAnswer`` for ``exc``, raised while reading an answer."""
    if isinstance(exc, AnswerShapeError):
        message = str(exc)
    else:
        message = f"GitHub's answer could not be read ({type(exc).__name__}: {server_text(exc)})"
    return MalformedAnswer(message, ambiguous=write)


def shown_cause(exc: BaseException) -> BaseException | None:
    """``exc`` to chain to the error we raise, or None when its text holds a secret or a page."""
    try:
        shown = str(exc)
    except Exception:
        return None
    clean = len(shown) <= 2000 and server_text(shown, 2000) == " ".join(shown.split())
    return exc if clean else None


def _shown(value: Any) -> str:
    return server_text(repr(value), 100)


def _wrong(what: str, value: Any, expected: str) -> AnswerShapeError:
    return AnswerShapeError(f"GitHub's answer gave {what} = {_shown(value)}, not {expected}")


def pick(obj: Any, path: str, what: str) -> Any:
    """``obj.a.b`` for ``path`` ``"a.b"`` of a PyGithub object; missing or of a bad type: raise."""
    value = obj
    for name in path.split("."):
        try:
            value = getattr(value, name)
        except (AttributeError, BadAttributeException) as exc:
            raise AnswerShapeError(f"GitHub's answer to {what} has no usable {path}") from exc
        if value is None:
            raise AnswerShapeError(f"GitHub's answer to {what} has no {path}")
    return value


def sha(value: Any, what: str) -> str:
    """A git object id: 40 lowercase hex digits."""
    if not isinstance(value, str) or not _SHA.match(value):
        raise _wrong(what, value, "a sha (40 hex digits)")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _wrong(what, value, "a string")
    return value


def count(value: Any, what: str) -> int:
    """A whole number, zero or more (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _wrong(what, value, "a whole number of 0 or more")
    return value


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong(what, value, "true or false")
    return value


def mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(what, value, "a JSON object")
    return value


def items(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong(what, value, "a JSON array")
    return value


def tree_listing(answer: Any, ref: str) -> dict[str, Any]:
    """A ``GET git/trees/{ref}`` answer, every entry's fields checked."""
    what = f"tree {ref}"
    data = mapping(answer, what)
    sha(data.get("sha"), f"{what}: sha")
    for index, entry in enumerate(items(data.get("tree"), f"{what}: tree")):
        where = f"{what}: tree[{index}]"
        fields = mapping(entry, where)
        name = text(fields.get("path"), f"{where}.path")
        if not name or "/" in name or "\0" in name:
            raise _wrong(f"{where}.path", name, "a name in the folder")
        kind = text(fields.get("type"), f"{where}.type")
        if kind not in ("blob", "tree", "commit"):
            raise _wrong(f"{where}.type", kind, "blob, tree or commit")
        sha(fields.get("sha"), f"{where}.sha")
        text(fields.get("mode"), f"{where}.mode")
        if kind == "blob":
            count(fields.get("size"), f"{where}.size")
    if "truncated" in data:
        flag(data["truncated"], f"{what}: truncated")
    return data


def blob_content(content: Any, encoding: Any, size: Any, blob: str) -> bytes:
    """The bytes of a ``GET git/blobs/{blob}`` answer: base64, exactly ``size`` bytes."""
    what = f"blob {blob}"
    if encoding != "base64":
        raise _wrong(f"{what}: encoding", encoding, '"base64"')
    text(content, f"{what}: content")
    try:
        data = base64.b64decode(content.replace("\n", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AnswerShapeError(f"GitHub's answer for {what} is not base64: {exc}") from exc
    if size is not None and count(size, f"{what}: size") != len(data):
        raise AnswerShapeError(
            f"GitHub's answer for {what} holds {len(data):,} bytes where its size says {size:,}"
            " (cut short?)"
        )
    return data


#: A header GitHub sends as a number (PyGithub reads each with ``int(float(...))``):
#: digits, and a fraction at most (https://github.com/PyGithub/PyGithub/pull/2697).
_NUMBER = re.compile(r"\A[0-9]{1,15}(?:\.[0-9]{1,9})?\Z")
_NUMERIC_HEADERS = frozenset(
    {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset"}
)


def retry_after_seconds(value: str, now: float) -> float | None:
    """The seconds a ``Retry-After`` value asks for, 0 or more: a number of seconds
    or an HTTP date (RFC 9110); None when it is neither (``soon``, ``nan``, garbage).

    Infinity stays infinite: ``clamp_wait`` bounds every wait a server asks for.
    """
    value = value.strip()
    if _NUMBER.match(value) or value.lower() in ("inf", "infinity") or value.startswith("-"):
        try:
            seconds = float(value)
        except ValueError:
            return None
        return None if math.isnan(seconds) else max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - now)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def unreadable_headers(headers: Mapping[str, str]) -> list[str]:
    """The names of ``headers`` read as numbers or dates whose values are neither."""

    def readable(name: str, value: str) -> bool:
        if name in _NUMERIC_HEADERS:
            return _NUMBER.match(value.strip()) is not None
        return name != "retry-after" or retry_after_seconds(value, 0.0) is not None

    return [name for name, value in headers.items() if not readable(name.lower(), value)]


def graphql_blob_texts(answer: Any, aliases: dict[str, str], *, max_chars: int) -> dict[str, str]:
    """The whole texts of a GraphQL answer to aliased ``object(oid:)`` lookups, by blob sha.

    ``aliases`` maps each alias asked (``f0``, ``f1``...) to its blob's sha.
    The answer as a whole must be what was asked (``data.repository`` holding
    only those aliases): anything else is refused here. An entry that is null,
    of another shape, cut short (``isTruncated``), binary (``text: null``) or
    longer than ``max_chars`` is left out: the caller reads that blob through
    REST, and checks every text it keeps against its sha.
    """
    data = mapping(mapping(answer, "the GraphQL answer").get("data"), "the GraphQL answer: data")
    found = mapping(data.get("repository"), "the GraphQL answer: data.repository")
    extra = sorted(set(found) - set(aliases))
    if extra:
        raise _wrong("the GraphQL answer: data.repository", extra[:5], "only the aliases asked")
    texts: dict[str, str] = {}
    for alias, blob in aliases.items():
        entry = found.get(alias)
        if not isinstance(entry, dict):
            continue
        content, truncated = entry.get("text"), entry.get("isTruncated")
        if isinstance(content, str) and truncated is False and len(content) <= max_chars:
            texts[blob] = content
    return texts
