"""Typed application keys, all in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from yilian.server.core.audit import AuditLog
    from yilian.server.core.auth import LoginLimiter, TokenCache
    from yilian.server.core.db import Database
    from yilian.server.core.metrics import Metrics
    from yilian.server.core.sessions import SessionHub
    from yilian.server.core.settings import Settings
    from yilian.server.core.tasks import TaskSet

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")
TOKEN_CACHE: web.AppKey[TokenCache] = web.AppKey("token_cache")
BACKGROUND_TASKS: web.AppKey[TaskSet] = web.AppKey("background_tasks")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
SESSIONS: web.AppKey[SessionHub] = web.AppKey("sessions")
