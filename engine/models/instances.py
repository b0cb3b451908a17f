"""Process instances, their human tasks (the inbox) and their pending service calls.

Decision: the engine state is one JSON column on the instance, written in the same transaction
as the task and call rows that describe it; inbox queries never unpack it. Instances and human
tasks carry a version counter so a second concurrent writer fails instead of overwriting.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime, utcnow


class ProcessInstance(Base):
    __tablename__ = "process_instances"
    __table_args__ = (
        Index("ix_process_instances_status_updated", "status", "updated_at"),
        Index("ix_process_instances_inbox_filters", "bundle_key", "risk_grade", "amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_version_id: Mapped[int] = mapped_column(ForeignKey("bundle_versions.id"), index=True)
    bundle_key: Mapped[str] = mapped_column(String(80), index=True)
    #: `BundleVersion.uid`: finds the cached specs without reading the version row.
    version_uid: Mapped[str] = mapped_column(String(32))
    process_id: Mapped[str] = mapped_column(String(255))
    #: The application number people quote (e.g. PL20261128000123), issued at submission.
    reference: Mapped[str | None] = mapped_column(String(40), unique=True)
    #: running (work queued), waiting (on people, timers or services), completed, error, cancelled
    status: Mapped[str] = mapped_column(String(20), default="running")
    state: Mapped[str] = mapped_column(Text)
    #: Earliest due time of any waiting timer, so the scheduler finds due instances by index.
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_task: Mapped[str | None] = mapped_column(String(255))
    started_by: Mapped[str] = mapped_column(String(80), index=True)
    #: Copied from the instance data for the inbox's filters (amount band, risk grade).
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    risk_grade: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}


class HumanTask(Base):
    __tablename__ = "human_tasks"
    __table_args__ = (
        UniqueConstraint("instance_id", "task_id"),
        Index("ix_human_tasks_inbox", "state", "group_key", "created_at"),
        Index("ix_human_tasks_assignee", "assignee", "state"),
        Index("ix_human_tasks_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"), index=True)
    #: SpiffWorkflow's task UUID: the handle to complete it in the engine state.
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    lane: Mapped[str | None] = mapped_column(String(255))
    group_key: Mapped[str | None] = mapped_column(String(80))
    assignee: Mapped[str | None] = mapped_column(String(80))
    #: ready, claimed, completed, cancelled
    state: Mapped[str] = mapped_column(String(20), default="ready")
    form: Mapped[str | None] = mapped_column(String(400))
    ui_form: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(80))
    #: What the person submitted (validated against the form), kept per task for the record.
    submitted: Mapped[dict | None] = mapped_column(JSON)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}


class ServiceCall(Base):
    __tablename__ = "service_calls"
    __table_args__ = (
        UniqueConstraint("instance_id", "task_id"),
        Index("ix_service_calls_status", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instances.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(255))
    operator: Mapped[str] = mapped_column(String(120))
    params: Mapped[dict] = mapped_column(JSON)
    #: pending (to run), waiting (operator answers later), done, failed (gave up; see error),
    #: cancelled (its task was taken away, e.g. by an interrupting timer)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
