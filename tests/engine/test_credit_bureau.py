"""The credit bureau is asked over real HTTP; when it stays down the application goes on flagged."""

from __future__ import annotations

import dataclasses
import socket
import time
from datetime import timedelta

import pytest

from engine import clock, runtime, service_calls
from engine.config import Settings
from engine.operators import CallInfo, OperatorFailed
from engine.operators.credit_bureau import credit_bureau
from tests.factories import APPLICANT, calls_of, deploy_scenario, engine_data, instance

ID_NUMBER = "110105199003071239"
USCC = "91350100M000100Y43"
REPORT = {"score": 712, "overdue_accounts": 1, "total_debt": 125000.5, "monthly_debt_payment": 3200}
UNAVAILABLE = {
    "available": False,
    "score": None,
    "overdue_accounts": None,
    "total_debt": None,
    "monthly_debt_payment": None,
}


def unused_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def query(url: str, attempt: int = 1, timeout: float = 2.0, **params) -> dict:
    """Run the operator as the worker's `attempt`-th try would."""
    settings = Settings(credit_bureau_url=url, http_timeout=timeout)
    call = CallInfo(1, 1, "Task_bureau", attempt, settings)
    return credit_bureau({"id_number": ID_NUMBER, "name": "张三", **params}, call)


def test_the_bureau_gets_the_applicants_id_and_name_and_its_report_is_returned(http_stub):
    """One JSON POST with the normalised ID; the four figures come back as the bureau sent them."""
    http_stub.respond = lambda request: (200, {**REPORT, "report_id": "R-1"})
    result = query(http_stub.url + "/v1/report", id_number=ID_NUMBER, name=" 张三 ")
    (request,) = http_stub.requests
    assert (request.method, request.path) == ("POST", "/v1/report")
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {"id_type": "resident_id", "id": ID_NUMBER, "name": "张三"}
    assert result == {"available": True, **REPORT, "message": ""}


def test_an_enterprise_is_queried_by_its_credit_code(http_stub):
    """With a `uscc` the bureau is asked about the enterprise, in upper case."""
    http_stub.respond = lambda request: (200, REPORT)
    query(http_stub.url, uscc=USCC.lower(), id_number=None, name="福州某某有限公司")
    assert http_stub.requests[0].json == {"id_type": "uscc", "id": USCC, "name": "福州某某有限公司"}


def slow(request):
    time.sleep(1.0)
    return 200, REPORT


def answer(status: int, body):
    return lambda stub: (stub.url, lambda request: (status, body))


DOWN = [
    ("503", answer(503, {"message": "maintenance"}), "HTTP 503"),
    ("closed port", lambda stub: (f"http://127.0.0.1:{unused_port()}", None), "could not connect"),
    ("timeout", lambda stub: (stub.url, slow), "no answer within 0.2 s"),
    ("rate limited", answer(429, {"message": "slow down"}), "HTTP 429"),
    (
        "no address",
        lambda stub: ("", None),
        "no bureau address is configured (APPROVAL_CREDIT_BUREAU_URL)",
    ),
    (
        "score out of range",
        answer(200, {**REPORT, "score": 9999}),
        "malformed answer: `score` 9999 is out of range",
    ),
    (
        "figure missing",
        answer(200, {"score": 700}),
        "malformed answer: `overdue_accounts` is missing",
    ),
    ("not an object", answer(200, ["score", 700]), "malformed answer: not a JSON object"),
]


@pytest.mark.parametrize(("setup", "reason"), [d[1:] for d in DOWN], ids=[d[0] for d in DOWN])
def test_a_bureau_that_is_down_is_retried_then_reported_unavailable(http_stub, setup, reason):
    """Attempts 1 and 2 ask for a retry; the 3rd succeeds with `available: False` and the reason."""
    url, respond = setup(http_stub)
    if respond:
        http_stub.respond = respond
    for attempt in (1, 2):
        with pytest.raises(OperatorFailed) as failed:
            query(url, attempt, timeout=0.2)
        assert failed.value.retry is True
        assert str(failed.value) == f"credit bureau unavailable: {reason}"
    result = query(url, 3, timeout=0.2)
    assert result == {**UNAVAILABLE, "message": f"bureau unavailable: {reason}"}


