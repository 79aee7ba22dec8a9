"""The application factory: the one place that wires routes, middlewares and resources."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from yilian.dicom import keys as dicom_keys
from yilian.dicom import teaching
from yilian.dicom.dicomweb import dicom_storage_ctx, setup_dicomweb
from yilian.dicom.registry import ModalityRegistry
from yilian.dicom.scp import dicom_scp_ctx
from yilian.dicom.sharing import StudyCatalog
from yilian.server.clinic import keys as clinic_keys
from yilian.server.clinic.admin.modalities import MODALITY_TABLE
from yilian.server.clinic.consultations import expire_overdue
from yilian.server.clinic.models import AvailabilityRule
from yilian.server.clinic.referrals import sweeps as referral_sweeps
from yilian.server.clinic.rooms import ConsultationRooms
from yilian.server.clinic.routes import (
    admin,
    admin_imports,
    admin_modalities,
    alliance,
    consultations,
    followups,
    oncall,
    patients,
    referrals,
    reports,
)
from yilian.server.clinic.routes import stats as stats_routes
from yilian.server.clinic.routes import teaching as teaching_routes
from yilian.server.clinic.scheduling import extend_horizon_sync
from yilian.server.clinic.sharing import ClinicalShares
from yilian.server.clinic.teaching import sweeps as teaching_sweeps
from yilian.server.clinic.teaching.media import TeachingMedia
from yilian.server.clinic.teaching.rooms import TeachingRooms
from yilian.server.core import keys
from yilian.server.core.api import ApiRouter, openapi_document
from yilian.server.core.audit import audit_ctx
from yilian.server.core.auth import LoginLimiter, TokenCache
from yilian.server.core.db import Database
from yilian.server.core.deadlines import body_deadline, connection_options
from yilian.server.core.metrics import Metrics
from yilian.server.core.middleware import error_middleware, metrics_middleware
from yilian.server.core.routes import audit as audit_routes
from yilian.server.core.routes import auth, notifications, users
from yilian.server.core.routes.system import add_system_routes
from yilian.server.core.security import (
    client_middleware,
    denials_middleware,
    parse_networks,
    secure_headers,
)
from yilian.server.core.sessions import SessionHub, sessions_ctx
from yilian.server.core.settings import Settings
from yilian.server.core.tasks import background_tasks_ctx, every, spawn
from yilian.server.schema import migrate
from yilian.server.webclient import add_web_client
from yilian.signaling import routes as rtc_routes
from yilian.signaling.server import setup_rtc
from yilian.signaling.sfu.ports import RecordingTarget

logger = logging.getLogger(__name__)
VERSION = "0.1.0"


def api_router() -> ApiRouter:
    """Every /api route of the application."""
    router = ApiRouter()
    for module in (auth, alliance, patients, consultations, reports, referrals, followups,
                   oncall, rtc_routes, teaching, teaching_routes, notifications,
                   admin, admin_modalities, admin_imports, users, audit_routes):
        router.include(module.router)
    router.include(stats_routes.router)  # the statistics (issue 11)
    return router


def create_app(settings: Settings) -> web.Application:
    """Build the Yilian application for these settings."""
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        handler_args=connection_options(settings),
        middlewares=[body_deadline(settings),
                     client_middleware(parse_networks(settings.trusted_proxies)),
                     metrics_middleware(metrics), error_middleware, denials_middleware],
    )
    app.on_response_prepare.append(secure_headers)
    app.on_startup.append(_note_event_loop)
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = metrics
    app[keys.LOGIN_LIMITER] = LoginLimiter(settings.auth.login_attempts_per_minute,
                                           settings.auth.login_attempts_per_address_per_minute)
    app[keys.TOKEN_CACHE] = TokenCache()
    # Accounts: tokens' last use, and revocations (deactivation, logout, ended sessions)
    # told to every process through Redis when there are several.
    app[keys.SESSIONS] = SessionHub(app[keys.TOKEN_CACHE], redis_url=settings.redis_url,
                                    channel=f"{settings.rtc.redis_channel}:auth")

    router = api_router()
    router.add_to(app)
    app[keys.OPENAPI] = openapi_document(router, title="Yilian API", version=VERSION)
    add_system_routes(app)
    # The packages meet here, through the small protocols each declares (ports.py):
    # the images see what the consultations share, the consultations check studies against
    # the image index and show the chat of their video room, the rooms admit participants.
    setup_dicomweb(app, shared=ClinicalShares())
    app[clinic_keys.STUDY_CATALOG] = StudyCatalog(app[dicom_keys.DICOM_ACCESS],
                                                    settings.display_timezone)
    app[clinic_keys.CHAT_LOG] = rtc_routes.RoomChatLog()
    # The administration changes the SCP's modality table through the DICOM package.
    app[MODALITY_TABLE] = ModalityRegistry()
    add_web_client(app)

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(audit_ctx)
    app.cleanup_ctx.append(sessions_ctx)
    app.cleanup_ctx.append(dicom_storage_ctx)
    app.cleanup_ctx.append(dicom_scp_ctx)
    # The background loops stop first at shutdown: they use the database and the audit log.
    app.cleanup_ctx.append(background_tasks_ctx)
    app.cleanup_ctx.append(scheduler_ctx)
    # socket.io /rtc and /notify; its cleanup runs before the audit log and the database close.
    # Teaching rooms: who joins (TeachingRooms) and who presents and where recordings go
    # (TeachingMedia, given the relay's RecordingTarget: the clinic does not import signalling).
    setup_rtc(app, rules={"consultation": ConsultationRooms(), "teaching": TeachingRooms()},
              broadcast=TeachingMedia(settings.data_dir, RecordingTarget))
    return app


async def _note_event_loop(app: web.Application) -> None:
    app[keys.METRICS].note_event_loop()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the database and migrate it to the newest schema; dispose at shutdown."""
    settings = app[keys.SETTINGS]
    _private_data_dir(settings.data_dir)
    db = Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
    await migrate(db)
    app[keys.DATABASE] = db
    yield
    await db.close()


