"""What a referral shares with the receiving team: studies (checked against the image index
as consultation sharing is) and consultations of the same patient (read-only: their signed
reports and their studies). On a chest-pain case a shared ECG gives the first-ECG time."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import get_visible_consultation, get_visible_referral, require_side
from yilian.server.clinic.models import (
    Referral,
    ReferralConsultation,
    ReferralMilestone,
    ReferralStudy,
)
from yilian.server.clinic.ports import StudyCatalog
from yilian.server.clinic.referrals.schemas import ReferralOut, ShareIn
from yilian.server.clinic.referrals.views import current_points, referral_views
from yilian.server.clinic.referrals.workflow import BEFORE_REQUEST, CLOCK_SKEW, TERMINAL
from yilian.server.clinic.sharing import check_studies
from yilian.server.core import audit
from yilian.server.core.db import utcnow
from yilian.server.core.errors import InvalidTransition, ValidationFailed
from yilian.server.core.models import User


async def check_consultations(session: AsyncSession, user: User, patient_id: int,
                              ids: Sequence[int], field: str) -> list[int]:
    """The consultation ids, each visible to the user and of the referral's patient (404 /
    422 otherwise); duplicates dropped."""
    wanted = list(dict.fromkeys(ids))
    for cid in wanted:
        c = await get_visible_consultation(session, user, cid)
        if c.patient_id != patient_id:
            raise ValidationFailed(f"consultation {cid} is about another patient",
                                   code="wrong_patient", details={"field": field, "id": cid})
    return wanted


def link(r: Referral, user: User, consultation_ids: Sequence[int], study_uids: Sequence[str]
         ) -> tuple[list[int], list[str]]:
    """Add the (checked) links not there yet; returns what was added."""
    have_c = {x.consultation_id for x in r.consultations}
    have_s = {x.study_instance_uid for x in r.studies}
    new_c = [c for c in consultation_ids if c not in have_c]
    new_s = [s for s in study_uids if s not in have_s]
    r.consultations.extend(ReferralConsultation(consultation_id=c, shared_by_id=user.id)
                           for c in new_c)
    r.studies.extend(ReferralStudy(study_instance_uid=s, shared_by_id=user.id) for s in new_s)
    return new_c, new_s


async def first_ecg_from(session: AsyncSession, catalog: StudyCatalog, r: Referral,
                         study_uids: Sequence[str]) -> ReferralMilestone | None:
    """A chest-pain case without a first-ECG time takes it from the earliest ECG among the
    studies (one taken within the day before the request, and not in the future: an old ECG
    is not this episode's first)."""
    if r.green_channel != "chest_pain" or "first_ecg" in current_points(r):
        return None
    earliest = r.requested_at - BEFORE_REQUEST
    latest = utcnow() + CLOCK_SKEW
    times = [t for uid in study_uids
             if (t := await catalog.ecg_taken_at(session, uid)) and earliest <= t <= latest]
    if not times:
        return None
    row = ReferralMilestone(milestone="first_ecg", at=min(times), recorded_by_id=None,
                            recorded_at=utcnow(), source="ecg")
    r.milestones.append(row)
    return row


async def share(session: AsyncSession, catalog: StudyCatalog, user: User, referral_id: int,
                body: ShareIn, ip: str | None) -> ReferralOut:
    """Share more studies and consultations with the receiving team (the referring team, while
    the referral is open)."""
    r = await get_visible_referral(session, user, referral_id, for_update=True)
    require_side(user, r, "referring", "share with the referral")
    if r.status in TERMINAL:
        raise InvalidTransition(f'cannot share with a referral in state "{r.status}"',
                                details={"status": r.status})
    if not body.study_uids and not body.consultation_ids:
        raise ValidationFailed("name study_uids or consultation_ids to share",
                               details={"field": "study_uids"})
    consultations = await check_consultations(session, user, r.patient_id,
                                              body.consultation_ids, "consultation_ids")
    studies = await check_studies(session, catalog, user, r.patient_id, body.study_uids)
    new_c, new_s = link(r, user, consultations, studies)
    ecg = await first_ecg_from(session, catalog, r, new_s)
    r.updated_at = utcnow()
    await session.flush()
    audit.record(session, user, "share", "referral", r.id, patient_id=r.patient_id, ip=ip,
                 detail={"consultation_ids": new_c, "study_uids": new_s,
                         "first_ecg": ecg.at.isoformat() if ecg else None})
    return (await referral_views(session, [r], user))[0]

