"""A token's budget state as JSON: what a host's ledger file and a coordinator's Redis hash hold.

Both stores (``_budget.LedgerStore``, ``_redis.RedisStore``) keep the same
document, so its one reader and writer live here, beside neither of them. The
reader checks every field's type (a wrong one takes its default, a malformed row
is dropped); what the values say is judged against the clock by
``_pacing.repair`` before any decision obeys them.
"""

from __future__ import annotations

from typing import Any

from ._pacing import BudgetState, Spent, Waiter

__all__ = ["LEDGER_FORMAT", "state_from_json", "state_to_json"]

LEDGER_FORMAT = 1


def state_to_json(state: BudgetState) -> dict[str, Any]:
    """The ledger file's content (times are the wall clock's, to the millisecond)."""
    return {
        "format": LEDGER_FORMAT,
        "spent": [[round(s.time, 3), s.count, s.id, s.done] for s in state.spent],
        "allowance": state.allowance,
        "since": state.since,
        "blocked_until": state.blocked_until,
        "limited": state.limited,
        "waits": state.waits,
        "waited": round(state.waited, 3),
        "tokens": None if state.tokens is None else round(state.tokens, 3),
        "tokens_at": round(state.tokens_at, 3),
        "waiting": [[w.id, round(w.since, 3), round(w.until, 3)] for w in state.waiting],
    }


def _number(data: dict[str, Any], key: str, default: float) -> float:
    """``data[key]`` if it is a number (not a bool), else ``default``; ``_pacing.repair``
    judges its value."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value


def _spent_row(row: Any) -> Spent | None:
    """One ``spent`` row of a ledger, or None for a row no writer of ours wrote."""
    if not isinstance(row, list) or len(row) != 4:
        return None
    when, count, id, done = row
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        return None
    if isinstance(count, bool) or not isinstance(count, int) or not isinstance(id, str):
        return None
    if not isinstance(done, bool) or len(id) > 64:
        return None
    return Spent(float(when), count, id, done)


def _waiter_row(row: Any) -> Waiter | None:
    """One ``waiting`` row of a ledger, or None for a row no writer of ours wrote."""
    if not isinstance(row, list) or len(row) != 3:
        return None
    id, since, until = row
    if not isinstance(id, str) or len(id) > 64:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (since, until)):
        return None
    return Waiter(id, float(since), float(until))


def state_from_json(data: dict[str, Any] | None) -> BudgetState:
    """A ledger file's state; a fresh one for a missing, torn or unknown file.

    Every field is checked for its type here (a wrong one takes its default,
    a malformed write is dropped); what the values say is judged against the
    clock by ``_pacing.repair`` before any decision obeys them.
    """
    if not data or data.get("format") != LEDGER_FORMAT:
        return BudgetState()
    rows = data.get("spent")
    spent = tuple(
        row for row in map(_spent_row, rows if isinstance(rows, list) else []) if row is not None
    )
    tokens = data.get("tokens")
    lines = data.get("waiting")
    waiting = tuple(
        w for w in map(_waiter_row, lines if isinstance(lines, list) else []) if w is not None
    )
    return BudgetState(
        spent=spent,
        waiting=waiting,
        allowance=_number(data, "allowance", 1.0),
        since=_number(data, "since", 0.0),
        blocked_until=_number(data, "blocked_until", 0.0),
        limited=_count(data, "limited"),
        waits=_count(data, "waits"),
        waited=_number(data, "waited", 0.0),
        tokens=None if tokens is None else _number(data, "tokens", 0.0),
        tokens_at=_number(data, "tokens_at", 0.0),
    )
