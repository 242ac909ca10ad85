"""``POST /graphql``: the subset of GitHub's GraphQL API gitjsonl sends, with GitHub's rules.

The subset is one query reading blobs by oid, each under an alias::

    query { repository(owner: "o", name: "r") {
      f0: object(oid: "<sha>") { ... on Blob { text isTruncated byteSize oid } }
    } }

parsed by a small parser of GraphQL's grammar (names, strings, punctuators,
comments, commas), not by matching text: anything outside the subset is a
GraphQL error, in GitHub's shapes (graphql-ruby's messages). As on GitHub:

- a token is required (there is no anonymous GraphQL): 401 without one;
- errors are answered ``200 {"errors": [...]}`` (a repository the token cannot
  see is ``NOT_FOUND`` with ``data.repository`` null);
- ``Blob.text`` is cut at exactly 512,000 bytes, with ``isTruncated``
  (sveltia/sveltia-cms#950), and null for a binary blob (a NUL byte in its first
  8,000, git's own test);
- objects are named by sha, so no read lag applies;
- too many aliases, or an answer too large, is an error (conwnet/github1s#105:
  "GitHub GraphQL return error when response body is too large"); GitHub's caps
  are not documented, localhub's are settable (``max_aliases``,
  ``max_answer_bytes``), and ``enabled = False`` makes the endpoint a 404, as on
  a server without GraphQL.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._gitstore import SHA_RE, GitRepo

#: Where GraphQL lives: ``/graphql`` (api.github.com) and ``/api/graphql`` (GitHub
#: Enterprise, beside ``/api/v3``).
PATHS = frozenset({("graphql",), ("api", "graphql")})
#: GitHub cuts ``Blob.text`` at exactly this many bytes (sveltia/sveltia-cms#950).
TEXT_LIMIT = 512_000
#: git's test for a binary file: a NUL byte among the first 8,000.
_BINARY_PROBE = 8000
#: A client read 250 files a query (sveltia/sveltia-cms#950); localhub allows that many.
MAX_ALIASES = 250
#: An answer larger than this is an error (GitHub's own size is not documented).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_DOC = "https://docs.github.com/graphql"
_AUTH_DOC = (
    "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql"
)
_BLOB_FIELDS = frozenset({"text", "isTruncated", "byteSize", "oid"})

_TOKEN = re.compile(
    r"""(?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
    |(?P<spread>\.\.\.)
    |(?P<punct>[!$&()\:=@\[\]{|}])
    |(?P<name>[_A-Za-z][_0-9A-Za-z]*)
    |(?P<string>"(?:[^"\\\n\r]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*")
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)""",
    re.VERBOSE,
)
_KINDS = {"{": "LCURLY", "}": "RCURLY", "(": "LPAREN", ")": "RPAREN", ":": "COLON"}


class GraphqlError(Exception):
    """One GraphQL error, answered ``200 {"errors": [...]}`` (``data`` as given)."""

    def __init__(self, message: str, *, line: int = 0, column: int = 0, **extra: Any) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"message": message, **extra}
        if line:
            self.error["locations"] = [{"line": line, "column": column}]
        self.data: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "string", "punct", "spread", "number", "end"
    text: str
    line: int
    column: int

    def shown(self) -> str:
        if self.kind == "end":
            return "end of file"
        kind = {"name": "IDENTIFIER", "string": "STRING", "number": "NUMBER"}.get(
            self.kind, _KINDS.get(self.text, "PUNCTUATOR")
        )
        return f'"{self.text}" ({kind})'


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    at, line, line_start = 0, 1, 0
    while at < len(source):
        found = _TOKEN.match(source, at)
        if found is None:
            raise GraphqlError(
                f'Parse error on "{source[at]}" (error) at [{line}, {at - line_start + 1}]',
                line=line,
                column=at - line_start + 1,
            )
        kind = found.lastgroup or "skip"
        text = found.group()
        if kind != "skip":
            tokens.append(_Token(kind, text, line, at - line_start + 1))
        for index, char in enumerate(text):
            if char == "\n":
                line, line_start = line + 1, at + index + 1
        at = found.end()
    tokens.append(_Token("end", "", line, at - line_start + 1))
    return tokens


@dataclass(frozen=True)
class Lookup:
    """One ``object(oid:)`` asked for: the key its answer goes under, and the Blob fields."""

    key: str
    oid: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    key: str  # the repository's key in ``data``
    owner: str
    name: str
    lookups: tuple[Lookup, ...]


class _Parser:
    def __init__(self, source: str) -> None:
        self._tokens = _tokens(source)
        self._at = 0

    def _peek(self, offset: int = 0) -> _Token:
        return self._tokens[min(self._at + offset, len(self._tokens) - 1)]

    def _next(self) -> _Token:
        token = self._peek()
        self._at += 1
        return token

    def _unexpected(self, token: _Token) -> GraphqlError:
        return GraphqlError(
            f"Parse error on {token.shown()} at [{token.line}, {token.column}]",
            line=token.line,
            column=token.column,
        )

    def _expect(self, kind: str, text: str | None = None) -> _Token:
        token = self._next()
        if token.kind != kind or (text is not None and token.text != text):
            raise self._unexpected(token)
        return token

    def _key(self) -> tuple[str, _Token]:
        """``alias: field`` or ``field``: the response key and the field's token."""
        first = self._expect("name")
        if self._peek().text == ":" and self._peek().kind == "punct":
            self._next()
            return first.text, self._expect("name")
        return first.text, first

    def _string_arguments(self) -> dict[str, tuple[str, _Token]]:
        self._expect("punct", "(")
        arguments: dict[str, tuple[str, _Token]] = {}
        while self._peek().text != ")" or self._peek().kind != "punct":
            name = self._expect("name")
            self._expect("punct", ":")
            value = self._next()
            if value.kind == "punct" and value.text == "$":
                raise GraphqlError(
                    "Variables are not supported by localhub's GraphQL",
                    line=value.line,
                    column=value.column,
                )
            if value.kind != "string":
                raise _invalid_value(f"Argument '{name.text}'", value.text, "String!", value)
            arguments[name.text] = (json.loads(value.text), name)
        self._next()
        return arguments

    def parse(self) -> Query:
        if self._peek().kind == "name" and self._peek().text == "query":
            self._next()
            if self._peek().kind == "name":
                self._next()
        self._expect("punct", "{")
        key, field = self._key()
        if field.text != "repository":
            raise _undefined("Query", field)
        arguments = self._string_arguments()
        for name, (_, token) in arguments.items():
            if name not in ("owner", "name"):
                raise _undefined_argument("repository", name, token)
        if set(arguments) != {"owner", "name"}:
            raise GraphqlError(
                "Field 'repository' is missing required arguments: owner, name",
                line=field.line,
                column=field.column,
            )
        lookups = self._lookups()
        self._expect("punct", "}")
        self._expect("end")
        return Query(key, arguments["owner"][0], arguments["name"][0], tuple(lookups))

    def _lookups(self) -> list[Lookup]:
        self._expect("punct", "{")
        lookups: dict[str, Lookup] = {}
        while not (self._peek().kind == "punct" and self._peek().text == "}"):
            key, field = self._key()
            if field.text != "object":
                raise _undefined("Repository", field)
            arguments = self._string_arguments()
            for name, (_, token) in arguments.items():
                if name != "oid":
                    raise _undefined_argument("object", name, token)
            if "oid" not in arguments:
                raise GraphqlError(
                    "localhub's GraphQL reads objects by oid only",
                    line=field.line,
                    column=field.column,
                )
            oid, token = arguments["oid"]
            if not SHA_RE.match(oid):
                where = "Argument 'oid' on Field 'object'"
                raise _invalid_value(where, json.dumps(oid), "GitObjectID", token)
            lookup = Lookup(key, oid, self._blob_fields())
            if lookups.get(key, lookup) != lookup:
                raise GraphqlError(
                    f"Field '{key}' has an argument conflict",
                    line=field.line,
                    column=field.column,
                    extensions={"code": "fieldConflict"},
                )
            lookups[key] = lookup
        self._next()
        if not lookups:
            raise self._unexpected(self._peek(-1))
        return list(lookups.values())

    def _blob_fields(self) -> tuple[str, ...]:
        self._expect("punct", "{")
        self._expect("spread")
        self._expect("name", "on")
        kind = self._expect("name")
        if kind.text != "Blob":
            raise GraphqlError(
                f"No such type {kind.text}, so it can't be a fragment condition",
                line=kind.line,
                column=kind.column,
                extensions={"code": "undefinedType"},
            )
        self._expect("punct", "{")
        fields: list[str] = []
        while not (self._peek().kind == "punct" and self._peek().text == "}"):
            key, field = self._key()
            if field.text not in _BLOB_FIELDS:
                raise _undefined("Blob", field)
            fields.append(key if key == field.text else f"{key}={field.text}")
        self._next()
        self._expect("punct", "}")
        if not fields:
            raise self._unexpected(self._peek(-1))
        return tuple(fields)


