"""Typed application keys, all in one place."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from dicom.access import GrantCache
    from dicom.auditlog import AuditBuffer
    from dicom.reads import Reads
    from dicom.scp import StoreSCP
    from dicom.store import Storage
    from dicom.wado import Reader
    from server.auth import LoginLimiter, TokenCache
    from server.db import Database
    from server.metrics import Metrics
    from server.settings import Settings
    from signaling.server import RtcServer

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")
TOKEN_CACHE: web.AppKey[TokenCache] = web.AppKey("token_cache")
BACKGROUND_TASKS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("background_tasks")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
RTC: web.AppKey[RtcServer] = web.AppKey("rtc")
DICOM_STORAGE: web.AppKey[Storage] = web.AppKey("dicom_storage")
DICOM_READER: web.AppKey[Reader] = web.AppKey("dicom_reader")
DICOM_SCP: web.AppKey[StoreSCP] = web.AppKey("dicom_scp")
DICOM_PORT: web.AppKey[int | None] = web.AppKey("dicom_port")
DICOM_AUDIT: web.AppKey[AuditBuffer] = web.AppKey("dicom_audit")
DICOM_GRANTS: web.AppKey[GrantCache] = web.AppKey("dicom_grants")
DICOM_READS: web.AppKey[Reads] = web.AppKey("dicom_reads")
