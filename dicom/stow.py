"""STOW-RS: POST /dicomweb/studies[/{study}] with a multipart/related body of DICOM files.

The body is read as it arrives, never from a buffer of its declared size: each part is written
to a file in the staging directory piece by piece and parsed in a worker as soon as it is
complete, while the rest of the upload is still coming. An upload holds a few pieces in
memory whatever it declares or sends; its size (``max_upload_bytes``) and its number of parts
(``max_upload_parts``) are capped (413), and a part that cannot be a DICOM file (empty, or no
``DICM`` after the preamble) is answered as refused without being written or parsed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from yilian.dicom import common
from yilian.dicom import keys as dicom_keys
from yilian.dicom.multipart import (
    Event,
    MultipartError,
    MultipartReader,
    PartData,
    PartStart,
    TooManyParts,
    check_boundary,
    parse_content_type,
)
from yilian.dicom.parse import CANNOT_UNDERSTAND
from yilian.dicom.qido import retrieve_url
from yilian.dicom.store import Outcome, Staged, Storage
from yilian.server.core import keys
from yilian.server.core.access import require_clinical
from yilian.server.core.auth import authenticate
from yilian.server.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

logger = logging.getLogger(__name__)
PART_TYPES = ("application/dicom", "application/octet-stream")
_BIG_READ = 1 << 20
#: A part is written to its staging file in pieces of about this many bytes.
_PIECE = 1 << 20
#: Received bytes of one upload handed to the writers and not yet written; beyond it the
#: upload is not read further until the disk catches up.
_MAX_HELD = 8 << 20
#: A DICOM Part 10 file has "DICM" after its 128-byte preamble.
_MAGIC_AT, _MAGIC = 128, b"DICM"
_NOT_PART10 = "not a DICOM Part 10 file (no 'DICM' prefix after the preamble)"


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
    try:
        check_boundary(params["boundary"])
    except MultipartError as exc:
        raise BadRequest(str(exc), code="invalid_multipart") from None
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


class _StagingFile:
    """One part's file in the staging directory, written piece by piece in the writer
    threads (one write at a time: each waits for the one before)."""

    def __init__(self, staging: Path) -> None:
        self.path = staging / f"{uuid.uuid4().hex}.tmp"  # swept if a crash leaves it
        self.fd = -1

    def write(self, pieces: list[memoryview], last: bool) -> None:
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        for piece in pieces:
            while piece:
                piece = piece[os.write(self.fd, piece):]
        if last:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _discard(files: list[_StagingFile]) -> None:
    for f in files:
        f.close()
        f.path.unlink(missing_ok=True)


class _Part:
    """A part being received: the bytes not yet handed to the writers, and its file."""

    def __init__(self) -> None:
        self.pieces: list[memoryview] = []
        self.buffered = 0
        self.checked = False  # its first bytes are those of a DICOM file
        self.refused = False  # they are not: the rest is dropped
        self.file: _StagingFile | None = None
        self.writing: asyncio.Future[None] | None = None  # its last write


class _Upload:
    """The parts of one STOW request, each written to the staging directory while it arrives
    and parsed in a worker as soon as it is complete."""

    def __init__(self, storage: Storage, expected_study: str | None) -> None:
        self.storage = storage
        self.expected_study = expected_study
        self.jobs: list[asyncio.Future[Staged]] = []
        self.files: list[_StagingFile] = []
        self.writes: list[asyncio.Future[None]] = []
        self.part: _Part | None = None
        self.held = 0
        self._written = asyncio.Event()

    async def take(self, events: list[Event]) -> None:
        """Handle what the reader found in the last chunk; wait while the disk is behind."""
        for event in events:
            if isinstance(event, PartData):
                self._data(event.data)
            elif isinstance(event, PartStart):
                self._start(event)
            else:
                self._end()
        while self.held > _MAX_HELD:
            self._written.clear()
            await self._written.wait()

    def _start(self, event: PartStart) -> None:
        if event.content_type and event.content_type not in PART_TYPES:
            n = len(self.jobs) + 1
            raise UnsupportedMediaType(
                f"part {n} is {event.content_type!r}; only application/dicom is accepted",
                details={"part": n, "content_type": event.content_type})
        self.part = _Part()

    def _data(self, data: memoryview) -> None:
        part = self.part
        assert part is not None
        if part.refused:
            return
        part.pieces.append(data)
        part.buffered += len(data)
        if not part.checked:
            if part.buffered < _MAGIC_AT + len(_MAGIC):
                return
            if _prefix(part.pieces, _MAGIC_AT + len(_MAGIC))[_MAGIC_AT:] != _MAGIC:
                part.refused, part.pieces = True, []
                return
            part.checked = True
        if part.buffered >= _PIECE:
            self._write(part, last=False)

    def _end(self) -> None:
        part, self.part = self.part, None
        assert part is not None
        if not part.checked:  # empty, shorter than a preamble, or not DICOM: no file, no worker
            refused: asyncio.Future[Staged] = asyncio.get_running_loop().create_future()
            refused.set_result(Staged(Outcome("", "", failure=CANNOT_UNDERSTAND,
                                              message=_NOT_PART10)))
            self.jobs.append(refused)
            return
        self._write(part, last=True)
        assert part.file is not None and part.writing is not None
        self.jobs.append(asyncio.ensure_future(self._stage(part.file, part.writing)))

    def _write(self, part: _Part, last: bool) -> None:
        """Hand the part's buffered bytes to a writer thread, after its previous write."""
        if part.file is None:
            part.file = _StagingFile(self.storage.staging)
            self.files.append(part.file)
        pieces, size = part.pieces, part.buffered
        part.pieces, part.buffered = [], 0
        self.held += size
        part.writing = asyncio.ensure_future(
            self._run_write(part.file, pieces, last, part.writing, size))
        self.writes.append(part.writing)

    async def _run_write(self, file: _StagingFile, pieces: list[memoryview], last: bool,
                         after: asyncio.Future[None] | None, size: int) -> None:
        try:
            if after is not None:
                await after
            await asyncio.get_running_loop().run_in_executor(
                self.storage.io, file.write, pieces, last)
        finally:
            self.held -= size
            self._written.set()

    async def _stage(self, file: _StagingFile, written: asyncio.Future[None]) -> Staged:
        await written
        return await self.storage.stage_file(file.path, self.expected_study)

    async def staged(self) -> list[Staged]:
        """Every part's staging result, in order (raises the first failure)."""
        return list(await asyncio.gather(*self.jobs))

    async def abort(self) -> None:
        """Wait for the writes and parses under way (each takes milliseconds; a file is only
        removed once nothing writes it) and remove every file of the upload."""
        pending: list[asyncio.Future[Any]] = [*self.writes, *self.jobs]
        if pending:
            await asyncio.wait(pending)
        for f in pending:
            if not f.cancelled():
                f.exception()  # retrieved: the first failure is the one reported
        if self.files:
            await asyncio.shield(asyncio.get_running_loop().run_in_executor(
                self.storage.io, _discard, self.files))


