"""Uploaded documents: checked, stored once per content, and shown only to who may see them.

Decision: what a file is comes from its bytes (sniffed with `filetype`), never from the name or
the type the browser claims; the bytes live outside the web root under their SHA-256 (written
atomically, so a crash never leaves half a file, and stored once however often uploaded), and a
`Document` row says whose they are and, once submitted, which application they belong to.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

import filetype
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.directory import Actor
from engine.errors import FieldError, Invalid, NotFound
from engine.models import Document
from engine.permissions import may_see_instance

ALLOWED = ("application/pdf", "image/jpeg", "image/png")
#: Shown inline (the reviewer page previews them); anything else would be an attachment.
INLINE = ALLOWED
FIELD = "documents"


#: Why a file is refused; `%(file)s` (and `%(limit)s`) are filled in. Hosts may translate them.
EMPTY = "%(file)s: the file is empty"
TOO_LARGE = "%(file)s: the file is larger than %(limit)s MB"
WRONG_TYPE = "%(file)s: only PDF, JPEG and PNG files are accepted"


class Refused(Invalid):
    """An upload was refused; `template` and `params` let a host say it in its own language."""

    def __init__(self, template: str, **params) -> None:
        super().__init__([FieldError(FIELD, template % params)], "the file was refused")
        self.template, self.params = template, params


def _refuse(template: str, **params) -> Refused:
    return Refused(template, **params)


def clean_name(name: str) -> str:
    """A file name fit to show and to send back in a header: no path, no control characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '"<>|*?:')
    name = name.strip(" .")[:200]
    return name or "document"


def sniff(content: bytes) -> str | None:
    """The type the bytes say they are, or None when `filetype` does not recognise them."""
    kind = filetype.guess(content[:8192])
    return kind.mime if kind is not None else None


def path_of(settings: Settings, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise NotFound("no such document")
    return settings.documents_dir / sha256[:2] / sha256


def _write_once(settings: Settings, sha256: str, content: bytes) -> None:
    target = path_of(settings, sha256)
    if target.exists():
        return  # the same bytes are already stored: one copy serves every upload
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)  # atomic: readers see the whole file or none
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store(
    session: Session, settings: Settings, owner: str, kind: str, name: str, content: bytes
) -> Document:
    """Check and keep one upload of `owner`; `Invalid` (on "documents") names the file and why."""
    name = clean_name(name)
    if not content:
        raise _refuse(EMPTY, file=name)
    if len(content) > settings.max_upload_bytes:
        limit = f"{settings.max_upload_bytes / (1024 * 1024):g}"
        raise _refuse(TOO_LARGE, file=name, limit=limit)
    content_type = sniff(content)
    if content_type not in ALLOWED:
        raise _refuse(WRONG_TYPE, file=name)
    sha256 = hashlib.sha256(content).hexdigest()
    _write_once(settings, sha256, content)
    document = Document(
        owner=owner,
        kind=kind,
        name=name,
        content_type=content_type,
        size=len(content),
        sha256=sha256,
    )
    session.add(document)
    session.flush()
    return document


def as_field(document: Document) -> dict:
    """The document as a form's `documents` item ({kind, name, sha256, size, content_type})."""
    return {
        "kind": document.kind,
        "name": document.name,
        "sha256": document.sha256,
        "size": document.size,
        "content_type": document.content_type,
    }


def owned(session: Session, owner: str, ids: list[int]) -> list[Document]:
    """`owner`'s documents with these ids, in the order given; others' ids are dropped."""
    if not ids:
        return []
    rows = session.scalars(select(Document).where(Document.id.in_(ids), Document.owner == owner))
    found = {d.id: d for d in rows}
    return [found[i] for i in ids if i in found]


def named(session: Session, owner: str, items: list) -> list[Document]:
    """`owner`'s documents that a form's `documents` items name (by content), in their order."""
    shas = [i["sha256"] for i in items if isinstance(i, dict) and isinstance(i.get("sha256"), str)]
    if not shas:
        return []
    rows = session.scalars(
        select(Document)
        .where(Document.owner == owner, Document.sha256.in_(sorted(set(shas))))
        .order_by(Document.instance_id.is_(None), Document.id)
    ).all()
    first: dict[str, Document] = {}
    for row in rows:
        first.setdefault(row.sha256, row)
    return [first[sha] for sha in shas if sha in first]


def attach(session: Session, instance_id: int, shas: list[str], owner: str) -> int:
    """Give `owner`'s not yet submitted documents with these contents to the application."""
    if not shas:
        return 0
    rows = session.scalars(
        select(Document).where(
            Document.owner == owner,
            Document.instance_id.is_(None),
            Document.sha256.in_(sorted(set(shas))),
        )
    ).all()
    for document in rows:
        document.instance_id = instance_id
    session.flush()
    return len(rows)


def of_instance(session: Session, instance_id: int) -> list[Document]:
    return list(
        session.scalars(
            select(Document).where(Document.instance_id == instance_id).order_by(Document.id)
        )
    )


def open_for(
    session: Session, settings: Settings, document_id: int, actor: Actor
) -> tuple[Document, Path]:
    """The document and its file if `actor` may see it: its owner, or (once submitted) anyone
    who may see the application; everybody else is told it does not exist."""
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound("no such document")
    if document.owner != actor.username:
        if document.instance_id is None:
            raise NotFound("no such document")
        may_see_instance(session, document.instance_id, actor)
    path = path_of(settings, document.sha256)
    if not path.is_file():
        raise NotFound("the document's file is missing")
    return document, path
