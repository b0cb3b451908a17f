"""The sandboxed evaluator: what diagram code may do, and everything it must not."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import pytest

from engine.errors import ExpressionError
from engine.expressions import check, compile_expression, evaluate, execute, functions


class Secretive:
    """A host object in the context; diagram code must not reach into it."""

    secret = "s3cret"

    def get(self, key):
        return self.secret

    def lower(self):
        return self.secret


def plain_context() -> dict:
    return {"x": {"a": [1, 2]}, "xs": [3, 1, 2], "amount": 5, "name": "Ann"}


def run(mode: str, source: str, context: dict) -> None:
    if mode == "eval":
        evaluate(source, context)
    else:
        execute(source, context)


ESCAPES = [
    ("eval", "__import__('os').system('touch MARKER')"),
    ("exec", "import os\nos.system('touch MARKER')"),
    ("exec", "from os import system"),
    ("eval", "open('MARKER', 'w').write('x')"),
    ("eval", "open('/etc/passwd').read()"),
    ("exec", "with open('MARKER', 'w') as f:\n    pass"),
    ("eval", "().__class__.__base__.__subclasses__()"),
    ("eval", "[c for c in ().__class__.__bases__]"),
    ("eval", "(1).__class__"),
    ("eval", "x.__dict__"),
    ("eval", "x.keys.__self__"),
    ("eval", "f'{x.__class__}'"),
    ("eval", "'{0.__class__}'.format(1)"),
    ("eval", "'{0.__class__}'.format_map({})"),
    ("eval", "getattr(1, '__class__')"),
    ("eval", "globals()"),
    ("eval", "vars()"),
    ("eval", "locals()"),
    ("eval", "type(1)"),
    ("eval", "eval('1')"),
    ("eval", "exec('y = 1')"),
    ("eval", "compile('1', 'f', 'eval')"),
    ("eval", "__builtins__"),
    ("eval", "amount.real"),
    ("eval", "len"),
    ("eval", "sorted(xs, key=len)"),
    ("eval", "lambda: 1"),
    ("exec", "f = lambda: 1"),
    ("exec", "def f():\n    pass"),
    ("exec", "class A:\n    pass"),
    ("exec", "try:\n    pass\nexcept Exception:\n    pass"),
    ("exec", "raise ValueError('x')"),
    ("exec", "global amount\namount = 1"),
    ("eval", "(y := 1)"),
    ("eval", "len(*xs)"),
    ("eval", "dict(**x)"),
    ("exec", "x.a = 1"),
    ("exec", "del x.a"),
    ("exec", "break"),
    ("eval", "xs.append(1)"),
    ("eval", "[1 for x['a'] in [5]]"),
    ("exec", "while True:\n    pass"),
    ("exec", "for i in range(10000):\n    for j in range(10000):\n        pass"),
    ("exec", "for i in range(10**9):\n    pass"),
    ("eval", "[i for i in range(10000) for j in range(10000)]"),
    ("eval", "'a' * 10**10"),
    ("eval", "[1] * 10**10"),
    ("eval", "2 ** 10**10"),
    ("eval", "(10**4000) ** 3"),
    ("eval", "1 << 10**9"),
    ("eval", "'%*d' % (10**9, 1)"),
    ("eval", "f'{amount:>{10**9}}'"),
    ("eval", "round(5, -10**9)"),
    ("eval", "sum([[1]] * 1000, [])"),
    ("eval", "'x'.replace('', 'y' * 1000000)"),
    ("exec", "s = 'ab'\nfor i in range(40):\n    s += s"),
    ("exec", "n = 3\nfor i in range(40):\n    n = n * n"),
    ("exec", "ys = [0]\nfor i in range(40):\n    ys.extend(ys)"),
    ("exec", "ys = [0]\nfor i in range(40):\n    ys[0:0] = ys"),
    ("exec", "s = 'a' * 900000\nys = [s + str(i) for i in range(100)]"),
    ("exec", "a = [1]\nfor i in range(60):\n    a = [a, a]\nb = str(a)"),
    ("exec", "a = [1]\nb = [1]\nfor i in range(60):\n    a = [a, a]\n    b = [b, b]\nc = a == b"),
    ("exec", "a = [1]\nfor i in range(60):\n    a = [a, a]"),
    ("exec", "t = ()\nfor i in range(60):\n    t = (t, t)\nd = {t: 1}"),
    ("exec", "a = []\nfor i in range(200):\n    a = [a]\nb = str(a)"),
    ("eval", "[" * 150 + "]" * 150),
    ("eval", "(" * 300 + "1" + ")" * 300),
    ("exec", "a = []\na.append(a)"),
    ("eval", "-" * 500 + "1"),
    ("eval", "1" + "+1" * 5000),
    ("eval", "amount" + " " * 20_000),
    ("exec", "x['a'].append(3)\namount = 6\nboom = 1 / 0"),
]


@pytest.mark.parametrize(("mode", "source"), ESCAPES)
def test_escape_vectors_are_refused_and_have_no_effect(mode, source, tmp_path):
    """Every escape or resource attack raises ExpressionError and changes nothing."""
    marker = tmp_path / "pwned"
    source = source.replace("MARKER", str(marker))
    context = plain_context()
    before = copy.deepcopy(context)
    with pytest.raises(ExpressionError):
        run(mode, source, context)
    assert context == before
    assert not marker.exists()


@pytest.mark.parametrize("source", ["obj.secret", "obj.get('secret')", "obj.lower()", "obj._x"])
def test_host_objects_in_the_context_are_not_reachable(source):
    """An attribute or method of a non-JSON value in the context is refused."""
    with pytest.raises(ExpressionError):
        evaluate(source, {"obj": Secretive()})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "`__import__` is not available"),
        ("().__class__", "attribute `__class__` is not allowed"),
        ("'{0}'.format(1)", "`.format()` is not allowed"),
        ("open('f')", "`open` is not available"),
        ("lenn(xs)", "`lenn` is not available (did you mean `len`?)"),
        ("x.a", "use `value['a']`"),
    ],
)
def test_refusals_explain_themselves_in_plain_words(source, message):
    """Compile-time refusals name the construct the analyst used."""
    with pytest.raises(ExpressionError, match=re.escape(message)):
        compile_expression(source)


def test_while_loop_message_and_line():
    """A `while` loop is refused with its line number."""
    with pytest.raises(ExpressionError) as err:
        execute("a = 1\nwhile a:\n    pass", {})
    assert err.value.reason.startswith("`while` loops are not allowed")
    assert err.value.line == 2


def test_step_limit_message():
    """An overlong run stops with a message that suggests an endless loop."""
    with pytest.raises(ExpressionError, match=r"the script ran more than 1000 steps \(endless"):
        execute("for i in range(10000):\n    pass", {}, step_limit=1000)


def test_unknown_name_suggests_the_close_one():
    """A misspelt variable is reported with a suggestion and the line."""
    with pytest.raises(ExpressionError) as err:
        execute("total = 1\nfee = amout * 2", {"amount": 3})
    assert err.value.reason == "unknown name `amout` (did you mean `amount`?)"
    assert err.value.line == 2


def test_syntax_error_reports_its_line():
    """A syntax error carries the line the analyst must fix."""
    with pytest.raises(ExpressionError) as err:
        check("a = 1\nb = (", "exec")
    assert err.value.line == 2
    assert "syntax error" in err.value.reason


def test_runtime_error_reports_its_line():
    """Division by zero on line 3 is reported on line 3."""
    with pytest.raises(ExpressionError, match="line 3: .*division by zero"):
        execute("a = 1\nb = 2\nc = a / 0", {})


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("amount > 1000 and grade in ('A','B')", {"amount": 1500, "grade": "A"}, True),
        ("amount > 1000 and grade in ('A','B')", {"amount": 1500, "grade": "C"}, False),
        ("amount > 1000 and grade in ('A','B')", {"amount": 10, "grade": "ZZ"}, False),
        ("not approved or amount <= limit", {"approved": True, "amount": 5, "limit": 5}, True),
        ("applicant['age'] >= 18", {"applicant": {"age": 30}}, True),
        ("len(docs) == 2 and 'id' in docs", {"docs": ["id", "payslip"]}, True),
        ("'high' if score > 700 else 'low'", {"score": 720}, "high"),
        ("name.strip().lower().startswith('a')", {"name": " Ann "}, True),
        ("x is None", {"x": None}, True),
        ("x is not None", {"x": None}, False),
    ],
)
def test_gateway_conditions(source, context, expected):
    """Typical gateway conditions evaluate as in Python."""
    assert evaluate(source, context) == expected


@pytest.mark.parametrize(
    ("source", "dmninputexpr", "expected"),
    [
        ("(dmninputexpr) == ('A')", "A", True),
        ("(dmninputexpr) == ('A')", "B", False),
        ("dmninputexpr < 5", 4, True),
        ("1 < dmninputexpr < 9", 5, True),
        ("1 < dmninputexpr < 9", 9, False),
        ("1 < dmninputexpr < 9", 0, False),
        ("dmninputexpr in ['x', 'y']", "y", True),
    ],
)
def test_dmn_style_expressions(source, dmninputexpr, expected):
    """DMN cells as SpiffWorkflow rewrites them evaluate correctly."""
    assert evaluate(source, {"dmninputexpr": dmninputexpr}) is expected


def test_chained_comparison_stops_at_the_first_false():
    """`a < b < c` evaluates `c` only when `a < b` holds."""
    assert evaluate("3 < 2 < missing", {}) is False
    assert evaluate("1 < 2 <= 2 != 3", {}) is True


def test_and_or_short_circuit_and_return_operands():
    """`and`/`or` skip the right side when decided and return an operand, as in Python."""
    assert evaluate("False and missing", {}) is False
    assert evaluate("name or 'anonymous'", {"name": ""}) == "anonymous"


def test_script_sets_variables_with_loops_fstrings_and_helpers():
    """A realistic script writes plain data back into the task data."""
    context = {"loans": [{"amount": 1200.5, "term": 12}, {"amount": 300, "term": 6}]}
    execute(
        """
