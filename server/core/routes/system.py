"""Health, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import hmac
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from yilian.server.core import keys
from yilian.server.core.auth import authenticate, bearer_token
from yilian.server.core.errors import Forbidden
from yilian.server.core.settings import Settings

PING_TIMEOUT = 5.0  # seconds; a database that takes longer is not healthy


def disk_check(settings: Settings) -> dict[str, Any]:
    """Free space of the data directory's file system against the configured minimum (the
    smaller of ``min_free_disk_mb`` and ``min_free_disk_percent`` of its size)."""
    path = Path(settings.data_dir)
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return {"ok": False, "error": f"the data directory cannot be examined: {exc.strerror}"}
    free = st.f_bavail * st.f_frsize
    total = st.f_blocks * st.f_frsize
    minimum = int(min(settings.min_free_disk_mb * 1024 * 1024,
                      total * settings.min_free_disk_percent / 100))
    return {"ok": free >= minimum and free > 0, "free_bytes": free, "total_bytes": total,
            "min_free_bytes": minimum}


async def healthz(request: web.Request) -> web.Response:
    """200 ``{"status": "ok"}`` when the database answers and the data directory's disk has
    room; otherwise 503 ``{"status": "degraded", "checks": {...}}`` naming what is wrong."""
    checks: dict[str, Any] = {}
    try:
        await asyncio.wait_for(request.app[keys.DATABASE].ping(), PING_TIMEOUT)
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver error (or no answer in time) means "not healthy"
        checks["database"] = {"ok": False,
                              "error": f"the database does not answer: {exc!r}"[:300]}
    checks["disk"] = disk_check(request.app[keys.SETTINGS])
    if all(c["ok"] for c in checks.values()):
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "degraded", "checks": checks}, status=503)


async def _may_read_metrics(request: web.Request) -> None:
    """The scrape secret (``YILIAN_METRICS_TOKEN``) or an admin's token; else 401 / 403."""
    secret = request.app[keys.SETTINGS].metrics_token
    token = bearer_token(request)
    if secret and token is not None and hmac.compare_digest(token.encode(), secret.encode()):
        return
    user = await authenticate(request)  # 401 without a valid token
    if user.role != "admin":
        raise Forbidden("metrics are for administrators and the Prometheus scraper")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format, for the scrape secret or an admin."""
    await _may_read_metrics(request)
    m = request.app[keys.METRICS]
    return web.Response(body=m.render(), headers={"Content-Type": m.content_type})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document for every /api route."""
    return web.json_response(request.app[keys.OPENAPI])


def add_system_routes(app: web.Application) -> None:
    """Register /healthz, /metrics and /api/openapi.json."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi)
