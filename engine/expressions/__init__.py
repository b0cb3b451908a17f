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
methods in `operations.METHODS` (those that change data only in scripts). Scripts add assignment
(unpacking, `x['k'] = v`, `+=`), `if`, `for` over lists/dicts/text/range with `break`/`continue`,
`pass` and `del`. In a call `f(...)`, `f` is always the helper, so a data field called `sum` or
`max` does not hide the helper; a bare helper name is not a value.

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
    money(x)                   text rounded half-up (away from 0) to 2 places: '2.68' for 2.675
    round_half_up(x, places=0) number rounded half-up: an int when places <= 0, else a float
Floats enter the decimal helpers by their shortest text (2.675 is '2.675'); at most 40 digits.

Layout: `whitelist` parses and refuses, `interpreter` runs, `functions` and `operations` are what
code may call, `limits` caps and counts the cost, `data` says what may be stored. Import only
from this package; the modules behind it may change.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from engine.errors import ExpressionError
from engine.expressions.data import committable
from engine.expressions.functions import HELPERS
from engine.expressions.interpreter import Interpreter
from engine.expressions.whitelist import Compiled, compile_source

__all__ = [
    "HELPERS",
    "Compiled",
    "ExpressionError",
    "check",
    "compile_expression",
    "compile_script",
    "evaluate",
    "execute",
]


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Compiled:
    """Parse and whitelist an expression; cached, since a condition is evaluated many times."""
    return compile_source(source, "eval")


@functools.lru_cache(maxsize=4096)
def compile_script(source: str) -> Compiled:
    """Parse and whitelist a script (statements)."""
    return compile_source(source, "exec")


def check(source: str, mode: str = "eval") -> None:
    """Raise ExpressionError if `source` would not compile in `mode` ('eval' or 'exec')."""
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    (compile_expression if mode == "eval" else compile_script)(source)


def evaluate(source: str, context: Mapping[str, Any], *, step_limit: int = 10_000) -> Any:
    """The value of expression `source`; names come from `context`, which is never changed."""
    return Interpreter(context, compile_expression(source), step_limit).run()


def execute(source: str, context: dict[str, Any], *, step_limit: int = 100_000) -> None:
    """Run script `source` against the task data `context`: all of its effects, or none."""
    compiled = compile_script(source)
    try:
        work = copy.deepcopy(dict(context))
    except Exception as exc:  # the host handed us data that is not plain
        raise ExpressionError(f"the task data cannot be copied: {exc}", source=source) from None
    Interpreter(work, compiled, step_limit).run()
    result = committable(work, source)
    context.clear()
    context.update(result)