def test_a_refused_query_fails_at_once_with_the_bureaus_message(http_stub):
    """A 400 will not get better by asking again: no retry, and the bureau's words are kept."""
    http_stub.respond = lambda request: (400, {"message": "id and name do not match"})
    with pytest.raises(OperatorFailed) as failed:
        query(http_stub.url)
    assert failed.value.retry is False
    assert str(failed.value) == (
        "the credit bureau refused the query (HTTP 400): id and name do not match"
    )
    assert len(http_stub.requests) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": ""}, "needs the `name` to query"),
        ({"id_number": None}, "needs `id_number` (a person) or `uscc` (an enterprise)"),
        ({"id_number": ID_NUMBER[:17] + "0"}, "the check digit should be 9"),
        ({"uscc": "91350100M000100Y4I"}, "character 18 (I) is not allowed"),
    ],
    ids=["no name", "no number", "wrong check digit", "letter not allowed"],
)
def test_a_query_without_a_valid_subject_fails_without_calling_the_bureau(
    http_stub, params, message
):
    """Nothing is sent when the diagram passes no name or a malformed number."""
    with pytest.raises(OperatorFailed) as failed:
        query(http_stub.url, **params)
    assert failed.value.retry is False
    assert message in str(failed.value)
    assert http_stub.requests == []


APPLICATION = {
    "name": "张三",
    "id_number": ID_NUMBER,
    "mobile": "13800138000",
    "monthly_income": 20000,
    "debt_to_income": 0.2,
    "housing": "owner",
    "years_employed": 5,
    "max_amount": 240000,
}


def screen(session_factory, settings) -> int:
    """Deploy the screening scenario, apply, and let the worker run every call, backing off."""
    with session_factory.begin() as session:
        deploy_scenario(session, settings, "screening_scenario")
    with session_factory.begin() as session:
        instance_id = runtime.start(
            session, settings, "screening_scenario", APPLICATION, APPLICANT
        ).id
    for _ in range(6):
        service_calls.run_due(session_factory, settings)
        clock.travel(timedelta(minutes=1))
    return instance_id


def test_a_bureau_that_stays_down_sends_the_application_on_flagged(session_factory, settings):
    """Three tries, then the pre-check finishes: no error, credit score marked as missing."""
    settings = dataclasses.replace(settings, credit_bureau_url=f"http://127.0.0.1:{unused_port()}")
    instance_id = screen(session_factory, settings)
    assert instance(session_factory, instance_id).status == "completed"
    bureau = [c for c in calls_of(session_factory, instance_id) if c.element_id == "Task_bureau"]
    assert [(c.status, c.attempts) for c in bureau] == [("done", 3)]
    data = engine_data(session_factory, settings, instance_id)
    assert data["bureau"] == {**UNAVAILABLE, "message": "bureau unavailable: could not connect"}
    assert data["precheck"]["complete"] is True
    first = data["scored"]["reasons"][0]
    assert (first["code"], first["missing"], data["scored"]["grade"]) == ("C00", True, "B")


def test_a_bureau_report_feeds_the_scorecard(session_factory, settings, http_stub):
    """With the bureau up, its score is used at once and a strong applicant gets grade A."""
    http_stub.respond = lambda request: (200, {**REPORT, "score": 790})
    settings = dataclasses.replace(settings, credit_bureau_url=http_stub.url)
    instance_id = screen(session_factory, settings)
    assert instance(session_factory, instance_id).status == "completed"
    data = engine_data(session_factory, settings, instance_id)
    assert (data["bureau"]["available"], data["bureau"]["score"]) == (True, 790)
    assert (data["scored"]["score"], data["scored"]["grade"]) == (750, "A")
    assert data["scored"]["reasons"] == []
    assert len(http_stub.requests) == 1
