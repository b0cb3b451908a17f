"""The one evaluator of diagram code: gateway conditions, scripts, pre/post scripts, operator
parameters and DMN cells. Diagrams are untrusted input.

Decision: user text is never given to Python's eval/exec/compile. It is parsed with `ast`, checked
against an explicit whitelist, and walked by a small interpreter that reaches nothing but JSON-like
data, the helpers below and a few str/list/dict methods. Every node and loop iteration costs a
step, and sizes, numbers, nesting and the total built are capped: diagram code cannot import,
read files or the environment, touch `_`-attributes, or run or grow forever. Every refusal and
every runtime failure is an `ExpressionError` in plain words.

Expressions: literals, f-strings, names, arithmetic, comparisons, `and`/`or`/`not`, `a if c else
b`, subscripts/slices, comprehensions (generator expressions yield lists), helper calls and the
methods in `_METHODS`. Scripts add assignment (unpacking, `x['k'] = v`, `+=`), `if`, `for` over
lists/dicts/text/range with `break`/`continue`, `pass` and `del`. In a call `f(...)`, `f` is always
the helper, so a data field called `sum` or `max` does not hide the helper.

Helpers (JSON data in, JSON data out):
    len, min, max, abs, int, float, str, bool, sorted, list, dict, any, all   as in Python
    sum(numbers, start=0)      numbers only
    round(x, ndigits=None)     Python's rounding (half to even)
    range(...)                 at most 10,000 numbers
    enumerate(items, start=0)  list of (index, item) pairs
    zip(*lists)                list of tuples
    today()                    today's date in UTC, '2024-05-31'
    now()                      the UTC time, '2024-05-31T09:30:00+00:00'
    date_add(d, days=0, months=0, years=0)  ISO date moved; month ends clamp (01-31 → 02-29)
    days_between(a, b)         whole days from date a to date b (negative if b is earlier)
    age_on(birth, on=None)     completed years on date `on` (default today)
    decimal(x)                 canonical decimal text keeping the scale: decimal('1.10') == '1.10'
    money(x)                   text rounded half-up to 2 places: money(2.675) == '2.68'
    round_half_up(x, places=0) number rounded half-up: an int when places <= 0, else a float
"""

from __future__ import annotations

import ast
import calendar
import copy
import difflib
import functools
import math
import operator
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from itertools import chain
from typing import Any

from engine.errors import ExpressionError

MAX_SOURCE = 20_000  # characters of one expression or script
MAX_DEPTH = 100  # nesting of the syntax tree, and of data that is compared or printed
MAX_SIZE = 1_000_000  # characters of one text, items of one list
MAX_BUILT = 10_000_000  # characters and items built by one run, counted as they are made
MAX_DATA = 5_000_000  # items and characters a script may leave in the task data
MAX_RANGE = 10_000
MAX_EXPONENT = 10_000
MAX_INT_BITS = 14_000  # about 4,300 digits: the most Python will print
MAX_FORMAT_WIDTH = 1_000
MAX_DECIMAL_DIGITS = 40


@dataclass(frozen=True)
class Compiled:
    """A parsed, whitelisted expression ('eval') or script ('exec'), ready to run many times."""

    source: str
    mode: str
    tree: ast.AST


# ---- helpers ------------------------------------------------------------------------------


def _utcnow() -> datetime:
    """The current UTC time; tests monkeypatch this."""
    return datetime.now(UTC)


