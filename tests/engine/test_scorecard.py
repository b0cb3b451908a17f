"""The scorecard scores, grades and explains applications from an analyst's JSON file."""

from __future__ import annotations

import json

import pytest

from engine import scorecard
from engine.config import Settings
from engine.operators import CallInfo, OperatorFailed
from engine.operators.screening import score
from tests.factories import DATA

CARD = (DATA / "screening_scenario/processes/screening_scenario/scorecard.json").read_text()
STRONG = {
    "monthly_income": 20000,
    "debt_to_income": 0.2,
    "credit_score": 800,
    "housing": "mortgage",
    "years_employed": 5,
}
WEAK = {
    "monthly_income": 3000,
    "debt_to_income": 0.6,
    "credit_score": 620,
    "housing": "rent",
    "years_employed": 0.5,
    "max_amount": 45000,
}


def run(values: dict, text: str = CARD, file: str = "scorecard.json") -> dict:
    call = CallInfo(1, 1, "Task_score", 1, Settings(), data={file: text})
    return score({"scorecard": file, "values": values}, call)


def edited(change) -> str:
    """The test scorecard with `change(card)` applied."""
    card = json.loads(CARD)
    change(card)
    return json.dumps(card, ensure_ascii=False)


def test_the_shipped_test_scorecard_has_no_problems():
    """check_file finds nothing wrong with a well-formed scorecard."""
    assert scorecard.check_file(CARD) == []


def test_a_strong_applicant_gets_grade_a_and_loses_few_points():
    """Best bins nearly everywhere: 740 points, grade A, only a small housing reason."""
    result = run(STRONG)
    assert (result["score"], result["grade"]) == (740, "A")
    assert [(r["code"], r["points_lost"]) for r in result["reasons"]] == [("H02", 10)]


def test_a_weak_applicant_gets_a_low_grade_and_the_three_biggest_reasons():
    """Reasons come biggest loss first, ties in file order, with both languages filled in."""
    result = run(WEAK)
    assert (result["score"], result["grade"]) == (420, "D")
    assert [(r["characteristic"], r["code"], r["points_lost"]) for r in result["reasons"]] == [
        ("credit_score", "C03", 100),
        ("monthly_income", "R01", 80),
        ("debt_to_income", "D03", 80),
    ]
    credit, income, debt = result["reasons"]
    assert (credit["label_zh"], credit["label_en"]) == ("征信评分", "credit score")
    assert income["suggestion_zh"] == "月收入 3,000 元偏低，请补充其他收入证明"
    assert income["suggestion_en"] == (
        "a monthly income of 3,000 yuan is low: add proof of other income"
    )
    assert debt["suggestion_zh"] == "将申请金额降至 45,000 元以内"
    assert debt["suggestion_en"] == "lower the requested amount to at most 45,000 yuan"
    assert not any(r["missing"] for r in result["reasons"])


def test_a_missing_value_scores_the_worst_bin_with_a_no_information_reason():
    """No credit report: 0 points for it and a reason that says the information is missing."""
    result = run({**STRONG, "credit_score": None})
    assert (result["score"], result["grade"]) == (640, "B")
    first = result["reasons"][0]
    assert (first["code"], first["points_lost"], first["missing"]) == ("C00", 100, True)
    assert first["suggestion_en"].startswith("no credit report was available")


def test_a_characteristic_left_out_gets_the_default_no_information_advice():
    """Without its own texts, a missing value's advice names the characteristic in each language."""
    result = run({k: v for k, v in STRONG.items() if k != "years_employed"})
    (reason,) = [r for r in result["reasons"] if r["characteristic"] == "years_employed"]
    assert (reason["code"], reason["points_lost"], reason["missing"]) == ("E01", 40, True)
    assert reason["suggestion_zh"] == "缺少工作年限信息，请补充"
    assert reason["suggestion_en"] == "no information on years employed: please provide it"


def test_a_score_below_every_grade_gets_the_lowest_grade():
    """Grades are read highest first; a score under all of them is still graded, never blank."""
    text = edited(lambda card: card.update(base_points=-1000))
    assert run(WEAK, text)["grade"] == "D"


def test_unknown_names_in_a_suggestion_stay_visible():
    """A field the bundle did not pass is shown as written, so the gap is seen, not hidden."""
    rendered = scorecard.render("at most {max_amount:,.0f} by {deadline}", {"max_amount": 4500})
    assert rendered == "at most 4,500 by {deadline}"


def test_a_value_that_fits_no_bin_fails_naming_the_characteristic():
    """A negative income matches no income bin: the call fails for good with what to fix."""
    with pytest.raises(OperatorFailed) as failed:
        run({**STRONG, "monthly_income": -5})
    assert failed.value.retry is False
    assert "scorecard.json: monthly_income = -5 fits none of its bins" in str(failed.value)


def test_a_missing_scorecard_file_is_named():
    """The operator says which file the bundle lacks."""
    with pytest.raises(OperatorFailed, match="no data file `risk.json`") as failed:
        call = CallInfo(1, 1, "Task_score", 1, Settings(), data={"scorecard.json": CARD})
        score({"scorecard": "risk.json", "values": STRONG}, call)
    assert failed.value.retry is False


def _bins(card: dict) -> list:
    return card["characteristics"][0]["bins"]


MALFORMED = [
    ("not json", lambda card: None, "the file is not valid JSON"),
    ("no base points", lambda card: card.pop("base_points"), "the file: `base_points` is missing"),
    (
        "typo in a bound",
        lambda card: _bins(card)[0].update(mx=_bins(card)[0].pop("max")),
        "characteristic 1 (monthly_income), bin 1: unknown key `mx`",
    ),
    (
        "bounds reversed",
        lambda card: _bins(card)[1].update(min=20000),
        "bin 2: `min` 20000 should be below `max` 15000",
    ),
    (
        "points as text",
        lambda card: _bins(card)[0].update(points="ten"),
        "bin 1: `points` should be a whole number, not 'ten'",
    ),
    (
        "catch-all first",
        lambda card: card["characteristics"][3]["bins"].reverse(),
        "characteristic 4 (housing): bin 1 has no bounds, so the later bins never match",
    ),
    (
        "values and bounds",
        lambda card: _bins(card)[0].update(values=["low"]),
        "give either `values` or `min`/`max`, not both",
    ),
    (
        "template walks objects",
        lambda card: _bins(card)[0].update(suggestion_en="{value.__class__}"),
        "`suggestion_en` field {value.__class__} should be a plain name",
    ),
    (
        "stray brace",
        lambda card: _bins(card)[0].update(suggestion_zh="收入 {value"),
        "`suggestion_zh` has a stray brace",
    ),
    (
        "twice the same characteristic",
        lambda card: card["characteristics"].append(card["characteristics"][0]),
        "the characteristic `monthly_income` is defined twice",
    ),
    ("no grades", lambda card: card.update(grades=[]), "`grades` should be a non-empty list"),
]


@pytest.mark.parametrize(
    ("change", "problem"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_scorecard_is_refused_naming_the_file_and_the_problem(change, problem):
    """check_file lists the problem, and the operator fails for good with the file's name."""
    text = "{not json" if problem.startswith("the file is not") else edited(change)
    assert any(problem in found for found in scorecard.check_file(text)), scorecard.check_file(text)
    with pytest.raises(OperatorFailed) as failed:
        run(STRONG, text)
    assert failed.value.retry is False
    assert str(failed.value).startswith("scorecard.json: ")
    assert problem in str(failed.value)
