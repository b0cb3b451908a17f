"""The operators and methods diagram code may use, and the checks that run before Python
allocates for them.

Decision: methods are listed per exact type (str, list, tuple, dict) and looked up by the
receiver's exact type, so a host object's own `get` or `lower` is never reached; `format` and
`format_map` are missing on purpose (`'{0.__class__}'.format(x)` reaches attributes).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from engine.expressions.limits import check_length

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
BINARY |= {ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}
BINARY |= {ast.Mod: operator.mod, ast.Pow: operator.pow}
INPLACE = {ast.Add: operator.iadd, ast.Mult: operator.imul}  # lists grow in place, as in Python
INPLACE = {**BINARY, **INPLACE}
UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le}
COMPARE |= {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_}
COMPARE |= {ast.IsNot: operator.is_not, ast.In: lambda a, b: a in b}
COMPARE |= {ast.NotIn: lambda a, b: a not in b}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


METHODS: dict[type, frozenset[str]] = {
    str: _words(
        "lower upper strip lstrip rstrip startswith endswith replace split rsplit join isdigit "
        "isalpha isalnum isspace zfill title capitalize count find splitlines"
    ),
    list: _words("append extend index count pop insert remove sort reverse copy clear"),
    tuple: _words("index count"),
    dict: _words("get keys values items pop setdefault update copy clear"),
}
ALL_METHODS = frozenset().union(*METHODS.values())
MUTATING = _words("append extend insert remove pop sort reverse clear setdefault update")
COMPARING = frozenset({"index", "count", "remove", "sort"})  # walk the receiver's items
RETURNS_ITEM = frozenset({"get", "pop", "setdefault"})  # nothing new is built


def _check_replace(text: str, old: str = "", new: str = "", count: int = -1, *_: Any) -> None:
    hits = text.count(old) if old else len(text) + 1
    check_length(len(text) + (hits if count < 0 else min(hits, count)) * (len(new) - len(old)))


PRECHECKS: dict[str, Callable[..., None]] = {  # refuse before Python allocates
    "replace": _check_replace,
    "zfill": lambda text, width=0, *_: check_length(width if isinstance(width, int) else 0),
    "join": lambda sep, items=(), *_: check_length(
        sum(len(i) for i in items if type(i) is str) + len(sep) * max(len(items) - 1, 0)
    ),
    "extend": lambda items, more=(), *_: check_length(len(items) + len(more)),
}
