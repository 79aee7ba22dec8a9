"""What the DICOM package needs from the clinical workflows, as protocols.

``yilian.dicom`` does not import the consultation (or referral) code: the app factory hands it
an object with these methods (``yilian.server.clinic.sharing.ClinicalShares``).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.models import User


class SharedStudies(Protocol):
    """The studies that clinical cases have shared with a user."""

    def study_uids(self, user: User) -> Select[Any]:
        """SQL: the Study Instance UIDs shared with cases this user may see."""
        ...

    async def case_study_patient(self, session: AsyncSession, user: User, case_id: int,
                                 study_uid: str) -> int:
        """The patient id of case ``case_id`` if the user takes part in the case and the study
        is shared with it; raises ``NotFound`` or ``Forbidden`` otherwise."""
        ...
