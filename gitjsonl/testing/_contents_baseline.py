"""The naive Contents-API logger: the reference algorithm gitjsonl is measured against.

It reads the whole file, appends one line and writes the whole file back.
Two of its flaws are the point: files past 1 MB come back with empty
``content`` (so the next append overwrites the log with one record), and
concurrent appends conflict (409) and drop a record.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import requests


class ContentsApiLog:
    """Append-only JSON lines kept in one file through GET/PUT /contents."""

    def __init__(
        self, api_url: str, token: str, repo: str, path: str = "data/interactions.jsonl"
    ) -> None:
        self.url = f"{api_url.rstrip('/')}/repos/{repo}/contents/{path}"
        self.path = path
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"token {token}",
                "Accept": "application/vnd.github+json",
            }
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> ContentsApiLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self) -> tuple[int, str, str | None]:
        """Return (status, current text, current sha); a missing file is empty."""
        response = self._session.get(self.url, timeout=60)
        if response.status_code == 404:
            return 404, "", None
        if response.status_code != 200:
            return response.status_code, "", None
        body = response.json()
        text = base64.b64decode(body.get("content") or "").decode("utf-8")
        return 200, text, body.get("sha")

    def append(self, record: dict[str, Any]) -> int:
        """Append one record; return the PUT's status (or the failed GET's)."""
        status, text, sha = self._get()
        if status not in (200, 404):
            return status
        new_text = text.rstrip("\n") + "\n" + json.dumps(record) + "\n"
        payload: dict[str, Any] = {
            "message": "Append interaction",
            "content": base64.b64encode(new_text.encode("utf-8")).decode("ascii"),
        }
        if sha is not None:
            payload["sha"] = sha
        response = self._session.put(self.url, json=payload, timeout=60)
        return response.status_code

    def load_recent(self, n: int = 500) -> list[dict[str, Any]]:
        """The last ``n`` records of the file (as far as the Contents API shows it)."""
        _, text, _ = self._get()
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return records[-n:]