def _prefix(pieces: list[memoryview], size: int) -> bytes:
    out = b""
    for piece in pieces:
        out += piece[:size - len(out)]
        if len(out) >= size:
            break
    return out


async def _receive(request: web.Request, reader: MultipartReader, limit: int,
                   upload: _Upload) -> None:
    """Read the body as it arrives, handing each part to ``upload`` piece by piece."""
    declared = request.content_length
    if declared is not None and declared > _BIG_READ and \
            getattr(request.transport, "max_size", None) == 256 * 1024:
        request.transport.max_size = _BIG_READ  # type: ignore[union-attr]
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"the upload exceeds the limit of {limit} bytes",
                                  details={"limit": limit})
        await upload.take(reader.feed(chunk))
    await upload.take(reader.finish())


async def stow(request: web.Request) -> web.Response:
    """Store the instances of a multipart/related upload."""
    user = await authenticate(request)
    require_clinical(user, "upload images")
    boundary = _check_content_type(request.headers.get("Content-Type", ""))
    settings = request.app[keys.SETTINGS]
    limit = settings.max_upload_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit}",
                              details={"limit": limit})
    storage: Storage = request.app[dicom_keys.DICOM_STORAGE]
    upload = _Upload(storage, request.match_info.get("study"))
    try:
        try:
            await _receive(request, MultipartReader(boundary, settings.max_upload_parts),
                           limit, upload)
        except TooManyParts as exc:
            raise PayloadTooLarge(str(exc), code="too_many_parts",
                                  details={"limit": exc.limit}) from None
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
    status, doc = stow_response(outcomes, common.base_url(request))
    return common.json_response(doc, status)
