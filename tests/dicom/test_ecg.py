"""A 12-lead ECG waveform stored by STOW-RS and C-STORE: indexed without pixel data, found by
QIDO as modality ECG, drawn from the /waveform route (samples in microvolts, leads named,
the cart's measurements), under the same access rule and audit as WADO metadata; broken
waveform data refused with a reason and nothing stored."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from aiohttp.test_utils import TestServer
from pydicom import Dataset
from pydicom.waveforms.numpy_handler import multiplex_array
from pynetdicom import AE
from sqlalchemy import func, select

from tests.conftest import Api
from tests.dicom.conftest import dget, failed, stored, stow
from yilian.dicom import keys as dicom_keys
from yilian.dicom.models import DicomInstance, DicomStudy
from yilian.dicom.synth import ecg_12lead, to_bytes
from yilian.dicom.waveform import LEADS, lead_name
from yilian.server.clinic import keys as clinic_keys
from yilian.server.core import keys
from yilian.server.core.models import AuditEntry

ECG_12 = "1.2.840.10008.5.1.4.1.1.9.1.1"
MISMATCH = 0xA900
TAKEN = datetime(2024, 3, 5, 8, 12, 30)  # Shanghai wall time


def _uids(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data))
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def _waveform_url(data: bytes) -> str:
    study, series, sop = _uids(data)
    return f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/waveform"


async def _get_json(api: Api, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with api.http.get(api.url(path), headers=api.headers()) as r:
        return r.status, await r.json(content_type=None)


async def test_stow_ecg_is_indexed_and_drawn(api: Api, server: TestServer) -> None:
    township = await api.login("township")
    data = ecg_12lead(patient={"id": "ECG-1", "name": "Chen^Li", "sex": "M"}, acquired=TAKEN)
    study, series, sop = _uids(data)
    status, doc = await stow(township, [data])
    assert status == 200, doc
    assert len(stored(doc)) == 1

    status, found = await dget(township, "/dicomweb/studies", params={"PatientID": "ECG-1"})
    assert status == 200 and len(found) == 1
    assert found[0]["00080061"]["Value"] == ["ECG"]
    status, found = await dget(township, "/dicomweb/studies",
                               params={"ModalitiesInStudy": "ECG", "PatientID": "ECG-1"})
    assert status == 200 and len(found) == 1
    status, insts = await dget(township, f"/dicomweb/studies/{study}/instances")
    assert status == 200 and len(insts) == 1
    assert insts[0]["00080016"]["Value"] == [ECG_12]
    assert "00280010" not in insts[0] or not insts[0]["00280010"].get("Value")
    async with server.app[keys.DATABASE].read() as session:
        row = await session.scalar(select(DicomInstance).where(DicomInstance.sop_uid == sop))
    assert row is not None and (row.rows, row.columns, row.number_of_frames) == (None, None, 0)

    inst = f"/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    status, meta = await dget(township, f"{inst}/metadata")
    assert status == 200 and "54001010" not in str(meta)  # samples are bulk data
    for path in (f"{inst}/rendered", f"{inst}/thumbnail", f"/dicomweb/studies/{study}/thumbnail"):
        status, body = await dget(township, path)
        assert status == 404 and body["error"]["code"] == "frame_not_found", path
        assert "waveform" in body["error"]["message"] or path.endswith("/studies/"
                                                                      f"{study}/thumbnail")

    status, wave = await _get_json(township, f"{inst}/waveform")
    assert status == 200, wave
    assert wave["sop_instance_uid"] == sop and wave["sop_class_uid"] == ECG_12
    assert wave["acquired_at"] == "2024-03-05T08:12:30+08:00"
    rhythm, median = wave["groups"]
    assert rhythm["label"] == "RHYTHM" and median["label"] == "MEDIAN BEAT"
    assert (rhythm["sampling_frequency"], rhythm["number_of_samples"]) == (1000.0, 10000)
    assert rhythm["duration"] == 10.0
    assert [c["lead"] for c in rhythm["channels"]] == list(LEADS)
    assert all(c["unit"] == "uV" and c["calibrated"] for c in rhythm["channels"])
    assert all(len(c["samples"]) == 10000 for c in rhythm["channels"])
    expected = pydicom.dcmread(io.BytesIO(data)).waveform_array(0)  # calibrated, in uV
    for i, channel in enumerate(rhythm["channels"]):
        assert np.allclose(channel["samples"], expected[:, i], atol=0.05)
    assert rhythm["channels"][0]["source"] == "Lead I (Einthoven)"
    measures = {m["key"]: m for m in wave["measurements"] if m["key"]}
    assert {k: measures[k]["value"] for k in ("pr", "qrs", "qt", "qtc", "rr")} == {
        "pr": 161, "qrs": 75, "qt": 368, "qtc": 370, "rr": 982}
    assert measures["heart_rate"] == {"key": "heart_rate", "name": "Heart Rate (from RR)",
                                      "value": 61, "unit": "/min", "derived": True}
    assert wave["statements"] == ["RITMO SINUSALE", "ECG NORMALE"]

    catalog = server.app[clinic_keys.STUDY_CATALOG]
    async with server.app[keys.DATABASE].read() as session:
        taken = await catalog.ecg_taken_at(session, study)
    assert taken == datetime(2024, 3, 5, 0, 12, 30, tzinfo=UTC)


async def test_waveform_access_and_audit(api: Api, server: TestServer,
                                         ct_files: list[bytes]) -> None:
    # an outsider: a specialist of the alliance the case is not shared with (the county
    # doctor would see it: the demo refers this post-MI patient up to Dianbai with the case)
    township, expert, outsider = (await api.login("township"), await api.login("expert"),
                                  await api.login("gdph_radiology"))
    data = ecg_12lead(patient={"id": "ECG-2", "name": "Wang^Fang"})
    study = _uids(data)[0]
    assert (await stow(township, [data]))[0] == 200
    url = _waveform_url(data)
    for user in (expert, outsider):
        status, body = await _get_json(user, url)
        assert status == 404 and body["error"]["code"] == "study_not_found"
    status, body = await _get_json(await api.login("admin"), url)
    assert status == 403

    status, items = await township.get("/api/consultations")
    case = next(c for c in items if c["question"].startswith("Post-MI patient"))
    status, body = await township.post(f"/api/consultations/{case['id']}/studies",
                                       {"study_uid": study})
    assert status == 200, body
    status, wave = await _get_json(expert, url)
    assert status == 200 and len(wave["groups"][0]["channels"]) == 12
    assert (await _get_json(outsider, url))[0] == 404

    # the waveform route on an image answers that it holds none
    assert (await stow(township, ct_files))[0] == 200
    ct_study, ct_series_uid, ct_sop = _uids(ct_files[0])
    status, body = await _get_json(township, f"/dicomweb/studies/{ct_study}/series/"
                                             f"{ct_series_uid}/instances/{ct_sop}/waveform")
    assert status == 404 and body["error"]["code"] == "waveform_not_found"

    await server.app[keys.AUDIT].flush()
    async with server.app[keys.DATABASE].read() as session:
        users = (await session.execute(select(AuditEntry.user_id).where(
            AuditEntry.action == "dicom_waveform", AuditEntry.resource_id == study))
        ).scalars().all()
    assert users == [expert.user["id"]]  # refusals are not reads


def _break(change: Callable[[Dataset], None]) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(ecg_12lead(patient={"id": "ECG-BAD"})))
    change(ds.WaveformSequence[0])
    return to_bytes(ds)


def _fewer_definitions(item: Dataset) -> None:
    del item.ChannelDefinitionSequence[-1]


def _truncate(item: Dataset) -> None:
    item.WaveformData = item.WaveformData[:-240]


BROKEN = {
    "wrong sample count": (lambda item: setattr(item, "NumberOfWaveformSamples", 10001),
                           "Waveform Data holds 240000 bytes"),
    "truncated samples": (_truncate, "Waveform Data holds 239760 bytes"),
    "bad bits allocated": (lambda item: setattr(item, "WaveformBitsAllocated", 12),
                           "Waveform Bits Allocated 12"),
    "bits and interpretation disagree": (
        lambda item: setattr(item, "WaveformSampleInterpretation", "SL"), "'SL'"),
    "missing channel definitions": (lambda item: delattr(item, "ChannelDefinitionSequence"),
                                    "0 channel definition(s) for 12"),
    "a channel definition short": (_fewer_definitions, "11 channel definition(s) for 12"),
    "no sampling frequency": (lambda item: delattr(item, "SamplingFrequency"),
                              "Sampling Frequency"),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_broken_waveform_refused(api: Api, server: TestServer, case: str) -> None:
    township = await api.login("township")
    change, message = BROKEN[case]
    data = _break(change)
    status, doc = await stow(township, [data])
    assert status == 409, doc
    (item,) = failed(doc)
    assert item["00081197"]["Value"] == [MISMATCH]
    assert item["00081155"]["Value"] == [_uids(data)[2]]
    async with server.app[keys.DATABASE].read() as session:
        assert await session.scalar(select(func.count()).select_from(DicomInstance)
                                    .where(DicomInstance.sop_uid == _uids(data)[2])) == 0
        assert await session.scalar(select(func.count()).select_from(DicomStudy)
                                    .where(DicomStudy.patient_id == "ECG-BAD")) == 0
    root = server.app[dicom_keys.DICOM_STORAGE].root
    assert not list(root.rglob(f"{_uids(data)[2]}.dcm"))
    assert not list(root.rglob("*.tmp"))
    # the reason, in full, as the parser gives it
    from yilian.dicom.parse import InstanceRejected, prepare_instance

    with pytest.raises(InstanceRejected) as exc:
        prepare_instance(data)
    assert message in exc.value.message, exc.value.message


async def test_waveform_without_waveform_sequence_refused(api: Api) -> None:
    township = await api.login("township")
    ds = pydicom.dcmread(io.BytesIO(ecg_12lead()))
    del ds.WaveformSequence
    status, doc = await stow(township, [to_bytes(ds)])
    assert status == 409 and failed(doc)[0]["00081197"]["Value"] == [MISMATCH]


needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None,
                                 reason="dcmtk (storescu) is not installed")


@needs_dcmtk
async def test_cstore_ecg_from_a_cart(scp_server: TestServer, api: Api, tmp_path: Path) -> None:
    port = str(scp_server.app[dicom_keys.DICOM_PORT])
    data = ecg_12lead(patient={"id": "CART-1", "name": "Li^Ming"}, acquired=TAKEN)
    path = tmp_path / "ecg.dcm"
    path.write_bytes(data)
    proc = await asyncio.create_subprocess_exec(
        "storescu", "-aet", "SHALANG_DR", "-aec", "YILIAN", "127.0.0.1", port, str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode(errors="replace")
    township = await api.login("township")
    status, found = await dget(township, "/dicomweb/series",
                               params={"PatientID": "CART-1", "Modality": "ECG"})
    assert status == 200 and len(found) == 1
    status, wave = await _get_json(township, _waveform_url(data))
    assert status == 200 and [c["lead"] for c in wave["groups"][0]["channels"]] == list(LEADS)

    # a broken one over C-STORE: "data set does not match SOP class", nothing stored
    broken = pydicom.dcmread(io.BytesIO(_break(lambda item: setattr(
        item, "NumberOfWaveformSamples", 9000))))

    def send() -> int:
        ae = AE(ae_title="SHALANG_DR")
        ae.add_requested_context(ECG_12, broken.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", int(port), ae_title="YILIAN")
        assert assoc.is_established
        try:
            return int(assoc.send_c_store(broken).Status)
        finally:
            assoc.release()

    assert await asyncio.to_thread(send) == 0xA900
    status, found = await dget(township, "/dicomweb/instances",
                               params={"SOPInstanceUID": broken.SOPInstanceUID})
    assert status == 200 and found == []


def _channel(**codes: str) -> Dataset:
    definition = Dataset()
    source = Dataset()
    for key, value in codes.items():
        if key == "label":
            definition.ChannelLabel = value
        else:
            setattr(source, key, value)
    if len(source):
        definition.ChannelSourceSequence = [source]
    return definition


@pytest.mark.parametrize(("codes", "lead"), [
    ({"CodeValue": "5.6.3-9-64", "CodingSchemeDesignator": "SCPECG"}, "aVF"),
    ({"CodeValue": "2:61", "CodingSchemeDesignator": "MDC"}, "III"),
    ({"CodeValue": "2:3", "CodingSchemeDesignator": "MDC", "CodeMeaning": "Lead V1"}, "V1"),
    ({"CodeValue": "x", "CodeMeaning": "Lead AVL"}, "aVL"),
    ({"CodeValue": "x", "CodeMeaning": "MDC_ECG_LEAD_V6"}, "V6"),
    ({"CodeValue": "x", "CodeMeaning": "Lead II (Einthoven)"}, "II"),
    ({"label": "v4"}, "V4"),
    ({"CodeValue": "x", "CodeMeaning": "Lead V4R"}, "Lead V4R"),
])
def test_lead_names(codes: dict[str, str], lead: str) -> None:
    assert lead_name(_channel(**codes)) == lead


def test_millivolt_channels_become_microvolts(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from yilian.dicom.waveform import read_ecg

    ds = pydicom.dcmread(io.BytesIO(ecg_12lead()))
    for definition in ds.WaveformSequence[0].ChannelDefinitionSequence:
        definition.ChannelSensitivity = "0.00125"
        definition.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
        definition.ChannelBaseline = "0.01"  # mV
    path = tmp_path / "mv.dcm"
    path.write_bytes(to_bytes(ds))
    wave = read_ecg(path, ZoneInfo("Asia/Shanghai"))
    raw = multiplex_array(ds, 0, as_raw=True)
    lead_one = wave["groups"][0]["channels"][0]
    assert lead_one["unit"] == "uV"
    assert np.allclose(lead_one["samples"], raw[:, 0] * 1.25 + 10, atol=0.05)

