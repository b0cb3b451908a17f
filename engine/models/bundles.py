"""Deployed bundle versions: every file's content and checksum, and the parsed specs stored once.

A version is immutable. The live version of a bundle is its highest version number; rolling back
deploys an older content again as a new version.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, UTCDateTime, utcnow


class BundleVersion(Base):
    __tablename__ = "bundle_versions"
    __table_args__ = (UniqueConstraint("bundle_key", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_key: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str] = mapped_column(String(64))
    #: Globally unique handle of this version's parsed specs in every process's cache.
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    dialect: Mapped[str] = mapped_column(String(20))
    main_process_id: Mapped[str] = mapped_column(String(255))
    #: Serialized SpiffWorkflow specs of every process of the bundle, so instances store none.
    specs_json: Mapped[str] = mapped_column(Text)
    #: Per user task: form paths and candidate group, resolved at deploy time (JSON).
    tasks_json: Mapped[str] = mapped_column(Text)
    deployed_by: Mapped[str] = mapped_column(String(80))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The earlier version with the same content, when this deploy was a rollback.
    same_as_version: Mapped[int | None] = mapped_column(Integer)

    files: Mapped[list["BundleFile"]] = relationship(
        back_populates="bundle_version", order_by="BundleFile.path", lazy="raise"
    )


class BundleFile(Base):
    __tablename__ = "bundle_files"
    __table_args__ = (UniqueConstraint("bundle_version_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_version_id: Mapped[int] = mapped_column(
        ForeignKey("bundle_versions.id", ondelete="CASCADE"), index=True
    )
    #: Path as deployed: `processes/<key>/x.bpmn` or `forms/<key>/y-schema.json`.
    path: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(10))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)

    bundle_version: Mapped[BundleVersion] = relationship(back_populates="files")
