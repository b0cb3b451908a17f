"""What a person may submit for a task: exactly the form's fields, valid, or nothing is stored."""

from __future__ import annotations

import json

import pytest

from engine import forms, runtime
from engine.errors import FieldError, Invalid
from tests.factories import (
    APPLICANT,
    REPO,
    application,
    deploy_sample,
    events,
    human_tasks,
    instance,
    open_task,
)

APPLY_FORM = (REPO / "forms" / "sample_approval" / "apply-schema.json").read_text(encoding="utf-8")
# A form that forgets `additionalProperties: false`: extra fields must still be refused.
LOOSE_FORM = json.dumps({"type": "object", "properties": {"note": {"type": "string"}}})


def refused(schema: str | None, data) -> list[FieldError]:
    with pytest.raises(Invalid) as caught:
        forms.validate(schema, data)
    return caught.value.errors


def test_a_valid_application_is_accepted_as_submitted():
    """Data that fits the form comes back unchanged."""
    assert forms.validate(APPLY_FORM, application()) == application()


def test_every_invalid_field_is_listed_with_its_reason():
    """One submission, every problem: wrong type, too short, out of range, not a choice, missing."""
    assert refused(APPLY_FORM, {"applicant_name": "张", "amount": 10, "purpose": "gambling"}) == [
        FieldError("applicant_name", "must be at least 2 characters"),
        FieldError("amount", "must be at least 1000"),
        FieldError("purpose", "must be one of consumption, education, renovation, travel"),
    ]
    assert refused(APPLY_FORM, {"purpose": "travel", "amount": "lots"}) == [
        FieldError("applicant_name", "is required"),
        FieldError("amount", "must be a number"),
    ]


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_that_is_not_finite_is_refused_with_one_plain_reason(number):
    """NaN slips past every bound and ±Infinity is no amount: the field is named, once."""
    assert refused(APPLY_FORM, application(amount=number)) == [
        FieldError("amount", "must be a finite number")
    ]


def test_a_number_that_is_not_finite_is_found_inside_lists_and_groups():
    """Nested values are walked too, and named by their path."""
    schema = json.dumps(
        {
            "type": "object",
            "properties": {
                "rows": {"type": "array", "items": {"type": "object"}},
                "group": {"type": "object"},
            },
        }
    )
    data = {"rows": [{"v": 1.5}, {"v": float("nan")}], "group": {"x": {"y": float("inf")}}}
    assert refused(schema, data) == [
        FieldError("rows/1/v", "must be a finite number"),
        FieldError("group/x/y", "must be a finite number"),
    ]
    assert forms.validate(schema, {"rows": [{"v": 1.5}], "group": {"x": 0}})


@pytest.mark.parametrize("schema", [APPLY_FORM, LOOSE_FORM], ids=["strict", "loose"])
def test_a_field_the_form_does_not_offer_is_refused(schema):
    """Extra fields (such as one deciding the approval level) never reach the process data."""
    data = application() if schema == APPLY_FORM else {"note": "hi"}
    assert refused(schema, {**data, "levels": 1}) == [
        FieldError("levels", "this form has no such field")
    ]


def test_a_task_without_a_form_accepts_no_data():
    """Nothing may be written through a task that shows no form."""
    assert forms.validate(None, {}) == {}
    assert refused(None, {"levels": 1}) == [
        FieldError("levels", "this task has no form; no data may be submitted")
    ]


@pytest.mark.parametrize("data", [None, [], "text", 3], ids=repr)
def test_data_that_is_not_an_object_is_refused(data):
    """A submission is an object of fields, whatever the form."""
    assert refused(APPLY_FORM, data) == [
        FieldError("(form)", "the submitted data must be an object of fields")
    ]


def test_the_refusal_message_names_each_field():
    """The error's text, as a log or an API shows it, lists field: reason pairs."""
    with pytest.raises(Invalid) as caught:
        forms.validate(APPLY_FORM, {**application(amount=1), "levels": 1})
    assert str(caught.value) == (
        "the submitted data is invalid: amount: must be at least 1000; "
        "levels: this form has no such field"
    )


@pytest.mark.parametrize(
    "data",
    [application(amount=10), {**application(), "levels": 1}, application(amount=float("nan"))],
    ids=["invalid", "extra field", "NaN"],
)
def test_a_refused_submission_stores_nothing(session_factory, settings, data):
    """The instance, its state and its task are exactly as before; the task is still open."""
    with session_factory.begin() as session:
        deploy_sample(session, settings)
        instance_id = runtime.start(session, settings, "sample_approval", {}, APPLICANT).id
    before = instance(session_factory, instance_id)
    task = open_task(session_factory, APPLICANT, "Task_apply")

    with session_factory.begin() as session, pytest.raises(Invalid):
        runtime.complete_task(session, settings, task.id, APPLICANT, data)

    after = instance(session_factory, instance_id)
    assert (after.state, after.lock_version, after.status) == (
        before.state,
        before.lock_version,
        "waiting",
    )
    (row,) = human_tasks(session_factory, instance_id)
    assert (row.state, row.submitted, row.completed_by) == ("ready", None, None)
    assert events(session_factory, instance_id) == [("start", "alice")]
    with session_factory.begin() as session:  # and the same task still takes a valid form
        runtime.complete_task(session, settings, task.id, APPLICANT, application())
    assert human_tasks(session_factory, instance_id)[0].state == "completed"


def test_chinese_identifiers_are_checked_in_forms():
    """A form field with format cn-resident-id refuses a wrong check digit, naming the right one."""

    from engine.identifiers import resident_id_check_digit

    schema = json.dumps(
        {
            "type": "object",
            "properties": {"id_number": {"type": "string", "format": "cn-resident-id"}},
        }
    )
    body = "11010119900307123"
    good = body + resident_id_check_digit(body)
    bad = body + ("0" if good[-1] != "0" else "1")
    assert forms.validate(schema, {"id_number": good}) == {"id_number": good}
    with pytest.raises(Invalid) as refused:
        forms.validate(schema, {"id_number": bad})
    assert refused.value.errors[0].field == "id_number"
    assert "check digit should be" in refused.value.errors[0].message


def test_a_missing_required_document_is_named_by_the_forms_own_words():
    """`contains` rules speak with their title (须包含身份证 …), never a dump of the list."""
    form = (REPO / "forms" / "personal_loan" / "apply-schema.json").read_text()
    only_other = [
        {
            "kind": "other",
            "name": "a.pdf",
            "sha256": "0" * 64,
            "size": 10,
            "content_type": "application/pdf",
        }
    ]
    messages = [
        e.message
        for e in refused(form, {"documents": only_other, "consent": False})
        if e.field in ("documents", "consent")
    ]
    assert messages == [
        "needs at least 2 items",
        "须包含身份证 ID card Must include: id_card",
        "须包含收入证明 Proof of income Must include: income_proof",
        "must be accepted",
    ]
