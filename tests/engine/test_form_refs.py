"""Shared field types: a form's `$ref` to another file of the bundle works everywhere, and one
that leads nowhere is refused at deployment with the file and line."""

from __future__ import annotations

import json

import pytest

from engine import bundles, form_refs, forms
from engine.errors import FieldError, Invalid, ValidationFailed
from tests.factories import SAMPLE, deploy_folder, sample_copy

SHARED = {
    "$defs": {
        "name": {"type": "string", "title": "姓名 Name", "minLength": 2, "maxLength": 40},
        "amount": {"$ref": "money.json#/$defs/cny"},
    }
}
MONEY = {"$defs": {"cny": {"type": "number", "minimum": 1000, "title": "金额 Amount (CNY)"}}}


def bank_with_shared_types(root, name_ref: str = "../_shared/person.json#/$defs/name"):
    """The sample bundle whose form takes its name and amount fields from forms/_shared/."""
    sample_copy(root, "sample_approval.bpmn")
    shared = root / "forms" / "_shared"
    shared.mkdir(parents=True)
    (shared / "person.json").write_text(json.dumps(SHARED), encoding="utf-8")
    (shared / "money.json").write_text(json.dumps(MONEY), encoding="utf-8")
    form = root / "forms" / SAMPLE / "apply-schema.json"
    schema = json.loads(form.read_text(encoding="utf-8"))
    schema["properties"]["applicant_name"] = {"$ref": name_ref}
    schema["properties"]["amount"] = {"$ref": "../_shared/person.json#/$defs/amount"}
    form.write_text(json.dumps(schema, ensure_ascii=False, indent=2), encoding="utf-8")
    return root


def test_a_form_using_shared_types_validates_with_their_rules(session, settings, tmp_path):
    """The shared name and amount rules (reached through two files) apply to submissions."""
    deploy_folder(session, settings, bank_with_shared_types(tmp_path / "bank"))
    version = bundles.load_live(session, SAMPLE)
    schema = version.forms[f"forms/{SAMPLE}/apply-schema.json"]
    ok = {"applicant_name": "张三", "amount": 5000, "purpose": "travel"}
    assert forms.validate(schema, ok) == ok
    with pytest.raises(Invalid) as refused:
        forms.validate(schema, {**ok, "applicant_name": "张", "amount": 10})
    assert refused.value.errors == [
        FieldError("applicant_name", "must be at least 2 characters"),
        FieldError("amount", "must be at least 1000"),
    ]
    assert "money.json" not in json.dumps(json.loads(schema)["properties"])  # self-contained


def test_a_reference_to_a_missing_file_is_refused_with_its_line(session, settings, tmp_path):
    """The analyst reads which form, which line and which reference to fix."""
    root = bank_with_shared_types(tmp_path / "bank", "../_shared/people.json#/$defs/name")
    with pytest.raises(ValidationFailed) as refused:
        deploy_folder(session, settings, root)
    (problem,) = [p for p in refused.value.problems if "people.json" in p.message]
    assert problem.file == f"forms/{SAMPLE}/apply-schema.json"
    assert problem.line == 13  # the line of the reference in the file the analyst edits
    assert "forms/_shared/people.json, which is not in this bundle" in problem.message


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("../_shared/person.json#/$defs/nope", "which that file does not have"),
        ("https://example.com/x.json", "points outside the bundle"),
        ("file:///etc/passwd", "points outside the bundle"),
    ],
)
def test_references_that_lead_nowhere_or_outside_are_refused(ref, reason):
    """No reference is fetched from a URL or the server's files."""
    docs = {"forms/k/a-schema.json": {"properties": {"x": {"$ref": ref}}}}
    docs["forms/_shared/person.json"] = SHARED
    assert reason in form_refs.check("forms/k/a-schema.json", docs)


def test_references_that_cycle_between_files_end():
    """Two files referring to each other are copied once each."""
    docs = {
        "forms/k/a-schema.json": {"properties": {"x": {"$ref": "b.json#/$defs/x"}}},
        "forms/k/b.json": {"$defs": {"x": {"items": {"$ref": "c.json"}}}},
        "forms/k/c.json": {"$defs": {"y": {"$ref": "b.json#/$defs/x"}}},
    }
    schema = form_refs.self_contained("forms/k/a-schema.json", docs)
    assert sorted(schema["$defs"]) == ["_file:forms__k__b.json", "_file:forms__k__c.json"]