def _day(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError(f"expected a date like '2024-01-31', got {_describe(value)}")
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
        raise ValueError(f"expected a number or numeric text, got {_describe(value)}")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ValueError(f"{str(value)[:40]!r} is not a number") from None
    if not number.is_finite() or len(number.as_tuple().digits) > MAX_DECIMAL_DIGITS:
        raise ValueError(f"decimals are limited to {MAX_DECIMAL_DIGITS} digits")
    if abs(number.adjusted()) > MAX_DECIMAL_DIGITS:
        raise ValueError(f"decimals are limited to {MAX_DECIMAL_DIGITS} digits")
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
_GUARDED_HELPERS = frozenset({"min", "max", "sorted", "str", "dict"})  # compare, hash or print
_BUILDING_HELPERS = frozenset({"str", "sorted", "list", "dict", "enumerate", "zip"})


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_METHODS: dict[type, frozenset[str]] = {  # `format` is missing on purpose: '{0.__class__}'
    str: _words(
        "lower upper strip lstrip rstrip startswith endswith replace split rsplit join isdigit "
        "isalpha isalnum isspace zfill title capitalize count find splitlines"
    ),
    list: _words("append extend index count pop insert remove sort reverse copy clear"),
    tuple: _words("index count"),
    dict: _words("get keys values items pop setdefault update copy clear"),
}
_ALL_METHODS = frozenset().union(*_METHODS.values())
_MUTATING = _words("append extend insert remove pop sort reverse clear setdefault update")
_COMPARING = frozenset({"index", "count", "remove", "sort"})  # walk the receiver's items
_RETURNS_ITEM = frozenset({"get", "pop", "setdefault"})  # nothing new is built


def _check_length(length: int) -> None:
    if length > MAX_SIZE:
        raise ValueError(f"the result would be longer than {MAX_SIZE:,} characters or items")


def _check_replace(text: str, old: str = "", new: str = "", count: int = -1, *_: Any) -> None:
    hits = text.count(old) if old else len(text) + 1
    _check_length(len(text) + (hits if count < 0 else min(hits, count)) * (len(new) - len(old)))


_PRECHECKS: dict[str, Callable[..., None]] = {  # refuse before Python allocates
    "replace": _check_replace,
    "zfill": lambda text, width=0, *_: _check_length(width if isinstance(width, int) else 0),
    "join": lambda sep, items=(), *_: _check_length(
        sum(len(i) for i in items if type(i) is str) + len(sep) * max(len(items) - 1, 0)
    ),
    "extend": lambda items, more=(), *_: _check_length(len(items) + len(more)),
}


def _check_arithmetic(op: type, left: Any, right: Any) -> None:
    """Refuse results that would take Python minutes or gigabytes, before computing them."""
    if op is ast.Mult:
        for seq, times in ((left, right), (right, left)):
            if type(seq) in (str, list, tuple) and isinstance(times, int):
                _check_length(len(seq) * times)
        both_int = isinstance(left, int) and isinstance(right, int)
        if both_int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise ValueError("the number would be too large")
    elif op is ast.Pow and isinstance(left, int) and isinstance(right, int) and right > 0:
        if right > MAX_EXPONENT or left.bit_length() * right > MAX_INT_BITS:
            raise ValueError(f"the power is too large (exponents up to {MAX_EXPONENT})")
    elif op is ast.Mod and isinstance(left, str):
        raise ValueError("`%` formatting of text is not allowed; use an f-string")


# ---- compile-time whitelist ---------------------------------------------------------------

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_BINARY |= {ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}
_BINARY |= {ast.Mod: operator.mod, ast.Pow: operator.pow}
_INPLACE = {ast.Add: operator.iadd, ast.Mult: operator.imul}  # lists grow in place, as in Python
_INPLACE = {**_BINARY, **_INPLACE}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le}
_COMPARE |= {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_}
_COMPARE |= {ast.IsNot: operator.is_not, ast.In: lambda a, b: a in b}
_COMPARE |= {ast.NotIn: lambda a, b: a not in b}

_EXPRESSION_NODES = frozenset(
    {ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.BinOp, ast.UnaryOp}
    | {ast.BoolOp, ast.And, ast.Or, ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.Attribute}
    | {ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.JoinedStr}
    | {ast.FormattedValue, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp}
    | {ast.comprehension, *_BINARY, *_UNARY, *_COMPARE}
)
_SCRIPT_NODES = _EXPRESSION_NODES | {ast.Module, ast.Assign, ast.AugAssign, ast.If, ast.For}
_SCRIPT_NODES |= {ast.Break, ast.Continue, ast.Pass, ast.Delete, ast.Del, ast.Expr}
_CONSTANTS = (str, int, float, bool, type(None))

