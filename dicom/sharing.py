"""The check the clinical workflows call before sharing a study with a case."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.dicom.access import StudyAccess
from yilian.server.core.models import User


class StudyCatalog:
    """``yilian.server.clinic.ports.StudyCatalog`` over the DICOM index."""

    def __init__(self, access: StudyAccess) -> None:
        self._access = access

    async def assert_shareable(self, session: AsyncSession, user: User, study_uid: str) -> None:
        """Raise 404 unless the study is in the index and this user may read it."""
        await self._access.get_study(session, user, study_uid)
