"""The risk scorecard (智能风控模型): points per characteristic, a grade, and reasons with advice.

The operator `screening.scorecard` (registered in `engine.operators.screening`) takes
`scorecard` (a JSON file of the bundle, e.g. "scorecard.json") and `values` (characteristic name
→ value; also the context of the suggestion texts). Result:
`{"score": int, "grade": str, "reasons": [{"code", "characteristic", "label_zh", "label_en",
"points_lost", "suggestion_zh", "suggestion_en", "missing"}]}`.

The file, which analysts edit (keys starting with `_` are comments; any other unknown key is
refused, so a typo cannot silently change a bin)::

    {"base_points": 600,
     "reasons_shown": 3,                                  (optional, default 3)
     "characteristics": [
       {"name": "monthly_income", "label_zh": "月收入", "label_en": "monthly income",
        "missing_reason_code": "R00",                    (optional; default: the worst bin's)
        "missing_suggestion_zh": "...", "missing_suggestion_en": "...",         (optional)
        "bins": [
          {"min": 0, "max": 5000, "points": -40, "reason_code": "R01",
           "suggestion_zh": "补充收入证明", "suggestion_en": "add proof of income above {value}"},
          {"values": ["owner", "mortgage"], "points": 30, "reason_code": "R02"},
          {"points": 0, "reason_code": "R03"}]}],        (no bounds: "anything else", last)
     "grades": [{"min_score": 700, "grade": "A"}, {"min_score": 600, "grade": "B"},
                {"min_score": 0, "grade": "D"}]}

A characteristic scores the points of its first matching bin (`min` inclusive, `max` exclusive,
either may be left out); a missing value (absent, None, blank) scores its worst bin. The score
is `base_points` plus those points; the grade is the first whose `min_score` the score reaches,
highest first (below all of them: the lowest). The reasons are the `reasons_shown`
characteristics that lost most points against their best bin (ties in file order). Suggestions
are texts with `{name}` fields taken from `values`, plus `{value}` (this characteristic's
value), `{label}` and `{points_lost}`; `{amount:,.0f}` formats a number; an unknown name stays
visible as written.

Decision: texts are filled by a small renderer that accepts plain names only, never `str.format`
on the whole text, whose `{x.__class__}` and `[...]` would let an analyst's text walk objects.
"""

from __future__ import annotations

import json
import re
from string import Formatter
from typing import Any

_TOP = {"base_points", "characteristics", "grades", "reasons_shown"}
_CHARACTERISTIC = {"name", "label_zh", "label_en", "bins", "missing_reason_code"}
_CHARACTERISTIC |= {"missing_suggestion_zh", "missing_suggestion_en"}
_BIN = {"min", "max", "values", "points", "reason_code", "suggestion_zh", "suggestion_en"}
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPEC = re.compile(r"[,_]?(\.\d)?[df%]?")
_MISSING_ZH = "缺少{label}信息，请补充"
_MISSING_EN = "no information on {label}: please provide it"


class ScorecardError(Exception):
    """The scorecard file is unusable, or a value fits none of its bins; says which and why."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- checking the file -------------------------------------------------------------------------


def check_file(text: str | bytes) -> list[str]:
    """Every problem of a scorecard file, in words an analyst can act on; [] if it is usable."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        return [f"the file is not valid JSON: {err}"]
    if not isinstance(data, dict):
        return ["the file should hold one JSON object with base_points, characteristics, grades"]
    problems = _unknown("the file", data, _TOP)
    problems += _typed("the file", data, "base_points", _whole, "a whole number")
    if "reasons_shown" in data and not (
        _whole(data["reasons_shown"]) and data["reasons_shown"] >= 0
    ):
        problems.append("`reasons_shown` should be a whole number, 0 or more")
    problems += _check_list(data, "characteristics", _check_characteristic)
    names = [c.get("name") for c in data.get("characteristics") or [] if isinstance(c, dict)]
    problems += [f"the characteristic `{n}` is defined twice" for n in _twice(names)]
    problems += _check_list(data, "grades", _check_grade)
    scores = [g.get("min_score") for g in data.get("grades") or [] if isinstance(g, dict)]
    problems += [f"two grades have the min_score {s}" for s in _twice(scores)]
    return problems


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _twice(items: list) -> list:
    return [x for i, x in enumerate(items) if x is not None and x in items[:i]]


