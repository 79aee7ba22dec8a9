"""Typed application keys of the DICOM package."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from yilian.dicom.access import StudyAccess
    from yilian.dicom.scp import StoreSCP
    from yilian.dicom.store import Storage
    from yilian.dicom.wado import Reader

DICOM_STORAGE: web.AppKey[Storage] = web.AppKey("dicom_storage")
DICOM_READER: web.AppKey[Reader] = web.AppKey("dicom_reader")
DICOM_SCP: web.AppKey[StoreSCP] = web.AppKey("dicom_scp")
DICOM_PORT: web.AppKey[int | None] = web.AppKey("dicom_port")
DICOM_ACCESS: web.AppKey[StudyAccess] = web.AppKey("dicom_access")
