"""The engine's notion of "now": real UTC time, which tests may move forward.

Decision: every due time (timers, SLAs, audit stamps) reads this one clock, so a test can move
time with `travel()` instead of sleeping, and the same code path runs in production.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(UTC) + _offset


def travel(delta: timedelta) -> None:
    """Move the clock forward (tests and dry runs only)."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
