"""Validating what a person submits for a user task against the task's JSON Schema form.

Decision: the form is the whole contract. Fields the form does not define are refused even when
the schema forgets `additionalProperties: false`, so nobody can write task data the form does not
offer (for example, who receives the next task). A task without a form accepts no data.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import jsonschema

from engine import form_formats
from engine.errors import FieldError, Invalid


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=form_formats.FORMAT_CHECKER)


def _field(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"{path}/{missing}".strip("/") or "(form)"
    return path or "(form)"


TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "yes or no",
    "array": "a list",
    "object": "a group of fields",
}
# What each bound means, in the words a person filling the form understands.
BOUNDS = {
    "minLength": "must be at least {} characters",
    "maxLength": "must be at most {} characters",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be more than {}",
    "exclusiveMaximum": "must be less than {}",
    "multipleOf": "must be a multiple of {}",
    "minItems": "needs at least {} items",
    "maxItems": "takes at most {} items",
}


def _message(error: jsonschema.ValidationError) -> str:
    """Why a value was refused, without echoing the value back (it may be long or personal)."""
    kind, bound = error.validator, error.validator_value
    if kind == "required":
        return "is required"
    if kind == "enum":
        return "must be one of " + ", ".join(map(str, bound))
    if kind in BOUNDS:
        return BOUNDS[kind].format(bound)
    if kind == "const":
        return "must be accepted" if bound is True else f"must be {bound}"
    if kind == "type":
        wanted = bound if isinstance(bound, list) else [bound]
        return "must be " + " or ".join(TYPE_WORDS.get(t, t) for t in wanted)
    if kind == "contains":  # the analyst's title says what must be there
        return str(error.schema.get("title") or "is missing a required item")
    if kind == "pattern":
        return "is not in the expected format"
    return error.message


def validate(schema_json: str | None, data: Any) -> dict[str, Any]:
    """`data` if it fits the form; otherwise `Invalid` listing every field and why."""
    if not isinstance(data, dict):
        raise Invalid([FieldError("(form)", "the submitted data must be an object of fields")])
    if schema_json is None:
        if data:
            raise Invalid(
                [FieldError(k, "this task has no form; no data may be submitted") for k in data]
            )
        return {}
    validator = _validator(schema_json)
    allowed = list(validator.schema.get("properties", {}))
    infinite = _non_finite(data)  # one plain reason: NaN slips past every bound, ∞ fails oddly
    errors = [FieldError(path, "must be a finite number") for path in infinite]
    errors += [
        FieldError(_field(e), _message(e))
        for e in validator.iter_errors(data)
        if e.validator != "additionalProperties" and _field(e) not in infinite
    ]
    errors += [FieldError(k, "this form has no such field") for k in data if k not in allowed]
    if errors:
        raise Invalid(sorted(errors, key=lambda e: _form_order(e.field, allowed)))
    return data


def _non_finite(value: Any, path: str = "") -> list[str]:
    """Paths of the numbers that are NaN or ±Infinity: JSON Schema's "number" accepts them, but
    no amount is infinite and the audit trail (strict JSON) could not record them."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path or "(form)"]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    return [p for k, v in items for p in _non_finite(v, f"{path}/{k}".strip("/"))]


def _form_order(field: str, allowed: list[str]) -> tuple[int, str]:
    """Errors in the order the form shows its fields; fields it does not have come last."""
    top = field.split("/", 1)[0]
    return (allowed.index(top) if top in allowed else len(allowed), field)
