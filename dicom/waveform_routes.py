"""GET .../instances/{sop}/waveform: a stored waveform's samples as JSON for drawing (a
Yilian addition to DICOMweb; see docs/dicom.md). Access is checked and audited as for
WADO-RS metadata."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from yilian.dicom import keys as dicom_keys
from yilian.dicom.wado_routes import Unprocessable, find_instances
from yilian.dicom.waveform import WaveformError, is_waveform, read_ecg
from yilian.server.core import keys
from yilian.server.core.errors import NotFound


async def waveform(request: web.Request) -> web.Response:
    """The waveform of one instance: each multiplex group's channels (lead, samples in
    microvolts), when it was acquired, the device's measurements and statements."""
    rows, _ = await find_instances(request, "dicom_waveform", one=True)
    row = rows[0]
    if not is_waveform(row.sop_class_uid):
        raise NotFound(f"instance {row.sop_uid} is not a waveform", code="waveform_not_found",
                       details={"sop_class_uid": row.sop_class_uid})
    path = request.app[dicom_keys.DICOM_STORAGE].path_of(row.path)
    zone = ZoneInfo(request.app[keys.SETTINGS].display_timezone)
    try:
        doc = await asyncio.to_thread(read_ecg, path, zone)
    except WaveformError as exc:
        raise Unprocessable(str(exc), details={"sop_instance_uid": row.sop_uid}) from None
    response = web.Response(body=orjson.dumps(doc), content_type="application/json")
    response.enable_compression()
    return response
