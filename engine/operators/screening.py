"""The automatic pre-check's operators: `screening.precheck` and `screening.scorecard`.

`screening.scorecard` scores an application with the bundle's scorecard file; the file format
and the scoring are described in `engine.scorecard`. (`screening.credit_bureau` has its own
module, `engine.operators.credit_bureau`.)

`screening.precheck` tells what can be known before anyone reads the form.

Parameters: `record` (the application form data), `required` (field names that must not be
blank), `id_number`, `uscc`, `mobile` (each a text or None; None or blank is not checked).
Result: `{"missing": [field], "invalid": [{"field", "reason"}], "age": int | None,
"blacklisted": bool, "blacklist_reasons": [text], "duplicate_of": reference | "#<id>" | None,
"complete": bool}`. `invalid` names the parameter (`id_number`, `uscc`, `mobile`) and says why in
words a person can act on; `age` is in completed years on today's date in China; `duplicate_of`
is another open application (running, waiting or in error) of the same type by the same person.

Decision: the operator reports, it never decides. Whether a blacklisted, under-age or duplicate
application is declined, returned or reviewed is for the bundle's DMN tables, so this result
carries facts only. Blacklist and duplicate lookups share one short read-only transaction,
never the instance's, and only valid, normalised numbers are looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.orm import Session

from engine import clock, scorecard
from engine.identifiers import (
    CHINA,
    age_on,
    mobile_problem,
    normalise_mobile,
    normalise_resident_id,
    normalise_uscc,
    resident_id_problem,
    uscc_problem,
)
from engine.models import BlacklistEntry, ProcessInstance
from engine.operators import CallInfo, OperatorFailed, operator

#: Instance statuses of an application still in progress.
OPEN_STATUSES = ("running", "waiting", "error")

#: parameter → (check, normalise, blacklist kind)
_IDENTIFIERS: dict[str, tuple[Callable[[str], str | None], Callable[[str], str], str]] = {
    "id_number": (resident_id_problem, normalise_resident_id, "id_number"),
    "uscc": (uscc_problem, normalise_uscc, "uscc"),
    "mobile": (mobile_problem, normalise_mobile, "phone"),
}
_KIND_WORDS = {"id_number": "resident ID", "uscc": "credit code", "phone": "phone"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


@operator("screening.precheck")
def precheck(params: dict[str, Any], call: CallInfo) -> dict[str, Any]:
    """Missing and malformed fields, age, blacklist hits and a duplicate open application."""
    record, required = params.get("record"), params.get("required")
    if not isinstance(record, dict) or not isinstance(required, list):
        raise OperatorFailed(
            "screening.precheck needs `record` (a dict) and `required` (a list)", retry=False
        )
    if call.session_factory is None:
        raise OperatorFailed("screening.precheck needs the database", retry=False)
    missing = [name for name in required if _blank(record.get(name))]
    invalid, lookups = _identifiers(params)
    with call.session_factory() as session, session.begin():
        _read_only(session)
        reasons = _blacklist_reasons(session, lookups)
        duplicate = _duplicate_of(session, call)
    return {
        "missing": missing,
        "invalid": invalid,
        "age": _age(lookups.get("id_number")),
        "blacklisted": bool(reasons),
        "blacklist_reasons": reasons,
        "duplicate_of": duplicate,
        "complete": not missing and not invalid,
    }


def _identifiers(params: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The problems of the given identifiers, and the valid ones normalised, by blacklist kind."""
    invalid, valid = [], {}
    for field, (problem_of, normalise, kind) in _IDENTIFIERS.items():
        value = params.get(field)
        if _blank(value):
            continue
        if not isinstance(value, str):
            invalid.append({"field": field, "reason": "should be written as text"})
        elif problem := problem_of(value.strip()):
            invalid.append({"field": field, "reason": problem})
        else:
            valid[kind] = normalise(value.strip())
    return invalid, valid


def _age(id_number: str | None) -> int | None:
    if id_number is None:
        return None
    return age_on(id_number, clock.now().astimezone(CHINA).date())


def _read_only(session: Session) -> None:
    # PostgreSQL can enforce it; SQLite's transaction only reads anyway and holds no write lock.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TRANSACTION READ ONLY"))


def _blacklist_reasons(session: Session, lookups: dict[str, str]) -> list[str]:
    if not lookups:
        return []
    pairs = list(lookups.items())
    query = (
        select(BlacklistEntry.kind, BlacklistEntry.reason)
        .where(tuple_(BlacklistEntry.kind, BlacklistEntry.value).in_(pairs))
        .order_by(BlacklistEntry.id)
    )
    return [
        f"{_KIND_WORDS.get(kind, kind)} blacklisted: {reason or 'no reason recorded'}"
        for kind, reason in session.execute(query)
    ]


def _duplicate_of(session: Session, call: CallInfo) -> str | None:
    if not call.started_by or not call.bundle_key:
        return None
    query = (
        select(ProcessInstance.id, ProcessInstance.reference)
        .where(ProcessInstance.bundle_key == call.bundle_key)
        .where(ProcessInstance.started_by == call.started_by)
        .where(ProcessInstance.status.in_(OPEN_STATUSES))
        .where(ProcessInstance.id != call.instance_id)
        .order_by(ProcessInstance.id)
        .limit(1)
    )
    found = session.execute(query).first()
    if found is None:
        return None
    return found.reference or f"#{found.id}"


@operator("screening.scorecard")
def score(params: dict[str, Any], call: CallInfo) -> dict[str, Any]:
    """Score `values` with the bundle's scorecard file named by `scorecard`."""
    file, values = params.get("scorecard"), params.get("values")
    if not isinstance(file, str) or not isinstance(values, dict):
        message = "screening.scorecard needs `scorecard` (a file name) and `values` (a dict)"
        raise OperatorFailed(message, retry=False)
    text = call.data.get(file)
    if text is None:
        known = ", ".join(sorted(call.data)) or "none"
        message = f"the bundle has no data file `{file}` (it has: {known})"
        raise OperatorFailed(message, retry=False)
    try:
        return scorecard.evaluate(scorecard.load(text, file), values, file)
    except scorecard.ScorecardError as err:
        raise OperatorFailed(str(err), retry=False) from None
