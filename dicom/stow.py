"""STOW-RS: POST /dicomweb/studies[/{study}] with a multipart/related body of DICOM files."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from dicom import common
from dicom.multipart import MultipartError, parse_content_type, parse_multipart
from dicom.qido import retrieve_url
from dicom.store import Outcome
from server import keys
from server.access import require_clinical
from server.auth import authenticate
from server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

logger = logging.getLogger(__name__)
PART_TYPES = ("application/dicom", "application/octet-stream")


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (declared or actual)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit}",
                              details={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(4 << 20):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the upload exceeds the limit of {limit} bytes",
                                  details={"limit": limit})
    return b"".join(chunks)


def _check_content_type(value: str) -> str:
    media, params = parse_content_type(value)
    if media != "multipart/related":
        raise UnsupportedMediaType(
            'STOW-RS takes multipart/related; type="application/dicom"',
            details={"content_type": media or None})
    part_type = params.get("type", "application/dicom").lower()
    if part_type != "application/dicom":
        raise UnsupportedMediaType(
            f"only application/dicom parts are accepted, not {part_type!r}",
            details={"type": part_type})
    if not params.get("boundary"):
        raise BadRequest("the multipart Content-Type has no boundary", code="invalid_multipart")
    return params["boundary"]


def _sop_item(o: Outcome, base: str) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if o.sop_class_uid:
        item["00081150"] = {"vr": "UI", "Value": [o.sop_class_uid]}
    if o.sop_uid:
        item["00081155"] = {"vr": "UI", "Value": [o.sop_uid]}
    if o.ok:
        item["00081190"] = {"vr": "UR", "Value": [retrieve_url(base, {
            "0020000D": o.study_uid, "0020000E": o.series_uid, "00080018": o.sop_uid},
            "instance")]}
    else:
        item["00081197"] = {"vr": "US", "Value": [o.failure]}
        item["00000902"] = {"vr": "LO", "Value": [o.message[:64]]}
    return item


def stow_response(outcomes: list[Outcome], base: str) -> tuple[int, dict[str, Any]]:
    """The PS3.18 store response and its status (200 all, 202 some, 409 none stored)."""
    doc: dict[str, Any] = {}
    good = [o for o in outcomes if o.ok]
    bad = [o for o in outcomes if not o.ok]
    studies = {o.study_uid for o in good}
    if len(studies) == 1:
        doc["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{studies.pop()}"]}
    if good:
        doc["00081199"] = {"vr": "SQ", "Value": [_sop_item(o, base) for o in good]}
    if bad:
        doc["00081198"] = {"vr": "SQ", "Value": [_sop_item(o, base) for o in bad]}
    status = 200 if not bad else 202 if good else 409
    return status, doc


async def stow(request: web.Request) -> web.Response:
    """Store the instances of a multipart/related upload."""
    user = await authenticate(request)
    require_clinical(user, "upload images")
    boundary = _check_content_type(request.headers.get("Content-Type", ""))
    settings = request.app[keys.SETTINGS]
    body = await read_limited(request, settings.max_upload_bytes)
    try:
        parts = await asyncio.to_thread(parse_multipart, body, boundary)
    except MultipartError as exc:
        raise BadRequest(str(exc), code="invalid_multipart") from None
    if not parts:
        raise BadRequest("the multipart body holds no parts", code="invalid_multipart")
    for n, part in enumerate(parts):
        if part.content_type and part.content_type not in PART_TYPES:
            raise UnsupportedMediaType(
                f"part {n + 1} is {part.content_type!r}; only application/dicom is accepted",
                details={"part": n + 1, "content_type": part.content_type})
    storage = request.app[keys.DICOM_STORAGE]
    outcomes = await storage.ingest([p.body for p in parts], user.institution_id,
                                    source="stow", user_id=user.id,
                                    expected_study=request.match_info.get("study"),
                                    ip=request.remote)
    status, doc = stow_response(outcomes, common.base_url(request))
    return common.json_response(doc, status)