def _private_data_dir(data_dir: Path) -> None:
    """Patient data is for the service account only: the data directory 0700 and its database
    and secret 0600 (also for an install made before files were created private)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    for path in (*data_dir.glob("yilian.sqlite3*"), data_dir / "secret_key"):
        if path.is_file():
            path.chmod(0o600)


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Expire unaccepted requests, escalate unanswered green-channel referrals, keep every
    expert's slots generated ahead, and look after teaching sessions (reminders, abandoned
    broadcasts, recordings left open by a crash)."""
    db = app[keys.DATABASE]
    settings = app[keys.SETTINGS]

    async def expire() -> None:
        count = await expire_overdue(db)
        if count:
            app[keys.METRICS].expired.inc(count)
            logger.info("expired %d consultation requests", count)

    async def extend() -> None:
        # One short transaction per expert: the writers of a busy hour wait for one expert's
        # new day at most, not for the whole alliance's (over a second on SQLite).
        experts = await db.read_sync(
            lambda session: list(session.scalars(select(AvailabilityRule.expert_id).distinct())))
        for expert_id in experts:
            await db.write_sync(partial(extend_horizon_sync, expert_id=expert_id,
                                        days=settings.clinic.slot_horizon_days))

    async def referrals() -> None:
        await referral_sweeps.expire_overdue(db)
        await referral_sweeps.escalate_waiting(db, settings.clinic.referral_escalate_after_seconds)

    spawn(app, every(settings.clinic.expiry_sweep_seconds, expire, "expire"), "expire-consultations")
    spawn(app, every(settings.clinic.referral_sweep_seconds, referrals, "referrals"),
          "referral-sweeps")
    spawn(app, every(timedelta(hours=6).total_seconds(), extend, "slots"), "extend-slots")
    # Teaching: reminders, sessions left live, recordings a crash left open (also at start-up).
    spawn(app, every(teaching_sweeps.SWEEP_SECONDS,
                     lambda: teaching_sweeps.sweep(db, settings.data_dir), "teaching"),
          "teaching-sweeps")
    yield
