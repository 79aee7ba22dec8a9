"""Sharing DICOM studies with a consultation: the link rows, and the check that a study
may be shared by this user (it must be in the index and visible to them)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Consultation, ConsultationStudy, User


async def check_study_shareable(session: AsyncSession, user: User, study_uid: str) -> None:
    """Raise a 4xx unless ``study_uid`` is an indexed study this user may see.

    The DICOM index owns this check (``dicom`` package); it is called for every UID before
    any link row is written, so a bad UID stores nothing.
    """
    from dicom.sharing import assert_study_shareable

    await assert_study_shareable(session, user, study_uid)


async def share_studies(
    session: AsyncSession, user: User, consultation: Consultation, study_uids: Iterable[str]
) -> list[str]:
    """Link studies to the consultation (idempotently); returns the UIDs newly linked."""
    uids = list(dict.fromkeys(study_uids))
    for uid in uids:
        await check_study_shareable(session, user, uid)
    existing = set(
        (
            await session.execute(
                select(ConsultationStudy.study_instance_uid).where(
                    ConsultationStudy.consultation_id == consultation.id
                )
            )
        ).scalars()
    )
    added = [u for u in uids if u not in existing]
    session.add_all(
        ConsultationStudy(consultation_id=consultation.id, study_instance_uid=u,
                          shared_by_id=user.id)
        for u in added
    )
    await session.flush()
    return added
