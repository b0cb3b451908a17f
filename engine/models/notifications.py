"""Notifications: every message to a person, per channel, with its delivery record.

Decision: the idempotency key is unique, so a retried or redelivered job finds the row and never
sends the same message twice; in-app messages are rows of the same table, read in the message
centre (`read_at` marks them read).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime, utcnow


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_recipient_unread", "channel", "recipient", "read_at"),
        Index("ix_notifications_status", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(60))
    #: email, sms, in_app
    channel: Mapped[str] = mapped_column(String(10))
    #: an e-mail address, a phone number, or (in_app) a username
    recipient: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(10), default="zh")
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    #: pending, sent, failed (gave up; see last_error)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
