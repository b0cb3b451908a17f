"""Checks on one DMN file, before SpiffWorkflow's DMN parser sees it.

Decision: SpiffWorkflow reads one decision table per file, in Python rather than FEEL, and fails
with a bare `IndexError` or `KeyError` on the rest; so each such shape is refused here, located,
and every cell is compiled the way the DMN engine will run it.
"""

from __future__ import annotations

from lxml import etree

from engine import expressions
from engine.diagram_checks import check_ids
from engine.errors import ExpressionError, Problem
from engine.expression_checks import compile_problems

SUPPORTED_HIT_POLICIES = {"UNIQUE", "COLLECT"}
TABLE_CHILDREN = {"input", "output", "rule"}
FEEL_HINT = "cells are Python, not FEEL: write e.g. `? >= 1 and ? <= 5`, `'gold'`, `< 50000`"


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def check_dmn(root: etree._Element, filename: str, seen_ids: dict) -> list[Problem]:
    """Ids, one decision table, supported hit policies, and every cell compiling."""
    problems = check_ids(root, filename, seen_ids)
    ns = {"dmn": etree.QName(root).namespace}
    decisions = root.findall(".//dmn:decision", ns)
    if len(decisions) != 1:
        found = "no decision" if not decisions else f"{len(decisions)} decisions"
        line = decisions[1].sourceline if len(decisions) > 1 else root.sourceline
        message = f"the DMN file has {found}; put exactly one decision table in each .dmn file"
        return problems + [Problem(filename, line, message)]
    problems += _missing_ids(decisions[0], filename)
    if problems:
        return problems
    table = decisions[0].find("dmn:decisionTable", ns)
    if table is None:
        name = decisions[0].get("id")
        message = (
            f"decision `{name}` has no decision table (other decision kinds are not supported)"
        )
        return [Problem(filename, decisions[0].sourceline, message, name)]
    return _check_table(table, filename, ns)


def _missing_ids(decision: etree._Element, filename: str) -> list[Problem]:
    needing = ("decision", "decisionTable", "input", "output", "rule", "inputEntry", "outputEntry")
    return [
        Problem(filename, el.sourceline, f"the <{_local(el)}> has no id; give it one")
        for el in decision.iter()
        if isinstance(el.tag, str) and _local(el) in needing and not el.get("id")
    ]


def _check_table(table: etree._Element, filename: str, ns: dict) -> list[Problem]:
    problems = []
    table_id = table.get("id")
    policy = table.get("hitPolicy", "UNIQUE").upper()
    if policy not in SUPPORTED_HIT_POLICIES:
        message = f"hit policy {policy} is not supported (use UNIQUE or COLLECT)"
        problems.append(Problem(filename, table.sourceline, message, table_id))
    for child in table:
        if _local(child) not in TABLE_CHILDREN:
            message = (
                f"a decision table may hold only inputs, outputs and rules, not <{_local(child)}>"
            )
            problems.append(Problem(filename, child.sourceline, message, child.get("id")))
    if table.find("dmn:output", ns) is None:
        message = f"decision table `{table_id}` has no output column"
        return problems + [Problem(filename, table.sourceline, message, table_id)]
    inputs, broken = _inputs(table, filename, ns)
    outputs = len(table.findall("dmn:output", ns))
    for rule in table.iterfind("dmn:rule", ns):
        problems += _check_rule(rule, inputs, outputs, filename, ns)
    return problems + broken


def _inputs(table, filename: str, ns: dict) -> tuple[list[str | None], list[Problem]]:
    """Each input column's expression, or None where it does not compile (its cells are skipped)."""
    inputs, problems = [], []
    for column in table.iterfind("dmn:input", ns):
        text_el = column.find("dmn:inputExpression/dmn:text", ns)
        expr = (text_el.text if text_el is not None else "") or ""
        found = compile_problems(
            expr.strip() or "None", "eval", filename, column, "the input expression", text_el
        )
        problems += found
        inputs.append(None if found else expr.strip())
    return inputs, problems


def _check_rule(rule, inputs: list, outputs: int, filename: str, ns: dict) -> list[Problem]:
    problems = []
    entries = rule.findall("dmn:inputEntry", ns)
    results = rule.findall("dmn:outputEntry", ns)
    if len(entries) > len(inputs) or len(results) > outputs:
        message = (
            f"rule `{rule.get('id')}` has {len(entries)} input and {len(results)} output cells, "
            f"but the table has {len(inputs)} input and {outputs} output columns"
        )
        return [Problem(filename, rule.sourceline, message, rule.get("id"))]
    for entry in (*entries, *results):
        if entry.find("dmn:text", ns) is None:
            message = f"the cell `{entry.get('id')}` has no <text>; type `-` for any value"
            problems.append(Problem(filename, entry.sourceline, message, entry.get("id")))
    if problems:
        return problems
    for expr, entry in zip(inputs, entries, strict=False):
        cell = (entry.findtext("dmn:text", "", ns) or "").strip()
        if expr is not None and cell not in ("", "-"):
            problems += _check_cell(expr, cell, filename, entry)
    for entry in results:
        cell = (entry.findtext("dmn:text", "", ns) or "").strip()
        problems += compile_problems(cell or "None", "eval", filename, entry, "the output")
    return problems


def _check_cell(input_expr: str, cell: str, filename: str, entry) -> list[Problem]:
    # Mirrors SpiffWorkflow's DMN engine: a cell is either a value (compared with ==),
    # a test with `?` standing for the input, or an operator continuing the input (`< 5`).
    for candidate in (cell.replace("?", "(dmninputexpr)"), f"({input_expr}) {cell}"):
        try:
            expressions.check(candidate, "eval")
            return []
        except ExpressionError:
            continue
    message = f"the DMN cell `{cell}` is not a valid expression ({FEEL_HINT})"
    return [Problem(filename, entry.sourceline, message, entry.get("id"))]
