"""Run time: walk a whitelisted syntax tree over the task data, one method per node type.

Decision: the interpreter reaches nothing but the names in its scopes (JSON-like data), HELPERS
and the METHODS of str/list/tuple/dict; it never calls Python's eval/exec/compile. Every node and
loop iteration ticks the Budget, and every failure becomes an ExpressionError with its line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

from engine.errors import ExpressionError
from engine.expressions.data import describe, explain
from engine.expressions.functions import BUILDING_HELPERS, GUARDED_HELPERS, HELPERS
from engine.expressions.limits import (
    CONTAINERS,
    MAX_FORMAT_WIDTH,
    Budget,
    check_arithmetic,
    check_length,
)
from engine.expressions.operations import (
    BINARY,
    COMPARE,
    COMPARING,
    INPLACE,
    METHODS,
    PRECHECKS,
    RETURNS_ITEM,
    UNARY,
)
from engine.expressions.whitelist import Compiled, suggest

_ITERABLE = frozenset({list, tuple, dict, str, range, set})
_WIDTHS = re.compile(r"\d+")
_BREAK, _CONTINUE = "break", "continue"


class Interpreter(Budget):
    """Walks a checked tree: one method per node type, chosen through `_DISPATCH`."""

    def __init__(self, names: Mapping[str, Any], compiled: Compiled, step_limit: int) -> None:
        self.scopes: list[Any] = [names]  # comprehensions push their own scope
        self.compiled = compiled
        self.limit = step_limit
        self.steps = 0
        self.built = 0

    @property
    def what(self) -> str:
        return "script" if self.compiled.mode == "exec" else "expression"

    def run(self) -> Any:
        tree = self.compiled.tree
        return self.visit(tree.body) if isinstance(tree, ast.Expression) else self._block(tree.body)

    def visit(self, node: ast.AST) -> Any:
        try:
            self.tick()
            return _DISPATCH[type(node)](self, node)
        except ExpressionError:
            raise
        except Exception as exc:  # every runtime failure reaches the analyst, with its line
            line = getattr(node, "lineno", None)
            raise ExpressionError(explain(exc), line=line, source=self.compiled.source) from None

    def _iterable(self, value: Any) -> Any:
        if type(value) not in _ITERABLE:
            raise ValueError(f"cannot loop over {describe(value)}")
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
        raise ValueError(f"unknown name `{node.id}`{suggest(node.id, known)}")

    def _operate(self, op: type, left: Any, right: Any, table: dict) -> Any:
        check_arithmetic(op, left, right)
        return self.made(table[op](left, right))

    def _binop(self, node: ast.BinOp) -> Any:
        return self._operate(type(node.op), self.visit(node.left), self.visit(node.right), BINARY)

    def _unaryop(self, node: ast.UnaryOp) -> Any:
        return UNARY[type(node.op)](self.visit(node.operand))

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
            if type(left) in CONTAINERS or type(right) in CONTAINERS:
                self.guard(left, right)
            if not COMPARE[type(op)](left, right):
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
        if func.id in GUARDED_HELPERS:
            self.guard(*args, *kwargs.values())
        result = HELPERS[func.id](*args, **kwargs)
        return self.made(result) if func.id in BUILDING_HELPERS else result

    def _method(self, receiver: Any, name: str, args: list, kwargs: dict) -> Any:
        # Exact types only: a host object's own `get` or `lower` is never reached.
        if name not in METHODS.get(type(receiver), ()):
            raise ValueError(f"`.{name}()` cannot be used on {describe(receiver)}")
        self.guard(*args, *kwargs.values(), *([receiver] if name in COMPARING else []))
        if name in PRECHECKS:
            PRECHECKS[name](receiver, *args)
        result = getattr(receiver, name)(*args, **kwargs)
        if name in ("keys", "values", "items"):
            result = list(result)
        return result if name in RETURNS_ITEM else self.made(result)

    def _subscript(self, node: ast.Subscript) -> Any:
        value, key = self.visit(node.value), self.visit(node.slice)
        self.guard(key)
        return self.made(value[key]) if type(key) is slice else value[key]

    def _slice(self, node: ast.Slice) -> slice:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if part is None else self.visit(part) for part in parts))

    def _list(self, node: ast.List) -> list:
        return [self.visit(element) for element in node.elts]

    def _tuple(self, node: ast.Tuple) -> tuple:
        return tuple([self.visit(element) for element in node.elts])

    def _set(self, node: ast.Set) -> set:
        items = self._list(node)
        self.guard(*items)
        return set(items)

    def _dict(self, node: ast.Dict) -> dict:
        result = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            key = self.visit(key_node)
            self.guard(key)
            result[key] = self.visit(value_node)
        return result

    def _joinedstr(self, node: ast.JoinedStr) -> str:
        return self.made("".join([self.visit(part) for part in node.values]))

    def _formattedvalue(self, node: ast.FormattedValue) -> str:
        value = self.visit(node.value)
        self.guard(value)
        spec = "" if node.format_spec is None else self.visit(node.format_spec)
        if any(int(width) > MAX_FORMAT_WIDTH for width in _WIDTHS.findall(spec)):
            raise ValueError(f"format widths and precisions are limited to {MAX_FORMAT_WIDTH}")
        if node.conversion != -1:
            value = {ord("s"): str, ord("r"): repr, ord("a"): ascii}[node.conversion](value)
        return self.made(format(value, spec))

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
            self.tick()
            self._store(clause.target, item)
            if all(self.visit(condition) for condition in clause.ifs):
                self._generate(generators, index + 1, emit)
        return None

    def _listcomp(self, node: ast.ListComp | ast.GeneratorExp) -> list:
        # Generator expressions are built eagerly: interleaved lazy scopes would be fragile.
        out: list = []
        self._comprehend(node, lambda: out.append(self.visit(node.elt)))
        return self.made(out)

    def _setcomp(self, node: ast.SetComp) -> set:
        items = self._listcomp(node)
        self.guard(*items)
        return set(items)

    def _dictcomp(self, node: ast.DictComp) -> dict:
        out: dict = {}

        def emit() -> None:
            key = self.visit(node.key)
            self.guard(key)
            out[key] = self.visit(node.value)

        self._comprehend(node, emit)
        return self.made(out)

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
            self.guard(key)
            if type(key) is slice:
                check_length(len(container) + len(value))
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
            value = self._operate(op, self._name(target), self.visit(node.value), INPLACE)
            self.scopes[-1][target.id] = value
            return
        container, key = self.visit(target.value), self.visit(target.slice)
        self.guard(key)
        container[key] = self._operate(op, container[key], self.visit(node.value), INPLACE)

    def _delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self._name(target)  # an unknown name fails like a read
                del self.scopes[-1][target.id]
            elif isinstance(target, ast.Subscript):
                container, key = self.visit(target.value), self.visit(target.slice)
                self.guard(key)
                del container[key]
            else:
                self._delete(ast.Delete(targets=target.elts))

    def _if(self, node: ast.If) -> str | None:
        return self._block(node.body if self.visit(node.test) else node.orelse)

    def _for(self, node: ast.For) -> str | None:
        for item in self._iterable(self.visit(node.iter)):
            self.tick()
            self._store(node.target, item)
            if self._block(node.body) is _BREAK:
                return None
        return self._block(node.orelse)

    def _expr(self, node: ast.Expr) -> None:
        self.visit(node.value)


_DISPATCH: dict[type, Callable[[Interpreter, Any], Any]] = {
    kind: getattr(Interpreter, "_" + kind.__name__.lower())
    for kind in (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare)
    + (ast.IfExp, ast.Call, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Set, ast.Dict)
    + (ast.JoinedStr, ast.FormattedValue, ast.ListComp, ast.SetComp, ast.DictComp, ast.Assign)
    + (ast.AugAssign, ast.Delete, ast.If, ast.For, ast.Expr)
}
_DISPATCH[ast.GeneratorExp] = Interpreter._listcomp
_DISPATCH[ast.Pass] = lambda self, node: None
_DISPATCH[ast.Break] = lambda self, node: _BREAK
_DISPATCH[ast.Continue] = lambda self, node: _CONTINUE
