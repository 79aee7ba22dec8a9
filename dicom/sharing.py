"""What the clinical workflows ask of the image index: may a study be shared with a case, and
when was the ECG in a study taken."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.dicom.access import StudyAccess
from yilian.dicom.acquired import acquired_at
from yilian.dicom.models import DicomInstance, DicomSeries, DicomStudy
from yilian.server.core.models import User

#: 12-lead, general and ambulatory ECG waveform storage.
ECG_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.9.1.1",
    "1.2.840.10008.5.1.4.1.1.9.1.2",
    "1.2.840.10008.5.1.4.1.1.9.1.3",
)


class StudyCatalog:
    """``yilian.server.clinic.ports.StudyCatalog`` over the DICOM index."""

    def __init__(self, access: StudyAccess, display_timezone: str = "Asia/Shanghai") -> None:
        self._access = access
        self._zone = ZoneInfo(display_timezone)

    async def assert_shareable(self, session: AsyncSession, user: User, study_uid: str) -> None:
        """Raise 404 unless the study is in the index and this user may read it."""
        await self._access.get_study(session, user, study_uid)

    async def owner_institution(self, session: AsyncSession, study_uid: str) -> int | None:
        """The institution that stored the study (None if it is not in the index)."""
        return await session.scalar(
            select(DicomStudy.institution_id).where(DicomStudy.study_uid == study_uid))

    async def ecg_taken_at(self, session: AsyncSession, study_uid: str) -> datetime | None:
        """When the earliest ECG in the study was taken (a waveform, or an image in an ECG
        series such as a photographed strip); None if it holds none."""
        rows = (await session.execute(
            select(DicomInstance.metadata_json)
            .join(DicomSeries, DicomSeries.id == DicomInstance.series_ref)
            .join(DicomStudy, DicomStudy.id == DicomInstance.study_ref)
            .where(DicomStudy.study_uid == study_uid,
                   or_(DicomInstance.sop_class_uid.in_(ECG_SOP_CLASSES),
                       DicomSeries.modality == "ECG"))
        )).scalars().all()
        times = [t for t in (acquired_at(json.loads(m), self._zone) for m in rows) if t]
        return min(times) if times else None
