"""Wiring of DICOMweb (PS3.18) under /dicomweb: resources, CORS, and the route table."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from yilian.dicom import ecg_photo, qido_routes, stow, wado_routes, waveform_routes
from yilian.dicom import keys as dicom_keys
from yilian.dicom.access import StudyAccess
from yilian.dicom.common import PREFIX
from yilian.dicom.ports import SharedStudies
from yilian.dicom.repair import repair_on_startup
from yilian.dicom.store import Storage
from yilian.dicom.wado import Reader
from yilian.server.core import keys
from yilian.server.core.db import Database

logger = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
    "Access-Control-Expose-Headers": "Content-Type, Content-Length, Warning, Location",
    "Access-Control-Max-Age": "600",
}


async def _preflight(_: web.Request) -> web.Response:
    return web.Response(status=204)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(PREFIX):
        response.headers.update(CORS_HEADERS)


async def dicom_storage_ctx(app: web.Application) -> AsyncIterator[None]:
    """The file store and its index (needs the database, so it follows database_ctx)."""
    settings = app[keys.SETTINGS]
    db: Database = app[keys.DATABASE]
    storage = app[dicom_keys.DICOM_STORAGE] = Storage(settings.data_dir / "dicom", db,
                                                settings.dicom.workers)
    await storage.parsers.start()
    await repair_on_startup(storage.root, storage.staging, db)
    app[dicom_keys.DICOM_READER] = Reader(settings.dicom.tile_cache_mb * 1024 * 1024)
    try:
        yield
    finally:
        storage.close()


def setup_dicomweb(app: web.Application, shared: SharedStudies) -> None:
    """Add the DICOMweb routes, CORS and the storage resource to the application; ``shared``
    tells which studies clinical cases have shared with a user."""
    app[dicom_keys.DICOM_ACCESS] = StudyAccess(shared)
    r = app.router
    s, se, i = "{study}", "{series}", "{instance}"
    inst = f"{PREFIX}/studies/{s}/series/{se}/instances/{i}"
    r.add_post(f"{PREFIX}/studies", stow.stow)
    r.add_post(f"{PREFIX}/studies/{s}", stow.stow)
    r.add_post(f"{PREFIX}/ecg-photos", ecg_photo.post_photo)
    r.add_get(f"{PREFIX}/studies", qido_routes.search_studies)
    r.add_get(f"{PREFIX}/series", qido_routes.search_series)
    r.add_get(f"{PREFIX}/instances", qido_routes.search_instances)
    r.add_get(f"{PREFIX}/studies/{s}/series", qido_routes.search_series)
    r.add_get(f"{PREFIX}/studies/{s}/instances", qido_routes.search_instances)
    r.add_get(f"{PREFIX}/studies/{s}/series/{se}/instances", qido_routes.search_instances)
    r.add_get(f"{PREFIX}/studies/{s}", wado_routes.retrieve)
    r.add_get(f"{PREFIX}/studies/{s}/series/{se}", wado_routes.retrieve)
    r.add_get(inst, wado_routes.retrieve)
    r.add_get(f"{PREFIX}/studies/{s}/metadata", wado_routes.metadata)
    r.add_get(f"{PREFIX}/studies/{s}/series/{se}/metadata", wado_routes.metadata)
    r.add_get(f"{inst}/metadata", wado_routes.metadata)
    r.add_get(f"{inst}/frames/{{frames}}", wado_routes.frames)
    r.add_get(f"{inst}/waveform", waveform_routes.waveform)
    r.add_get(f"{inst}/rendered", wado_routes.rendered)
    r.add_get(f"{inst}/frames/{{frames}}/rendered", wado_routes.rendered)
    r.add_get(f"{inst}/thumbnail", wado_routes.thumbnail)
    r.add_get(f"{inst}/frames/{{frames}}/thumbnail", wado_routes.thumbnail)
    r.add_get(f"{PREFIX}/studies/{s}/thumbnail", wado_routes.thumbnail)
    r.add_get(f"{PREFIX}/studies/{s}/series/{se}/thumbnail", wado_routes.thumbnail)
    r.add_route("OPTIONS", PREFIX + "/{tail:.*}", _preflight)
    app.on_response_prepare.append(_cors)
