"""Who may see a study: the institution that sent it, and the people of the cases it is
shared with. Unrelated users learn nothing (404), non-clinical roles get 403."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.dicom.models import DicomStudy
from yilian.dicom.ports import SharedStudies
from yilian.server.core.access import require_clinical
from yilian.server.core.cache import TtlCache
from yilian.server.core.errors import NotFound
from yilian.server.core.models import User


class StudyAccess:
    """The study visibility rule, with recent grants cached.

    A viewer scrolling a series asks once per image; within ``ttl`` seconds a positive answer
    (the study's row id) is reused. Only grants are cached, so a new share is seen at once; a
    case leaving a user's view is seen within ``ttl`` (the same trade the token cache makes).
    """

    def __init__(self, shared: SharedStudies, ttl: float = 5.0, size: int = 20_000) -> None:
        self.shared = shared
        self.grants: TtlCache[tuple[int, str], int] = TtlCache(ttl, size)

    def visible(self, user: User) -> ColumnElement[bool]:
        """SQL condition on :class:`DicomStudy`: the studies this user may read."""
        return or_(DicomStudy.institution_id == user.institution_id,
                   DicomStudy.study_uid.in_(self.shared.study_uids(user)))

    async def get_study(self, session: AsyncSession, user: User, study_uid: str) -> DicomStudy:
        """The study if this user may read it; 403 for non-clinical roles, 404 otherwise."""
        require_clinical(user, "read images")
        study = await session.scalar(
            select(DicomStudy).where(DicomStudy.study_uid == study_uid, self.visible(user)))
        if study is None:
            raise NotFound(f"no study {study_uid}", code="study_not_found")
        return study

    async def study_id(self, session: AsyncSession, user: User, study_uid: str) -> int:
        """The row id of a study this user may read (cached); 403/404 as :meth:`get_study`."""
        require_clinical(user, "read images")
        study_id = self.grants.get((user.id, study_uid))
        if study_id is None:
            study_id = (await self.get_study(session, user, study_uid)).id
            self.grants.put((user.id, study_uid), study_id)
        return study_id

    def forget(self, user: User, study_uid: str) -> None:
        """Drop one grant (its study row may have been re-created)."""
        self.grants.discard((user.id, study_uid))
