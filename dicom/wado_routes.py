"""WADO-RS handlers: instances (multipart), metadata, frames, rendered images, thumbnails."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import Row, Select, select

from yilian.dicom import common
from yilian.dicom import keys as dicom_keys
from yilian.dicom.models import DicomInstance, DicomSeries
from yilian.dicom.multipart import build_multipart, new_boundary
from yilian.dicom.negotiate import (
    EXPLICIT_LE,
    NotAcceptable,
    accepted,
    instance_syntax,
    metadata_acceptable,
    rendered_type,
)
from yilian.dicom.pixels import DecodeError
from yilian.dicom.render import parse_render_options, render
from yilian.dicom.wado import FRAME_MEDIA, StoredInstance, transcode_to_explicit_le
from yilian.server.core import keys
from yilian.server.core.access import require_clinical
from yilian.server.core.auth import authenticate
from yilian.server.core.errors import BadRequest, NotFound, YilianError


class Unprocessable(YilianError):
    status = 422
    code = "cannot_decode"


async def _instances(request: web.Request, action: str, *, one: bool = False
                     ) -> tuple[list[Row[Any]], str]:
    """The instances a retrieve path names, after the visibility check; audited."""
    user = await authenticate(request)
    m = request.match_info
    study_uid = m["study"]
    access = request.app[dicom_keys.DICOM_ACCESS]
    with_meta = action == "dicom_metadata"
    db = request.app[keys.DATABASE]
    require_clinical(user, "read images")
    study_id = access.grants.get((user.id, study_uid))
    rows: list[Row[Any]] = []
    if study_id is not None:  # the common case while a viewer works: one plain SELECT
        rows = await db.rows(
            _instance_query(m, study_id, one, with_meta))
        if not rows:  # the cached grant may name a study row that was since re-created
            access.forget(user, study_uid)
    if not rows:
        async with db.read() as session:
            study_id = await access.study_id(session, user, study_uid)
            rows = list(await session.execute(_instance_query(m, study_id, one, with_meta)))
    if not rows:
        what = "instance" if "instance" in m else "series" if "series" in m else "study"
        raise NotFound(f"no such {what} in study {study_uid}", code=f"{what}_not_found")
    common.audit(request, user, action, study_uid,
                 {k: v for k, v in m.items() if k != "study"} or None)
    return rows, study_uid


_COLUMNS = (DicomInstance.sop_uid, DicomInstance.path, DicomInstance.transfer_syntax,
            DicomInstance.number_of_frames, DicomInstance.frames, DicomInstance.sha256)


def _instance_query(m: Mapping[str, str], study_id: int, one: bool, metadata: bool
                    ) -> Select[Any]:
    # The stored JSON is only read by /metadata, and only it.
    cols = (DicomInstance.metadata_json,) if metadata else _COLUMNS
    stmt = select(*cols).where(DicomInstance.study_ref == study_id)
    if "series" in m:
        stmt = stmt.join(DicomSeries, DicomSeries.id == DicomInstance.series_ref).where(
            DicomSeries.series_uid == m["series"])
    if "instance" in m:
        stmt = stmt.where(DicomInstance.sop_uid == m["instance"])
    stmt = stmt.order_by(DicomInstance.series_ref, DicomInstance.instance_number,
                         DicomInstance.id)
    if one:
        stmt = stmt.limit(1)
    return stmt


def _stored(request: web.Request, row: Row[Any]) -> StoredInstance:
    storage = request.app[dicom_keys.DICOM_STORAGE]
    return StoredInstance(row.sop_uid, storage.path_of(row.path), row.transfer_syntax,
                          row.number_of_frames, row.frames, row.sha256)


def _multipart(parts: list[tuple[bytes, dict[str, str]]], part_type: str,
               ts: str | None = None) -> web.Response:
    boundary = new_boundary()
    ctype = f'multipart/related; type="{part_type}"; boundary={boundary}'
    if ts:
        ctype = f'multipart/related; type="{part_type}"; transfer-syntax={ts}; ' \
                f"boundary={boundary}"
    resp = web.Response(body=build_multipart(parts, boundary))
    resp.headers["Content-Type"] = ctype
    return resp


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def retrieve(request: web.Request) -> web.Response:
    """GET a study, series or instance as multipart/related application/dicom."""
    rows, _ = await _instances(request, "dicom_retrieve")
    syntax = instance_syntax(request.headers.get("Accept"))
    parts = []
    for row in rows:
        inst = _stored(request, row)
        if syntax in ("*", row.transfer_syntax):
            data = await asyncio.to_thread(_read, inst.path)
            ts = row.transfer_syntax
        elif syntax == EXPLICIT_LE:
            try:
                data = await asyncio.to_thread(transcode_to_explicit_le, inst.path)
            except DecodeError as exc:
                raise Unprocessable(str(exc), details={"sop_instance_uid": row.sop_uid}) \
                    from None
            ts = EXPLICIT_LE
        else:
            raise NotAcceptable(
                f"instance {row.sop_uid} is stored as {row.transfer_syntax}; ask for that, "
                f"{EXPLICIT_LE} or *", details={"transfer_syntax": syntax})
        parts.append((data, {"Content-Type": f"application/dicom; transfer-syntax={ts}"}))
    return _multipart(parts, "application/dicom")


async def metadata(request: web.Request) -> web.Response:
    """GET .../metadata: the stored DICOM JSON of every instance, no file opened."""
    rows, _ = await _instances(request, "dicom_metadata")
    metadata_acceptable(request.headers.get("Accept"))
    body = b"[" + b",".join(r.metadata_json.encode() for r in rows) + b"]"
    return web.Response(body=body, content_type=common.DICOM_JSON)


def _frame_numbers(raw: str, count: int) -> list[int]:
    try:
        numbers = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise BadRequest(f"frame list {raw!r} must be comma-separated numbers",
                         code="invalid_frame_list") from None
    if not numbers:
        raise BadRequest("the frame list is empty", code="invalid_frame_list")
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise NotFound(f"frame(s) {bad} out of range 1..{count}", code="frame_not_found",
                       details={"number_of_frames": count})
    return numbers


def _frame_plan(accept: str | None, stored_ts: str) -> tuple[str, str]:
    """(part media type, transfer syntax) for the frames of an instance stored as ``ts``."""
    native = stored_ts not in FRAME_MEDIA
    for c in accepted(accept):
        if not c.multipart:
            continue
        ts = c.transfer_syntax
        if c.media_type in ("*/*", "*"):
            if ts in (None, "*", stored_ts):
                return ("application/octet-stream" if native else FRAME_MEDIA[stored_ts],
                        stored_ts if not native else EXPLICIT_LE)
        elif c.media_type == "application/octet-stream":
            if ts in (None, EXPLICIT_LE) or (ts == "*" and native):
                return "application/octet-stream", EXPLICIT_LE
            if ts in ("*", stored_ts):
                return "application/octet-stream", stored_ts
        elif not native and c.media_type == FRAME_MEDIA[stored_ts] and ts in (None, "*",
                                                                              stored_ts):
            return c.media_type, stored_ts
    raise NotAcceptable(f"frames of this instance are available as {stored_ts} or as "
                        f"application/octet-stream ({EXPLICIT_LE})",
                        details={"accept": accept})


async def frames(request: web.Request) -> web.Response:
    """GET .../frames/{list}: only the frames asked for are read."""
    rows, _ = await _instances(request, "dicom_frames")
    row = rows[0]
    if not row.number_of_frames:
        raise NotFound("this instance has no pixel data", code="frame_not_found")
    numbers = _frame_numbers(request.match_info["frames"], row.number_of_frames)
    media, ts = _frame_plan(request.headers.get("Accept"), row.transfer_syntax)
    inst = _stored(request, row)
    reader = request.app[dicom_keys.DICOM_READER]
    try:
        data = await asyncio.to_thread(
            lambda: [reader.frame_as(inst, n, ts) for n in numbers])
    except DecodeError as exc:
        raise Unprocessable(str(exc)) from None
    base = str(request.url.with_query(None))
    parts = [(d, {"Content-Type": f"{media}; transfer-syntax={ts}",
                  "Content-Location": f"{base.rsplit('/', 1)[0]}/{n}"})
             for n, d in zip(numbers, data, strict=True)]
    return _multipart(parts, media)


async def _render(request: web.Request, thumbnail: bool) -> web.Response:
    rows, _ = await _instances(request, "dicom_thumbnail" if thumbnail else "dicom_rendered")
    media = rendered_type(request.headers.get("Accept"))
    opts = parse_render_options(dict(request.query), media, (128, 128) if thumbnail else None)
    if "instance" not in request.match_info:  # study / series thumbnail: a middle image
        rows = [r for r in rows if r.number_of_frames] or rows
        rows = [rows[len(rows) // 2]]
    row = rows[0]
    if not row.number_of_frames:
        raise NotFound("this instance has no pixel data to render", code="frame_not_found")
    raw = request.match_info.get("frames")
    number = _frame_numbers(raw, row.number_of_frames)[0] if raw else 1
    inst = _stored(request, row)
    reader = request.app[dicom_keys.DICOM_READER]

    def work() -> bytes:
        return render(reader.decoded_frame(inst, number), reader.header(inst), opts)

    try:
        body = await asyncio.to_thread(work)
    except DecodeError as exc:
        raise Unprocessable(str(exc)) from None
    return web.Response(body=body, content_type=media)


async def rendered(request: web.Request) -> web.Response:
    """GET .../rendered (instance or frame): JPEG/PNG with window/level."""
    return await _render(request, thumbnail=False)


async def thumbnail(request: web.Request) -> web.Response:
    """GET .../thumbnail: a small rendered image."""
    return await _render(request, thumbnail=True)


