"""Monthly outpatient visit totals per institution: what the grassroots share is computed from.

Yilian does not see an institution's ordinary outpatients; its coordinator enters (or imports)
each month's total from the hospital's own system. ``month`` is ``YYYY-MM`` in Beijing time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yilian.server.clinic.models import Consultation, Referral
from yilian.server.clinic.teaching.models import TeachingAttendance, TeachingSession
from yilian.server.core.db import Base, UTCDateTime, utcnow


class OutpatientVisitTotal(Base):
    """All outpatient visits of one institution in one month (Yilian's and the rest)."""

    __tablename__ = "outpatient_visit_totals"
    __table_args__ = (UniqueConstraint("institution_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM, Beijing time
    visits: Mapped[int]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The statistics read the clinical tables by institution and time; these indexes make each
# figure a range scan of one institution's rows in the period (``queries``). They are declared
# here, beside the queries they serve, on the tables of the workflows.
STATS_INDEXES = (
    Index("ix_consultations_stats_requester",
          Consultation.__table__.c.requester_institution_id,
          Consultation.__table__.c.created_at, Consultation.__table__.c.kind,
          Consultation.__table__.c.status),
    Index("ix_consultations_stats_target", Consultation.__table__.c.target_institution_id,
          Consultation.__table__.c.created_at, Consultation.__table__.c.kind,
          Consultation.__table__.c.status),
    Index("ix_consultations_stats_expert", Consultation.__table__.c.expert_id,
          Consultation.__table__.c.created_at, Consultation.__table__.c.kind,
          Consultation.__table__.c.status, Consultation.__table__.c.target_institution_id),
    Index("ix_referrals_stats_from", Referral.__table__.c.from_institution_id,
          Referral.__table__.c.requested_at, Referral.__table__.c.direction,
          Referral.__table__.c.status),
    Index("ix_referrals_stats_to", Referral.__table__.c.to_institution_id,
          Referral.__table__.c.requested_at, Referral.__table__.c.direction,
          Referral.__table__.c.status),
    Index("ix_teaching_sessions_stats", TeachingSession.__table__.c.institution_id,
          TeachingSession.__table__.c.started_at),
    Index("ix_teaching_attendance_stats", TeachingAttendance.__table__.c.institution_id,
          TeachingAttendance.__table__.c.session_id),
)
