"""Typed application keys of the clinical workflows: the other packages they are wired to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from yilian.server.clinic.ports import ChatLog, StudyCatalog

STUDY_CATALOG: web.AppKey[StudyCatalog] = web.AppKey("clinic_study_catalog")
CHAT_LOG: web.AppKey[ChatLog] = web.AppKey("clinic_chat_log")
