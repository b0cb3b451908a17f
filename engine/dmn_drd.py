"""Decision tables and decision requirements graphs (DRDs): read once, evaluated in the sandbox.

Decisions: (1) this is the one DMN evaluator, for every dialect; SpiffWorkflow's DMN parser
(one decision per file, UNIQUE and COLLECT only, a crash on several decisions) is not used.
(2) A DMN file is read into plain JSON-like data at deploy time — every cell already translated
into an `engine.expressions` expression (FEEL first, Python second; see `engine.feel`) — and
that data travels inside the business rule task's spec, so a deployed version needs no DMN file
at run time. (3) A decision's required decisions are evaluated first, in dependency order; their
outputs are visible to it by output name (a list of values when several rules matched).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

from lxml import etree

from engine import expressions, feel, juel
from engine.errors import ExpressionError

INPUT = "dmninputexpr"  # the name a cell's test uses for its column's input value
SINGLE = frozenset({"UNIQUE", "FIRST", "ANY", "PRIORITY"})
SUPPORTED = frozenset({"UNIQUE", "FIRST", "ANY", "COLLECT", "RULE ORDER"})
AGGREGATIONS = {
    "SUM": sum,
    "MIN": min,
    "MAX": max,
    "COUNT": len,
}
_QUESTION = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")  # a `?` outside quotes

Evaluate = Callable[[str, dict[str, Any]], Any]


class DecisionError(ValueError):
    """A decision that cannot be read or run, in an analyst's words."""


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str) and _local(c) == name]


def _text(el: etree._Element | None) -> str:
    if el is None:
        return ""
    found = [c for c in el.iter() if isinstance(c.tag, str) and _local(c) == "text"]
    return (found[0].text or "").strip() if found else ""


def input_test(cell: str) -> str | None:
    """An input entry as a sandbox expression over INPUT; None matches any value.

    FEEL unary tests first (`[1..5]`, `"a","b"`); otherwise SpiffArena's Python cells: a test
    with `?` for the input, a value to compare with, or an operator continuing the input.
    """
    text = (cell or "").strip()
    if text in ("", "-"):
        return None
    with contextlib.suppress(ValueError):  # not FEEL: SpiffArena's Python
        text = feel.unary_tests(text) or "True"
    if _QUESTION.search(text):
        return _QUESTION.sub(INPUT, text)
    try:
        expressions.check(text)
        return f"{INPUT} == ({text})"
    except ExpressionError:
        return f"{INPUT} {text}"


def value_expression(text: str) -> str | None:
    """An input expression or output entry: JUEL `${...}`, FEEL, or Python, in that order."""
    stripped = (text or "").strip()
    if not stripped:
        return None
    if juel.is_juel(stripped):
        return juel.expression(stripped)
    try:
        return feel.expression(stripped)
    except ValueError:
        return stripped


def read(root: etree._Element) -> dict[str, dict[str, Any]]:
    """Every decision of a DMN file as data, by id (cells translated, not yet compiled)."""
    return {d.get("id"): _decision(d) for d in root.iter() if _is(d, "decision")}


def _is(el, name: str) -> bool:
    return isinstance(el.tag, str) and _local(el) == name


def _decision(el: etree._Element) -> dict[str, Any]:
    requires = [
        (req.get("href") or "").lstrip("#")
        for info in _children(el, "informationRequirement")
        for req in _children(info, "requiredDecision")
    ]
    decision = {"id": el.get("id"), "name": el.get("name") or el.get("id"), "requires": requires}
    tables = _children(el, "decisionTable")
    literals = _children(el, "literalExpression")
    if tables:
        decision["table"] = _table(tables[0])
    elif literals:
        variable = _children(el, "variable")
        name = variable[0].get("name") if variable else el.get("id")
        decision["literal"] = {"variable": name, "expression": value_expression(_text(literals[0]))}
    return decision


def _table(table: etree._Element) -> dict[str, Any]:
    inputs = [
        value_expression(
            _text(_children(i, "inputExpression")[0]) if _children(i, "inputExpression") else ""
        )
        for i in _children(table, "input")
    ]
    outputs = [o.get("name") or o.get("label") or o.get("id") for o in _children(table, "output")]
    rules = []
    for row, rule in enumerate(_children(table, "rule"), start=1):
        tests = [input_test(_text(e)) for e in _children(rule, "inputEntry")]
        results = [value_expression(_text(e)) for e in _children(rule, "outputEntry")]
        rules.append({"id": rule.get("id"), "row": row, "tests": tests, "outputs": results})
    return {
        "hit_policy": (table.get("hitPolicy") or "UNIQUE").upper(),
        "aggregation": (table.get("aggregation") or "").upper() or None,
        "inputs": inputs,
        "outputs": outputs,
        "rules": rules,
    }


def closure(decisions: dict[str, dict], ref: str) -> dict[str, dict]:
    """`ref` and every decision it requires, directly or not."""
    found, stack = {}, [ref]
    while stack:
        name = stack.pop()
        if name in found or name not in decisions:
            continue
        found[name] = decisions[name]
        stack.extend(decisions[name]["requires"])
    return found