_REFUSED = {
    (ast.Import, ast.ImportFrom): "`import` is not allowed",
    (ast.While,): "`while` loops are not allowed; use `for ... in range(...)`",
    (ast.FunctionDef, ast.AsyncFunctionDef, ast.Return): "defining functions is not allowed",
    (ast.Lambda,): "`lambda` is not allowed",
    (ast.ClassDef,): "defining classes is not allowed",
    (ast.With, ast.AsyncWith): "`with` is not allowed",
    (ast.Try, ast.TryStar, ast.Raise, ast.Assert): "`try`, `raise` and `assert` are not allowed",
    (ast.Global, ast.Nonlocal): "`global` and `nonlocal` are not allowed",
    (ast.Yield, ast.YieldFrom, ast.Await, ast.AsyncFor): "`yield` and `async` are not allowed",
    (ast.NamedExpr,): "`:=` is not allowed; assign on its own line",
    (ast.Starred,): "`*` unpacking is not allowed",
    (ast.AnnAssign,): "type annotations are not allowed",
    (ast.BitOr, ast.BitAnd, ast.BitXor, ast.LShift, ast.RShift, ast.Invert, ast.MatMult): (
        "bitwise operators (| & ^ << >> ~ @) are not allowed"
    ),
}
_REFUSED_BY_TYPE = {kind: message for kinds, message in _REFUSED.items() for kind in kinds}


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, [k for k in known if isinstance(k, str)], n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _check_call(node: ast.Call) -> str | None:
    func = node.func
    if any(kw.arg is None for kw in node.keywords):
        return "`**` unpacking is not allowed"
    if isinstance(func, ast.Attribute):
        return None
    if not isinstance(func, ast.Name):
        return "only helper functions and methods can be called"
    if func.id not in HELPERS:  # open, eval, getattr, type, globals, __import__, ...
        return f"`{func.id}` is not available{_suggest(func.id, HELPERS)}"
    return None


def _check_attribute(node: ast.Attribute, mode: str, called: bool) -> str | None:
    name = node.attr
    if name.startswith("_"):
        return f"attribute `{name}` is not allowed"
    if not isinstance(node.ctx, ast.Load):
        return "setting attributes is not allowed; use `value['field'] = ...`"
    if not called:
        return f"attribute `.{name}` is not allowed; use `value['{name}']` to read a field"
    if name in ("format", "format_map"):
        return f"`.{name}()` is not allowed (it can reach attributes); use an f-string"
    if name not in _ALL_METHODS:
        return f"method `.{name}()` is not allowed"
    if mode == "eval" and name in _MUTATING:
        return f"`.{name}()` changes data, which only a script may do"
    return None


def _refusal(node: ast.AST, mode: str, in_loop: bool, called: bool) -> str | None:
    """Why `node` may not appear, or None."""
    kind = type(node)
    if kind not in (_SCRIPT_NODES if mode == "exec" else _EXPRESSION_NODES):
        return _REFUSED_BY_TYPE.get(kind, f"`{kind.__name__}` is not allowed here")
    if kind is ast.Name and node.id.startswith("__"):
        return f"`{node.id}` is not available"
    if kind is ast.Attribute:
        return _check_attribute(node, mode, called)
    if kind is ast.Subscript and mode == "eval" and not isinstance(node.ctx, ast.Load):
        return "an expression cannot change data"  # e.g. `[1 for data['x'] in ...]`
    if kind is ast.Call:
        return _check_call(node)
    if kind is ast.Constant and type(node.value) not in _CONSTANTS:
        return "this kind of literal is not supported"
    if kind in (ast.Break, ast.Continue) and not in_loop:
        return "`break` and `continue` only work inside a `for` loop"
    if kind is ast.Dict and None in node.keys:
        return "`**` unpacking is not allowed"
    if kind is ast.comprehension and node.is_async:
        return "`async` is not allowed"
    return None


