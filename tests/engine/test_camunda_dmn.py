"""Decision tables and requirement graphs: several decisions a file, evaluated in dependency order.

The DRD here is this project's own (a claim is classified, the class decides the approvers),
in the shape of Camunda's invoice example. Tables are evaluated by `engine.dmn_drd` in the
sandbox; the validation tests show each DMN shape that cannot run, located, in plain words.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from engine import dmn_drd, expressions, sources, validation
from engine.errors import Problem

DATA = Path(__file__).resolve().parent.parent / "data"
CLAIMS = DATA / "camunda_expenses" / "processes" / "camunda_expenses" / "claims.dmn"
DMN_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def evaluate(expression, names):
    return expressions.evaluate(expression, names)


def decide(decisions, ref, data, strict=True):
    return dmn_drd.decide(decisions, ref, data, evaluate, strict)


@pytest.fixture(scope="module")
def claims():
    return dmn_drd.read(etree.parse(str(CLAIMS)).getroot())


def table(policy="UNIQUE", rules=(), outputs=("result",), inputs=("x",), extra="", requires=()):
    """A one-decision DMN file: `rules` are (input cells, output cells) pairs."""
    columns = "".join(
        f'<input id="I{i}"><inputExpression id="X{i}"><text>{expr}</text></inputExpression></input>'
        for i, expr in enumerate(inputs)
    )
    columns += "".join(f'<output id="O{i}" name="{name}"/>' for i, name in enumerate(outputs))
    body = ""
    for r, (cells, results) in enumerate(rules):
        entries = "".join(
            f'<inputEntry id="e{r}_{i}"><text>{c}</text></inputEntry>' for i, c in enumerate(cells)
        )
        entries += "".join(
            f'<outputEntry id="o{r}_{i}"><text>{c}</text></outputEntry>'
            for i, c in enumerate(results)
        )
        body += f'<rule id="R{r}">{entries}</rule>'
    needs = "".join(
        f'<informationRequirement id="N{d}"><requiredDecision href="#{d}"/>'
        "</informationRequirement>"
        for d in requires
    )
    decision_table = f'<decisionTable id="T" hitPolicy="{policy}" {extra}>{columns}{body}'
    decision = f'<decision id="main" name="Main">{needs}{decision_table}</decisionTable></decision>'
    return f'<definitions xmlns="{DMN_NS}" id="D" namespace="x">{decision}</definitions>'


def read(text: str) -> dict:
    return dmn_drd.read(etree.fromstring(text.encode()))


def test_required_decisions_are_evaluated_first_and_feed_the_next(claims):
    """The claim's class is decided first; the approvers table reads it by its output name."""
    assert dmn_drd.order(claims, "claim_approvers") == ["claim_class", "claim_approvers"]
    assert decide(claims, "claim_approvers", {"amount": 120, "category": "office"}) == [
        {"approver_group": "credit_reviewer"}
    ]
    assert decide(claims, "claim_approvers", {"amount": 9000, "category": "travel"}) == [
        {"approver_group": "branch_manager"},
        {"approver_group": "credit_supervisor"},
    ]


def test_a_decision_result_is_shaped_as_camunda_maps_it(claims):
    """resultList, collectEntries, singleResult and singleEntry; a misfit is an error."""
    results = decide(claims, "claim_approvers", {"amount": 9000, "category": "travel"})
    assert dmn_drd.mapped(results, None) == results
    assert dmn_drd.mapped(results, "collectEntries") == ["branch_manager", "credit_supervisor"]
    one = decide(claims, "claim_class", {"amount": 700, "category": "office"})
    assert dmn_drd.mapped(one, "singleResult") == {"claim_class": "budgeted"}
    assert dmn_drd.mapped(one, "singleEntry") == "budgeted"
    assert dmn_drd.mapped([], "singleEntry") is None
    with pytest.raises(dmn_drd.DecisionError, match="singleEntry needs at most one matching rule"):
        dmn_drd.mapped(results, "singleEntry")


def test_unique_refuses_two_matches_for_camunda_but_takes_the_first_for_spiffarena():
    """Camunda's UNIQUE is strict; SpiffArena's diagrams were written for first-match."""
    decisions = read(table(rules=[(["&gt; 1"], ['"a"']), (["&gt; 2"], ['"b"'])]))
    with pytest.raises(
        dmn_drd.DecisionError, match="rules 1, 2 all match, but its hit policy UNIQUE"
    ):
        decide(decisions, "main", {"x": 5})
    assert decide(decisions, "main", {"x": 5}, strict=False) == [{"result": "a"}]


HIT_POLICIES = [
    ("FIRST", "", [{"result": 10}]),
    ("RULE ORDER", "", [{"result": 10}, {"result": 20}, {"result": 30}]),
    ("COLLECT", "", [{"result": 10}, {"result": 20}, {"result": 30}]),
    ("COLLECT", 'aggregation="SUM"', [{"result": 60}]),
    ("COLLECT", 'aggregation="MIN"', [{"result": 10}]),
    ("COLLECT", 'aggregation="MAX"', [{"result": 30}]),
    ("COLLECT", 'aggregation="COUNT"', [{"result": 3}]),
]


@pytest.mark.parametrize(("policy", "extra", "expected"), HIT_POLICIES)
def test_hit_policies_and_aggregations(policy, extra, expected):
    """FIRST, RULE ORDER, COLLECT and its SUM/MIN/MAX/COUNT over the matching rules."""
    rules = [(["&gt;= 1"], ["10"]), (["&gt;= 2"], ["20"]), (["-"], ["30"]), (["&lt; 0"], ["40"])]
    decisions = read(table(policy, rules, extra=extra))
    assert decide(decisions, "main", {"x": 5}) == expected


