"""The helper functions diagram code may call by name (listed in the package docstring).

Decision: a helper is a plain Python function handed finished values, so each one that could run
long or allocate much (`range`, `round`, `sum`, the decimal helpers) checks its arguments itself;
those that compare, print or build are named in GUARDED_HELPERS / BUILDING_HELPERS so that the
interpreter sizes their arguments and results. Time comes only from `_utcnow` (tests patch it).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from engine.expressions.data import describe
from engine.expressions.limits import MAX_DECIMAL_DIGITS, MAX_RANGE


def _utcnow() -> datetime:
    """The current UTC time; tests monkeypatch this."""
    return datetime.now(UTC)


def _day(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError(f"expected a date like '2024-01-31', got {describe(value)}")
    return date.fromisoformat(value[:10])


def _date_add(iso: str, days: int = 0, months: int = 0, years: int = 0) -> str:
    start = _day(iso)
    year, month = divmod(start.year * 12 + start.month - 1 + months + 12 * years, 12)
    if not 1 <= year <= 9999:
        raise ValueError("the date would be out of range")
    last_day = calendar.monthrange(year, month + 1)[1]
    return (date(year, month + 1, min(start.day, last_day)) + timedelta(days=days)).isoformat()


def _age_on(birth: str, on: str | None = None) -> int:
    born, day = _day(birth), _day(on) if on is not None else _utcnow().date()
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


_DECIMALS = Context(prec=2 * MAX_DECIMAL_DIGITS + 10)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number or numeric text, got {describe(value)}")
    text = value.strip() if isinstance(value, str) else str(value)
    try:
        number = Decimal(text[: MAX_DECIMAL_DIGITS * 3])
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    digits = max(len(number.as_tuple().digits), abs(number.adjusted()) if number.is_finite() else 0)
    if not number.is_finite() or len(text) > MAX_DECIMAL_DIGITS * 3 or digits > MAX_DECIMAL_DIGITS:
        raise ValueError(f"{text[:40]!r} is not a number of at most {MAX_DECIMAL_DIGITS} digits")
    return number


def _round_half_up(value: Any, places: int = 0) -> int | float:
    if not isinstance(places, int) or abs(places) > MAX_DECIMAL_DIGITS:
        raise ValueError("places must be a small whole number")
    exact = _to_decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, _DECIMALS)
    return int(exact) if places <= 0 else float(exact)


def _money(value: Any) -> str:
    return format(_to_decimal(value).quantize(Decimal("0.01"), ROUND_HALF_UP, _DECIMALS), "f")


def _round(value: Any, ndigits: int | None = None) -> Any:
    # Python computes 10**-ndigits for ints: a huge ndigits would never finish.
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 100):
        raise ValueError("round() digits must be a whole number between -100 and 100")
    return round(value) if ndigits is None else round(value, ndigits)


def _sum(values: Any, start: Any = 0) -> Any:
    # Summing lists or text is quadratic; the helper is meant for amounts.
    items = list(values)
    if not all(isinstance(v, int | float) for v in [start, *items]):
        raise ValueError("sum() adds numbers only")
    return sum(items, start)


def _range(*args: int) -> range:
    numbers = range(*args)
    try:
        too_long = len(numbers) > MAX_RANGE
    except OverflowError:
        too_long = True
    if too_long:
        raise ValueError(f"range() is limited to {MAX_RANGE} numbers")
    return numbers


HELPERS: dict[str, Callable[..., Any]] = {
    **{f.__name__: f for f in (len, min, max, abs, int, float, str, bool, sorted, list, dict)},
    **{f.__name__: f for f in (any, all)},
    "sum": _sum,
    "round": _round,
    "range": _range,
    "enumerate": lambda items, start=0: list(enumerate(items, start)),
    "zip": lambda *lists: list(zip(*lists, strict=False)),
    "today": lambda: _utcnow().date().isoformat(),
    "now": lambda: _utcnow().isoformat(timespec="seconds"),
    "date_add": _date_add,
    "days_between": lambda a, b: (_day(b) - _day(a)).days,
    "age_on": _age_on,
    "decimal": lambda value: format(_to_decimal(value), "f"),
    "money": _money,
    "round_half_up": _round_half_up,
}
GUARDED_HELPERS = frozenset({"min", "max", "sorted", "str", "dict"})  # compare, hash or print
BUILDING_HELPERS = frozenset({"str", "sorted", "list", "dict", "enumerate", "zip"})
