"""QIDO-RS handlers: studies, series and instances, nested and flat."""

from __future__ import annotations

from aiohttp import web

from yilian.dicom import common
from yilian.dicom import keys as dicom_keys
from yilian.dicom.qido import parse_query, search
from yilian.server.core import keys
from yilian.server.core.access import require_clinical
from yilian.server.core.auth import authenticate


async def _search(request: web.Request, level: str) -> web.Response:
    user = await authenticate(request)
    require_clinical(user, "search images")
    path = {}
    study_uid = request.match_info.get("study")
    if study_uid:
        path["0020000D"] = study_uid
    if request.match_info.get("series"):
        path["0020000E"] = request.match_info["series"]
    q = parse_query(level, request.query, path)
    db = request.app[keys.DATABASE]
    access = request.app[dicom_keys.DICOM_ACCESS]
    if study_uid:
        async with db.read() as session:
            await access.study_id(session, user, study_uid)
            results = await search(session, access.visible(user), q, common.base_url(request))
    else:  # the search is one SELECT: the fast read path
        results = await search(db, access.visible(user), q,
                               common.base_url(request))
    common.audit(request, user, f"dicom_search_{level}", study_uid,
                       {"query": dict(request.query), "results": len(results)})
    headers = {"Warning": ", ".join(q.warnings)} if q.warnings else None
    return common.json_response(results, headers=headers)


async def search_studies(request: web.Request) -> web.Response:
    """GET /dicomweb/studies"""
    return await _search(request, "study")


async def search_series(request: web.Request) -> web.Response:
    """GET /dicomweb/series and /dicomweb/studies/{study}/series"""
    return await _search(request, "series")


async def search_instances(request: web.Request) -> web.Response:
    """GET /dicomweb/instances, /studies/{study}/instances, .../series/{series}/instances"""
    return await _search(request, "instance")
