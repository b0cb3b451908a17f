"""The `documents` fields of a form: drawing them, and reading the files posted for them.

Decision: each document field shows the applicant's documents so far (each can be removed) and a
few empty rows of a kind select plus a file input; uploads are stored (engine.documents) as they
arrive, so a form sent back with errors keeps them, and a refused file is named next to the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, request
from flask_babel import gettext

from engine import documents
from engine.errors import FieldError
from engine.models import Document
from web import schema_forms, settings_of
from web.extensions import db

#: Empty upload rows a documents field offers each time the form is shown.
SLOTS = 4


@dataclass
class DocumentsField:
    name: str
    title: str
    help: str
    required: bool
    kinds: list[tuple[str, str]]
    documents: list[Document]
    errors: list[str] = field(default_factory=list)
    slots: int = SLOTS

    def kind_label(self, kind: str) -> str:
        return dict(self.kinds).get(kind, kind)


def document_fields(schema: dict, uischema: dict) -> list[str]:
    return [f.name for f in schema_forms.fields(schema, uischema) if f.widget == "documents"]


def _kinds(schema: dict, prop: dict, ui: dict) -> list[tuple[str, str]]:
    items = schema_forms.resolve(schema, prop.get("items", {}))
    kind = schema_forms.resolve(schema, items.get("properties", {}).get("kind", {}))
    names = ui.get("items", {}).get("kind", {}).get("ui:enumNames") or []
    values = kind.get("enum", [])
    return [(str(v), str(names[i]) if i < len(names) else str(v)) for i, v in enumerate(values)]


def draw(
    schema: dict, uischema: dict, docs: dict[str, list[Document]], errors: list[FieldError]
) -> dict[str, DocumentsField]:
    """The documents fields of the form, by name, for the template."""
    drawn = {}
    for f in schema_forms.fields(schema, uischema, errors=errors):
        if f.widget == "documents":
            ui = uischema.get(f.name, {})
            drawn[f.name] = DocumentsField(
                f.name, f.title, f.help, f.required, _kinds(schema, f.schema, ui),
                docs.get(f.name, []), f.errors,
            )  # fmt: skip
    return drawn


def receive(
    schema: dict, uischema: dict, owner: str, docs: dict[str, list[Document]]
) -> tuple[dict[str, list[Document]], list[FieldError]]:
    """The documents each field has after this post (kept ones minus removed, plus new uploads),
    and an error for each refused file."""
    result, errors = {}, []
    for name in document_fields(schema, uischema):
        removed = set(request.form.getlist(f"{name}-remove"))
        kept = [d for d in docs.get(name, []) if str(d.id) not in removed]
        for i in range(SLOTS):
            upload = request.files.get(f"{name}-file-{i}")
            if upload is None or not upload.filename:
                continue
            kind = request.form.get(f"{name}-kind-{i}", "")
            if not kind:
                message = gettext(
                    "%(file)s: choose what kind of document it is", file=upload.filename
                )
                errors.append(FieldError(name, message))
                continue
            try:
                content = upload.read()
                kept.append(
                    documents.store(db.session, _settings(), owner, kind, upload.filename, content)
                )
            except documents.Refused as refused:  # drawn in the reader's language by the field
                errors += [FieldError(name, e.message) for e in refused.errors]
        result[name] = kept
    return result, errors


def _settings():
    return settings_of(current_app)
