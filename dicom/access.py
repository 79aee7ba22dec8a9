"""Who may see a study: the institution that sent it, and the people of the consultations
it is shared with. Unrelated users learn nothing (404), non-clinical roles get 403."""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dicom.models import DicomStudy
from server.access import consultation_filter, require_clinical
from server.errors import NotFound
from server.models import Consultation, ConsultationStudy, User


def shared_study_uids(user: User) -> select:  # type: ignore[valid-type]
    """SQL: UIDs of studies shared with a consultation this user may see."""
    return (select(ConsultationStudy.study_instance_uid)
            .join(Consultation, Consultation.id == ConsultationStudy.consultation_id)
            .where(consultation_filter(user)))


def visible_studies(user: User) -> ColumnElement[bool]:
    """SQL condition on :class:`DicomStudy`: the studies this user may read."""
    return or_(DicomStudy.institution_id == user.institution_id,
               DicomStudy.study_uid.in_(shared_study_uids(user)))


async def get_visible_study(session: AsyncSession, user: User, study_uid: str) -> DicomStudy:
    """The study if this user may read it; 403 for non-clinical roles, 404 otherwise."""
    require_clinical(user, "read images")
    study = await session.scalar(
        select(DicomStudy).where(DicomStudy.study_uid == study_uid, visible_studies(user)))
    if study is None:
        raise NotFound(f"no study {study_uid}", code="study_not_found")
    return study


class GrantCache:
    """Recent positive answers to "may this user read this study?" (study row id kept).

    A viewer scrolling a series asks once per image; within ``ttl`` seconds the answer is reused.
    Only grants are cached, so a new share is seen at once; a consultation leaving a user's view
    is seen within ``ttl`` (the same trade the token cache makes).
    """

    def __init__(self, ttl: float = 5.0, size: int = 20_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[tuple[int, str], tuple[float, int]] = {}

    def get(self, user: User, study_uid: str) -> int | None:
        entry = self._entries.get((user.id, study_uid))
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            self._entries.pop((user.id, study_uid), None)
            return None
        return entry[1]

    def put(self, user: User, study_uid: str, study_id: int) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[(user.id, study_uid)] = (time.monotonic(), study_id)

    def forget(self, user: User, study_uid: str) -> None:
        """Drop one grant (its study row may have been re-created)."""
        self._entries.pop((user.id, study_uid), None)


async def visible_study_id(session: AsyncSession, cache: GrantCache, user: User,
                           study_uid: str) -> int:
    """The row id of a study this user may read (cached); 403/404 as :func:`get_visible_study`."""
    require_clinical(user, "read images")
    study_id = cache.get(user, study_uid)
    if study_id is None:
        study_id = (await get_visible_study(session, user, study_uid)).id
        cache.put(user, study_uid, study_id)
    return study_id
