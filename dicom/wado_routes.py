"""WADO-RS handlers: instances (multipart), metadata, frames, rendered images, thumbnails.

Multipart answers larger than one read are streamed part by part as their parts are read, so
a request holds about one frame, or one read of a file, whatever it asks for."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import Row, Select, select

from yilian.dicom import common
from yilian.dicom import keys as dicom_keys
from yilian.dicom.models import DicomInstance, DicomSeries
from yilian.dicom.multipart import (
    build_multipart,
    closing,
    new_boundary,
    part_head,
    split_unquoted,
)
from yilian.dicom.negotiate import (
    EXPLICIT_LE,
    NotAcceptable,
    accepted,
    instance_syntax,
    metadata_acceptable,
    rendered_type,
)
from yilian.dicom.parse import INDEX_INT_MAX
from yilian.dicom.pixels import DecodeError
from yilian.dicom.render import parse_render_options, render
from yilian.dicom.wado import FRAME_MEDIA, StoredInstance, read_part, transcode_to_explicit_le
from yilian.dicom.waveform import is_waveform
from yilian.server.core import keys
from yilian.server.core.access import require_clinical
from yilian.server.core.auth import authenticate
from yilian.server.core.errors import BadRequest, NotFound, YilianError
from yilian.server.core.schemas import ascii_int

logger = logging.getLogger(__name__)
#: A streamed answer reads about this many bytes at a time (frames, or a piece of a file).
STREAM_READ = 1 << 20


class Unprocessable(YilianError):
    status = 422
    code = "cannot_decode"


async def find_instances(request: web.Request, action: str, *, one: bool = False
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
            DicomInstance.number_of_frames, DicomInstance.frames, DicomInstance.sha256,
            DicomInstance.sop_class_uid)


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


def _content_type(part_type: str, boundary: str, ts: str | None = None) -> str:
    syntax = f"transfer-syntax={ts}; " if ts else ""
    return f'multipart/related; type="{part_type}"; {syntax}boundary={boundary}'


def _multipart(parts: list[tuple[bytes, dict[str, str]]], part_type: str,
               ts: str | None = None) -> web.Response:
    boundary = new_boundary()
    resp = web.Response(body=build_multipart(parts, boundary))
    resp.headers["Content-Type"] = _content_type(part_type, boundary, ts)
    return resp


class _Streamed:
    """A multipart/related answer written part by part while its parts are read. It starts
    (status and headers sent) with its first part, so an error before that is an ordinary
    error answer; a failure after it closes the connection before the closing delimiter, so
    the client sees a truncated answer rather than a short one."""

    def __init__(self, request: web.Request, part_type: str) -> None:
        self.request = request
        self.boundary = new_boundary()
        self.resp = web.StreamResponse(
            headers={"Content-Type": _content_type(part_type, self.boundary)})
        self.parts = 0

    @property
    def started(self) -> bool:
        return self.resp.prepared

    async def part(self, headers: dict[str, str], data: bytes = b"") -> None:
        """Open the next part (and write its first bytes)."""
        if not self.resp.prepared:
            await self.resp.prepare(self.request)
        await self.resp.write(part_head(headers, self.boundary, self.parts == 0))
        self.parts += 1
        if data:
            await self.resp.write(data)

    async def write(self, data: bytes) -> None:
        """More bytes of the current part."""
        await self.resp.write(data)

    async def finish(self) -> web.StreamResponse:
        """Write the closing delimiter; aiohttp ends the body."""
        if not self.resp.prepared:
            await self.resp.prepare(self.request)
        await self.resp.write(closing(self.boundary, self.parts == 0))
        return self.resp

    def cut(self, exc: Exception) -> web.StreamResponse:
        """Stop a started answer: close the connection without the closing delimiter."""
        logger.warning("%s %s stopped after %d part(s): %s", self.request.method,
                       self.request.path, self.parts, exc)
        if self.request.transport is not None:
            self.request.transport.close()
        return self.resp


_SUFFIX_SPACE = re.compile(r"(?<=[A-Za-z0-9.-]) (?=(json|xml)\b)")


def accept_of(request: web.Request) -> str | None:
    """What the client accepts: PS3.18 8.3.3.1's ``accept`` query parameter (repeatable) when
    given, over the Accept header. aiohttp has URL-decoded it; a "+" left unencoded has
    become a space ("application/dicom json") and is restored, and an item quoted whole
    ("image/png" in quotes, as some clients send it) is unquoted."""
    values = request.query.getall("accept", [])
    if not values:
        return request.headers.get("Accept")
    items = []
    for item in split_unquoted(",".join(values), ","):
        item = _SUFFIX_SPACE.sub("+", item)
        if len(item) > 1 and item[0] == item[-1] == '"' and item.count('"') == 2:
            item = item[1:-1].strip()
        items.append(item)
    return ", ".join(items)


def _retrieve_syntax(row: Row[Any], syntax: str) -> str:
    """The transfer syntax an instance is sent in, for the one asked for."""
    if syntax in ("*", row.transfer_syntax):
        return str(row.transfer_syntax)
    if syntax == EXPLICIT_LE:
        return EXPLICIT_LE
    raise NotAcceptable(
        f"instance {row.sop_uid} is stored as {row.transfer_syntax}; ask for that, "
        f"{EXPLICIT_LE} or *", details={"transfer_syntax": syntax})


async def retrieve(request: web.Request) -> web.StreamResponse:
    """GET a study, series or instance as multipart/related application/dicom, streamed: a
    file as stored is sent a read at a time, a transcoded one whole."""
    rows, _ = await find_instances(request, "dicom_retrieve")
    syntax = instance_syntax(accept_of(request))
    plan = [(_stored(request, row), _retrieve_syntax(row, syntax)) for row in rows]
    out = _Streamed(request, "application/dicom")
    inst = plan[0][0]
    try:
        for inst, ts in plan:
            head = {"Content-Type": f"application/dicom; transfer-syntax={ts}"}
            if ts != inst.transfer_syntax:
                await out.part(head, await asyncio.to_thread(transcode_to_explicit_le,
                                                              inst.path))
                continue
            offset = 0
            while True:
                data = await asyncio.to_thread(read_part, inst.path, offset, STREAM_READ)
                if offset == 0:
                    await out.part(head, data)
                elif data:
                    await out.write(data)
                offset += len(data)
                if len(data) < STREAM_READ:
                    break
    except ConnectionError:  # the client has gone
        return out.resp
    except DecodeError as exc:
        if not out.started:
            raise Unprocessable(str(exc), details={"sop_instance_uid": inst.sop_uid}) \
                from None
        return out.cut(exc)
    except OSError as exc:
        if not out.started:
            raise
        return out.cut(exc)
    return await out.finish()


async def metadata(request: web.Request) -> web.Response:
    """GET .../metadata: the stored DICOM JSON of every instance, no file opened."""
    rows, _ = await find_instances(request, "dicom_metadata")
    metadata_acceptable(accept_of(request))
    body = b"[" + b",".join(r.metadata_json.encode() for r in rows) + b"]"
    return web.Response(body=body, content_type=common.DICOM_JSON)


def _frame_numbers(raw: str, count: int, limit: int) -> list[int]:
    """The frame numbers of a frame list: at most ``limit``, each once, each in range."""
    items = raw.split(",")
    if len(items) > limit:
        raise BadRequest(f"the frame list names {len(items)} frames; at most {limit} may be "
                         "asked for at once", code="too_many_frames", details={"limit": limit})
    parsed = [ascii_int(x, 0, INDEX_INT_MAX) for x in items]  # ASCII digits only: not "١", " 1"
    if any(n is None for n in parsed):
        raise BadRequest(f"frame list {raw[:100]!r} must be comma-separated numbers",
                         code="invalid_frame_list")
    numbers = [n for n in parsed if n is not None]
    if not numbers:
        raise BadRequest("the frame list is empty", code="invalid_frame_list")
    if len(set(numbers)) < len(numbers):
        twice = sorted(n for n, seen in Counter(numbers).items() if seen > 1)[:10]
        raise BadRequest(f"frame(s) {twice} are listed more than once", code="invalid_frame_list",
                         details={"repeated": twice})
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise NotFound(f"frame(s) {bad[:10]} out of range 1..{count}", code="frame_not_found",
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


async def frames(request: web.Request) -> web.StreamResponse:
    """GET .../frames/{list}: only the frames asked for are read, a batch at a time."""
    rows, _ = await find_instances(request, "dicom_frames")
    row = rows[0]
    if not row.number_of_frames:
        raise NotFound("this instance has no pixel data", code="frame_not_found")
    numbers = _frame_numbers(request.match_info["frames"], row.number_of_frames,
                             request.app[keys.SETTINGS].max_frames_per_request)
    media, ts = _frame_plan(accept_of(request), row.transfer_syntax)
    inst = _stored(request, row)
    reader = request.app[dicom_keys.DICOM_READER]
    base = str(request.url.with_query(None)).rsplit("/", 1)[0]

    def head(n: int) -> dict[str, str]:
        return {"Content-Type": f"{media}; transfer-syntax={ts}",
                "Content-Location": f"{base}/{n}"}

    def batch(start: int) -> list[bytes]:
        return reader.frames_as(inst, numbers[start:], ts, STREAM_READ)

    try:
        data = await asyncio.to_thread(batch, 0)
    except DecodeError as exc:
        raise Unprocessable(str(exc)) from None
    if len(data) == len(numbers):  # the whole answer is one read: sent with its length
        return _multipart([(d, head(n)) for n, d in zip(numbers, data, strict=True)], media)
    out = _Streamed(request, media)
    sent = 0
    try:
        while True:
            for frame in data:
                await out.part(head(numbers[sent]), frame)
                sent += 1
            if sent == len(numbers):
                break
            data = await asyncio.to_thread(batch, sent)
    except ConnectionError:  # the client has gone
        return out.resp
    except (DecodeError, OSError) as exc:
        return out.cut(exc)
    return await out.finish()


async def _render(request: web.Request, thumbnail: bool) -> web.Response:
    rows, _ = await find_instances(request, "dicom_thumbnail" if thumbnail else "dicom_rendered")
    # viewers ask for thumbnails as ?accept=image/jpeg (OHIF does)
    media = rendered_type(accept_of(request))
    opts = parse_render_options(dict(request.query), media, (128, 128) if thumbnail else None)
    if "instance" not in request.match_info:  # study / series thumbnail: a middle image
        rows = [r for r in rows if r.number_of_frames] or rows
        rows = [rows[len(rows) // 2]]
    row = rows[0]
    if not row.number_of_frames:
        hint = " (a waveform: its samples are at .../waveform)" if is_waveform(
            row.sop_class_uid) else ""
        raise NotFound(f"this instance has no pixel data to render{hint}",
                       code="frame_not_found")
    raw = request.match_info.get("frames")
    limit = request.app[keys.SETTINGS].max_frames_per_request
    number = _frame_numbers(raw, row.number_of_frames, limit)[0] if raw else 1
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


