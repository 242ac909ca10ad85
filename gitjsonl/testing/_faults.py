"""Fault injection: answer wrongly on purpose, seeded and per method and path.

A fault decides *whether* it fires here; the HTTP layer decides *how* (it
alone can drop a connection or answer after doing the work).
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ACTIONS = frozenset(
    {"error", "error_after", "drop_after", "drop", "latency", "hold", "secondary_limit"}
)


class Gate:
    """Where ``Fault(action="hold")`` keeps requests until the test opens it.

    A test learns that a request is being held (``wait_reached``), checks what it
    needs to while it is, then lets it and every later one through (``open``).
    """

    def __init__(self) -> None:
        self._reached = threading.Event()
        self._open = threading.Event()

    def wait_reached(self, timeout: float) -> bool:
        """True once a request has reached the gate; False if none did within ``timeout``."""
        return self._reached.wait(timeout)

    def open(self) -> None:
        """Let the held requests and every later one through."""
        self._open.set()

    @property
    def is_open(self) -> bool:
        """Whether ``open`` was called (by the test, or by the hub as it stops)."""
        return self._open.is_set()

    def hold(self, bound: float) -> None:
        """Keep the calling handler thread until the gate opens, at most ``bound`` seconds."""
        self._reached.set()
        self._open.wait(bound)


@dataclass(frozen=True)
class Fault:
    """One misbehaviour: which requests it hits, what it does, how often.

    ``action`` is one of ``error`` (answer ``status`` before doing the work),
    ``error_after`` (do the work, then answer ``status``), ``drop`` (close the
    connection before doing the work), ``drop_after`` (do the work, then close
    without answering), ``latency`` (sleep ``delay`` seconds, then proceed),
    ``hold`` (wait until ``gate`` is opened, at most ``delay`` seconds so that no
    handler is left waiting, then proceed) and ``secondary_limit`` (GitHub's
    secondary-rate-limit answer, with a ``retry-after`` header unless
    ``retry_after`` is None). ``hold`` lets a test act while a request is in
    flight instead of guessing how long it takes; a ``Gate`` is a Python object,
    so a faults file cannot hold requests.

    ``status`` defaults to 502 for errors and 403 for ``secondary_limit`` (which
    GitHub also answers as 429). ``message`` replaces the error body's message,
    sent with ``documentation_url``: e.g. 422 "Reference update failed".
    """

    method: str = "*"
    path: str = ".*"
    action: str = "error"
    status: int | None = None
    message: str | None = None
    documentation_url: str = "https://docs.github.com/rest"
    delay: float = 0.0
    retry_after: int | None = 60
    times: int | None = 1
    probability: float = 1.0
    skip: int = 0
    gate: Gate | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(
                f"unknown fault action {self.action!r}; expected one of {sorted(ACTIONS)}"
            )
        if (self.action == "hold") != (self.gate is not None):
            raise ValueError('a gate goes with action="hold", and only with it')
        if self.action == "hold" and self.delay <= 0:
            raise ValueError('a "hold" fault needs delay > 0: the longest it holds a request')
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.action == "secondary_limit" and self.status not in (None, 403, 429):
            raise ValueError("a secondary_limit fault answers 403 or 429")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")
        re.compile(self.path)

    @property
    def answer_status(self) -> int:
        """The status this fault answers with."""
        if self.status is not None:
            return self.status
        return 403 if self.action == "secondary_limit" else 502

    def matches(self, method: str, path: str) -> bool:
        """True when this fault applies to a request (before counting)."""
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None


def load_faults(path: Path) -> list[Fault]:
    """Read faults from a JSON file holding a list of objects with Fault's fields.

    Every problem (unreadable file, bad JSON, unknown key, wrong type or value)
    is a ValueError naming the file and the entry.
    """
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read faults file {path}: {exc}") from None
    if not isinstance(raw, list):
        raise ValueError(f"faults file {path}: expected a JSON list of objects")
    known = {f.name: f.type for f in fields(Fault)}
    faults = []
    for index, item in enumerate(raw):
        where = f"faults file {path}, entry {index}"
        if not isinstance(item, dict) or not set(item) <= set(known):
            raise ValueError(f"{where}: expected an object with keys among {sorted(known)}")
        for key, value in item.items():
            if not _fits(value, str(known[key])):
                raise ValueError(f"{where}: {key}={value!r} is not of type {known[key]}")
        try:
            faults.append(Fault(**item))
        except (ValueError, re.error) as exc:
            raise ValueError(f"{where}: {exc}") from None
    return faults


def _fits(value: Any, annotation: str) -> bool:
    """Whether a JSON value suits a Fault field's annotation (a string: postponed)."""
    if value is None:
        return "None" in annotation
    if isinstance(value, bool):
        return False
    accepted = {"str": str, "int": int, "float": (int, float)}
    return any(
        isinstance(value, accepted[name])  # type: ignore[arg-type]
        for name in ("str", "int", "float")
        if re.search(rf"\b{name}\b", annotation)
    )


class FaultPlan:
    """The live set of faults with their counters, shared by all handler threads."""

    def __init__(self, faults: Iterable[Fault], seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults: list[list[Any]] = []  # [fault, matched, fired]
        for fault in faults:
            self.add(fault)

    def add(self, fault: Fault) -> None:
        """Append a fault; earlier faults take precedence."""
        with self._lock:
            self._faults.append([fault, 0, 0])

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def open_gates(self) -> None:
        """Let every request a ``hold`` fault keeps go (the hub is stopping)."""
        with self._lock:
            gates = [slot[0].gate for slot in self._faults if slot[0].gate is not None]
        for gate in gates:
            gate.open()

    def pick(self, method: str, path: str) -> Fault | None:
        """Return the fault that fires for this request, if any, and count it."""
        with self._lock:
            for slot in self._faults:
                fault: Fault = slot[0]
                if not fault.matches(method, path):
                    continue
                slot[1] += 1
                if slot[1] <= fault.skip:
                    continue
                if fault.times is not None and slot[2] >= fault.times:
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                slot[2] += 1
                return fault
        return None
