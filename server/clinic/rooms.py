"""Who may join a consultation's video room (the rule the signalling gate asks)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import is_participant
from yilian.server.clinic.models import Consultation
from yilian.server.clinic.workflow import OPEN
from yilian.server.core import audit
from yilian.server.core.api import MAX_ID
from yilian.server.core.errors import Forbidden
from yilian.server.core.models import User


async def consultation_admission(session: AsyncSession, user: User, object_id: str) -> bool:
    """Participants (requester and assigned expert) of an open consultation; the expert hosts."""
    known = object_id.isdigit() and int(object_id) <= MAX_ID
    consultation = await session.get(Consultation, int(object_id)) if known else None
    if consultation is None or not is_participant(user, consultation):
        # Same answer for "no such consultation" and "not yours": existence is not disclosed.
        raise Forbidden(f"you are not a participant of consultation {object_id}")
    if consultation.status not in OPEN:
        raise Forbidden(
            f'consultation {object_id} is "{consultation.status}"; its room is closed',
            code="room_closed",
        )
    audit.record(
        session,
        user,
        "rtc_join",
        "consultation",
        consultation.id,
        patient_id=consultation.patient_id,
    )
    return consultation.expert_id == user.id
