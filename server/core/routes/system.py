"""Health, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from yilian.server.core import keys
from yilian.server.core.middleware import error_response


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise."""
    try:
        await request.app[keys.DATABASE].ping()
    except Exception as exc:  # any driver error means "not healthy"
        return error_response(503, "database_unavailable", f"the database does not answer: {exc}")
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
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