def _invalid_value(where: str, value: str, expected: str, token: _Token) -> GraphqlError:
    return GraphqlError(
        f"{where} has an invalid value ({value}). Expected type '{expected}'.",
        line=token.line,
        column=token.column,
        extensions={"code": "argumentLiteralsIncompatible"},
    )


def _undefined(type_name: str, field: _Token) -> GraphqlError:
    return GraphqlError(
        f"Field '{field.text}' doesn't exist on type '{type_name}'",
        line=field.line,
        column=field.column,
        extensions={"code": "undefinedField", "typeName": type_name, "fieldName": field.text},
    )


def _undefined_argument(field: str, name: str, token: _Token) -> GraphqlError:
    return GraphqlError(
        f"Field '{field}' doesn't accept argument '{name}'",
        line=token.line,
        column=token.column,
        extensions={"code": "argumentNotAccepted", "name": field, "argumentName": name},
    )


def parse(source: str) -> Query:
    """The query in ``source``, or the ``GraphqlError`` GitHub would answer."""
    return _Parser(source).parse()


def blob_fields(
    data: bytes, oid: str, fields: tuple[str, ...], text_limit: int = TEXT_LIMIT
) -> dict[str, Any]:
    """The Blob fields asked (``key`` or ``key=field``) as GitHub answers them."""
    binary = b"\0" in data[:_BINARY_PROBE]
    values = {
        "text": None if binary else data[:text_limit].decode("utf-8", errors="replace"),
        "isTruncated": len(data) > text_limit,
        "byteSize": len(data),
        "oid": oid,
    }
    answer: dict[str, Any] = {}
    for asked in fields:
        key, _, field = asked.partition("=")
        answer[key] = values[field or key]
    return answer


