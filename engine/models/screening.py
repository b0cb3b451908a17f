"""Reference data of the automatic pre-check: the blacklist, and application numbers per day.

Decision: application numbers come from a counter row per prefix and day, taken with one
`UPDATE … RETURNING`, so two concurrent submissions never receive the same number and a rolled
back submission gives its number back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, UTCDateTime, utcnow


class BlacklistEntry(Base):
    __tablename__ = "blacklist_entries"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: id_number (resident ID), uscc (unified social credit code), phone
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_by: Mapped[str] = mapped_column(String(80), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NumberSequence(Base):
    __tablename__ = "number_sequences"

    #: e.g. "PL20261128"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}
