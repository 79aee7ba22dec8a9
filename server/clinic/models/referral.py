"""Two-way referrals (双向转诊): the referral, its state history, its green-channel time points,
what it shares with the receiving team, the follow-ups of downward referrals, and the on-call
rosters that green-channel alerts go to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yilian.server.core.db import Base, UTCDateTime, utcnow


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_status_deadline", "status", "deadline"),
        Index("ix_referrals_to_status", "to_institution_id", "status"),
        Index("ix_referrals_from_status", "from_institution_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # up | down
    status: Mapped[str] = mapped_column(String(16), default="requested")
    from_institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    to_institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)  # the patient summary (病情摘要)
    # stroke | chest_pain | trauma | maternal | neonatal; None: an ordinary referral
    green_channel: Mapped[str | None] = mapped_column(String(16), index=True)
    onset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # symptom onset
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"),
                                                        index=True)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_reason: Mapped[str | None] = mapped_column(Text)  # reject / cancel / expiry reason
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)  # unaccepted after it: expired
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    departed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    events: Mapped[list[ReferralEvent]] = relationship(
        order_by="ReferralEvent.id", lazy="selectin", cascade="all, delete-orphan")
    milestones: Mapped[list[ReferralMilestone]] = relationship(
        order_by="ReferralMilestone.id", lazy="selectin", cascade="all, delete-orphan")
    studies: Mapped[list[ReferralStudy]] = relationship(
        order_by="ReferralStudy.shared_at", lazy="selectin", cascade="all, delete-orphan")
    consultations: Mapped[list[ReferralConsultation]] = relationship(
        order_by="ReferralConsultation.shared_at", lazy="selectin",
        cascade="all, delete-orphan")


class ReferralEvent(Base):
    """One state transition: who moved the referral from where to where, and when."""

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None = the system
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class ReferralMilestone(Base):
    """A clinical time point of a green-channel case (``door``, ``ct_done``, ``needle``, ...).

    Rows are never changed: a correction is a new row for the same milestone with a reason
    and ``corrects_id``; the newest row of a milestone is its value."""

    __tablename__ = "referral_milestones"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    milestone: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: system
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # where the time came from: "manual", "transition" (accept/arrive...), "ecg" (a stored ECG)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("referral_milestones.id"))
    reason: Mapped[str | None] = mapped_column(Text)  # why a correction was made


class ReferralStudy(Base):
    """A DICOM study shared with the receiving team through the referral."""

    __tablename__ = "referral_studies"

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    shared_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    shared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferralConsultation(Base):
    """A consultation whose signed report (and studies) the referral shares with the
    receiving team."""

    __tablename__ = "referral_consultations"

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"),
                                                 primary_key=True, index=True)
    shared_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    shared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FollowUp(Base):
    """A follow-up visit (随访) at the clinic a patient was referred down to."""

    __tablename__ = "follow_ups"
    __table_args__ = (Index("ix_follow_ups_institution_status_due",
                            "institution_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    plan: Mapped[str | None] = mapped_column(Text)  # what to check (from the referral)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="due")  # due | completed | cancelled
    outcome: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OnCallShift(Base):
    """Who is on call for a receiving department, from ``start`` to ``end``."""

    __tablename__ = "on_call_shifts"
    __table_args__ = (Index("ix_on_call_department_time", "department_id", "start", "end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
