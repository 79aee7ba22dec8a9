"""Who may see which consultation, referral and patient: the rules by role and institution."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.clinic.models import Consultation, Patient, Referral, ReferralConsultation
from yilian.server.core.access import require_clinical
from yilian.server.core.errors import Forbidden, NotFound
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


def referral_shared_consultations(user: User) -> Select[Any]:
    """SQL: ids of consultations shared with a referral to this user's institution (the
    receiving team reads them, and their signed reports and studies; nothing more)."""
    return (select(ReferralConsultation.consultation_id)
            .join(Referral, Referral.id == ReferralConsultation.referral_id)
            .where(Referral.to_institution_id == user.institution_id))


def readable_consultation_filter(user: User) -> ColumnElement[bool]:
    """SQL condition: consultations this user may read: those of :func:`consultation_filter`
    and those shared with a referral their institution receives."""
    if user.role not in CLINICAL_ROLES:
        return false()
    return or_(consultation_filter(user),
               Consultation.id.in_(referral_shared_consultations(user)))


# Built once, run with parameters (every change of a consultation starts with one).
_CONSULTATION = select(Consultation).where(Consultation.id == bindparam("id"))
_LOCKED_CONSULTATION = _CONSULTATION.with_for_update()


async def get_visible_consultation(
    session: AsyncSession, user: User, consultation_id: int, *, for_update: bool = False
) -> Consultation:
    """The consultation if this user may see it; 404 otherwise (existence is not disclosed).

    A consultation shared with a referral is read-only for the receiving team: it is found
    for reading, never ``for_update`` (every change locks its row first), and the actions that
    do not change it (sharing a study, a teaching copy) check participation themselves."""
    return await session.run_sync(visible_consultation_sync, user, consultation_id,
                                  for_update=for_update)


def visible_consultation_sync(session: Session, user: User, consultation_id: int, *,
                              for_update: bool = False) -> Consultation:
    """:func:`get_visible_consultation` on a synchronous session."""
    require_clinical(user, "open consultations")
    c = session.execute(_LOCKED_CONSULTATION if for_update else _CONSULTATION,
                        {"id": consultation_id}).scalar_one_or_none()
    if c is None:
        raise NotFound(f"no consultation {consultation_id}")
    if can_see_consultation(user, c):
        return c
    if not for_update and session.scalar(select(exists(
            referral_shared_consultations(user).where(
                ReferralConsultation.consultation_id == c.id)))):
        return c
    raise NotFound(f"no consultation {consultation_id}")


# --- referrals ------------------------------------------------------------------------------


def referral_filter(user: User) -> ColumnElement[bool]:
    """SQL condition: referrals this user may see: clinical staff of the referring and of the
    receiving institution, nobody else."""
    if user.role not in CLINICAL_ROLES:
        return false()
    return or_(Referral.from_institution_id == user.institution_id,
               Referral.to_institution_id == user.institution_id)


def referral_side(user: User, r: Referral) -> str | None:
    """``"referring"``, ``"receiving"`` or None: which team of the referral the user is on."""
    if user.role not in CLINICAL_ROLES:
        return None
    if user.institution_id == r.from_institution_id:
        return "referring"
    if user.institution_id == r.to_institution_id:
        return "receiving"
    return None


def require_side(user: User, r: Referral, side: str, what: str) -> None:
    """403 unless the user is on ``side`` of the referral (``"either"``: on one of them)."""
    mine = referral_side(user, r)
    if mine is None or (side != "either" and mine != side):
        team = {"receiving": "the receiving", "referring": "the referring"}.get(side, "a")
        raise Forbidden(f"only {team} team may {what}",
                        details={"side": side, "your_side": mine})


async def get_visible_referral(session: AsyncSession, user: User, referral_id: int, *,
                               for_update: bool = False) -> Referral:
    """The referral if this user may see it; 404 otherwise (existence is not disclosed)."""
    require_clinical(user, "open referrals")
    stmt = select(Referral).where(Referral.id == referral_id)
    if for_update:
        stmt = stmt.with_for_update()
    r = (await session.execute(stmt)).scalar_one_or_none()
    if r is None or referral_side(user, r) is None:
        raise NotFound(f"no referral {referral_id}")
    return r


async def can_see_patient(session: AsyncSession, user: User, patient: Patient) -> bool:
    """Own institution's patients, or patients shared through a consultation or a referral the
    user sees (the receiving team of a referral sees its patient)."""
    if user.role not in CLINICAL_ROLES:
        return False
    if patient.institution_id == user.institution_id:
        return True
    shared = select(Consultation.id).where(
        Consultation.patient_id == patient.id, readable_consultation_filter(user)
    )
    referred = select(Referral.id).where(Referral.patient_id == patient.id,
                                         referral_filter(user))
    return bool((await session.execute(select(exists(shared) | exists(referred)))).scalar())
