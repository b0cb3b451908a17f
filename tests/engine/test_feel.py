"""FEEL in decision tables: unary tests and simple expressions translated at deploy time.

A cell is read as FEEL first and, when it is not FEEL, as SpiffArena's Python cell, so both
dialects' tables keep one meaning per cell. The last test runs a SpiffArena-dialect bundle whose
table is written in FEEL through the engine.
"""

from __future__ import annotations

import pytest

from engine import dmn_drd, expressions, feel, service_calls
from tests.factories import (
    APPLICANT,
    MANAGER,
    REVIEWER,
    SAMPLE,
    application,
    complete,
    deploy_folder,
    event_data,
    final,
    review,
    sample_copy,
    start,
)

NAMES = {"limit": 5000, "applicant": {"age": 40}, "approved": True}


def matches(cell: str, value) -> bool:
    """Whether an input entry matches `value`, the way a decision table evaluates it."""
    test = dmn_drd.input_test(cell)
    return True if test is None else expressions.evaluate(test, {**NAMES, dmn_drd.INPUT: value})


UNARY = [
    ("< 1000", 999, True),
    ("< 1000", 1000, False),
    ("<= 1000", 1000, True),
    ("> 1000", 1000.5, True),
    (">= limit", 5000, True),
    ("[1..5]", 5, True),
    ("[1..5]", 0, False),
    ("]1..5]", 1, False),
    ("[1..5[", 5, False),
    ("(1..5)", 3, True),
    ('"gold"', "gold", True),
    ('"gold"', "silver", False),
    ('"a","b"', "b", True),
    ('"a","b"', "c", False),
    ('not("x")', "y", True),
    ('not("x")', "x", False),
    ('not("x", "y")', "y", False),
    ("not(< 5)", 7, True),
    ("< 5, > 10", 12, True),
    ("< 5, > 10", 7, False),
    ("-", "anything", True),
    ("", None, True),
    ("true", True, True),
    ("false", True, False),
    ("null", None, True),
    ("applicant.age", 40, True),
    ("= limit", 5000, True),
    ("!= 3", 4, True),
    ('date("2024-05-31")', "2024-05-31", True),
    ('>= date("2024-01-01")', "2024-05-31", True),
    ("-5", -5, True),
    ("[-10..-1]", -3, True),
]


@pytest.mark.parametrize(("cell", "value", "expected"), UNARY)
def test_feel_unary_tests_match_as_in_camunda(cell, value, expected):
    """Comparisons, ranges, lists, negation and `-` match the input they should."""
    assert matches(cell, value) is expected


PYTHON_CELLS = [
    ("'C'", "C", True),
    ("? in ('C', 'D')", "D", True),
    ("? >= 1 and ? <= 5", 6, False),
    ("in ('x', 'y')", "x", True),
    ("True", True, True),
]


@pytest.mark.parametrize(("cell", "value", "expected"), PYTHON_CELLS)
def test_spiffarena_python_cells_keep_their_meaning(cell, value, expected):
    """A cell that is not FEEL is read as before: a value, a test with `?`, or an operator."""
    assert matches(cell, value) is expected


EXPRESSIONS = [
    ('"accounting"', "accounting"),
    ("true", True),
    ("null", None),
    ("1000", 1000),
    ("limit * 2", 10000),
    ("applicant.age + 1", 41),
    ('if applicant.age >= 18 then "adult" else "minor"', "adult"),
    ("limit between 1000 and 9000", True),
    ("limit = 5000 and not(approved)", False),
    ('["a", "b"]', ["a", "b"]),
    ("-limit", -5000),
    ("(1 + 2) * 3", 9),
]


@pytest.mark.parametrize(("text", "value"), EXPRESSIONS)
def test_feel_expressions_evaluate_in_the_sandbox(text, value):
    """Output entries and input expressions: literals, paths, arithmetic, if, between, lists."""
    assert expressions.evaluate(feel.expression(text), NAMES) == value


@pytest.mark.parametrize(
    "text",
    ["'single quotes'", "scorecard['grade']", "not approved", "x == 1", "Customer Status"],
)
def test_what_is_not_feel_is_left_for_python(text):
    """SpiffArena's Python spellings are not taken for FEEL."""
    with pytest.raises(ValueError):
        feel.expression(text)


def test_a_spiffarena_table_in_feel_routes_applications(tmp_path, session_factory, settings):
    """The sample bundle's table with a FEEL range (`[1000..50000]`) runs end to end."""
    root = sample_copy(
        tmp_path / "bundle",
        "approval_levels.dmn",
        ("<text>&lt;= 50000</text>", "<text>[1000..50000]</text>"),
    )
    with session_factory.begin() as session:
        deploy_folder(session, settings, root)
    for amount, end in ((50000, "End_approved"), (80000, "End_final_approved")):
        instance_id = start(session_factory, settings, SAMPLE)
        complete(session_factory, settings, APPLICANT, "Task_apply", application(amount=amount))
        assert service_calls.run_due(session_factory, settings) == 1
        complete(session_factory, settings, REVIEWER, "Task_review", review())
        if amount > 50000:
            complete(session_factory, settings, MANAGER, "Task_manager", final())
        assert event_data(session_factory, instance_id, "completed") == [{"end": end}]