def _check_tree(tree: ast.AST, mode: str, source: str) -> None:
    # Iterative, so that a very deep tree is refused instead of overflowing Python's stack.
    callees: set[int] = set()
    stack = [(tree, 0, False)]
    while stack:
        node, depth, in_loop = stack.pop()
        problem = _refusal(node, mode, in_loop, id(node) in callees)
        if depth > MAX_DEPTH:
            problem = f"the code is nested more than {MAX_DEPTH} levels deep"
        if problem:
            raise ExpressionError(problem, line=getattr(node, "lineno", None), source=source)
        if isinstance(node, ast.Call):
            callees.add(id(node.func))
        body = node.body if isinstance(node, ast.For) else ()
        stack.extend(
            (child, depth + 1, in_loop or child in body) for child in ast.iter_child_nodes(node)
        )


def _compile(source: str, mode: str) -> Compiled:
    if not isinstance(source, str):
        raise ExpressionError(f"the code must be text, not {_describe(source)}")
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"the code is longer than {MAX_SOURCE} characters", source=source)
    text = source.strip() if mode == "eval" else textwrap.dedent(source)
    try:
        tree = ast.parse(text, mode=mode)
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", line=exc.lineno, source=source) from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise ExpressionError(f"the code cannot be read: {exc}", source=source) from None
    _check_tree(tree, mode, source)
    return Compiled(source, mode, tree)


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Compiled:
    """Parse and whitelist an expression; cached, since a condition is evaluated many times."""
    return _compile(source, "eval")


@functools.lru_cache(maxsize=4096)
def compile_script(source: str) -> Compiled:
    """Parse and whitelist a script (statements)."""
    return _compile(source, "exec")


def check(source: str, mode: str = "eval") -> None:
    """Raise ExpressionError if `source` would not compile in `mode` ('eval' or 'exec')."""
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    (compile_expression if mode == "eval" else compile_script)(source)


# ---- run time -----------------------------------------------------------------------------

_KINDS = {str: "text", int: "a number", float: "a number", bool: "True/False", list: "a list"}
_KINDS |= {type(None): "None", tuple: "a tuple", dict: "a dict", set: "a set", range: "a range"}
_CONTAINERS = frozenset({list, tuple, dict, set})
_SIZED = frozenset({str, list, tuple, dict, set})
_ITERABLE = frozenset({list, tuple, dict, str, range, set})
_WIDTHS = re.compile(r"\d+")
_BREAK, _CONTINUE = "break", "continue"


def _size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """Items and characters of `value` written out in full. Shared parts count every time, as
    in JSON, but are walked once: `a = [a, a]` sixty times over is sized in an instant."""
    if id(value) in memo:
        return memo[id(value)]
    if depth >= MAX_DEPTH:  # also ends self-references
        raise ValueError(f"the data is nested more than {MAX_DEPTH} levels deep")
    total = 1
    for child in chain(value, value.values()) if type(value) is dict else value:
        if type(child) in _CONTAINERS:
            total += _size(child, memo, depth + 1)
        else:
            total += len(child) + 1 if type(child) is str else 1
    memo[id(value)] = total
    return total


def _describe(value: Any) -> str:
    return _KINDS.get(type(value), f"a {type(value).__name__}")


