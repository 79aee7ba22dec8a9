"""Import of institutions, departments and users from CSV or Excel over HTTP: a
``multipart/form-data`` upload with files named ``institutions``, ``departments``, ``users``
(CSV or .xlsx each) or ``workbook`` (one .xlsx with a sheet per table)."""

from __future__ import annotations

from aiohttp import BodyPartReader
from aiohttp.http_exceptions import HttpProcessingError

from yilian.server.clinic.admin.imports import apply
from yilian.server.clinic.admin.imports.reader import TABLES, Upload, read_part
from yilian.server.clinic.admin.permissions import require_admin
from yilian.server.clinic.admin.schemas import ImportReport, ImportResult
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

router = ApiRouter()
#: The largest upload (all files together): 5,000 users are about 0.5 MB of CSV.
MAX_IMPORT_BYTES = 16 * 1024 * 1024
PART_NAMES = (*TABLES, "workbook")


async def _upload(req: ApiRequest) -> Upload:
    request = req.request
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send the files as multipart/form-data",
                                   details={"content_type": request.content_type})
    if (request.content_length or 0) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"an import is at most {MAX_IMPORT_BYTES} bytes",
                              details={"max_bytes": MAX_IMPORT_BYTES})
    upload = Upload()
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart is not supported", code="invalid_multipart")
            name = part.name or ""
            if name not in PART_NAMES:
                raise BadRequest(f"unknown part {name[:40]!r}; send {', '.join(PART_NAMES)}",
                                 code="invalid_multipart", details={"part": name[:40]})
            data = bytearray()
            while chunk := await part.read_chunk(256 * 1024):
                total += len(chunk)
                if total > MAX_IMPORT_BYTES:
                    raise PayloadTooLarge(f"an import is at most {MAX_IMPORT_BYTES} bytes",
                                          details={"max_bytes": MAX_IMPORT_BYTES})
                data += chunk
            read_part(upload, name, bytes(data))
    except (ValueError, HttpProcessingError) as exc:  # a malformed multipart body
        raise BadRequest(f"the multipart body is malformed: {str(exc)[:200]}",
                         code="invalid_multipart") from None
    if not upload.tables and not upload.problems:
        raise BadRequest("no file was sent", code="invalid_multipart")
    return upload


@router.route("POST", "/api/imports/dry-run", summary="Check an import of institutions, "
              "departments and users (CSV or .xlsx) and list every bad row; writes nothing "
              "(administrators)", tag="administration", response=ImportReport)
async def import_dry_run(req: ApiRequest) -> ImportReport:
    require_admin(req.user, "import institutions and users")
    return await apply.dry_run(req.db, req.user, await _upload(req))


@router.route("POST", "/api/imports", summary="Import institutions, departments and users, all "
              "or nothing (422 import_invalid lists every bad row); answers each new user's "
              "one-time initial password as CSV, once (administrators)",
              tag="administration", response=ImportResult, status=201)
async def import_run(req: ApiRequest) -> ImportResult:
    require_admin(req.user, "import institutions and users")
    return await apply.run(req.db, req.user, await _upload(req), req.ip)