def test_any_accepts_equal_outputs_and_refuses_different_ones():
    """ANY: every matching rule must give the same answer."""
    same = read(table("ANY", [(["&gt; 1"], ['"a"']), (["&gt; 2"], ['"a"'])]))
    assert decide(same, "main", {"x": 5}) == [{"result": "a"}]
    different = read(table("ANY", [(["&gt; 1"], ['"a"']), (["&gt; 2"], ['"b"'])]))
    with pytest.raises(dmn_drd.DecisionError, match="hit policy ANY allows one"):
        decide(different, "main", {"x": 5})


def test_spiffarena_result_shape_merges_outputs_and_nests_dotted_names():
    """The first match's outputs (a.b becomes nested), or lists of values for COLLECT."""
    decisions = read(table(rules=[(["-"], ["1", '"x"'])], outputs=("level", "route.name")))
    results = decide(decisions, "main", {"x": 1})
    assert dmn_drd.as_dict(decisions["main"], results) == {"level": 1, "route": {"name": "x"}}
    collect = read(table("COLLECT", [(["-"], ["1"]), (["-"], ["2"])]))
    assert dmn_drd.as_dict(collect["main"], decide(collect, "main", {"x": 0})) == {"result": [1, 2]}


def test_a_literal_expression_decision_gives_its_variable():
    """A decision that is one FEEL expression (no table) is read too."""
    literal = '<literalExpression id="L"><text>amount * 0.01</text></literalExpression>'
    decision = f'<decision id="fee" name="Fee"><variable id="V" name="fee"/>{literal}</decision>'
    text = f'<definitions xmlns="{DMN_NS}" id="D" namespace="x">{decision}</definitions>'
    assert decide(read(text), "fee", {"amount": 2000}) == [{"fee": 20.0}]


def test_a_circular_requirement_is_refused():
    """Decisions that require each other would never be decided."""
    decisions = {
        "a": {"id": "a", "requires": ["b"], "table": {}},
        "b": {"id": "b", "requires": ["a"], "table": {}},
    }
    with pytest.raises(dmn_drd.DecisionError, match="decision `a` requires itself"):
        dmn_drd.order(decisions, "a")


# ---- validation of DMN files -----------------------------------------------------------------


def check(tmp_path: Path, dmn: str, session_ctx) -> list[Problem]:
    folder = tmp_path / "processes" / "dmn_only"
    folder.mkdir(parents=True)
    (folder / "rules.dmn").write_text(dmn, encoding="utf-8")
    bpmn = DATA / "camunda_expenses" / "processes" / "camunda_expenses" / "camunda_expenses.bpmn"
    (folder / "dmn_only.bpmn").write_text(
        bpmn.read_text(encoding="utf-8").replace('"camunda_expenses"', '"dmn_only"'),
        encoding="utf-8",
    )
    source = sources.read_bundle(folder, DATA / "camunda_expenses" / "forms")
    problems = validation.validate(source, session_ctx).problems
    return [p for p in problems if p.file.endswith("rules.dmn")]


@pytest.fixture
def ctx(session, settings):
    from engine import bundles

    return bundles.context(session, settings)


DMN_PROBLEMS = [
    (
        table("PRIORITY", [(["-"], ["1"])]),
        "hit policy PRIORITY is not supported (use UNIQUE, FIRST, ANY, COLLECT or RULE ORDER)",
    ),
    (
        table("FIRST", [(["-"], ["1"])], extra='aggregation="SUM"'),
        "the aggregation SUM needs the hit policy COLLECT and SUM, MIN, MAX or COUNT",
    ),
    (
        table("COLLECT", [(["-"], ["1", "2"])], outputs=("a", "b"), extra='aggregation="SUM"'),
        "decision table `T` aggregates (SUM), so it may have one output",
    ),
    (
        table(rules=[(["-"], ["1"])], requires=["elsewhere"]),
        "decision `main` requires `elsewhere`, which is not in this file",
    ),
    (
        table(rules=[(["date and time(x)"], ["1"])]),
        "the DMN cell `date and time(x)` is not a valid expression",
    ),
    (
        table(rules=[(["-"], ["${execution.id}"])]),
        "the output of `o0_0` cannot be used here: `${execution.id}`: `execution` is Camunda's",
    ),
]


@pytest.mark.parametrize(("dmn", "message"), DMN_PROBLEMS)
def test_dmn_shapes_that_cannot_run_are_located(tmp_path, ctx, dmn, message):
    """Unsupported hit policies, aggregations, requirements and cells, in the analyst's words."""
    problems = check(tmp_path, dmn, ctx)
    assert len(problems) == 1, problems
    assert problems[0].message.startswith(message), problems[0].message


def test_a_circular_drd_is_refused_on_the_decision(tmp_path, ctx):
    """Two decisions requiring each other are reported on the decision's line."""
    text = CLAIMS.read_text(encoding="utf-8").replace(
        '<decisionTable id="Table_class"',
        '<informationRequirement id="Loop"><requiredDecision href="#claim_approvers" />'
        '</informationRequirement>\n    <decisionTable id="Table_class"',
    )
    problems = check(tmp_path, text, ctx)
    assert problems == [
        Problem(
            "processes/dmn_only/rules.dmn",
            3,
            "decision `claim_class` requires itself through its requirements",
            "claim_class",
        ),
        Problem(
            "processes/dmn_only/rules.dmn",
            35,
            "decision `claim_approvers` requires itself through its requirements",
            "claim_approvers",
        ),
    ]
