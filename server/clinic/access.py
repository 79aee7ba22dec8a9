"""Who may see which consultation and patient: the rules by role and institution."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import Consultation, Patient
from yilian.server.core.access import require_clinical
from yilian.server.core.errors import NotFound
from yilian.server.core.models import CLINICAL_ROLES, User


def consultation_filter(user: User) -> ColumnElement[bool]:
    """SQL condition: consultations this user may see."""
    if user.role not in CLINICAL_ROLES:
        return false()
    mine = or_(
        Consultation.requester_institution_id == user.institution_id,
        Consultation.expert_id == user.id,
    )
    if user.role != "specialist":
        return mine
    queue = and_(
        Consultation.expert_id.is_(None),
        Consultation.status == "requested",
        Consultation.target_institution_id == user.institution_id,
        or_(
            Consultation.specialty.is_(None),
            Consultation.specialty.in_(user.specialties or ["-"]),
        ),
    )
    return or_(mine, queue)


def can_see_consultation(user: User, c: Consultation) -> bool:
    """Python twin of :func:`consultation_filter` for one loaded consultation."""
    if user.role not in CLINICAL_ROLES:
        return False
    if c.requester_institution_id == user.institution_id or c.expert_id == user.id:
        return True
    return (
        user.role == "specialist"
        and c.expert_id is None
        and c.status == "requested"
        and c.target_institution_id == user.institution_id
        and (c.specialty is None or c.specialty in (user.specialties or []))
    )


def is_participant(user: User, c: Consultation) -> bool:
    """Requester or assigned expert: the people who meet on video and write in the case."""
    return user.id in (c.requester_id, c.expert_id)


async def get_visible_consultation(
    session: AsyncSession, user: User, consultation_id: int, *, for_update: bool = False
) -> Consultation:
    """The consultation if this user may see it; 404 otherwise (existence is not disclosed)."""
    require_clinical(user, "open consultations")
    stmt = select(Consultation).where(Consultation.id == consultation_id)
    if for_update:
        stmt = stmt.with_for_update()
    c = (await session.execute(stmt)).scalar_one_or_none()
    if c is None or not can_see_consultation(user, c):
        raise NotFound(f"no consultation {consultation_id}")
    return c


async def can_see_patient(session: AsyncSession, user: User, patient: Patient) -> bool:
    """Own institution's patients, or patients shared through a consultation the user sees."""
    if user.role not in CLINICAL_ROLES:
        return False
    if patient.institution_id == user.institution_id:
        return True
    shared = select(Consultation.id).where(
        Consultation.patient_id == patient.id, consultation_filter(user)
    )
    return bool((await session.execute(select(exists(shared)))).scalar())
