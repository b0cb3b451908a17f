"""The automatic pre-check finds missing and wrong fields, age, blacklist hits and duplicates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine import clock
from engine.identifiers import resident_id_check_digit, uscc_check_char
from engine.models import BlacklistEntry, ProcessInstance
from engine.operators import CallInfo, OperatorFailed
from engine.operators.screening import precheck
from tests.factories import APPLICANT, OTHER_APPLICANT, SAMPLE, deploy_sample, start

#: 12:30 on 15 June 2031 in China, still the 14th in UTC.
NOW = datetime(2031, 6, 14, 16, 30, tzinfo=UTC)
USCC = "91350100M000100Y4" + uscc_check_char("91350100M000100Y4")


def resident_id(born: date, serial: str = "123") -> str:
    first17 = f"110105{born:%Y%m%d}{serial}"
    return first17 + resident_id_check_digit(first17)


ID_NUMBER = resident_id(date(1990, 3, 7))


@pytest.fixture(autouse=True)
def today():
    clock.travel(NOW - clock.now())


def check(session_factory, settings, instance_id: int = 0, started_by: str = "", **params):
    """Run the pre-check as the service task of `instance_id` would."""
    params = {"record": {}, "required": [], **params}
    call = CallInfo(
        1,
        instance_id,
        "Task_precheck",
        1,
        settings,
        bundle_key=SAMPLE,
        started_by=started_by,
        session_factory=session_factory,
    )
    return precheck(params, call)


def test_a_complete_and_valid_application_passes(session_factory, settings):
    """Nothing missing, nothing wrong: complete, with the age read from the ID."""
    record = {"name": "张三", "amount": 80000}
    result = check(
        session_factory,
        settings,
        record=record,
        required=["name", "amount"],
        id_number=ID_NUMBER,
        uscc=USCC,
        mobile="13800138000",
    )
    assert result == {
        "missing": [],
        "invalid": [],
        "age": 41,
        "blacklisted": False,
        "blacklist_reasons": [],
        "duplicate_of": None,
        "complete": True,
    }


def test_blank_and_absent_required_fields_are_listed_as_missing(session_factory, settings):
    """None, spaces, an empty list and a field never filled in all count as missing."""
    record = {"name": "张三", "amount": None, "purpose": "  ", "documents": []}
    required = ["name", "amount", "purpose", "documents", "mobile"]
    result = check(session_factory, settings, record=record, required=required)
    assert result["missing"] == ["amount", "purpose", "documents", "mobile"]
    assert result["complete"] is False


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id_number", ID_NUMBER[:17] + "0", f"the check digit should be {ID_NUMBER[17]}"),
        ("id_number", "11010519900230123X", "the birth date 19900230 is not a real date"),
        ("uscc", USCC[:17] + "0", f"the check character should be {USCC[17]}"),
        ("mobile", "12345678901", "a mobile number starts with 13 to 19"),
        ("mobile", 13800138000, "should be written as text"),
    ],
)
def test_a_wrong_identifier_is_reported_with_the_reason(
    session_factory, settings, field, value, reason
):
    """A bad check digit, date or prefix makes the application incomplete, saying what is wrong."""
    result = check(session_factory, settings, **{field: value})
    assert result["invalid"] == [{"field": field, "reason": reason}]
    assert result["complete"] is False
    assert result["age"] is None


@pytest.mark.parametrize(
    ("born", "age"),
    [(date(2001, 6, 15), 30), (date(2001, 6, 16), 29), (date(2013, 6, 14), 18)],
)
def test_age_is_counted_in_completed_years_on_todays_date_in_china(
    session_factory, settings, born, age
):
    """A birthday today (China time, though UTC is still on the day before) counts."""
    assert check(session_factory, settings, id_number=resident_id(born))["age"] == age


def blacklist(session_factory, *entries: tuple[str, str, str]) -> None:
    with session_factory.begin() as session:
        session.add_all(BlacklistEntry(kind=k, value=v, reason=r) for k, v, r in entries)


def test_a_blacklisted_id_phone_and_credit_code_are_found(session_factory, settings):
    """Numbers are normalised first: a lower-case x, +86 and dashes still match the list."""
    id_with_x = "11010519900307101X"
    blacklist(
        session_factory,
        ("id_number", id_with_x, "loan fraud 2024"),
        ("phone", "13800138000", ""),
        ("uscc", USCC, "shell company"),
    )
    result = check(
        session_factory,
        settings,
        id_number=id_with_x.lower(),
        mobile="+86 138-0013-8000",
        uscc=USCC.lower(),
    )
    assert result["blacklisted"] is True
    assert result["blacklist_reasons"] == [
        "resident ID blacklisted: loan fraud 2024",
        "phone blacklisted: no reason recorded",
        "credit code blacklisted: shell company",
    ]
    assert (result["invalid"], result["complete"]) == ([], True)


def test_a_number_listed_under_another_kind_is_not_a_hit(session_factory, settings):
    """A phone number on the list does not flag an ID or a code with the same characters."""
    blacklist(session_factory, ("phone", ID_NUMBER, "wrong kind"), ("id_number", "X", "other"))
    result = check(session_factory, settings, id_number=ID_NUMBER, mobile="13900139000")
    assert (result["blacklisted"], result["blacklist_reasons"]) == (False, [])


def applications(session_factory, settings, *owners_and_statuses) -> list[int]:
    """Start one sample application per (actor, status) and put it in that status."""
    with session_factory.begin() as session:
        deploy_sample(session, settings)
    ids = [start(session_factory, settings, SAMPLE, actor) for actor, _ in owners_and_statuses]
    with session_factory.begin() as session:
        for instance_id, (_, status) in zip(ids, owners_and_statuses, strict=True):
            session.get(ProcessInstance, instance_id).status = status
    return ids


@pytest.mark.parametrize("status", ["running", "waiting", "error"])
def test_an_open_application_of_the_same_type_by_the_same_person_is_a_duplicate(
    session_factory, settings, status
):
    """The earlier open application is named by its number, or by its id if it has none."""
    earlier, later = applications(
        session_factory, settings, (APPLICANT, status), (APPLICANT, "waiting")
    )
    with session_factory() as session:
        numbers = {i: session.get(ProcessInstance, i).reference for i in (earlier, later)}
    assert check(session_factory, settings, later, "alice")["duplicate_of"] == numbers[earlier]
    assert check(session_factory, settings, earlier, "alice")["duplicate_of"] == numbers[later]
    with session_factory.begin() as session:
        session.get(ProcessInstance, earlier).reference = None
    assert check(session_factory, settings, later, "alice")["duplicate_of"] == f"#{earlier}"


def test_closed_applications_and_other_peoples_are_not_duplicates(session_factory, settings):
    """Completed or cancelled ones, someone else's, or another type's never count."""
    *others, current = applications(
        session_factory,
        settings,
        (APPLICANT, "completed"),
        (APPLICANT, "cancelled"),
        (OTHER_APPLICANT, "waiting"),
        (APPLICANT, "waiting"),
        (APPLICANT, "waiting"),
    )
    with session_factory.begin() as session:
        session.get(ProcessInstance, others[3]).bundle_key = "credit_card"
    assert check(session_factory, settings, current, "alice")["duplicate_of"] is None


def test_the_precheck_refuses_parameters_of_the_wrong_shape(session_factory, settings):
    """A diagram passing no record fails for good, with a message naming the parameters."""
    with pytest.raises(OperatorFailed, match="needs `record` \\(a dict\\)") as failed:
        check(session_factory, settings, record="张三")
    assert failed.value.retry is False
