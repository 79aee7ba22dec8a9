"""The check the consultation workflow calls before sharing a study with a case."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from dicom.access import get_visible_study
from server.models import User


async def assert_study_shareable(session: AsyncSession, user: User, study_uid: str) -> None:
    """Raise 404 unless the study is in the index and this user may read it."""
    await get_visible_study(session, user, study_uid)