def _unknown(where: str, obj: dict, allowed: set[str]) -> list[str]:
    return [
        f"{where}: unknown key `{key}` (allowed: {', '.join(sorted(allowed))})"
        for key in obj
        if key not in allowed and not str(key).startswith("_")
    ]


def _typed(where: str, obj: dict, key: str, test, what: str, optional: bool = False) -> list[str]:
    if key not in obj:
        return [] if optional else [f"{where}: `{key}` is missing"]
    return [] if test(obj[key]) else [f"{where}: `{key}` should be {what}, not {obj[key]!r}"]


def _check_list(data: dict, key: str, check_one) -> list[str]:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        return [f"`{key}` should be a non-empty list"]
    problems = []
    for number, item in enumerate(items, start=1):
        where = f"{key[:-1]} {number}"
        if not isinstance(item, dict):
            problems.append(f"{where} should be an object")
        else:
            problems += check_one(
                f"{where} ({item['name']})" if _text(item.get("name")) else where, item
            )
    return problems


def _check_grade(where: str, grade: dict) -> list[str]:
    problems = _unknown(where, grade, {"min_score", "grade"})
    problems += _typed(where, grade, "min_score", _number, "a number")
    return problems + _typed(where, grade, "grade", _text, "a non-empty text")


def _check_characteristic(where: str, item: dict) -> list[str]:
    problems = _unknown(where, item, _CHARACTERISTIC)
    for key in ("name", "label_zh", "label_en"):
        problems += _typed(where, item, key, _text, "a non-empty text")
    problems += _typed(where, item, "missing_reason_code", _text, "a non-empty text", True)
    for key in ("missing_suggestion_zh", "missing_suggestion_en"):
        problems += _typed(where, item, key, str, "a text", True) or _template(where, item, key)
    problems += [f"{where}, {p}" for p in _check_list(item, "bins", _check_bin)]
    bins = item.get("bins") if isinstance(item.get("bins"), list) else []
    catch_all = [
        number
        for number, b in enumerate(bins, start=1)
        if isinstance(b, dict) and not {"min", "max", "values"} & set(b)
    ]
    if catch_all and catch_all[0] < len(bins):
        problems.append(f"{where}: bin {catch_all[0]} has no bounds, so the later bins never match")
    return problems


def _check_bin(where: str, item: dict) -> list[str]:
    problems = _unknown(where, item, _BIN)
    problems += _typed(where, item, "points", _whole, "a whole number")
    problems += _typed(where, item, "reason_code", _text, "a non-empty text")
    for key in ("suggestion_zh", "suggestion_en"):
        problems += _typed(where, item, key, str, "a text", True) or _template(where, item, key)
    for key in ("min", "max"):
        problems += _typed(where, item, key, _number, "a number", True)
    if _number(item.get("min")) and _number(item.get("max")) and item["min"] >= item["max"]:
        problems.append(f"{where}: `min` {item['min']} should be below `max` {item['max']}")
    if "values" in item:
        if {"min", "max"} & set(item):
            problems.append(f"{where}: give either `values` or `min`/`max`, not both")
        values = item["values"]
        if (
            not isinstance(values, list)
            or not values
            or any(isinstance(v, dict | list) for v in values)
        ):
            problems.append(f"{where}: `values` should be a non-empty list of texts or numbers")
    return problems


def _template(where: str, item: dict, key: str) -> list[str]:
    try:
        fields = [
            (f, spec, conv)
            for _, f, spec, conv in Formatter().parse(item.get(key, ""))
            if f is not None
        ]
    except ValueError as err:
        return [f"{where}: `{key}` has a stray brace ({err}); write {{{{ or }}}} for a brace"]
    return [
        f"{where}: `{key}` field {{{field}{':' + spec if spec else ''}}} should be a plain name "
        "with at most a number format such as {amount:,.0f}"
        for field, spec, conversion in fields
        if not _FIELD.fullmatch(field) or conversion or not _SPEC.fullmatch(spec or "")
    ]


