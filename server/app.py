"""The application factory: the one place that wires routes, middlewares and resources."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select

from dicom import teaching
from dicom.dicomweb import dicom_storage_ctx, setup_dicomweb
from dicom.scp import dicom_scp_ctx
from server import keys
from server.api import ApiRouter, openapi_document
from server.auth import LoginLimiter, TokenCache
from server.consultations import expire_overdue
from server.db import Database
from server.metrics import Metrics
from server.middleware import error_middleware, metrics_middleware
from server.models import AvailabilityRule
from server.routes import alliance, auth, consultations, patients, reports
from server.routes.system import add_system_routes
from server.scheduling import extend_horizon
from server.settings import Settings
from server.tasks import background_tasks_ctx, every, spawn
from signaling import routes as rtc_routes
from signaling.server import setup_rtc
from web import WEB_DIR

logger = logging.getLogger(__name__)
VERSION = "0.1.0"


def api_router() -> ApiRouter:
    """Every /api route of the application."""
    router = ApiRouter()
    for module in (auth, alliance, patients, consultations, reports, rtc_routes, teaching):
        router.include(module.router)
    return router


def create_app(settings: Settings) -> web.Application:
    """Build the Yilian application for these settings."""
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[metrics_middleware(metrics), error_middleware],
    )
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = metrics
    app[keys.LOGIN_LIMITER] = LoginLimiter(settings.login_attempts_per_minute)
    app[keys.TOKEN_CACHE] = TokenCache()

    router = api_router()
    router.add_to(app)
    app[keys.OPENAPI] = openapi_document(router, title="Yilian API", version=VERSION)
    add_system_routes(app)
    setup_dicomweb(app)
    _add_web_client(app)

    app.cleanup_ctx.append(background_tasks_ctx)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(dicom_storage_ctx)
    app.cleanup_ctx.append(dicom_scp_ctx)
    app.cleanup_ctx.append(scheduler_ctx)
    setup_rtc(app)  # socket.io /rtc; its cleanup runs before the database closes
    return app


def _add_web_client(app: web.Application) -> None:
    index = WEB_DIR / "index.html"

    async def serve_index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(index)

    if index.exists():
        app.router.add_get("/", serve_index)
        app.router.add_static("/static/", WEB_DIR / "static", show_index=False)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the database and migrate it to the newest schema; dispose at shutdown."""
    settings = app[keys.SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    await db.migrate()
    app[keys.DATABASE] = db
    yield
    await db.close()


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Expire unaccepted requests and keep every expert's slots generated ahead."""
    db = app[keys.DATABASE]
    settings = app[keys.SETTINGS]

    async def expire() -> None:
        count = await expire_overdue(db)
        if count:
            app[keys.METRICS].expired.inc(count)
            logger.info("expired %d consultation requests", count)

    async def extend() -> None:
        async with db.write() as session:
            experts = (
                await session.execute(select(AvailabilityRule.expert_id).distinct())
            ).scalars().all()
            for expert_id in experts:
                await extend_horizon(session, expert_id, settings.slot_horizon_days)

    spawn(app, every(settings.expiry_sweep_seconds, expire, "expire"), "expire-consultations")
    spawn(app, every(timedelta(hours=6).total_seconds(), extend, "slots"), "extend-slots")
    yield
