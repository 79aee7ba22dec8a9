"""STOW-RS: POST /dicomweb/studies[/{study}] with a multipart/related body of DICOM files."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from yilian.dicom import common
from yilian.dicom import keys as dicom_keys
from yilian.dicom.multipart import (
    MultipartError,
    MultipartReader,
    Part,
    parse_content_type,
    parse_multipart,
)
from yilian.dicom.qido import retrieve_url
from yilian.dicom.store import Outcome, Staged, Storage, discard_staged
from yilian.server.core import keys
from yilian.server.core.access import require_clinical
from yilian.server.core.auth import authenticate
from yilian.server.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

logger = logging.getLogger(__name__)
PART_TYPES = ("application/dicom", "application/octet-stream")
_BIG_READ = 1 << 20
_GRAIN = 4 << 20


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


class _Buffers:
    """Receive buffers kept for the next uploads. A new buffer of tens of megabytes is zeroed
    and faulted in page by page, a cost of its own next to parsing what it holds; a few are
    kept (up to ``largest`` bytes each) and handed out again."""

    def __init__(self, keep: int = 4, largest: int = 64 << 20) -> None:
        self.keep = keep
        self.largest = largest
        self.free: list[bytearray] = []

    def take(self, size: int) -> bytearray:
        fits = [b for b in self.free if len(b) >= size]
        if not fits:  # rounded up, so the next upload of about this size fits too
            return bytearray(-(-size // _GRAIN) * _GRAIN)
        buf = min(fits, key=len)
        self.free.remove(buf)
        return buf

    def give(self, buf: bytearray) -> None:
        if len(buf) <= self.largest:
            self.free.append(buf)
            if len(self.free) > self.keep:
                self.free.remove(min(self.free, key=len))


_BUFFERS = _Buffers()


class _Upload:
    """The parts of one STOW request, each staged (written, then parsed in a worker) as soon
    as it has arrived, while the rest of the body is still coming in."""

    def __init__(self, storage: Storage, expected_study: str | None) -> None:
        self.storage = storage
        self.expected_study = expected_study
        self.jobs: list[asyncio.Task[Staged]] = []
        self.buffer: bytearray | None = None

    def release(self) -> None:
        """Return the receive buffer for reuse, once nothing reads it any more."""
        if self.buffer is not None and all(j.done() for j in self.jobs):
            _BUFFERS.give(self.buffer)
        self.buffer = None

    def add(self, n: int, part: Part) -> None:
        if part.content_type and part.content_type not in PART_TYPES:
            raise UnsupportedMediaType(
                f"part {n} is {part.content_type!r}; only application/dicom is accepted",
                details={"part": n, "content_type": part.content_type})
        self.jobs.append(asyncio.ensure_future(
            self.storage.stage(part.body, self.expected_study)))

    async def staged(self) -> list[Staged]:
        """Every part's staging result, in order (raises the first failure)."""
        return list(await asyncio.gather(*self.jobs))

    async def abort(self) -> None:
        """Wait for the parts being staged (each takes milliseconds; a staged file is only
        removed once written) and remove what was written."""
        if self.jobs:
            await asyncio.wait(self.jobs)
        await discard_staged([j.result() for j in self.jobs
                              if not j.cancelled() and j.exception() is None])

async def _receive(request: web.Request, boundary: str, limit: int, upload: _Upload) -> None:
    """Read the body, handing each part to ``upload`` as soon as it is complete."""
    declared = request.content_length
    if declared is None:  # chunked: read it all, then split
        body = await read_limited(request, limit)
        parts = await asyncio.to_thread(parse_multipart, body, boundary)
        for n, part in enumerate(parts, 1):
            upload.add(n, part)
        return
    if declared > limit:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit}",
                              details={"limit": limit})
    upload.buffer = _BUFFERS.take(declared)
    reader = MultipartReader(boundary, size=declared, buffer=upload.buffer)
    if declared > _BIG_READ and getattr(request.transport, "max_size", None) == 256 * 1024:
        request.transport.max_size = _BIG_READ  # type: ignore[union-attr]
    n = 0
    async for chunk in request.content.iter_any():
        for part in reader.feed(chunk):
            n += 1
            upload.add(n, part)
    for part in reader.finish():
        n += 1
        upload.add(n, part)


async def stow(request: web.Request) -> web.Response:
    """Store the instances of a multipart/related upload."""
    user = await authenticate(request)
    require_clinical(user, "upload images")
    boundary = _check_content_type(request.headers.get("Content-Type", ""))
    settings = request.app[keys.SETTINGS]
    storage: Storage = request.app[dicom_keys.DICOM_STORAGE]
    upload = _Upload(storage, request.match_info.get("study"))
    try:
        try:
            await _receive(request, boundary, settings.max_upload_bytes, upload)
        except MultipartError as exc:
            raise BadRequest(str(exc), code="invalid_multipart") from None
        if not upload.jobs:
            raise BadRequest("the multipart body holds no parts", code="invalid_multipart")
        staged = await upload.staged()
        outcomes = await storage.commit(staged, user.institution_id, source="stow",
                                        user_id=user.id, ip=request.remote)
    except BaseException:
        await upload.abort()
        raise
    finally:
        upload.release()
    status, doc = stow_response(outcomes, common.base_url(request))
    return common.json_response(doc, status)