class Graphql:
    """The endpoint's switch (``enabled``) and caps, and its answer to one request."""

    def __init__(self) -> None:
        self.enabled = True
        self.max_aliases = MAX_ALIASES
        self.max_answer_bytes = MAX_ANSWER_BYTES
        self.text_limit = TEXT_LIMIT  # where Blob.text is cut (a test may lower it)

    def answer(
        self, body: bytes, repo_for: Callable[[str], GitRepo | None]
    ) -> tuple[int, dict[str, Any]]:
        """``(status, JSON)`` for a ``POST /graphql`` by a token that may see the
        repositories ``repo_for`` gives (None: no such repository, or not to it)."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 400, {"message": "Problems parsing JSON", "documentation_url": _DOC}
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return 200, {
                "errors": [{"message": "A query attribute must be specified and must be a string."}]
            }
        if request.get("variables") not in (None, {}) and not isinstance(
            request["variables"], dict
        ):
            return 200, {"errors": [{"message": "Variables are invalid JSON."}]}
        try:
            payload = self._data(parse(request["query"]), repo_for)
        except GraphqlError as error:
            return 200, {"data": error.data, "errors": [error.error]} if error.data else {
                "errors": [error.error]
            }
        if len(json.dumps(payload)) > self.max_answer_bytes:
            # What GitHub answers a query it gives up on (liatrio/liatrio-otel-collector#71).
            message = (
                "Something went wrong while executing your query. This may be the result of a "
                "timeout, or it could be a GitHub bug. Please include "
                f"`{uuid.uuid4().hex[:8].upper()}` when reporting this issue."
            )
            return 200, {"data": None, "errors": [{"message": message}]}
        return 200, payload

    def _data(self, query: Query, repo_for: Callable[[str], GitRepo | None]) -> dict[str, Any]:
        if len(query.lookups) > self.max_aliases:
            # localhub's own message: GitHub's cap and its wording are not documented.
            raise GraphqlError(
                f"Query has {len(query.lookups)} object lookups; localhub allows "
                f"{self.max_aliases} a query",
                extensions={"code": "tooManyAliases"},
            )
        full_name = f"{query.owner}/{query.name}"
        repo = repo_for(full_name)
        if repo is None:
            error = GraphqlError(
                f"Could not resolve to a Repository with the name '{full_name}'.",
                type="NOT_FOUND",
                path=[query.key],
            )
            error.data = {query.key: None}
            raise error
        objects: dict[str, Any] = {}
        for lookup in query.lookups:
            found = repo.read_object(lookup.oid)
            if found is None:
                objects[lookup.key] = None
            elif found[0] != "blob":
                objects[lookup.key] = {}  # the fragment on Blob selects nothing of a tree
            else:
                objects[lookup.key] = blob_fields(
                    found[1], lookup.oid, lookup.fields, self.text_limit
                )
        return {"data": {query.key: objects}}


def unauthenticated() -> tuple[int, dict[str, Any]]:
    """GitHub's answer to GraphQL without a token."""
    return 401, {
        "message": "This endpoint requires you to be authenticated.",
        "documentation_url": _AUTH_DOC,
    }
