"""``yilian dicom repair-slides`` and the repair on startup: slides stored before our
converter wrote the WSI attributes are brought up to date, file by file, pixel data and UIDs
unchanged, the index consistent, audited; a dry run changes nothing, a second run neither;
slides from other systems are never rewritten."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import subprocess
import sys
from typing import Any

import pydicom
from aiohttp.test_utils import TestServer
from pydicom.uid import generate_uid
from sqlalchemy import select, update

from tests.conftest import Api
from tests.dicom.conftest import dget, stored, stow
from tests.dicom.test_wsi_conformance import dciodvfy_errors
from yilian.dicom.demo import slide_image
from yilian.dicom.models import DicomInstance
from yilian.dicom.synth import to_bytes
from yilian.dicom.wsi import VL_WSI, build_pyramid, srgb_profile
from yilian.server.app import create_app
from yilian.server.core import keys
from yilian.server.core.models.audit import AuditEntry
from yilian.server.core.settings import Settings

YILIAN = "import sys; from yilian.server.cli import main; sys.exit(main(sys.argv[1:]))"
# What slides made before the WSI work lacked (and the NumberOfFocalPlanes they had).
STRIPPED = ("ImageOrientationSlide", "TotalPixelMatrixOriginSequence", "DimensionIndexSequence",
            "PositionReferenceIndicator", "ManufacturerModelName", "DeviceSerialNumber",
            "SoftwareVersions", "AcquisitionDuration", "AcquisitionContextSequence",
            "IssuerOfTheContainerIdentifierSequence", "ContainerTypeCodeSequence",
            "LossyImageCompressionRatio")


def old_style(levels: list[bytes], manufacturer: str = "Yilian") -> list[bytes]:
    """A pyramid as the converter wrote it before: the attributes above and the ICC profile
    missing, NumberOfFocalPlanes present."""
    out = []
    for data in levels:
        ds = pydicom.dcmread(io.BytesIO(data))
        for keyword in STRIPPED:
            delattr(ds, keyword)
        path = ds.OpticalPathSequence[0]
        del path.ICCProfile, path.ColorSpace, path.OpticalPathDescription
        ds.NumberOfFocalPlanes = 1
        ds.Manufacturer = manufacturer
        out.append(to_bytes(ds))
    return out


async def _rows(server: TestServer) -> dict[str, Any]:
    async with server.app[keys.DATABASE].read() as session:
        rows = await session.execute(select(DicomInstance).where(
            DicomInstance.sop_class_uid == VL_WSI))
        return {r.sop_uid: (r.path, r.size, r.sha256, r.frames, r.metadata_json)
                for r in rows.scalars()}


async def _repair_audits(server: TestServer) -> list[tuple[str, Any]]:
    await server.app[keys.AUDIT].flush()
    async with server.app[keys.DATABASE].read() as session:
        rows = await session.execute(select(AuditEntry.resource_id, AuditEntry.detail)
                                     .where(AuditEntry.action == "dicom_repair"))
        return [tuple(r) for r in rows]


def _cli(settings: Settings, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["dicom", "repair-slides", "--data-dir", str(settings.data_dir), *extra]
    if settings.database_url:
        args += ["--database-url", settings.database_url]
    return subprocess.run([sys.executable, "-c", YILIAN, *args], capture_output=True,
                          text=True, timeout=300)


async def _frames(api: Api, study: str, series: str, sop: str, count: int) -> bytes:
    status, body = await dget(api, f"/dicomweb/studies/{study}/series/{series}/instances/"
                              f"{sop}/frames/{','.join(str(n) for n in range(1, count + 1))}",
                              headers={"Accept": 'multipart/related; type="image/jpeg"'})
    assert status == 200
    return _parts(body)


def _parts(body: bytes) -> bytes:
    """The frame bytes of a multipart answer, boundaries and part headers dropped."""
    boundary = body.split(b"\r\n", 1)[0]
    frames = [p.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
              for p in body.split(boundary)[1:-1]]
    return b"".join(hashlib.sha256(f).digest() for f in frames)


async def test_repair_command(api: Api, server: TestServer, settings: Settings) -> None:
    ours = old_style(build_pyramid(slide_image(600, 400), tile=256, patient_id="SL-OLD"))
    theirs = old_style(build_pyramid(slide_image(300, 200), tile=256, patient_id="SL-3RD"),
                       manufacturer="Another scanner")
    township = await api.login("township")
    status, doc = await stow(township, ours + theirs)
    assert status == 200 and len(stored(doc)) == len(ours) + len(theirs), doc
    heads = [pydicom.dcmread(io.BytesIO(d), stop_before_pixels=True) for d in ours + theirs]
    base = heads[0]
    before = await _rows(server)
    root = settings.data_dir / "dicom"
    tiles_before = await _frames(township, base.StudyInstanceUID, base.SeriesInstanceUID,
                                 base.SOPInstanceUID, int(base.NumberOfFrames))
    # the third party's stored metadata made stale, as an older parser left ICC profiles out
    db = server.app[keys.DATABASE]
    other = heads[-1].SOPInstanceUID
    async with db.write() as session:
        await session.execute(update(DicomInstance).where(DicomInstance.sop_uid == other)
                              .values(metadata_json="{}"))

    dry = await asyncio.to_thread(_cli, settings, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert sum(line.startswith("would-repair") for line in lines) == len(ours)
    assert "ImageOrientationSlide" in dry.stdout and "OpticalPathSequence.ICCProfile" in \
        dry.stdout and "(dry run: nothing changed)" in lines[-1]
    assert [line.split()[0] for line in lines if other in line] == ["would-refresh"]
    assert (await _rows(server))[other][4] == "{}"
    assert {k: v for k, v in (await _rows(server)).items() if k != other} == \
        {k: v for k, v in before.items() if k != other}
    assert await _repair_audits(server) == []

    done = await asyncio.to_thread(_cli, settings)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("repaired") for line in lines) == len(ours)
    assert [line.split()[0] for line in lines if other in line] == ["metadata"]
    after = await _rows(server)
    for head in heads[:len(ours)]:
        sop = head.SOPInstanceUID
        path, size, sha, frames, meta = after[sop]
        assert path != before[sop][0] and not (root / before[sop][0]).exists()
        data = (root / path).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha
        ds = pydicom.dcmread(io.BytesIO(data))
        assert (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID) == (
            sop, head.SeriesInstanceUID, head.StudyInstanceUID)
        assert [int(v) for v in ds.ImageOrientationSlide] == [0, -1, 0, -1, 0, 0]
        assert ds.OpticalPathSequence[0].ICCProfile == srgb_profile()
        assert "NumberOfFocalPlanes" not in ds and "00480102" in meta
        if shutil.which("dciodvfy"):
            assert dciodvfy_errors(root / path) == []
    # the third party's file is as it was; its index entry matches it again
    assert after[other][:4] == before[other][:4] and after[other][4] == before[other][4]
    tiles_after = await _frames(township, base.StudyInstanceUID, base.SeriesInstanceUID,
                                base.SOPInstanceUID, int(base.NumberOfFrames))
    assert tiles_after == tiles_before
    status, meta = await dget(township, f"/dicomweb/studies/{base.StudyInstanceUID}/series/"
                              f"{base.SeriesInstanceUID}/metadata")
    assert status == 200 and all("00480102" in m for m in meta)
    from wsidicom import WsiDicom

    with WsiDicom.open([root / after[h.SOPInstanceUID][0] for h in heads[:len(ours)]]) as s:
        assert (s.size.width, s.size.height) == (600, 400)
    audits = await _repair_audits(server)
    assert sorted(r for r, _ in audits) == sorted([h.SOPInstanceUID for h in heads[:len(ours)]]
                                                  + [other])
    assert all(d["new_sha256"] == after[r][2] and d["old_sha256"] == before[r][2]
               for r, d in audits)

    again = await asyncio.to_thread(_cli, settings)
    assert again.returncode == 0 and "repaired" not in again.stdout and \
        "metadata" not in again.stdout
    assert await _rows(server) == after and len(await _repair_audits(server)) == len(audits)


async def test_repair_reports_a_missing_file(api: Api, server: TestServer,
                                             settings: Settings) -> None:
    levels = old_style(build_pyramid(slide_image(300, 200), tile=256))
    township = await api.login("township")
    status, doc = await stow(township, levels)
    assert status == 200 and len(stored(doc)) == len(levels)
    mine = {pydicom.dcmread(io.BytesIO(d), stop_before_pixels=True).SOPInstanceUID
            for d in levels}
    before = {k: v for k, v in (await _rows(server)).items() if k in mine}
    lost = sorted(before)[0]
    (settings.data_dir / "dicom" / before[lost][0]).unlink()
    done = await asyncio.to_thread(_cli, settings)
    assert done.returncode == 1
    assert [line.split()[0] for line in done.stdout.splitlines() if lost in line] == ["failed"]
    after = await _rows(server)
    assert after[lost] == before[lost]
    assert all(after[k][2] != before[k][2] for k in before if k != lost)
    assert not list((settings.data_dir / "dicom" / "staging").glob("*/*.tmp"))


async def test_startup_repairs_old_slides(api: Api, server: TestServer,
                                          settings: Settings) -> None:
    levels = old_style(build_pyramid(slide_image(300, 200), tile=256,
                                     study_uid=generate_uid()))
    township = await api.login("township")
    status, doc = await stow(township, levels)
    assert status == 200 and len(stored(doc)) == len(levels)
    mine = {pydicom.dcmread(io.BytesIO(d), stop_before_pixels=True).SOPInstanceUID
            for d in levels}
    assert all("00480102" not in v[4] for k, v in (await _rows(server)).items() if k in mine)
    second = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await second.start_server()  # the server starts as `yilian serve` and `yilian demo` do
    try:
        rows = await _rows(second)
    finally:
        await second.close()
    assert all("00480102" in v[4] and '"00282000"' in v[4] for v in rows.values())
    for path, size, sha, _, _ in rows.values():
        data = (settings.data_dir / "dicom" / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == size


async def test_two_repairs_at_once_leave_one_file_per_instance(
        api: Api, server: TestServer, settings: Settings) -> None:
    """Two repairs racing (the CLI while a server starts, say): each instance is repaired
    once; the loser's file is removed; the index names the file that is there."""
    from yilian.dicom.repair import repair_slides
    from yilian.dicom.workers import STAGING, StagingArea

    levels = old_style(build_pyramid(slide_image(600, 400), tile=128))
    township = await api.login("township")
    status, doc = await stow(township, levels)
    assert status == 200 and len(stored(doc)) == len(levels)
    mine = {pydicom.dcmread(io.BytesIO(d), stop_before_pixels=True).SOPInstanceUID
            for d in levels}
    root = settings.data_dir / "dicom"
    areas = [StagingArea(root / STAGING) for _ in range(2)]
    try:
        runs = await asyncio.gather(*(repair_slides(root, a.dir, server.app[keys.DATABASE])
                                      for a in areas))
    finally:
        for a in areas:
            a.close()
    outcomes = [r for run in runs for r in run if r.sop_uid in mine]
    assert sorted(r.sop_uid for r in outcomes if r.status == "repaired") == sorted(mine)
    assert all(r.status in ("repaired", "current", "failed") for r in outcomes)
    rows = {k: v for k, v in (await _rows(server)).items() if k in mine}
    folder = root / next(iter(rows.values()))[0].rsplit("/", 1)[0]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        v[0].rsplit("/", 1)[1] for v in rows.values())
    for path, size, sha, _, meta in rows.values():
        data = (root / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == size
        assert "00480102" in meta
    assert len([a for a, _ in await _repair_audits(server) if a in mine]) == len(mine)