total = 0
labels = []
for i, loan in enumerate(loans, 1):
    if loan['term'] < 12:
        continue
    total += loan['amount']
    labels.append(f"#{i}: {loan['amount']:,.2f} over {loan['term']} months")
summary = {'count': len(loans), 'total': money(total), 'terms': sorted({l['term'] for l in loans})}
pair = (1, 2)
first, second = pair
summary['pair'] = [first, second]
big = [l for l in loans if l['amount'] > 1000]
for n in range(10):
    if n == 3:
        break
else:
    n = -1
scratch = 1
del scratch
""",
        context,
    )
    assert context["total"] == 1200.5
    assert context["labels"] == ["#1: 1,200.50 over 12 months"]
    assert context["summary"] == {"count": 2, "total": "1200.50", "terms": [6, 12], "pair": [1, 2]}
    assert context["pair"] == [1, 2]  # tuples are stored as lists
    assert context["big"] == [{"amount": 1200.5, "term": 12}]
    assert context["n"] == 3
    assert "scratch" not in context
    assert "l" not in context  # comprehension variables stay inside


def test_subscript_assignment_and_augmented_assignment():
    """Scripts may change items of dicts and lists in place."""
    context = {"applicant": {"scores": [1, 2]}, "counts": {"a": 1}}
    execute(
        "applicant['scores'][0] = 10\ncounts['a'] += 2\ncounts['b'] = counts.get('b', 0) + 1",
        context,
    )
    assert context == {"applicant": {"scores": [10, 2]}, "counts": {"a": 3, "b": 1}}


def test_failed_script_leaves_the_context_exactly_as_it_was():
    """A script that fails halfway has no effect at all, nested changes included."""
    context = {"xs": [1], "d": {"k": "v"}, "n": 1}
    before = copy.deepcopy(context)
    with pytest.raises(ExpressionError, match="division by zero"):
        execute("xs.append(2)\nd['k'] = 'changed'\nn = 2\nnew = 1\nboom = n / 0", context)
    assert context == before


@pytest.mark.parametrize(
    ("source", "variable"),
    [("s = {1, 2}", "s"), ("r = range(3)", "r"), ("d = {1: 'a'}", "d"), ("f = float('nan')", "f")],
)
def test_non_json_results_are_refused_naming_the_variable(source, variable):
    """A value that is not plain JSON data cannot be stored, and nothing is."""
    context = {"keep": 1}
    with pytest.raises(ExpressionError, match=f"`{variable}`"):
        execute(source, context)
    assert context == {"keep": 1}


def test_helper_names_stay_callable_when_data_uses_them():
    """A field named like a helper does not hide the helper in a call."""
    assert evaluate("max(max, 5)", {"max": 3}) == 5
    context = {"xs": [1, 2]}
    execute("sum = 0\nfor v in xs:\n    sum += v\ncheck_ = sum == sum(xs)", context)
    assert context["check_"] is True


def test_date_helpers(monkeypatch):
    """Dates are ISO text; today/now follow the patchable clock."""
    monkeypatch.setattr(functions, "_utcnow", lambda: datetime(2024, 5, 31, 9, 30, tzinfo=UTC))
    assert evaluate("today()", {}) == "2024-05-31"
    assert evaluate("now()", {}) == "2024-05-31T09:30:00+00:00"
    assert evaluate("date_add('2024-01-31', months=1)", {}) == "2024-02-29"
    assert evaluate("date_add('2024-02-29', years=1, days=1)", {}) == "2025-03-01"
    assert evaluate("days_between('2024-01-01', '2024-03-01')", {}) == 60
    assert evaluate("age_on('2000-06-01')", {}) == 23
    assert evaluate("age_on('2000-06-01', '2024-06-01')", {}) == 24
    with pytest.raises(ExpressionError, match="month must be in 1..12"):
        evaluate("days_between('2024-13-01', '2024-01-01')", {})


def test_decimal_helpers():
    """Decimal helpers keep exact text and round half up."""
    assert evaluate("decimal('1.10')", {}) == "1.10"
    assert evaluate("decimal(0.1) == '0.1' and decimal('1e3') == '1000'", {}) is True
    assert evaluate("money(2.675)", {}) == "2.68"
    assert evaluate("money('1234.5')", {}) == "1234.50"
    assert evaluate("round_half_up(2.5)", {}) == 3
    assert evaluate("round_half_up(1.005, 2)", {}) == 1.01
    with pytest.raises(ExpressionError, match="is not a number"):
        evaluate("money('abc')", {})


def test_large_but_legitimate_data_is_fine():
    """The size guards leave room for real task data."""
    numbers = list(range(100_000))
    context = {"xs": numbers, "ys": list(numbers)}
    assert evaluate("xs == ys and sum(xs) > 0 and 99_999 in xs", context) is True
    execute("total = sum(xs)\nfirst = xs[:3]", context)
    assert context["total"] == sum(numbers)
    assert context["first"] == [0, 1, 2]


def test_compiled_expressions_are_cached():
    """The same text compiles once."""
    assert compile_expression("a + 1") is compile_expression("a + 1")


def test_check_accepts_good_code_and_refuses_bad():
    """`check` is a compile-only probe for bundle validation."""
    check("amount > 1", "eval")
    check("for i in range(3):\n    total = i", "exec")
    with pytest.raises(ExpressionError):
        check("import os", "exec")
    with pytest.raises(ExpressionError):
        check("total = 1", "eval")


def test_indented_scripts_and_padded_expressions_are_accepted():
    """Code copied from an indented XML element still runs."""
    context = {}
    execute("\n    a = 1\n    b = a + 1\n", context)
    assert context == {"a": 1, "b": 2}
    assert evaluate("  a > 0\n", context) is True
