"""Expert availability (weekly rules and exceptions) and the bookable slots it produces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yilian.server.core.db import Base, UTCDateTime


class AvailabilityRule(Base):
    __tablename__ = "availability_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    weekday: Mapped[int]  # 0 = Monday
    start_time: Mapped[str] = mapped_column(String(5))  # "HH:MM" local
    end_time: Mapped[str] = mapped_column(String(5))
    slot_minutes: Mapped[int]
    timezone: Mapped[str] = mapped_column(String(48))


class AvailabilityException(Base):
    __tablename__ = "availability_exceptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"))
    slot_minutes: Mapped[int | None]
    note: Mapped[str | None] = mapped_column(String(200))


class Slot(Base):
    __tablename__ = "slots"
    __table_args__ = (
        UniqueConstraint("expert_id", "start"),
        Index("ix_slots_expert_status_start", "expert_id", "status", "start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8), default="free")
    # No FK: consultations already reference slots, and a cycle complicates migrations.
    consultation_id: Mapped[int | None] = mapped_column(index=True)
