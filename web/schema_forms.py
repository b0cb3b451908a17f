"""HTML forms from the JSON Schema (+ uiSchema) of a task, and posted fields back to typed data.

Decision: the schema is the only definition of a form. This module only draws fields and turns
posted text into the types the schema names; whether the data is acceptable is decided by
`engine.forms.validate` (the same check the API gets), whose errors come back next to the
fields, in the reader's language (`web.engine_words`). Arrays of uploaded documents are drawn
by the applicant area, which owns uploads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from engine.errors import FieldError
from web.engine_words import words


@dataclass
class Field:
    name: str
    title: str
    #: text, textarea, integer, number, select, radio, checkbox, date, hidden, documents, json
    widget: str
    required: bool = False
    help: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    value: Any = None
    errors: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The value as an input shows it."""
        if self.value is None:
            return ""
        if self.widget == "json":
            return json.dumps(self.value, ensure_ascii=False)
        return str(self.value)


def resolve(schema: dict, node: dict) -> dict:
    """Follow local `$ref`s (`#/$defs/...`), the only kind a deployed form may use."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node


def _is_documents(prop: dict, schema: dict) -> bool:
    items = resolve(schema, prop.get("items", {})) if prop.get("type") == "array" else {}
    return "sha256" in items.get("properties", {})


def _widget(prop: dict, ui: dict, schema: dict) -> str:
    wanted = ui.get("ui:widget")
    kind = prop.get("type")
    if _is_documents(prop, schema):
        return "documents"
    if wanted in ("textarea", "radio", "hidden", "checkbox"):
        return wanted
    if "enum" in prop:
        return "select"
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return kind
    if kind == "string":
        return "date" if prop.get("format") == "date" else "text"
    return "json"  # objects and plain arrays: edited as JSON text, checked by the schema


def _options(prop: dict, ui: dict) -> list[tuple[str, str]]:
    values = prop.get("enum", [])
    names = ui.get("ui:enumNames") or []
    return [(str(v), str(names[i]) if i < len(names) else str(v)) for i, v in enumerate(values)]


def _attrs(prop: dict) -> dict[str, Any]:
    pairs = {
        "minimum": "min",
        "maximum": "max",
        "multipleOf": "step",
        "minLength": "minlength",
        "maxLength": "maxlength",
        "pattern": "pattern",
    }
    return {html: prop[key] for key, html in pairs.items() if key in prop}


def fields(
    schema: dict,
    uischema: dict | None = None,
    values: dict | None = None,
    errors: list[FieldError] | None = None,
) -> list[Field]:
    """The fields of `schema` in the uiSchema's order, filled with `values` and `errors`."""
    uischema, values = uischema or {}, values or {}
    props = schema.get("properties", {})
    order = [n for n in uischema.get("ui:order", []) if n in props]
    order += [n for n in props if n not in order]
    required = set(schema.get("required", []))
    result = []
    for name in order:
        prop = resolve(schema, props[name])
        ui = uischema.get(name, {})
        result.append(
            Field(
                name=name,
                title=str(prop.get("title", name)),
                widget=_widget(prop, ui, schema),
                required=name in required,
                help=str(ui.get("ui:help") or ui.get("ui:description") or ""),
                options=_options(prop, ui),
                value=values.get(name, prop.get("default")),
                errors=[words(e.message) for e in errors or [] if e.field.split("/")[0] == name],
                attrs=_attrs(prop),
                schema=prop,
            )
        )
    return result


def form_errors(errors: list[FieldError], schema: dict) -> list[str]:
    """Errors that belong to no single field (drawn above the form)."""
    names = set(schema.get("properties", {}))
    return [f"{e.field}: {words(e.message)}" for e in errors if e.field.split("/")[0] not in names]


def _coerce(prop: dict, raw: str) -> Any:
    """Posted text → the schema's type; text that does not convert is passed on as text, so the
    schema check names the field and the reason."""
    kind = prop.get("type")
    if "enum" in prop:
        for choice in prop["enum"]:
            if str(choice) == raw:
                return choice
        return raw
    try:
        if kind == "integer":
            return int(raw.replace(",", ""))
        if kind == "number":
            return float(raw.replace(",", ""))
    except ValueError:
        return raw
    if kind in ("object", "array"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parse(schema: dict, form: MultiDict, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The posted fields of `schema` as typed data; an empty input means "not given"."""
    data: dict[str, Any] = {}
    for name, raw_prop in schema.get("properties", {}).items():
        prop = resolve(schema, raw_prop)
        if name in skip or _is_documents(prop, schema):
            continue
        if prop.get("type") == "boolean" and "enum" not in prop:
            if name in form:
                data[name] = form.get(name) in ("on", "true", "1", "yes")
            continue
        raw = (form.get(name) or "").strip()
        if raw:
            data[name] = _coerce(prop, raw)
    return data
