"""Hostile DICOM: integers past the index's range in attributes and in QIDO, numbers in other
scripts, dates at the ends of the calendar, and images that cannot be rendered. One bad
instance never fails a whole STOW; nothing answers 500."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pydicom
from aiohttp.test_utils import TestServer
from pydicom import Dataset, config
from pydicom.uid import generate_uid
from sqlalchemy import select

from tests.conftest import Api
from tests.dicom.conftest import dget, failed, stored, stow
from yilian.dicom import keys as dicom_keys
from yilian.dicom.models import DicomInstance, DicomSeries
from yilian.dicom.synth import ct_series, new_instance, to_bytes
from yilian.server.core import keys

HUGE = "99999999999999999999"  # 20 digits: past 64 bits
EXPLICIT_LE = "1.2.840.10008.1.2.1"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"


@contextmanager
def _lenient_writing() -> Iterator[None]:
    """Let pydicom write values its validation would refuse (a 20-digit IS)."""
    before = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        yield
    finally:
        config.settings.writing_validation_mode = before


def _edited(data: bytes, edit: Callable[[Dataset], None]) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SOPInstanceUID = generate_uid()
    edit(ds)
    with _lenient_writing():
        return to_bytes(ds)


def _sop(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def _sops(items: list[dict]) -> set[str]:
    return {i["00081155"]["Value"][0] for i in items}


async def _index(server: TestServer, sop: str) -> DicomInstance | None:
    async with server.app[keys.DATABASE].read() as session:
        return await session.scalar(select(DicomInstance).where(DicomInstance.sop_uid == sop))


def _no_staged_files(server: TestServer) -> None:
    root = server.app[dicom_keys.DICOM_STORAGE].root
    assert not list(root.rglob("*.tmp"))


# --- integers past 64 bits in DICOM attributes ---------------------------------------------


async def test_a_huge_instance_number_is_stored_without_its_index_value(
        api: Api, server: TestServer) -> None:
    """The choice: an integer the index cannot hold is not indexed (the column is NULL, QIDO
    cannot match it), the instance is stored and its metadata keeps the value."""
    township = await api.login("township")
    good = ct_series(3, 32, patient={"id": "HUGE-1"})
    bad_instance = _edited(good[0], lambda ds: setattr(ds, "InstanceNumber", HUGE))
    bad_series = _edited(good[1], lambda ds: setattr(ds, "SeriesNumber", HUGE))
    status, doc = await stow(township, [*good, bad_instance])
    assert status == 200 and len(stored(doc)) == 4 and not failed(doc), doc
    row = await _index(server, _sop(bad_instance))
    assert row is not None and row.instance_number is None
    assert {(await _index(server, _sop(f))).instance_number for f in good} == {1, 2, 3}
    meta = (await dget(township, f"{stored(doc)[3]['00081190']['Value'][0].split('/dicomweb')[1]}"
                                 .join(["/dicomweb", "/metadata"])))[1]
    assert meta[0]["00200013"]["vr"] == "IS" and meta[0]["00200013"]["Value"][0] > 2**64
    # A series number past the range, in a series of its own (a new SeriesInstanceUID).
    status, doc = await stow(township, [_edited(bad_series, lambda ds: setattr(
        ds, "SeriesInstanceUID", generate_uid()))])
    assert status == 200 and len(stored(doc)) == 1
    async with server.app[keys.DATABASE].read() as session:
        numbers = (await session.execute(select(DicomSeries.series_number))).scalars().all()
    assert None in numbers and all(n is None or n < 2**31 for n in numbers)
    # Searches still work and show the instance without the number.
    status, found = await dget(township, "/dicomweb/instances", params={"PatientID": "HUGE-1"})
    assert status == 200 and len(found) == 5
    assert {"vr": "IS"} in [f["00200013"] for f in found]
    _no_staged_files(server)


async def test_a_huge_number_of_frames_refuses_that_instance_only(
        api: Api, server: TestServer) -> None:
    township = await api.login("township")
    good = ct_series(3, 32, patient={"id": "HUGE-2"})
    bad = _edited(good[0], lambda ds: ds.add_new(0x00280008, "IS", HUGE))
    wide = _edited(good[1], lambda ds: ds.add_new(0x00200013, "UV", 2**64 - 1))
    status, doc = await stow(township, [*good, bad, wide])
    assert status == 202, doc
    assert _sops(stored(doc)) == {_sop(f) for f in [*good, wide]}
    (refusal,) = failed(doc)
    assert refusal["00081155"]["Value"] == [_sop(bad)]
    assert refusal["00081197"]["Value"] == [0xA900]
    assert "NumberOfFrames" in refusal["00000902"]["Value"][0]
    assert await _index(server, _sop(bad)) is None
    row = await _index(server, _sop(wide))
    assert row is not None and row.instance_number is None
    _no_staged_files(server)
    status, _ = await dget(township, "/dicomweb/studies", params={"PatientID": "HUGE-2"})
    assert status == 200


# --- QIDO ----------------------------------------------------------------------------------


async def test_qido_numbers_past_the_range_or_in_other_scripts(api: Api,
                                                               ct_files: list[bytes]) -> None:
    township = await api.login("township")
    assert (await stow(township, ct_files))[0] == 200
    bad = [
        ("/dicomweb/instances", {"InstanceNumber": HUGE}),
        ("/dicomweb/instances", {"InstanceNumber": str(2**31)}),
        ("/dicomweb/instances", {"InstanceNumber": str(-(2**31) - 1)}),
        ("/dicomweb/instances", {"InstanceNumber": "١"}),
        ("/dicomweb/instances", {"InstanceNumber": "１"}),
        ("/dicomweb/instances", {"InstanceNumber": " 1"}),
        ("/dicomweb/instances", {"InstanceNumber": "1_0"}),
        ("/dicomweb/instances", {"NumberOfFrames": "+1"}),
        ("/dicomweb/series", {"SeriesNumber": HUGE}),
        ("/dicomweb/studies", {"limit": "١٠"}),
        ("/dicomweb/studies", {"limit": HUGE}),
        ("/dicomweb/studies", {"offset": HUGE}),
        ("/dicomweb/studies", {"offset": str(2**63)}),
        ("/dicomweb/studies", {"offset": "-1"}),
        ("/dicomweb/studies", {"offset": "２"}),
    ]
    for path, params in bad:
        status, body = await dget(township, path, params=params)
        assert (status, body["error"]["code"]) == (400, "invalid_query_parameter"), (params,
                                                                                    body)
        assert "ASCII digits" in body["error"]["message"]
    status, found = await dget(township, "/dicomweb/instances",
                               params={"InstanceNumber": "2", "PatientID": "T-1"})
    assert status == 200 and len(found) == 1
    status, found = await dget(township, "/dicomweb/studies",
                               params={"limit": "1", "offset": str(2**31 - 1)})
    assert (status, found) == (200, [])


async def test_qido_dates_at_the_ends_of_the_calendar(api: Api,
                                                      ct_files: list[bytes]) -> None:
    township = await api.login("township")
    assert (await stow(township, ct_files))[0] == 200
    for value in ("00000101", "00001231-", "99991232", "20241301", "20240230", "٢٠٢٤٠٣٠٥",
                  "２０２４０３０５", "-00000000", "20240305\n", "100000101", "-0001",
                  "20240305-00000000"):
        status, body = await dget(township, "/dicomweb/studies", params={"StudyDate": value})
        assert (status, body["error"]["code"]) == (400, "invalid_query_parameter"), (value,
                                                                                   body)
    for value, n in (("00010101-99991231", 1), ("00010101-", 1), ("-99991231", 1),
                     ("99991231", 0), ("00010101", 0), ("99991231-", 0), ("-00010101", 0)):
        status, found = await dget(township, "/dicomweb/studies",
                                   params={"StudyDate": value, "PatientID": "T-1"})
        assert status == 200 and len(found) == n, (value, found)
    for value in ("٠٩٣٠", "24", "0960", "093061", "0930-2400", "09:3", "0930\n"):
        status, body = await dget(township, "/dicomweb/studies", params={"StudyTime": value})
        assert (status, body["error"]["code"]) == (400, "invalid_query_parameter"), (value,
                                                                                   body)
    for value in ("0000-235959.999999", "-2359", "00"):
        assert (await dget(township, "/dicomweb/studies", params={"StudyTime": value}))[0] \
            == 200, value


# --- images that cannot be rendered --------------------------------------------------------


def _image(photometric: str = "MONOCHROME2", **attrs: object) -> bytes:
    """A small 8-bit single-sample image built with pydicom; ``attrs`` override or (None)
    remove attributes."""
    ds = new_instance(SC_IMAGE, EXPLICIT_LE, generate_uid(), generate_uid())
    ds.PatientID, ds.PatientName, ds.Modality = "RENDER-1", "Render^Test", "OT"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.arange(256, dtype=np.uint8).tobytes()
    for name, value in attrs.items():
        if value is None:
            delattr(ds, name)
        else:
            setattr(ds, name, value)
    ds["PixelData"].VR = "OB"  # stated, so it is written without BitsAllocated too
    with _lenient_writing():
        return to_bytes(ds)


def _palette_without_data() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(_image("PALETTE COLOR")))
    for tag in (0x00281101, 0x00281102, 0x00281103):  # descriptors, but no table data
        ds.add_new(tag, "US", [256, 0, 8])
    return to_bytes(ds)


async def test_undecodable_images_answer_4xx(api: Api, server: TestServer) -> None:
    township = await api.login("township")
    renderable = {"palette without a table": _image("PALETTE COLOR"),
                  "palette descriptors without data": _palette_without_data()}
    refused = {"no BitsAllocated": (_image(BitsAllocated=None), 0xC122),
               "BitsAllocated 12": (_image(BitsAllocated=12, BitsStored=8), 0xC122),
               "no Rows": (_image(Rows=None), 0xC122),
               "zero rows": (_image(Rows=0), 0xA900),
               "short pixel data": (_image(PixelData=b"\x00" * 100), 0xA900),
               "SamplesPerPixel 5": (_image(SamplesPerPixel=5), 0xC122)}
    control = _image()
    files = [control, *renderable.values(), *(f for f, _ in refused.values())]
    status, doc = await stow(township, files)
    assert status == 202, doc
    assert _sops(stored(doc)) == {_sop(f) for f in [control, *renderable.values()]}
    reasons = {i["00081155"]["Value"][0]: i["00081197"]["Value"][0] for i in failed(doc)}
    assert reasons == {_sop(f): code for f, code in refused.values()}, reasons
    for f, _ in refused.values():
        assert await _index(server, _sop(f)) is None
    urls = {_sop(f): i["00081190"]["Value"][0].split("/dicomweb", 1)[1]
            for i in stored(doc) for f in files if i["00081155"]["Value"][0] == _sop(f)}
    base = urls[_sop(control)]
    assert (await dget(township, f"/dicomweb{base}/rendered"))[0] == 200
    for name, f in renderable.items():
        url = urls[_sop(f)]
        for suffix in ("/rendered", "/thumbnail", "/frames/1/rendered"):
            status, body = await dget(township, f"/dicomweb{url}{suffix}",
                                      headers={"Accept": "image/png"})
            assert (status, body["error"]["code"]) == (422, "cannot_decode"), (name, suffix)
            assert "PALETTE COLOR" in body["error"]["message"]
    _no_staged_files(server)
    assert (await api.get("/healthz"))[0] == 200


async def test_render_options_in_other_scripts_or_not_finite(api: Api,
                                                             ct_files: list[bytes]) -> None:
    township = await api.login("township")
    status, doc = await stow(township, ct_files)
    assert status == 200
    base = stored(doc)[0]["00081190"]["Value"][0].split("/dicomweb", 1)[1]
    for params in ({"viewport": "١٢٨,١٢٨"}, {"viewport": "128,+64"}, {"viewport": "1_28,64"},
                   {"viewport": f"{HUGE},64"}, {"quality": "٩٠"}, {"quality": "+90"},
                   {"window": "nan,400"}, {"window": "40,inf"}, {"window": "1e400,400"},
                   {"window": "٤٠,٤٠٠"}, {"window": "4_0,400"}, {"window": "40,-Infinity"}):
        status, body = await dget(township, f"/dicomweb{base}/rendered", params=params)
        assert (status, body["error"]["code"]) == (400, "invalid_query_parameter"), (params,
                                                                                   body)
    status, body = await dget(township, f"/dicomweb{base}/rendered",
                              params={"viewport": "64,64", "quality": "80", "window": "-600,1500"})
    assert status == 200 and body[:2] == b"\xff\xd8"
