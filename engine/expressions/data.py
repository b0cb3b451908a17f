"""Diagram data and failures in an analyst's words (`describe`, `explain`), and the plain JSON
a script may leave behind in the task data.

Decision: a script commits its variables only as plain JSON (tuples become lists, dict keys are
text, floats are finite) and only within MAX_DATA in total; otherwise the task data is untouched.
"""

from __future__ import annotations

import math
from typing import Any

from engine.errors import ExpressionError
from engine.expressions.limits import CONTAINERS, MAX_DATA, MAX_DEPTH, size

_KINDS = {str: "text", int: "a number", float: "a number", bool: "True/False", list: "a list"}
_KINDS |= {type(None): "None", tuple: "a tuple", dict: "a dict", set: "a set", range: "a range"}


def describe(value: Any) -> str:
    """The kind of `value` in an analyst's words: 'text', 'a list', 'a Secretive'."""
    return _KINDS.get(type(value), f"a {type(value).__name__}")


def explain(exc: Exception) -> str:
    """A runtime failure in an analyst's words, at most 300 characters."""
    if isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else None
        shown = repr(key)[:60] if type(key) in (str, int, float, bool) else describe(key)
        return f"key {shown} not found"
    if isinstance(exc, RecursionError):
        return "the data or code is nested too deeply"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return (str(exc) or type(exc).__name__)[:300]


def _plain(value: Any, name: str, depth: int = 0) -> Any:
    """`value` as plain JSON data (tuples become lists), or an error naming the variable."""
    kind = type(value)
    if value is None or kind in (str, int, bool) or (kind is float and math.isfinite(value)):
        return value
    if depth >= MAX_DEPTH:
        raise ExpressionError(f"`{name}` is nested more than {MAX_DEPTH} levels deep")
    if kind in (list, tuple):
        return [_plain(item, name, depth + 1) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: _plain(item, name, depth + 1) for key, item in value.items()}
    what = "a dict with non-text keys" if kind is dict else describe(value)
    what = f"the number {value}" if kind is float else what
    raise ExpressionError(
        f"`{name}` holds {what}, which cannot be stored; use text, numbers, lists and dicts"
    )


def committable(work: dict[str, Any], source: str) -> dict[str, Any]:
    """The script's variables as plain JSON data, or an error naming the first bad one."""
    memo: dict[int, int] = {}
    total = 0
    for name, value in work.items():
        try:  # memo is keyed by id: only objects that stay alive (in `work`) may enter it
            total += size(value, memo) if type(value) in CONTAINERS else 1
        except ValueError as exc:
            raise ExpressionError(f"`{name}` contains itself or {exc}", source=source) from None
        if total > MAX_DATA:
            raise ExpressionError(f"the task data would exceed {MAX_DATA:,} items", source=source)
    try:
        return {name: _plain(value, name) for name, value in work.items()}
    except ExpressionError as exc:
        raise ExpressionError(exc.reason, source=source) from None
