"""What the clinical workflows need from other packages, as protocols wired by the app factory.

The clinic does not import ``yilian.dicom`` or ``yilian.signaling``; the app hands it objects
with these methods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.models import User


class StudyCatalog(Protocol):
    """The image index, as the consultation workflow sees it."""

    async def assert_shareable(self, session: AsyncSession, user: User, study_uid: str) -> None:
        """Raise a 4xx unless ``study_uid`` is an indexed study this user may see."""
        ...

    async def owner_institution(self, session: AsyncSession, study_uid: str) -> int | None:
        """The institution that stored the study (None if it is not in the index)."""
        ...

    async def ecg_taken_at(self, session: AsyncSession, study_uid: str) -> datetime | None:
        """When the earliest ECG in the study was taken (UTC), or None if it holds no ECG:
        a chest-pain referral's ``first_ecg`` time point comes from it."""
        ...


class ChatLog(Protocol):
    """The chat kept with a case's video room."""

    async def messages(self, session: AsyncSession, consultation_id: int
                       ) -> list[dict[str, Any]]:
        """Every message (``peer_id``, ``user_id``, ``display_name``, ``text``, ``at``), oldest
        first."""
        ...
