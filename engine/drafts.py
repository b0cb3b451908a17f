"""Applications (and answers to returned tasks) being filled in, kept on the server until submitted.

Decision: one row per (owner, key), replaced by every save; submitting *consumes* it with one
`DELETE … RETURNING` inside the submitting transaction. Of two submissions of the same draft
(a double click) exactly one gets the data: on PostgreSQL the second DELETE waits for the first
transaction's row lock and then finds nothing; on SQLite the database write lock orders them. A
submission that is refused rolls back and so leaves the draft where it was.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.models import Draft


def load(session: Session, owner: str, key: str) -> Draft | None:
    """`owner`'s draft for `key` (a bundle key, or `task-<id>`), if there is one."""
    return session.scalar(select(Draft).where(Draft.owner == owner, Draft.bundle_key == key))


def save(session: Session, owner: str, key: str, data: dict[str, Any]) -> Draft:
    """Keep `data` as `owner`'s draft for `key`, replacing any earlier one."""
    data = _storable(data)
    row = load(session, owner, key)
    if row is None:
        try:
            # Two first saves at once (a double click on "next"): the unique key refuses one,
            # which then replaces the row the other one wrote.
            with session.begin_nested():
                row = Draft(owner=owner, bundle_key=key, data=data)
                session.add(row)
            return row
        except IntegrityError:
            row = load(session, owner, key)
            if row is None:  # pragma: no cover - deleted again in between; nothing to replace
                raise
    row.data = data
    session.flush()
    return row


def consume(session: Session, owner: str, key: str) -> dict[str, Any] | None:
    """Take `owner`'s draft for `key` out for submitting: its data, or None when there is none
    (never saved, or already submitted by a click that came first)."""
    taken = session.execute(
        delete(Draft)
        .where(Draft.owner == owner, Draft.bundle_key == key)
        .returning(Draft.data)
        .execution_options(synchronize_session=False)
    ).first()
    return None if taken is None else taken[0]


def discard(session: Session, owner: str, key: str) -> None:
    """Drop the draft, if any (the task it answered was completed)."""
    session.execute(
        delete(Draft)
        .where(Draft.owner == owner, Draft.bundle_key == key)
        .execution_options(synchronize_session=False)
    )


def _storable(value: Any) -> Any:
    """`value` as JSON can hold it: a number that is not finite (refused by the form anyway) is
    left out rather than written as the `NaN` PostgreSQL's JSON type refuses."""
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items() if not _non_finite(v)}
    if isinstance(value, list):
        return [_storable(v) for v in value if not _non_finite(v)]
    return value


def _non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)
