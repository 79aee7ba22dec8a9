"""PS3.15 basic-profile de-identification with consistent UID remapping."""

from __future__ import annotations

import io

import pydicom
from pydicom.data import get_testdata_file

from yilian.dicom.deid import Deidentifier
from yilian.dicom.synth import ct_series


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_basic_profile_and_consistent_uids() -> None:
    files = ct_series(3, 32, patient={"name": "Chen^Guilan", "id": "SL-1",
                                      "birth_date": "19570312", "accession": "A1"})
    originals = [_read(f) for f in files]
    deid = Deidentifier(patient_id="TEACH-1")
    out = [_read(deid.deidentify_bytes(f)) for f in files]
    assert len({d.StudyInstanceUID for d in out}) == 1
    assert len({d.SOPInstanceUID for d in out}) == 3
    for o, d in zip(originals, out, strict=True):
        assert d.StudyInstanceUID != o.StudyInstanceUID
        assert d.SOPInstanceUID != o.SOPInstanceUID
        assert d.SOPClassUID == o.SOPClassUID  # well-known UIDs are kept
        assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID
        assert d.PatientID == "TEACH-1" and str(d.PatientName) == "TEACH-1"
        assert d.PatientBirthDate == "" and d.StudyDate == "" and d.AccessionNumber == ""
        assert "Manufacturer" in d and "SeriesDescription" not in d
        assert d.PatientIdentityRemoved == "YES"
        assert d.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert d.PixelData == o.PixelData


def test_retain_options() -> None:
    (data,) = ct_series(1, 32, patient={"study_date": "20240305", "birth_date": "19570312"})
    o = _read(data)
    d = _read(Deidentifier(retain_dates=True, retain_uids=True).deidentify_bytes(data))
    assert d.StudyInstanceUID == o.StudyInstanceUID and d.StudyDate == "20240305"
    assert d.PatientBirthDate == ""
    assert d.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert [c.CodeValue for c in d.DeidentificationMethodCodeSequence] == \
        ["113100", "113106", "113110"]


def test_private_tags_and_nested_sequences() -> None:
    path = get_testdata_file("nested_priv_SQ.dcm")
    assert path is not None
    d = Deidentifier().deidentify(pydicom.dcmread(path))
    assert not [e for e in d.iterall() if e.tag.is_private]
    path = get_testdata_file("rtplan.dcm")
    assert path is not None
    original = pydicom.dcmread(path)
    d = Deidentifier().deidentify(pydicom.dcmread(path))
    ref = d.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    assert ref != original.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID


def test_deidentify_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    src = tmp_path / "in"
    src.mkdir()
    for n, data in enumerate(ct_series(2, 32, patient={"name": "Chen^Guilan", "id": "SL-1"})):
        (src / f"{n}.dcm").write_bytes(data)
    (src / "notes.txt").write_text("not DICOM")
    out = tmp_path / "out"
    main = "import sys; from yilian.server.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", main, "deidentify", str(src), "--out-dir",
                           str(out), "--patient-id", "CASE-9"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "notes.txt" in proc.stderr  # the text file is reported
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 2
    docs = [pydicom.dcmread(f) for f in files]
    assert {d.PatientID for d in docs} == {"CASE-9"}
    assert len({d.StudyInstanceUID for d in docs}) == 1
