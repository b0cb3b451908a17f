"""Compile time: parse diagram code with `ast` and refuse, in plain words, anything outside the
whitelist, before it can run.

Decision: the whitelist names what is allowed (node types, helper names, methods); everything
else is refused, including Python features added after this was written. `_REFUSED` only
chooses friendlier words for common attempts. The innermost problem is reported first.
"""

from __future__ import annotations

import ast
import difflib
import textwrap
from dataclasses import dataclass
from typing import Any

from engine.errors import ExpressionError
from engine.expressions.data import describe
from engine.expressions.functions import HELPERS
from engine.expressions.limits import MAX_DEPTH, MAX_SOURCE
from engine.expressions.operations import ALL_METHODS, BINARY, COMPARE, MUTATING, UNARY


@dataclass(frozen=True)
class Compiled:
    """A parsed, whitelisted expression ('eval') or script ('exec'), ready to run many times."""

    source: str
    mode: str
    tree: ast.AST


_EXPRESSION_NODES = frozenset(
    {ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.BinOp, ast.UnaryOp}
    | {ast.BoolOp, ast.And, ast.Or, ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.Attribute}
    | {ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.JoinedStr}
    | {ast.FormattedValue, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp}
    | {ast.comprehension, *BINARY, *UNARY, *COMPARE}
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


def suggest(name: str, known: Any) -> str:
    """' (did you mean `x`?)' for the closest of the `known` names, or ''."""
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
        return f"`{func.id}` is not available{suggest(func.id, HELPERS)}"
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
    if name not in ALL_METHODS:
        return f"method `.{name}()` is not allowed"
    if mode == "eval" and name in MUTATING:
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
    """Refuse the first disallowed construct, innermost first: `__import__('os').system()` is
    reported as `__import__`, the root of the trouble, rather than as `.system`."""
    callees: set[int] = set()
    problems = []
    stack = [(tree, 0, False, 1)]  # iterative: a deep tree is refused, never a stack overflow
    while stack:
        node, depth, in_loop, line = stack.pop()
        line = getattr(node, "lineno", line)  # operators have no line of their own
        if depth > MAX_DEPTH:
            message = f"the code is nested more than {MAX_DEPTH} levels deep"
            raise ExpressionError(message, line=line, source=source)
        problem = _refusal(node, mode, in_loop, id(node) in callees)
        if problem:
            problems.append((line, getattr(node, "col_offset", 0), -depth, problem))
            if type(node) not in _SCRIPT_NODES:  # `with`, not its parts
                continue
        if isinstance(node, ast.Call):
            callees.add(id(node.func))
        body = node.body if isinstance(node, ast.For) else ()
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1, in_loop or any(child is b for b in body), line))
    if problems:
        line, _, _, problem = min(problems)
        raise ExpressionError(problem, line=line, source=source)


def compile_source(source: str, mode: str) -> Compiled:
    """Parse and whitelist `source` as an expression ('eval') or a script ('exec'); uncached."""
    if not isinstance(source, str):
        raise ExpressionError(f"the code must be text, not {describe(source)}")
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
