"""JUEL, Camunda's expression language, is translated at deploy time into the sandbox's language.

Each case is translated, then evaluated by `engine.expressions` as a diagram's condition would be:
what JUEL means is what runs, and nothing of it ever reaches Python's eval.
"""

from __future__ import annotations

import pytest

from engine import expressions, juel

DATA = {
    "amount": 1500,
    "approved": False,
    "name": "张三",
    "applicant": {"age": 34, "address": {"city": "北京"}},
    "tags": ["vip", "new"],
    "note": "",
    "missing": None,
    "initiator": "alice",
}

TRANSLATED = [
    ("${amount > 1000}", "amount > 1000", True),
    ("#{approved}", "approved", False),
    ("${!approved}", "not approved", True),
    ("${not approved}", "not approved", True),
    ("${amount > 1000 && !approved}", "(amount > 1000) and (not approved)", True),
    ("${amount < 1000 || approved}", "(amount < 1000) or approved", False),
    ("${amount gt 1000 and approved eq false}", "(amount > 1000) and (approved == False)", True),
    ("${amount lt 10 or amount ge 1500}", "(amount < 10) or (amount >= 1500)", True),
    ("${amount le 1500}", "amount <= 1500", True),
    ("${name == 'Bob'}", "name == 'Bob'", False),
    ('${name ne "Bob"}', "name != 'Bob'", True),
    ("${applicant.age >= 18}", "applicant['age'] >= 18", True),
    ("${applicant.address.city}", "applicant['address']['city']", "北京"),
    ("${tags[0]}", "tags[0]", "vip"),
    ("${empty note}", "note in (None, '', [], {})", True),
    ("${!empty tags}", "not (tags in (None, '', [], {}))", True),
    ("${missing == null}", "missing == None", True),
    ("${amount mod 7 == 2}", "(amount % 7) == 2", True),
    ("${amount div 2 + 0.5}", "(amount / 2) + 0.5", 750.5),
    ("${-amount < 0}", "(-amount) < 0", True),
    ("${amount > 1000 ? 'large' : 'small'}", "'large' if (amount > 1000) else 'small'", "large"),
    ("${initiator}", "initiator", "alice"),
    ("  ${ amount  }  ", "amount", 1500),
    ("${'it\\'s'}", '"it\'s"', "it's"),
]


@pytest.mark.parametrize(("text", "python", "value"), TRANSLATED)
def test_the_juel_people_write_means_the_same_in_the_sandbox(text, python, value):
    """Operators, words, literals and property access translate and evaluate as in Camunda."""
    assert juel.expression(text) == python
    assert expressions.evaluate(python, DATA) == value


def test_text_with_expressions_becomes_one_text_value():
    """A value mixing text and `${...}` (an assignee, a message) is joined as Camunda does."""
    assert juel.value("Dear ${name}, ${amount} received") == (
        "'Dear ' + str(name) + ', ' + str(amount) + ' received'"
    )
    assert expressions.evaluate(juel.value("Dear ${name}!"), DATA) == "Dear 张三!"
    assert juel.value("credit_reviewer") == "'credit_reviewer'"
    assert juel.value("${applicant.age}") == "applicant['age']"


REFUSED = [
    ("${execution.getVariable('x')}", "`execution` is Camunda's Java object"),
    ("${task.assignee}", "`task` is Camunda's Java object"),
    ("${applicant.getAge()}", "calling methods (`.getAge()`) is not supported"),
    ("${dateTime().plusDays(2)}", "calling methods or functions is not supported"),
    ("${fn:contains(name, 'x')}", "functions (`fn:contains`) are not supported"),
    ("${class == 1}", "the variable name `class` cannot be used"),
    ("${a$b}", "the variable name `a$b` cannot be used"),
    ("${amount >}", "the expression ends too early"),
    ("${amount", "a `${` is never closed with `}`"),
    ("${}", "the expression is empty"),
    ("${a ~ b}", "`~ b` is not understood"),
    ("amount > 1000 ${x}", "write exactly one `${...}` expression here"),
    ("${(amount > 1}", "the expression ends too early"),
    ("${max(1, 2)}", "calling methods or functions is not supported"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_what_is_not_in_the_subset_is_refused_with_the_offending_text(text, reason):
    """Java objects, method calls, functions and broken text are named, never guessed at."""
    with pytest.raises(juel.JuelError) as refused:
        juel.expression(text)
    assert refused.value.reason.startswith(reason), refused.value.reason
    assert str(refused.value).startswith(f"`{text.strip()}`: ")


@pytest.mark.parametrize(
    "text",
    [
        "${''.__class__.__mro__}",
        "${x.__globals__}",
        "${__import__}",
        "${applicant['__class__']}",
    ],
)
def test_escape_attempts_through_juel_never_run(text):
    """Dunder names are refused by the translator or by the sandbox's whitelist."""
    try:
        python = juel.expression(text)
    except juel.JuelError:
        return
    with pytest.raises(expressions.ExpressionError):
        expressions.evaluate(python, {"x": 1, "applicant": {}})
