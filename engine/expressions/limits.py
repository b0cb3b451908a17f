"""What one run of diagram code may cost, and the accounting that enforces it.

Decision: a size is checked *before* Python does the work whenever Python would do it in one
uninterruptible step (`'x' * n`, `2 ** n`, comparing or printing a big list); the step counter
only runs between nodes, so it cannot stop those.
"""

from __future__ import annotations

import ast
from itertools import chain
from typing import Any

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

CONTAINERS = frozenset({list, tuple, dict, set})
SIZED = frozenset({str, list, tuple, dict, set})


def size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """Items and characters of `value` written out in full. Shared parts count every time, as
    in JSON, but are walked once: `a = [a, a]` sixty times over is sized in an instant."""
    if id(value) in memo:
        return memo[id(value)]
    if depth >= MAX_DEPTH:  # also ends self-references
        raise ValueError(f"the data is nested more than {MAX_DEPTH} levels deep")
    total = 1
    for child in chain(value, value.values()) if type(value) is dict else value:
        if type(child) in CONTAINERS:
            total += size(child, memo, depth + 1)
        else:
            total += len(child) + 1 if type(child) is str else 1
    memo[id(value)] = total
    return total


def check_length(length: int) -> None:
    if length > MAX_SIZE:
        raise ValueError(f"the result would be longer than {MAX_SIZE:,} characters or items")


def check_arithmetic(op: type, left: Any, right: Any) -> None:
    """Refuse results that would take Python minutes or gigabytes, before computing them."""
    if op is ast.Mult:
        for seq, times in ((left, right), (right, left)):
            if type(seq) in (str, list, tuple) and isinstance(times, int):
                check_length(len(seq) * times)
        both_int = isinstance(left, int) and isinstance(right, int)
        if both_int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise ValueError("the number would be too large")
    elif op is ast.Pow and isinstance(left, int) and isinstance(right, int) and right > 0:
        if right > MAX_EXPONENT or left.bit_length() * right > MAX_INT_BITS:
            raise ValueError(f"the power is too large (exponents up to {MAX_EXPONENT})")
    elif op is ast.Mod and isinstance(left, str):
        raise ValueError("`%` formatting of text is not allowed; use an f-string")


class Budget:
    """The steps taken and the characters and items built by one run, within `limit` steps.

    A base class of the interpreter with no `__init__` of its own (the interpreter sets the
    fields): `tick` runs for every node and a run may be one comparison, so an extra lookup
    or call per run shows in the evaluations per second."""

    limit: int
    steps: int
    built: int
    what: str  # 'expression' or 'script', for the message

    def tick(self, cost: int = 1) -> None:
        self.steps += cost
        if self.steps > self.limit:
            raise ValueError(f"the {self.what} ran more than {self.limit} steps (endless loop?)")

    def made(self, value: Any) -> Any:
        """Account for a newly built text or container."""
        if type(value) in SIZED:
            check_length(len(value))
            self.built += len(value)
            if self.built > MAX_BUILT:
                raise ValueError(f"the code built more than {MAX_BUILT:,} characters or items")
        return value

    def guard(self, *values: Any) -> None:
        """Size up data before comparing, hashing or printing it, which Python does in one go."""
        for value in values:
            if type(value) in CONTAINERS:
                total = size(value, {})
                if total > MAX_SIZE:
                    raise ValueError(f"the data is too large (over {MAX_SIZE:,} items)")
                self.tick(total // 100)