# --- scoring ---------------------------------------------------------------------------------


def load(text: str | bytes, file: str = "scorecard.json") -> dict[str, Any]:
    """The checked scorecard in `text`; ScorecardError naming `file` and every problem if not."""
    problems = check_file(text)
    if problems:
        raise ScorecardError(f"{file}: " + "; ".join(problems))
    return json.loads(text)


def evaluate(card: dict[str, Any], values: dict[str, Any], file: str = "scorecard.json") -> dict:
    """Score, grade and the main reasons for `values`; ScorecardError if a value fits no bin."""
    score, losses = card["base_points"], []
    for position, item in enumerate(card["characteristics"]):
        value = values.get(item["name"])
        chosen = _missing_bin(item) if _blank(value) else _matching(file, item, value)
        score += chosen["points"]
        lost = max(b["points"] for b in item["bins"]) - chosen["points"]
        if lost > 0:
            losses.append((-lost, position, item, chosen, value))
    losses.sort(key=lambda loss: loss[:2])
    reasons = [
        _reason(item, chosen, -negative, value, values)
        for negative, _, item, chosen, value in losses[: card.get("reasons_shown", 3)]
    ]
    return {"score": score, "grade": _grade(card["grades"], score), "reasons": reasons}


def _matches(bin_: dict[str, Any], value: Any) -> bool:
    if "values" in bin_:
        return any(_same(value, v) for v in bin_["values"])
    low, high = bin_.get("min"), bin_.get("max")
    if low is None and high is None:
        return True
    return _number(value) and (low is None or value >= low) and (high is None or value < high)


def _matching(file: str, item: dict[str, Any], value: Any) -> dict[str, Any]:
    for bin_ in item["bins"]:
        if _matches(bin_, value):
            return bin_
    raise ScorecardError(
        f"{file}: {item['name']} = {value!r} fits none of its bins; "
        "add a last bin without bounds to catch every other value"
    )


def _missing_bin(item: dict[str, Any]) -> dict[str, Any]:
    worst = min(item["bins"], key=lambda b: b["points"])
    return {
        "points": worst["points"],
        "reason_code": item.get("missing_reason_code", worst["reason_code"]),
        "suggestion_zh": item.get("missing_suggestion_zh", _MISSING_ZH),
        "suggestion_en": item.get("missing_suggestion_en", _MISSING_EN),
        "missing": True,
    }


def _grade(grades: list[dict[str, Any]], score: int) -> str:
    ordered = sorted(grades, key=lambda g: g["min_score"], reverse=True)
    reached = [g["grade"] for g in ordered if score >= g["min_score"]]
    return reached[0] if reached else ordered[-1]["grade"]


def _reason(item: dict, chosen: dict, lost: int, value: Any, values: dict) -> dict[str, Any]:
    context = {**values, "value": value, "points_lost": lost}
    texts = {
        f"suggestion_{lang}": render(
            chosen.get(f"suggestion_{lang}", ""), {**context, "label": item[f"label_{lang}"]}
        )
        for lang in ("zh", "en")
    }
    return {
        "code": chosen["reason_code"],
        "characteristic": item["name"],
        "label_zh": item["label_zh"],
        "label_en": item["label_en"],
        "points_lost": lost,
        **texts,
        "missing": chosen.get("missing", False),
    }


def render(template: str, context: dict[str, Any]) -> str:
    """`template` with each `{name}` filled from `context`; unknown or empty names stay visible."""
    out = []
    for literal, field, spec, _ in Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        value = context.get(field)
        if value is None:
            out.append("{" + field + (":" + spec if spec else "") + "}")
            continue
        try:
            out.append(format(value, spec or ""))
        except (TypeError, ValueError):
            out.append(str(value))  # a number format on a text: the text as it is
    return "".join(out)
