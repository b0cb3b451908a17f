"""Checks on one DMN file, before `engine.dmn_drd` reads it.

Decision: every shape the DMN reader would stumble on (a cell without text, more cells than
columns, a requirement that is missing or circular) is refused here, located, and every cell is
translated and compiled exactly as it will run: FEEL first, then Python (SpiffArena's cells).
"""

from __future__ import annotations

from lxml import etree

from engine import dmn_drd, expressions, juel
from engine.diagram_checks import check_ids
from engine.errors import ExpressionError, Problem
from engine.expression_checks import compile_problems

TABLE_CHILDREN = {"input", "output", "rule", "annotation"}
CELL_HINT = (
    'a cell is a FEEL test (`< 1000`, `[1..5]`, `"a","b"`, `not("x")`, `-`) or a Python '
    "expression (`? >= 1 and ? <= 5`, `'gold'`)"
)
POLICIES = "UNIQUE, FIRST, ANY, COLLECT or RULE ORDER"


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def check_dmn(root: etree._Element, filename: str, seen_ids: dict) -> list[Problem]:
    """Ids, decisions that can be evaluated, their requirements, and every cell compiling."""
    problems = check_ids(root, filename, seen_ids)
    ns = {"dmn": etree.QName(root).namespace}
    decisions = root.findall(".//dmn:decision", ns)
    if not decisions:
        return problems + [Problem(filename, root.sourceline, "the DMN file has no decision")]
    for decision in decisions:
        problems += _missing_ids(decision, filename)
    if problems:
        return problems
    for decision in decisions:
        problems += _check_decision(decision, filename, ns)
    problems += _requirements(decisions, filename, ns)
    return problems or _cycles(root, decisions, filename)


def _check_decision(decision: etree._Element, filename: str, ns: dict) -> list[Problem]:
    table = decision.find("dmn:decisionTable", ns)
    literal = decision.find("dmn:literalExpression", ns)
    name = decision.get("id")
    if table is not None:
        return _check_table(table, filename, ns)
    if literal is not None:
        text = literal.find("dmn:text", ns)
        return _compile_value(text.text if text is not None else "", filename, literal, "the value")
    message = (
        f"decision `{name}` has no decision table or literal expression, so it decides nothing"
    )
    return [Problem(filename, decision.sourceline, message, name)]


def _requirements(decisions, filename: str, ns: dict) -> list[Problem]:
    """Required decisions exist in the file; business knowledge models (invoked functions) are
    not supported."""
    problems = []
    ids = {d.get("id") for d in decisions}
    for decision in decisions:
        for req in decision.iterfind("dmn:informationRequirement/dmn:requiredDecision", ns):
            ref = (req.get("href") or "").lstrip("#")
            if ref not in ids:
                message = (
                    f"decision `{decision.get('id')}` requires `{ref}`, which is not in this file"
                )
                problems.append(Problem(filename, req.sourceline, message, decision.get("id")))
        for req in decision.iterfind("dmn:knowledgeRequirement", ns):
            message = (
                f"decision `{decision.get('id')}` invokes a business knowledge model, which is "
                "not supported; make it a decision it requires"
            )
            problems.append(Problem(filename, req.sourceline, message, decision.get("id")))
    return problems


def _cycles(root, decisions, filename: str) -> list[Problem]:
    """No decision requires itself, directly or through others."""
    problems = []
    model = dmn_drd.read(root)
    for decision in decisions:
        try:
            dmn_drd.order(model, decision.get("id"))
        except dmn_drd.DecisionError as err:
            problems.append(Problem(filename, decision.sourceline, str(err), decision.get("id")))
    return problems


def _missing_ids(decision: etree._Element, filename: str) -> list[Problem]:
    needing = ("decision", "decisionTable", "input", "output", "rule", "inputEntry", "outputEntry")
    return [
        Problem(filename, el.sourceline, f"the <{_local(el)}> has no id; give it one")
        for el in decision.iter()
        if isinstance(el.tag, str) and _local(el) in needing and not el.get("id")
    ]


def _check_table(table: etree._Element, filename: str, ns: dict) -> list[Problem]:
    problems = _check_policy(table, filename, ns)
    table_id = table.get("id")
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


def _check_policy(table: etree._Element, filename: str, ns: dict) -> list[Problem]:
    policy = table.get("hitPolicy", "UNIQUE").upper()
    aggregation = table.get("aggregation")
    table_id = table.get("id")
    if policy not in dmn_drd.SUPPORTED:
        message = f"hit policy {policy} is not supported (use {POLICIES})"
        return [Problem(filename, table.sourceline, message, table_id)]
    if aggregation and (policy != "COLLECT" or aggregation.upper() not in dmn_drd.AGGREGATIONS):
        message = (
            f"the aggregation {aggregation} needs the hit policy COLLECT and SUM, MIN, MAX or COUNT"
        )
        return [Problem(filename, table.sourceline, message, table_id)]
    if aggregation and len(table.findall("dmn:output", ns)) > 1:
        message = (
            f"decision table `{table_id}` aggregates ({aggregation}), so it may have one output"
        )
        return [Problem(filename, table.sourceline, message, table_id)]
    return []


def _compile_value(text: str, filename: str, owner, what: str, at=None) -> list[Problem]:
    """An input expression or output entry (JUEL, FEEL or Python) compiles in the sandbox."""
    try:
        expr = dmn_drd.value_expression(text or "") or "None"
    except juel.JuelError as err:
        where = at if at is not None else owner
        message = f"{what} of `{owner.get('id')}` cannot be used here: {err}"
        return [Problem(filename, where.sourceline, message, owner.get("id"))]
    return compile_problems(expr, "eval", filename, owner, what, at)


def _inputs(table, filename: str, ns: dict) -> tuple[list[bool], list[Problem]]:
    """Whether each input column's expression compiles (cells of broken ones are skipped)."""
    inputs, problems = [], []
    for column in table.iterfind("dmn:input", ns):
        text_el = column.find("dmn:inputExpression/dmn:text", ns)
        expr = (text_el.text if text_el is not None else "") or ""
        found = _compile_value(expr, filename, column, "the input expression", text_el)
        problems += found
        inputs.append(not found)
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
    for usable, entry in zip(inputs, entries, strict=False):
        if usable:
            problems += _check_cell(entry.findtext("dmn:text", "", ns) or "", filename, entry)
    for entry in results:
        problems += _compile_value(
            entry.findtext("dmn:text", "", ns), filename, entry, "the output"
        )
    return problems


def _check_cell(cell: str, filename: str, entry) -> list[Problem]:
    test = dmn_drd.input_test(cell)
    try:
        if test is not None:
            expressions.check(test, "eval")
    except ExpressionError:
        message = f"the DMN cell `{cell.strip()}` is not a valid expression ({CELL_HINT})"
        return [Problem(filename, entry.sourceline, message, entry.get("id"))]
    return []
