"""Primary and secondary rate limits, modelled on GitHub's documented numbers."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRIMARY_LIMIT = 5000
PRIMARY_WINDOW = 3600.0

#: The other resources ``GET /rate_limit`` lists, with the limits GitHub gives a
#: personal token (resource names from GitHub's OpenAPI description's
#: rate-limit-overview; the numbers as a recent answer shows them, recalled).
#: localhub counts none of them: gitjsonl spends only ``core``.
OTHER_RESOURCES = {
    "search": 30,
    "graphql": 5000,
    "integration_manifest": 5000,
    "source_import": 100,
    "code_scanning_upload": 1000,
    "actions_runner_registration": 10000,
    "scim": 15000,
    "dependency_snapshots": 100,
    "audit_log": 1750,
    "audit_log_streaming": 15,
    "code_search": 10,
    "code_scanning_autofix": 10,
    "dependency_sbom": 100,
}


@dataclass(frozen=True)
class SecondaryLimits:
    """Content-generating requests allowed per token in sliding windows.

    GitHub documents 80 a minute and 500 an hour; tests use smaller numbers.
    GitHub answers an exceeded secondary limit with 403 or 429 (its rate-limit
    documentation says either); ``status`` picks one.
    """

    per_minute: int = 80
    per_hour: int = 500
    minute_window: float = 60.0
    hour_window: float = 3600.0
    status: int = 403

    def __post_init__(self) -> None:
        if self.status not in (403, 429):
            raise ValueError("secondary limits answer 403 or 429")


@dataclass(frozen=True)
class PrimaryState:
    """The values of the ``x-ratelimit-*`` headers after counting a request."""

    limit: int
    remaining: int
    used: int
    reset: int


class RateLimiter:
    """Tracks the hourly primary budget and the optional secondary windows per token."""

    def __init__(
        self,
        secondary: SecondaryLimits | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secondary = secondary
        self._clock = clock
        self._lock = threading.Lock()
        self._primary: dict[str, tuple[float, int]] = {}  # token -> (window start, used)
        self._writes: dict[str, tuple[deque[float], deque[float]]] = {}

    def primary(self, token: str | None, *, count: bool) -> tuple[PrimaryState, bool]:
        """Count one request against the hourly budget; True when it is allowed."""
        key = token or ""
        now = self._clock()
        with self._lock:
            start, used = self._primary.get(key, (now, 0))
            if now - start >= PRIMARY_WINDOW:
                start, used = now, 0
            allowed = used < PRIMARY_LIMIT
            if count and allowed:
                used += 1
            self._primary[key] = (start, used)
        state = PrimaryState(
            PRIMARY_LIMIT, max(0, PRIMARY_LIMIT - used), used, int(start + PRIMARY_WINDOW)
        )
        return state, allowed

    def refund(self, token: str | None, counted: PrimaryState) -> PrimaryState:
        """Give back the request counted as ``counted`` (a 304 GitHub does not charge).

        Nothing is given back once the hourly window has started again.
        """
        key = token or ""
        with self._lock:
            start, used = self._primary.get(key, (0.0, 0))
            if int(start + PRIMARY_WINDOW) == counted.reset and used > 0:
                used -= 1
                self._primary[key] = (start, used)
        return PrimaryState(PRIMARY_LIMIT, max(0, PRIMARY_LIMIT - used), used, counted.reset)

    def secondary_check(self, token: str | None) -> int | None:
        """Count a content-generating request; return retry-after seconds when over."""
        limits = self.secondary
        if limits is None:
            return None
        key = token or ""
        now = self._clock()
        with self._lock:
            minute, hour = self._writes.setdefault(key, (deque(), deque()))
            while minute and minute[0] <= now - limits.minute_window:
                minute.popleft()
            while hour and hour[0] <= now - limits.hour_window:
                hour.popleft()
            waits = []
            if len(minute) >= limits.per_minute:
                waits.append(minute[0] + limits.minute_window - now)
            if len(hour) >= limits.per_hour:
                waits.append(hour[0] + limits.hour_window - now)
            if waits:
                return max(1, math.ceil(max(waits)))
            minute.append(now)
            hour.append(now)
        return None


def rate_limit_body(state: PrimaryState) -> dict[str, Any]:
    """The answer of ``GET /rate_limit``: every resource GitHub lists, ``core`` counted."""

    def resource(limit: int, used: int, remaining: int) -> dict[str, Any]:
        return {"limit": limit, "used": used, "remaining": remaining, "reset": state.reset}

    core = resource(state.limit, state.used, state.remaining)
    resources = {"core": core}
    resources.update((name, resource(limit, 0, limit)) for name, limit in OTHER_RESOURCES.items())
    return {"resources": resources, "rate": core}