def _explain(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else None
        shown = repr(key)[:60] if type(key) in (str, int, float, bool) else _describe(key)
        return f"key {shown} not found"
    if isinstance(exc, RecursionError):
        return "the data or code is nested too deeply"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return str(exc) or type(exc).__name__


class _Interpreter:
    """Walks a checked tree: one method per node type, chosen through `_DISPATCH`."""

    def __init__(self, names: Mapping[str, Any], compiled: Compiled, step_limit: int) -> None:
        self.scopes: list[Any] = [names]  # comprehensions push their own scope
        self.compiled = compiled
        self.limit = step_limit
        self.steps = 0
        self.built = 0

    def run(self) -> Any:
        tree = self.compiled.tree
        return self.visit(tree.body) if isinstance(tree, ast.Expression) else self._block(tree.body)

    def visit(self, node: ast.AST) -> Any:
        try:
            self._tick()
            return _DISPATCH[type(node)](self, node)
        except ExpressionError:
            raise
        except Exception as exc:  # every runtime failure reaches the analyst, with its line
            line = getattr(node, "lineno", None)
            raise ExpressionError(_explain(exc), line=line, source=self.compiled.source) from None

    def _tick(self, cost: int = 1) -> None:
        self.steps += cost
        if self.steps > self.limit:
            what = "script" if self.compiled.mode == "exec" else "expression"
            raise ValueError(f"the {what} ran more than {self.limit} steps (endless loop?)")

    def _made(self, value: Any) -> Any:
        """Account for a newly built text or container."""
        if type(value) in _SIZED:
            _check_length(len(value))
            self.built += len(value)
            if self.built > MAX_BUILT:
                raise ValueError(f"the code built more than {MAX_BUILT:,} characters or items")
        return value

    def _guard(self, *values: Any) -> None:
        """Size up data before comparing, hashing or printing it, which Python does in one go."""
        for value in values:
            if type(value) in _CONTAINERS:
                size = _size(value, {})
                if size > MAX_SIZE:
                    raise ValueError(f"the data is too large (over {MAX_SIZE:,} items)")
                self._tick(size // 100)

    def _iterable(self, value: Any) -> Any:
        if type(value) not in _ITERABLE:
            raise ValueError(f"cannot loop over {_describe(value)}")
        return value

    # -- expressions

    def _constant(self, node: ast.Constant) -> Any:
        return node.value

    def _name(self, node: ast.Name) -> Any:
        for scope in reversed(self.scopes):
            if node.id in scope:
                return scope[node.id]
        if node.id in HELPERS:
            raise ValueError(f"`{node.id}` is a function; call it like `{node.id}(...)`")
        known = chain.from_iterable(self.scopes)
        raise ValueError(f"unknown name `{node.id}`{_suggest(node.id, known)}")

    def _operate(self, op: type, left: Any, right: Any, table: dict) -> Any:
        _check_arithmetic(op, left, right)
        return self._made(table[op](left, right))

    def _binop(self, node: ast.BinOp) -> Any:
        return self._operate(type(node.op), self.visit(node.left), self.visit(node.right), _BINARY)

    def _unaryop(self, node: ast.UnaryOp) -> Any:
        return _UNARY[type(node.op)](self.visit(node.operand))

    def _boolop(self, node: ast.BoolOp) -> Any:
        stop_when = isinstance(node.op, ast.Or)  # `or` stops at a true value, `and` at a false one
        for part in node.values:
            value = self.visit(part)
            if bool(value) is stop_when:
                return value
        return value

    def _compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, part in zip(node.ops, node.comparators, strict=True):
            right = self.visit(part)
            if type(left) in _CONTAINERS or type(right) in _CONTAINERS:
                self._guard(left, right)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _ifexp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body if self.visit(node.test) else node.orelse)

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        receiver = self.visit(func.value) if isinstance(func, ast.Attribute) else None
        args = [self.visit(arg) for arg in node.args]
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords}
        if isinstance(func, ast.Attribute):
            return self._method(receiver, func.attr, args, kwargs)
        if func.id in _GUARDED_HELPERS:
            self._guard(*args, *kwargs.values())
        result = HELPERS[func.id](*args, **kwargs)
        return self._made(result) if func.id in _BUILDING_HELPERS else result

    def _method(self, receiver: Any, name: str, args: list, kwargs: dict) -> Any:
        # Exact types only: a host object's own `get` or `lower` is never reached.
        if name not in _METHODS.get(type(receiver), ()):
            raise ValueError(f"`.{name}()` cannot be used on {_describe(receiver)}")
        self._guard(*args, *kwargs.values(), *([receiver] if name in _COMPARING else []))
        if name in _PRECHECKS:
            _PRECHECKS[name](receiver, *args)
        result = getattr(receiver, name)(*args, **kwargs)
        if name in ("keys", "values", "items"):
            result = list(result)
        return result if name in _RETURNS_ITEM else self._made(result)

    def _subscript(self, node: ast.Subscript) -> Any:
        value, key = self.visit(node.value), self.visit(node.slice)
        self._guard(key)
        return self._made(value[key]) if type(key) is slice else value[key]

    def _slice(self, node: ast.Slice) -> slice:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if part is None else self.visit(part) for part in parts))

    def _list(self, node: ast.List) -> list:
        return [self.visit(element) for element in node.elts]

    def _tuple(self, node: ast.Tuple) -> tuple:
        return tuple([self.visit(element) for element in node.elts])

    def _set(self, node: ast.Set) -> set:
        items = self._list(node)
        self._guard(*items)
        return set(items)

    def _dict(self, node: ast.Dict) -> dict:
        result = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            key = self.visit(key_node)
            self._guard(key)
            result[key] = self.visit(value_node)
        return result

    def _joinedstr(self, node: ast.JoinedStr) -> str:
        return self._made("".join([self.visit(part) for part in node.values]))

    def _formattedvalue(self, node: ast.FormattedValue) -> str:
        value = self.visit(node.value)
        self._guard(value)
        spec = "" if node.format_spec is None else self.visit(node.format_spec)
        if any(int(width) > MAX_FORMAT_WIDTH for width in _WIDTHS.findall(spec)):
            raise ValueError(f"format widths and precisions are limited to {MAX_FORMAT_WIDTH}")
        if node.conversion != -1:
            value = {ord("s"): str, ord("r"): repr, ord("a"): ascii}[node.conversion](value)
        return self._made(format(value, spec))

    def _comprehend(self, node: Any, emit: Callable[[], None]) -> None:
        self.scopes.append({})  # loop variables stay inside the comprehension
        try:
            self._generate(node.generators, 0, emit)
        finally:
            self.scopes.pop()

    def _generate(self, generators: list[ast.comprehension], index: int, emit: Callable) -> None:
        if index == len(generators):
            return emit()
        clause = generators[index]
        for item in self._iterable(self.visit(clause.iter)):
            self._tick()
            self._store(clause.target, item)
            if all(self.visit(condition) for condition in clause.ifs):
                self._generate(generators, index + 1, emit)
        return None

    def _listcomp(self, node: ast.ListComp | ast.GeneratorExp) -> list:
        # Generator expressions are built eagerly: interleaved lazy scopes would be fragile.
        out: list = []
        self._comprehend(node, lambda: out.append(self.visit(node.elt)))
        return self._made(out)

    def _setcomp(self, node: ast.SetComp) -> set:
        items = self._listcomp(node)
        self._guard(*items)
        return set(items)

    def _dictcomp(self, node: ast.DictComp) -> dict:
        out: dict = {}

        def emit() -> None:
            key = self.visit(node.key)
            self._guard(key)
            out[key] = self.visit(node.value)

        self._comprehend(node, emit)
        return self._made(out)

    # -- statements: each returns None, or _BREAK / _CONTINUE for the enclosing loop

    def _block(self, body: list[ast.stmt]) -> str | None:
        for statement in body:
            signal = self.visit(statement)
            if signal is not None:
                return signal
        return None

    def _store(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.scopes[-1][target.id] = value
        elif isinstance(target, ast.Subscript):
            container, key = self.visit(target.value), self.visit(target.slice)
            self._guard(key)
            if type(key) is slice:
                _check_length(len(container) + len(value))
            container[key] = value
        else:  # tuple or list: unpack
            items = list(self._iterable(value))
            if len(items) != len(target.elts):
                raise ValueError(f"expected {len(target.elts)} values to unpack, got {len(items)}")
            for element, item in zip(target.elts, items, strict=True):
                self._store(element, item)

    def _assign(self, node: ast.Assign) -> None:
        value = self.visit(node.value)
        for target in node.targets:
            self._store(target, value)

    def _augassign(self, node: ast.AugAssign) -> None:
        target, op = node.target, type(node.op)
        if isinstance(target, ast.Name):
            value = self._operate(op, self._name(target), self.visit(node.value), _INPLACE)
            self.scopes[-1][target.id] = value
            return
        container, key = self.visit(target.value), self.visit(target.slice)
        self._guard(key)
        container[key] = self._operate(op, container[key], self.visit(node.value), _INPLACE)

    def _delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self._name(target)  # an unknown name fails like a read
                del self.scopes[-1][target.id]
            elif isinstance(target, ast.Subscript):
                container, key = self.visit(target.value), self.visit(target.slice)
                self._guard(key)
                del container[key]
            else:
                self._delete(ast.Delete(targets=target.elts))

    def _if(self, node: ast.If) -> str | None:
        return self._block(node.body if self.visit(node.test) else node.orelse)

    def _for(self, node: ast.For) -> str | None:
        for item in self._iterable(self.visit(node.iter)):
            self._tick()
            self._store(node.target, item)
            if self._block(node.body) is _BREAK:
                return None
        return self._block(node.orelse)

    def _expr(self, node: ast.Expr) -> None:
        self.visit(node.value)


_DISPATCH: dict[type, Callable[[_Interpreter, Any], Any]] = {
    getattr(ast, name): getattr(_Interpreter, "_" + name.lower())
    for name in _words(
        "Constant Name BinOp UnaryOp BoolOp Compare IfExp Call Subscript Slice List Tuple Set Dict "
        "JoinedStr FormattedValue ListComp SetComp DictComp Assign AugAssign Delete If For Expr"
    )
}
_DISPATCH[ast.GeneratorExp] = _Interpreter._listcomp
_DISPATCH[ast.Pass] = lambda self, node: None
_DISPATCH[ast.Break] = lambda self, node: _BREAK
_DISPATCH[ast.Continue] = lambda self, node: _CONTINUE


# ---- public entry points ------------------------------------------------------------------


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
    what = "a dict with non-text keys" if kind is dict else _describe(value)
    what = f"the number {value}" if kind is float else what
    raise ExpressionError(
        f"`{name}` holds {what}, which cannot be stored; use text, numbers, lists and dicts"
    )


def evaluate(source: str, context: Mapping[str, Any], *, step_limit: int = 10_000) -> Any:
    """The value of expression `source`; names come from `context`, which is never changed."""
    return _Interpreter(context, compile_expression(source), step_limit).run()


def execute(source: str, context: dict[str, Any], *, step_limit: int = 100_000) -> None:
    """Run script `source` against the task data `context`: all of its effects, or none."""
    compiled = compile_script(source)
    try:
        work = copy.deepcopy(dict(context))
    except Exception as exc:  # the host handed us data that is not plain
        raise ExpressionError(f"the task data cannot be copied: {exc}", source=source) from None
    _Interpreter(work, compiled, step_limit).run()
    try:
        if _size(list(work.values()), {}) > MAX_DATA:
            raise ExpressionError(f"the task data would exceed {MAX_DATA:,} items and characters")
        result = {name: _plain(value, name) for name, value in work.items()}
    except (ExpressionError, ValueError) as exc:
        raise ExpressionError(getattr(exc, "reason", str(exc)), source=source) from None
    context.clear()
    context.update(result)
