"""The inbox's filter form: GET parameters → `engine.inbox.InboxQuery`, with a message per bad
value.

Decision: a bad value never stops the page: it is dropped (that filter is not applied) and the
reviewer is told which one and why, so a hand-edited or stale link still shows the inbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext, lazy_gettext
from werkzeug.datastructures import MultiDict

from engine.inbox import DUE_STATES, SORTS, InboxQuery

PAGE_SIZES = (10, 20, 50, 100)
GRADE = re.compile(r"^[A-Za-z0-9+-]{1,8}$")

DUE_LABELS = {
    "overdue": lazy_gettext("Overdue"),
    "today": lazy_gettext("Due today"),
    "none": lazy_gettext("No due date"),
}
SORT_LABELS = {
    "created": lazy_gettext("Created"),
    "due": lazy_gettext("Due"),
    "amount": lazy_gettext("Amount"),
}


@dataclass
class Filters:
    """The query to run, the values to show back in the form, and what was wrong."""

    query: InboxQuery
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def link_args(self) -> dict[str, str]:
        """The good values, for the links to other pages of the same list."""
        return {k: v for k, v in self.values.items() if k not in self.errors and k != "page"}


def _amount(raw: str) -> Decimal:
    value = Decimal(raw.replace(",", ""))
    if not value.is_finite() or value < 0 or value >= 10**15:
        raise InvalidOperation
    return value


def _choice(raw: str, allowed) -> str:
    if raw not in allowed:
        raise ValueError
    return raw


def _page(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError
    return value


def _size(raw: str) -> int:
    value = int(raw)
    if value not in PAGE_SIZES:
        raise ValueError
    return value


def _grade(raw: str) -> str:
    if not GRADE.match(raw):
        raise ValueError
    return raw.upper()


def _parsers(types: list[str]) -> dict[str, tuple[str, Any, Any]]:
    """GET name → (InboxQuery field, parser, message for a bad value)."""
    return {
        "type": ("bundle_key", lambda r: _choice(r, types), gettext("Unknown application type.")),
        "min": ("min_amount", _amount, gettext("Minimum amount: enter a number, e.g. 50000.")),
        "max": ("max_amount", _amount, gettext("Maximum amount: enter a number, e.g. 200000.")),
        "grade": ("risk_grade", _grade, gettext("Risk grade: enter a grade such as A or B.")),
        "due": ("due", lambda r: _choice(r, DUE_STATES), gettext("Unknown due state.")),
        "sort": ("sort", lambda r: _choice(r, SORTS), gettext("Unknown sort order.")),
        "order": ("descending", lambda r: _choice(r, ("asc", "desc")) == "desc", None),
        "page": ("page", _page, gettext("Page: enter a whole number from 1.")),
        "size": ("page_size", _size, gettext("Page size: choose 10, 20, 50 or 100.")),
    }


def parse(args: MultiDict, types: list[str]) -> Filters:
    """The filters in `args`; unknown application types are those not in `types`."""
    chosen: dict[str, Any] = {}
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, (target, parser, message) in _parsers(types).items():
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        values[name] = raw
        try:
            chosen[target] = parser(raw)
        except (ValueError, InvalidOperation):
            errors[name] = message or gettext("Unknown sort direction.")
    low, high = chosen.get("min_amount"), chosen.get("max_amount")
    if low is not None and high is not None and low > high:
        errors["max"] = gettext("Maximum amount is below the minimum amount.")
        del chosen["max_amount"]
    return Filters(InboxQuery(**chosen), values, errors)
