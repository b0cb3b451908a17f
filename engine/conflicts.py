"""Engine entry points write once: one flush at their end, and a lost race is `TaskConflict`.

Decision: optimistic locking (`version_id_col` on instances and human tasks) means a concurrent
writer's UPDATE matches no row; wherever that surfaces (`StaleDataError`, or a unique row the
other writer inserted first), the caller gets `TaskConflict` — HTTP 409 in the web app, a retry
with back-off in a worker — and nothing half-written stays in the transaction's flush.
"""

from __future__ import annotations

import functools

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.errors import TaskConflict

CONFLICT_MESSAGE = "someone else changed this application at the same moment; reload and try again"


def guarded(fn):
    """Run an engine entry point `fn(session, …)` with one flush at its end.

    Autoflush is off inside (every query here reads committed rows or the identity map), so
    a request writes its rows in one unit of work; a lost optimistic-lock race, wherever it
    surfaces, is `TaskConflict`.
    """

    @functools.wraps(fn)
    def wrapper(session: Session, *args, **kwargs):
        try:
            with session.no_autoflush:
                result = fn(session, *args, **kwargs)
            session.flush()
            return result
        except (StaleDataError, IntegrityError):
            raise TaskConflict(CONFLICT_MESSAGE) from None

    return wrapper


def flush(session: Session) -> None:
    """Flush, turning a lost optimistic-lock race into `TaskConflict`."""
    try:
        session.flush()
    except (StaleDataError, IntegrityError):
        raise TaskConflict(CONFLICT_MESSAGE) from None
