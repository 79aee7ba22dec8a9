"""Every test file pydicom ships (those present on disk) sent by STOW-RS: valid ones are
stored and render, broken ones are refused with a reason, never a 500, nothing half-stored.

pydicom ships one instance in several encodings under one SOP Instance UID (MR_small.dcm,
MR_small_RLE.dcm, ...). A stored instance is never replaced, so the later encodings are
refused (0111H) and then sent again as instances of their own."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from aiohttp.test_utils import TestServer
from pydicom.data import get_testdata_files
from sqlalchemy import func, select

from tests.conftest import Api
from tests.dicom.conftest import dget, failed, stored, stow
from yilian.dicom import keys as dicom_keys
from yilian.dicom.models import DicomInstance
from yilian.server.core import keys

DUPLICATE = 0x0111


def _new_uid(data: bytes, sop: str) -> bytes:
    """The file with a new SOP Instance UID of the same length (every encoding keeps its
    lengths; the UID is text in all of them but the deflated one)."""
    assert len(sop) > 16
    digits = str(secrets.randbelow(9 * 10 ** (len(sop) - 6)) + 10 ** (len(sop) - 6))
    return data.replace(sop.encode(), f"2.25.{digits}".encode())


def corpus() -> list[Path]:
    """pydicom's test data files that are on disk (the others would need a download)."""
    return sorted(Path(f) for f in get_testdata_files() if os.path.isfile(f))


async def test_every_pydicom_test_file(api: Api, server: TestServer) -> None:
    township = await api.login("township")
    files = corpus()
    assert len(files) > 100
    accepted, refused, duplicates = [], [], []
    for path in files:
        data = path.read_bytes()
        status, doc = await stow(township, [data])
        if status == 409 and failed(doc)[0]["00081197"]["Value"] == [DUPLICATE]:
            duplicates.append(path.name)
            sop = failed(doc)[0]["00081155"]["Value"][0]
            status, doc = await stow(township, [_new_uid(data, sop)])
        assert status in (200, 409), (path.name, status, doc)
        if status == 409:
            (item,) = failed(doc)
            assert item["00081197"]["Value"][0] > 0
            assert item["00000902"]["Value"][0]
            refused.append(path.name)
            continue
        (item,) = stored(doc)
        url = item["00081190"]["Value"][0].split("/dicomweb", 1)[1]
        status, meta = await dget(township, f"/dicomweb{url}/metadata")
        assert status == 200, (path.name, meta)
        accepted.append(path.name)
        if "00280010" not in meta[0]:
            continue  # no image (structured report, RT plan, waveform...)
        status, body = await dget(township, f"/dicomweb{url}/rendered")
        assert status == 200, (path.name, body)
        assert body[:2] == b"\xff\xd8", path.name
    # a sample of both outcomes, so the corpus keeps meaning what we think
    assert {"CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm",
            "JPEG2000.dcm", "image_dfl.dcm", "MR_small_bigendian.dcm"} <= set(accepted)
    assert {"no_meta.dcm", "MR_truncated.dcm", "README.txt",
            "meta_missing_tsyntax.dcm"} <= set(refused)
    assert {"MR_small_RLE.dcm", "MR_small_bigendian.dcm", "SC_rgb_rle.dcm"} <= set(duplicates)
    storage = server.app[dicom_keys.DICOM_STORAGE]
    assert not list(storage.root.rglob("*.tmp"))
    async with server.app[keys.DATABASE].read() as session:
        rows = (await session.execute(select(DicomInstance.path))).scalars().all()
        count = await session.scalar(select(func.count()).select_from(DicomInstance))
    assert count == len(rows)
    for rel in rows:
        assert storage.path_of(rel).is_file()
    on_disk = {p.relative_to(storage.root).as_posix() for p in storage.root.rglob("*.dcm")}
    assert on_disk == set(rows)
