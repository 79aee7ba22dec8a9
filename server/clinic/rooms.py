"""Who may join and speak in a consultation's video room (the rules the signalling gate asks)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import is_participant
from yilian.server.clinic.models import Consultation
from yilian.server.clinic.workflow import OPEN
from yilian.server.core import audit
from yilian.server.core.errors import Forbidden, RoomClosed
from yilian.server.core.models import User
from yilian.server.core.schemas import MAX_ID, ascii_int


def consultation_id(object_id: str) -> int | None:
    """The id in ``consultation:<id>`` when written canonically (ASCII digits, no sign, no
    leading zero, at most ``MAX_ID``); ``int()`` alone would also take "01", "+1" or
    Arabic-Indic digits, and one consultation would have several rooms."""
    return None if object_id.startswith("0") else ascii_int(object_id, 1, MAX_ID)


async def _open_to(session: AsyncSession, user: User, object_id: str) -> Consultation:
    """The consultation, if ``user`` takes part in it and it is open."""
    known = consultation_id(object_id)
    consultation = await session.get(Consultation, known) if known is not None else None
    if consultation is None or not is_participant(user, consultation):
        # Same answer for "no such consultation" and "not yours": existence is not disclosed.
        raise Forbidden(f"you are not a participant of consultation {object_id}")
    if consultation.status not in OPEN:
        raise RoomClosed(f'consultation {object_id} is "{consultation.status}"; its room is closed')
    return consultation


class ConsultationRooms:
    """``signaling.gate.RoomRules`` for ``consultation:<id>``: its participants (requester and
    assigned expert) meet there while it is open (``workflow.OPEN``); the expert hosts."""

    async def admit(self, session: AsyncSession, user: User, object_id: str) -> bool:
        """Let a participant of an open consultation in (audited); True for the expert."""
        consultation = await _open_to(session, user, object_id)
        audit.record(
            session,
            user,
            "rtc_join",
            "consultation",
            consultation.id,
            patient_id=consultation.patient_id,
        )
        return consultation.expert_id == user.id

    async def may_speak(self, session: AsyncSession, user: User, object_id: str) -> None:
        """Chat is for the participants while the consultation is open, as joining is."""
        await _open_to(session, user, object_id)

    async def still_open(self, session: AsyncSession, object_ids: Collection[str]) -> set[str]:
        """The rooms whose consultation is still open."""
        ids = {i for o in object_ids if (i := consultation_id(o)) is not None}
        if not ids:
            return set()
        rows = await session.execute(
            select(Consultation.id).where(Consultation.id.in_(ids), Consultation.status.in_(OPEN))
        )
        return {str(i) for i in rows.scalars()}

    async def left(self, session: AsyncSession, user: User, object_id: str) -> None:
        """Nothing to close: a consultation keeps no attendance (joins are audited)."""