def order(decisions: dict[str, dict], ref: str) -> list[str]:
    """The decisions to evaluate for `ref`, each after those it requires; DecisionError on a
    cycle or a missing requirement."""
    ordered: list[str] = []
    state: dict[str, str] = {}
    stack: list[tuple[str, bool]] = [(ref, False)]
    while stack:
        name, done = stack.pop()
        if done:
            state[name] = "done"
            ordered.append(name)
            continue
        if state.get(name) == "done":
            continue
        if state.get(name) == "open":
            raise DecisionError(f"decision `{name}` requires itself through its requirements")
        if name not in decisions:
            raise DecisionError(f"the required decision `{name}` is in none of the .dmn files")
        state[name] = "open"
        stack.append((name, True))
        stack.extend((r, False) for r in reversed(decisions[name]["requires"]))
    return ordered


def decide(decisions: dict[str, dict], ref: str, data: dict, evaluate: Evaluate, strict: bool):
    """The results of decision `ref` (one dict of outputs per matched rule), after its requirements.

    `strict` makes UNIQUE refuse several matches (Camunda); otherwise the first one wins, as
    SpiffArena's diagrams expect.
    """
    names: dict[str, Any] = dict(data)
    results: list[dict] = []
    for name in order(decisions, ref):
        results = _one(decisions[name], names, evaluate, strict)
        for key in _output_names(decisions[name]):
            values = [r.get(key) for r in results]
            names[key] = values[0] if len(values) == 1 else values
    return results


def _output_names(decision: dict) -> list[str]:
    if "literal" in decision:
        return [decision["literal"]["variable"]]
    return decision["table"]["outputs"]


def _one(decision: dict, names: dict, evaluate: Evaluate, strict: bool) -> list[dict]:
    if "literal" in decision:
        literal = decision["literal"]
        return [{literal["variable"]: _run(evaluate, literal["expression"], names, decision)}]
    table = decision["table"]
    values = [_run(evaluate, expr, names, decision, "an input") for expr in table["inputs"]]
    matched = [r for r in table["rules"] if _matches(r, values, names, evaluate, decision)]
    return _apply_policy(decision, matched, names, evaluate, strict)


def _run(evaluate: Evaluate, expr: str | None, names: dict, decision: dict, what: str = "") -> Any:
    if expr is None:
        return None
    try:
        return evaluate(expr, names)
    except ExpressionError as err:
        where = f" ({what})" if what else ""
        raise ExpressionError(f"decision `{decision['id']}`{where}: {err.reason}") from None


def _matches(rule: dict, values: list, names: dict, evaluate: Evaluate, decision: dict) -> bool:
    for test, value in zip(rule["tests"], values, strict=False):
        if test is None:
            continue
        result = _run(evaluate, test, {**names, INPUT: value}, decision, f"rule {rule['row']}")
        if not result:
            return False
    return True


def _apply_policy(decision, matched, names, evaluate, strict) -> list[dict]:
    table = decision["table"]
    policy = table["hit_policy"]
    rows = [
        {
            name: _run(evaluate, expr, names, decision, f"rule {rule['row']}")
            for name, expr in zip(table["outputs"], rule["outputs"], strict=False)
        }
        for rule in matched
    ]
    if policy in SINGLE:
        unique = policy == "UNIQUE" or (policy == "ANY" and any(r != rows[0] for r in rows))
        if len(rows) > 1 and strict and unique:
            numbers = ", ".join(str(r["row"]) for r in matched)
            raise DecisionError(
                f"decision `{decision['id']}`: rules {numbers} all match, but its hit policy "
                f"{policy} allows one"
            )
        return rows[:1]
    aggregation = table["aggregation"]
    if aggregation is None:
        return rows
    name = table["outputs"][0]
    values = [r.get(name) for r in rows]
    if aggregation != "COUNT" and not values:
        return []
    return [{name: AGGREGATIONS[aggregation](values)}]


def as_dict(decision: dict, results: list[dict]) -> dict[str, Any]:
    """SpiffArena's shape of a result: the first match's outputs, or each output's list of
    values for COLLECT and RULE ORDER; dotted output names become nested objects."""
    many = "table" in decision and decision["table"]["hit_policy"] not in SINGLE
    many = many and decision["table"]["aggregation"] is None
    if not many:
        return _nest(results[0]) if results else {}
    collected: dict[str, list] = {}
    for row in results:
        for key, value in _nest(row).items():
            collected.setdefault(key, []).append(value)
    return collected


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in row.items():
        *parents, last = key.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return nested


def mapped(results: list[dict], mapping: str | None) -> Any:
    """Camunda's `mapDecisionResult`: resultList (default), singleResult, singleEntry,
    collectEntries."""
    mapping = mapping or "resultList"
    if mapping == "resultList":
        return results
    if mapping == "collectEntries":
        if any(len(r) > 1 for r in results):
            raise DecisionError("collectEntries needs a decision with one output column")
        return [next(iter(r.values())) for r in results]
    if len(results) > 1:
        raise DecisionError(f"{mapping} needs at most one matching rule, but {len(results)} match")
    if mapping == "singleResult":
        return results[0] if results else None
    if results and len(results[0]) > 1:
        raise DecisionError("singleEntry needs a decision with one output column")
    return next(iter(results[0].values())) if results else None
