"""Tables of the signalling subsystem: chat lines kept with their consultation or session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yilian.server.core.db import Base, UTCDateTime, utcnow


class RtcChatMessage(Base):
    """One chat line sent in a video room.

    ``room`` is the room name (``consultation:<id>`` or ``teaching:<id>``); a consultation's
    lines also carry its id so they are returned with the consultation and deleted with it, and
    a teaching session's lines (its viewers' questions) carry the session's id, with when and by
    whom the presenter marked them answered.
    """

    __tablename__ = "rtc_chat_messages"
    __table_args__ = (Index("ix_rtc_chat_messages_room_at", "room", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room: Mapped[str] = mapped_column(String(80))
    consultation_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), index=True
    )
    teaching_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("teaching_sessions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    peer_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
