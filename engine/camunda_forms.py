"""Camunda's forms as JSON Schema: `camunda:formKey` names a schema file, and generated forms
(`camunda:formData` with `camunda:formField`s) become one.

Decision: a generated form is converted at deploy time into the same JSON Schema our own forms
use, stored with the version under `GENERATED` beside the bundle's forms, so it is rendered and
validated exactly like a hand-written form. What a JSON Schema cannot say (a Java validator, a
custom field type) is refused with the field named.
"""

from __future__ import annotations

import keyword
from typing import Any

from lxml import etree

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
GENERATED = "{task}-generated-schema.json"
_PREFIXES = (
    "camunda-forms:deployment:",
    "camunda-forms:app:",
    "embedded:deployment:",
    "embedded:app:",
    "embedded:",
    "deployment:",
    "app:",
)
_TYPES = {
    "string": {"type": "string"},
    "long": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "enum": {"type": "string"},
}
# Camunda's built-in constraints → JSON Schema keywords, per field type family.
_NUMBER_RULES = {"min": "minimum", "max": "maximum"}
_TEXT_RULES = {"minlength": "minLength", "maxlength": "maxLength"}


class FormError(ValueError):
    """A Camunda form setting that cannot become a JSON Schema form; `element` is where."""

    def __init__(self, message: str, element: etree._Element):
        super().__init__(message)
        self.element = element


def _camunda(el: etree._Element, name: str) -> list[etree._Element]:
    return el.findall(f".//{{{CAMUNDA_NS}}}{name}")


def form_file(form_key: str) -> str:
    """The JSON Schema file a `camunda:formKey` names: `review`, `review-schema.json`,
    `embedded:app:forms/review.json` → the file in forms/<bundle>/. ValueError if it names
    another kind of form."""
    key = form_key.strip()
    if "${" in key or "#{" in key:
        raise ValueError("a form key must name a file, not an expression")
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    name = key.rsplit("/", 1)[-1]
    if name.endswith(".json"):
        return name
    if "." in name or not name:
        kind = name.rsplit(".", 1)[-1] if "." in name else "empty"
        raise ValueError(
            f"the form key `{form_key}` names a .{kind} form, which cannot be shown here; save "
            "the form as a JSON Schema in forms/<bundle>/ and give its name as the form key "
            "(`review` for review-schema.json)"
        )
    return f"{name}-schema.json"


def generated_file(task_id: str) -> str:
    return GENERATED.format(task=task_id)


def has_fields(task: etree._Element) -> bool:
    return bool(_camunda(task, "formField"))


def schema(task: etree._Element) -> dict[str, Any]:
    """The JSON Schema of a user task's generated form; FormError names the field at fault."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in _camunda(task, "formField"):
        name = field.get("id") or ""
        if not name.isidentifier() or keyword.iskeyword(name):
            raise FormError(f"the form field id `{name}` must be a plain variable name", field)
        properties[name], is_required = _field(field)
        if is_required:
            required.append(name)
    form: dict[str, Any] = {
        "title": task.get("name") or task.get("id"),
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        form["required"] = required
    return form


def _field(field: etree._Element) -> tuple[dict[str, Any], bool]:
    kind = field.get("type") or "string"
    if kind not in _TYPES:
        raise FormError(
            f"the form field `{field.get('id')}` has the type `{kind}`; use string, long, "
            "boolean, date or enum",
            field,
        )
    result = dict(_TYPES[kind])
    if field.get("label"):
        result["title"] = field.get("label")
    if kind == "enum":
        values = _camunda(field, "value")
        result["enum"] = [v.get("id") for v in values]
        result["enumNames"] = [v.get("name") or v.get("id") for v in values]
    default = field.get("defaultValue")
    if default is not None and "${" not in default:
        result["default"] = _typed(default, kind, field)
    return result, _constraints(field, kind, result)


def _typed(text: str, kind: str, field: etree._Element) -> Any:
    if kind == "long":
        try:
            return int(text)
        except ValueError:
            raise FormError(f"`{text}` is not a whole number ({field.get('id')})", field) from None
    if kind == "boolean":
        return text.strip().lower() == "true"
    return text


def _constraints(field: etree._Element, kind: str, result: dict[str, Any]) -> bool:
    """Apply `camunda:constraint`s to `result`; whether the field is required."""
    required = False
    for constraint in _camunda(field, "constraint"):
        name, config = constraint.get("name") or "", constraint.get("config")
        if name == "required":
            required = True
        elif name == "readonly":
            result["readOnly"] = True
        elif name in _NUMBER_RULES and kind == "long":
            result[_NUMBER_RULES[name]] = _typed(config or "", kind, field)
        elif name in _TEXT_RULES and kind in ("string", "date"):
            result[_TEXT_RULES[name]] = _typed(config or "", "long", field)
        else:
            raise FormError(
                f"the form field `{field.get('id')}` has the constraint `{name}`, which this "
                "engine cannot check (it knows required, readonly, min/max for long, "
                "minlength/maxlength for text)",
                constraint,
            )
    return required
