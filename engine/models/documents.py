"""Uploaded documents: the bytes live on disk under their SHA-256, the row says whose they are."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime, utcnow


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_owner_sha", "owner", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Username of the person who uploaded it.
    owner: Mapped[str] = mapped_column(String(80))
    #: The application it belongs to, once submitted (None while the form is being filled).
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instances.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    #: The type sniffed from the bytes, never the one the browser claimed.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Draft(Base):
    """An application being filled in, kept on the server between the form and the confirm page;
    submitting consumes it, so a second click of "submit" finds nothing to submit."""

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("owner", "bundle_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(80))
    bundle_key: Mapped[str] = mapped_column(String(80))
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
