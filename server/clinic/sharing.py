"""Sharing DICOM studies with a consultation or a referral: the link rows, and the answers the
image package asks of them (which studies a user was shared, through which case)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, exists, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import (
    get_visible_consultation,
    is_participant,
    readable_consultation_filter,
    referral_filter,
)
from yilian.server.clinic.models import Consultation, ConsultationStudy, Referral, ReferralStudy
from yilian.server.clinic.ports import StudyCatalog
from yilian.server.core.errors import Forbidden, NotFound, ValidationFailed
from yilian.server.core.models import User


async def check_studies(session: AsyncSession, catalog: StudyCatalog, user: User,
                        patient_id: int, uids: Iterable[str]) -> list[str]:
    """The study UIDs, each an indexed study the user may read (404 otherwise) and either
    stored by the user's institution or already shared about this patient (422 otherwise): a
    study another site shared with us about someone else is not passed on with this patient,
    to a consultation or to a referral. Duplicates dropped."""
    wanted = list(dict.fromkeys(uids))
    for uid in wanted:
        await catalog.assert_shareable(session, user, uid)
        if await catalog.owner_institution(session, uid) == user.institution_id:
            continue
        if not await _shared_about(session, patient_id, uid):
            raise ValidationFailed(f"study {uid} was shared with your institution about "
                                   "another patient", code="wrong_patient",
                                   details={"field": "study_uids", "study_uid": uid})
    return wanted


async def _shared_about(session: AsyncSession, patient_id: int, uid: str) -> bool:
    """Whether a consultation or referral of this patient shares the study."""
    by_case = select(ConsultationStudy.study_instance_uid).join(
        Consultation, Consultation.id == ConsultationStudy.consultation_id).where(
        ConsultationStudy.study_instance_uid == uid, Consultation.patient_id == patient_id)
    by_referral = select(ReferralStudy.study_instance_uid).join(
        Referral, Referral.id == ReferralStudy.referral_id).where(
        ReferralStudy.study_instance_uid == uid, Referral.patient_id == patient_id)
    return bool(await session.scalar(select(exists(by_case.union_all(by_referral)))))


async def share_studies(
    session: AsyncSession, catalog: StudyCatalog, user: User, consultation: Consultation,
    study_uids: Sequence[str],
) -> list[str]:
    """Link studies to the consultation (idempotently); returns the UIDs newly linked.

    Every UID is checked (``check_studies``: indexed, readable, and this patient's) before any
    link row is written, so a bad UID stores nothing."""
    uids = await check_studies(session, catalog, user, consultation.patient_id, study_uids)
    # The links are loaded with the consultation (selectin), new ones join that list.
    existing = {s.study_instance_uid for s in consultation.studies}
    added = [u for u in uids if u not in existing]
    consultation.studies.extend(
        ConsultationStudy(study_instance_uid=u, shared_by_id=user.id) for u in added)
    await session.flush()
    return added


class ClinicalShares:
    """``yilian.dicom.ports.SharedStudies``: the studies consultations and referrals share
    with a user."""

    def study_uids(self, user: User) -> Select[Any]:
        """SQL: UIDs of studies shared with a consultation this user may read (those shared
        with a referral their institution receives included) or with a referral they see."""
        through_consultations = (
            select(ConsultationStudy.study_instance_uid)
            .join(Consultation, Consultation.id == ConsultationStudy.consultation_id)
            .where(readable_consultation_filter(user)))
        through_referrals = (
            select(ReferralStudy.study_instance_uid)
            .join(Referral, Referral.id == ReferralStudy.referral_id)
            .where(referral_filter(user)))
        merged = union(through_consultations, through_referrals).subquery()
        return select(merged.c[0])

    async def case_study_patient(self, session: AsyncSession, user: User, case_id: int,
                                 study_uid: str) -> int:
        """The consultation's patient if the user takes part in it (requester or expert) and
        the study is shared with it."""
        case = await get_visible_consultation(session, user, case_id)
        if not is_participant(user, case):
            raise Forbidden("only the requester or the expert of the consultation may do this")
        linked = await session.scalar(select(ConsultationStudy.study_instance_uid).where(
            ConsultationStudy.consultation_id == case.id,
            ConsultationStudy.study_instance_uid == study_uid))
        if linked is None:
            raise NotFound(f"study {study_uid} is not shared with consultation {case_id}",
                           code="study_not_found")
        return case.patient_id
