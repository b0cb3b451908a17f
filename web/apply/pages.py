"""What the apply pages show of data: values as a person reads them, and where progress is."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import gettext
from werkzeug.routing import BuildError

from engine.applications import FormSpec
from web import schema_forms


def progress_url(reference: str) -> str:
    """The progress page of an application (the track area's, plain path until it exists)."""
    try:
        return url_for("track.detail", reference=reference)
    except BuildError:
        return f"/track/{reference}"


def _text(field: schema_forms.Field) -> str:
    if field.value is None or field.value == "":
        return "—"
    if field.widget in ("select", "radio"):
        return dict(field.options).get(str(field.value), str(field.value))
    if field.widget == "checkbox" or isinstance(field.value, bool):
        return gettext("Yes") if field.value else gettext("No")
    return field.text


def shown_values(form: FormSpec, data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, label, value as shown) of every field but documents, in the form's order."""
    return [
        (f.name, f.title, _text(f))
        for f in schema_forms.fields(form.schema, form.uischema, data)
        if f.widget not in ("documents", "hidden")
    ]
