"""A stored instance is never replaced: a re-send of its SOP Instance UID with other pixels, by
C-STORE or STOW-RS, is refused (0111H "Duplicate SOP Instance"), audited, and WADO keeps
serving the original bytes; the same data set again is a success that changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from pynetdicom import AE
from sqlalchemy import select

from tests.conftest import Api
from tests.dicom.conftest import failed, stored, stow
from yilian.dicom import keys as dicom_keys
from yilian.dicom.models import DicomInstance
from yilian.dicom.multipart import parse_content_type, parse_multipart
from yilian.dicom.synth import ct_series
from yilian.server.core import keys
from yilian.server.core.models.audit import AuditEntry

DUPLICATE = 0x0111


@pytest.fixture
async def township(scp_server: TestServer) -> AsyncIterator[Api]:
    """The township doctor, of the institution the demo DR (SHALANG_DR) sends for."""
    async with ClientSession() as http:
        yield await Api(scp_server, http).login("township")


def changed(data: bytes) -> bytes:
    """The same instance (UIDs, header) with other pixels."""
    ds = pydicom.dcmread(io.BytesIO(data))
    pixels = bytearray(ds.PixelData)
    pixels[: len(pixels) // 2] = bytes(len(pixels) // 2)
    ds.PixelData = bytes(pixels)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def cstore(port: int, *items: bytes | Path) -> list[int]:
    """C-STORE as SHALANG_DR: bytes as a decoded data set (pynetdicom re-encodes it), a path
    as the file's own bytes (as a modality sends what it has)."""
    first = items[0]
    ds = pydicom.dcmread(first if isinstance(first, Path) else io.BytesIO(first))
    ae = AE(ae_title="SHALANG_DR")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(i if isinstance(i, Path) else
                                       pydicom.dcmread(io.BytesIO(i))).Status) for i in items]
    finally:
        assoc.release()


async def retrieve(api: Api, data: bytes) -> bytes:
    """The stored file of this instance, as WADO-RS serves it (as stored: transfer-syntax=*)."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    path = (f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    async with api.http.get(api.url(path), headers=api.headers({"Accept": accept})) as r:
        assert r.status == 200, await r.text()
        boundary = parse_content_type(r.headers["Content-Type"])[1]["boundary"]
        (part,) = parse_multipart(await r.read(), boundary)
        return bytes(part.body)


async def _sha_in_index(app: Any, data: bytes) -> str | None:
    sop = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
    async with app[keys.DATABASE].read() as session:
        return await session.scalar(select(DicomInstance.sha256).where(
            DicomInstance.sop_uid == sop))


async def _refusals(app: Any) -> list[tuple[str | None, dict[str, Any]]]:
    await app[keys.AUDIT].flush()
    async with app[keys.DATABASE].read() as session:
        rows = await session.execute(select(AuditEntry.resource_id, AuditEntry.detail)
                                     .where(AuditEntry.action == "dicom_store_refused")
                                     .order_by(AuditEntry.id))
        return [(r[0], r[1] or {}) for r in rows]


async def test_a_changed_resend_is_refused_and_the_original_kept(
        scp_server: TestServer, township: Api, tmp_path: Path) -> None:
    app, port = scp_server.app, scp_server.app[dicom_keys.DICOM_PORT]
    assert port
    via_stow, via_cstore = ct_series(2, 64, patient={"id": "DUP-1"})

    # stored by STOW-RS; then changed pixels by STOW-RS and by C-STORE
    status, doc = await stow(township, [via_stow])
    assert status == 200, doc
    assert await retrieve(township, via_stow) == via_stow
    status, doc = await stow(township, [changed(via_stow)])
    assert status == 409, doc
    (item,) = failed(doc)
    assert item["00081197"]["Value"] == [DUPLICATE]
    assert "different instance with this SOP Instance UID" in item["00000902"]["Value"][0]
    assert await asyncio.to_thread(cstore, port, changed(via_stow)) == [DUPLICATE]
    # the same data set again, by either path, is a success that changes nothing (by
    # C-STORE the file comes wrapped in another file meta header)
    status, doc = await stow(township, [via_stow])
    assert status == 200 and len(stored(doc)) == 1
    path = tmp_path / "same.dcm"
    path.write_bytes(via_stow)
    assert await asyncio.to_thread(cstore, port, path, via_stow) == [0x0000, 0x0000]
    assert await retrieve(township, via_stow) == via_stow
    assert await _sha_in_index(app, via_stow) == hashlib.sha256(via_stow).hexdigest()

    # stored by C-STORE; then changed pixels by C-STORE and by STOW-RS
    assert await asyncio.to_thread(cstore, port, via_cstore) == [0x0000]
    original = await retrieve(township, via_cstore)
    assert original != via_cstore  # pynetdicom's file meta header
    assert await asyncio.to_thread(cstore, port, changed(via_cstore)) == [DUPLICATE]
    status, doc = await stow(township, [changed(via_cstore)])
    assert status == 409 and failed(doc)[0]["00081197"]["Value"] == [DUPLICATE]
    assert await asyncio.to_thread(cstore, port, via_cstore) == [0x0000]
    status, doc = await stow(township, [via_cstore])
    assert status == 200, doc
    assert await retrieve(township, via_cstore) == original
    assert await _sha_in_index(app, via_cstore) == hashlib.sha256(original).hexdigest()

    refusals = await _refusals(app)
    sops = [str(pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID) for d in (via_stow, via_cstore)]
    assert [(sop, d["source"], d["reason"]) for sop, d in refusals] == [
        (sops[0], "stow", "duplicate_sop_instance"),
        (sops[0], "cstore:SHALANG_DR", "duplicate_sop_instance"),
        (sops[1], "cstore:SHALANG_DR", "duplicate_sop_instance"),
        (sops[1], "stow", "duplicate_sop_instance")]
    assert refusals[0][1]["stored_sha256"] == hashlib.sha256(via_stow).hexdigest()


async def test_one_request_holding_an_instance_twice(township: Api) -> None:
    a, b = ct_series(2, 32, patient={"id": "DUP-2"})
    status, doc = await stow(township, [a, changed(a), b, b])
    assert status == 202, doc
    assert len(stored(doc)) == 3
    (item,) = failed(doc)
    assert item["00081197"]["Value"] == [DUPLICATE]
    assert await retrieve(township, a) == a
