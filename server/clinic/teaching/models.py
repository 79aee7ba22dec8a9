"""Teaching broadcasts (远程示教): the session, the institutions invited to it, who watched when,
and its recordings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yilian.server.core.db import Base, UTCDateTime, utcnow


class TeachingSession(Base):
    """One scheduled broadcast: a presenter, a time window and the member sites invited.

    ``status`` moves ``scheduled`` -> ``live`` -> ``ended`` (or ``scheduled`` -> ``ended`` when
    it is called off); ``institution_id`` is the organiser's institution when it was created,
    which decides whose coordinators see it."""

    __tablename__ = "teaching_sessions"
    __table_args__ = (
        Index("ix_teaching_sessions_status_start", "status", "start"),
        Index("ix_teaching_sessions_status_end", "status", "end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # rounds | lecture | surgery_demo | training
    description: Mapped[str | None] = mapped_column(Text)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    presenter_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    organiser_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    record: Mapped[bool] = mapped_column(default=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the "starts in 15 minutes" reminder went out (the sweep sends it once).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invitations: Mapped[list[TeachingInvitation]] = relationship(
        order_by="TeachingInvitation.institution_id", lazy="selectin",
        cascade="all, delete-orphan", passive_deletes=True)


class TeachingInvitation(Base):
    """An institution whose users may watch the session."""

    __tablename__ = "teaching_invitations"
    __table_args__ = (UniqueConstraint("session_id", "institution_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("teaching_sessions.id", ondelete="CASCADE"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)


class TeachingAttendance(Base):
    """One stay of a viewer in the session's room, from joining to leaving.

    A reconnect opens a new row; the API merges a user's rows. ``institution_id`` is the
    user's institution when they joined (a later move does not rewrite the statistics)."""

    __tablename__ = "teaching_attendance"
    __table_args__ = (Index("ix_teaching_attendance_session_user", "session_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("teaching_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TeachingRecording(Base):
    """A recording of the presenter's media, written by the relay under the data directory.

    ``path`` is relative to the data directory (the install may move); ``status`` is
    ``recording`` while the relay writes, then ``complete`` or ``failed``."""

    __tablename__ = "teaching_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("teaching_sessions.id", ondelete="CASCADE"), index=True)
    container: Mapped[str] = mapped_column(String(8))  # webm | mkv
    path: Mapped[str] = mapped_column(String(400))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column()
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="recording", index=True)
