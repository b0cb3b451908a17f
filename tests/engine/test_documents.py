"""Uploaded documents: sniffed, size-checked, stored once under their SHA-256, shown only to
their owner and to staff who may see the application."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from engine import bundles, directory, documents, runtime
from engine.directory import Actor
from engine.errors import NotFound
from tests.web.test_apply import EXE, PDF, png

ALICE = Actor("alice", frozenset())


@pytest.fixture
def stored(session, settings):
    def store(content: bytes, name: str = "id.png", owner: str = "alice", kind: str = "id_card"):
        return documents.store(session, settings, owner, kind, name, content)

    return store


def test_upload_is_typed_by_its_bytes_and_stored_under_its_sha256(stored, settings):
    """A PNG named .pdf is a PNG; the file sits at <sha[:2]>/<sha> with nothing half-written."""
    doc = stored(png(), "scan.pdf")
    sha = hashlib.sha256(png()).hexdigest()
    assert (doc.content_type, doc.sha256, doc.size) == ("image/png", sha, len(png()))
    assert (settings.documents_dir / sha[:2] / sha).read_bytes() == png()
    assert [p.name for p in (settings.documents_dir / sha[:2]).iterdir()] == [sha]


def test_same_bytes_uploaded_twice_are_stored_once(stored, settings):
    """Two rows (two uploads) share one file."""
    first, second = stored(PDF, "a.pdf"), stored(PDF, "b.pdf", owner="bob")
    assert first.id != second.id and first.sha256 == second.sha256
    assert len(list(settings.documents_dir.rglob("*"))) == 2  # one folder, one file


@pytest.mark.parametrize(
    "content, template",
    [
        (EXE, documents.WRONG_TYPE),
        (b"<html><script>alert(1)</script></html>", documents.WRONG_TYPE),
        (b"", documents.EMPTY),
    ],
)
def test_refused_upload_names_the_file_and_the_reason(stored, content, template):
    with pytest.raises(documents.Refused) as refused:
        stored(content, "setup.pdf")
    assert refused.value.template == template
    assert refused.value.errors[0].field == "documents"
    assert refused.value.errors[0].message.startswith("setup.pdf: ")


def test_upload_over_the_limit_is_refused(session, settings):
    small = dataclasses.replace(settings, max_upload_bytes=len(PDF) - 1)
    with pytest.raises(documents.Refused) as refused:
        documents.store(session, small, "alice", "id_card", "big.pdf", PDF)
    assert refused.value.template == documents.TOO_LARGE


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\scan.pdf", "scan.pdf"),
        ('evil"\r\nX-Header: 1.pdf', "evilX-Header 1.pdf"),
        ("...", "document"),
        ("身份证 正面.png", "身份证 正面.png"),
    ],
)
def test_file_names_are_cleaned(raw, clean):
    assert documents.clean_name(raw) == clean


def test_document_is_its_owners_until_attached_then_follows_the_application(
    session, settings, stored
):
    """Before submission only the owner opens it; once attached, whoever may see the
    application (tests/web/test_apply.py shows a reviewer doing so); other applicants never."""
    bundles.deploy_path(session, settings, settings.processes_dir / "personal_loan", "owner")
    directory.add_user(session, "rui", ["credit_reviewer"])
    doc = stored(PDF, "income.pdf")
    rui, bob = Actor("rui", frozenset({"credit_reviewer"})), Actor("bob", frozenset())
    assert documents.open_for(session, settings, doc.id, ALICE)[0] is doc
    with pytest.raises(NotFound):
        documents.open_for(session, settings, doc.id, rui)

    row = runtime.start(session, settings, "personal_loan", {}, ALICE)
    assert documents.attach(session, row.id, [doc.sha256], "alice") == 1
    assert documents.attach(session, row.id, [doc.sha256], "bob") == 0
    with pytest.raises(NotFound):  # no task of rui's group touches it yet
        documents.open_for(session, settings, doc.id, rui)
    with pytest.raises(NotFound):
        documents.open_for(session, settings, doc.id, bob)
    found, path = documents.open_for(session, settings, doc.id, ALICE)
    assert path.read_bytes() == PDF
