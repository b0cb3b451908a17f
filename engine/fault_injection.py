"""Fault injection for the crash tests: a slow operator and a pause before every commit.

Decision: nothing here is active unless a test sets `APPROVAL_TEST_SLOW_OPERATOR` or
`APPROVAL_TEST_SLOW_COMMIT` for the process it starts; then the slow phases are wide enough for
a test to kill the process inside them, and each phase is logged (`begin`/`end` lines with the
process id in `<instance dir>/faults.log`) so the test knows where each kill landed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from engine import operators
from engine.config import Settings
from engine.models import ProcessInstance

SLOW_OPERATOR = "test.slow"


def install(settings: Settings) -> None:
    """Switch on what the settings ask for (nothing in normal operation)."""
    log = settings.instance_dir / "faults.log"
    if settings.test_slow_operator or settings.test_slow_commit:
        log.parent.mkdir(parents=True, exist_ok=True)
    if settings.test_slow_operator:
        operators.operator(SLOW_OPERATOR)(_slow_operator(settings.test_slow_operator, log))
    if settings.test_slow_commit:
        event.listen(Session, "before_commit", _slow_commit(settings.test_slow_commit, log))


def _note(log: Path, phase: str, what: str) -> None:
    with log.open("a") as out:
        out.write(f"{phase} {what} {os.getpid()}\n")


def _slow_operator(seconds: float, log: Path):
    def slow(params: dict[str, Any], call: operators.CallInfo) -> dict[str, Any]:
        _note(log, "begin", f"operator:{call.call_id}")
        time.sleep(seconds)
        _note(log, "end", f"operator:{call.call_id}")
        return {"ok": True, "attempt": call.attempt}

    return slow


def _slow_commit(seconds: float, log: Path):
    def pause(session: Session) -> None:
        if session.in_nested_transaction():
            return
        # which instances this transaction writes: "commit:" alone is a sweep or a read
        ids = sorted(o.id for o in session.identity_map.values() if isinstance(o, ProcessInstance))
        what = "commit:" + ",".join(map(str, ids))
        _note(log, "begin", what)
        time.sleep(seconds)
        _note(log, "end", what)

    return pause
