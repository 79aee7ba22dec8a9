"""The stored DICOM JSON model: dicom.dicomjson.metadata_of against pydicom's own to_json_dict.

metadata_of converts plain values straight from their raw bytes for speed; over every file
pydicom ships (and a synthetic CT series) it must give pydicom's document, or fail where
pydicom fails.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_files

from yilian.dicom import synth
from yilian.dicom.dicomjson import _strip_bulk, metadata_of


def _reference(ds: pydicom.Dataset) -> dict[str, Any]:
    doc = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda _: "-",
                          suppress_invalid_tags=False)
    return dict(_strip_bulk(doc))


def _outcome(fn: Any, data: bytes) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
        except Exception:
            return "unreadable"
        try:
            return fn(ds)
        except Exception as exc:
            return f"error: {type(exc).__name__}"


def _files() -> list[Path]:
    return sorted(Path(f) for f in get_testdata_files() if os.path.isfile(f))


def test_metadata_matches_pydicom_on_every_test_file() -> None:
    compared = 0
    for path in _files():
        data = path.read_bytes()
        ours, theirs = _outcome(metadata_of, data), _outcome(_reference, data)
        assert ours == theirs, path.name
        compared += isinstance(ours, dict)
    assert compared > 50


@pytest.mark.parametrize("charset", ["ISO_IR 192", "GB18030", "ISO_IR 100"])
def test_metadata_matches_pydicom_on_ct_with_chinese_names(charset: str) -> None:
    patient = {"PatientName": "Wang^Xiuying=王^秀英", "PatientID": "SHT-0001",
               "PatientBirthDate": "19560312", "PatientSex": "F"}
    for data in synth.ct_series(3, 64, patient=patient):
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.SpecificCharacterSet = charset
        ds.StudyDescription = "胸部CT平扫" if charset != "ISO_IR 100" else "Thorax"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        assert _outcome(metadata_of, buf.getvalue()) == _outcome(_reference, buf.getvalue())


def _index_fields_from_dataset(data: bytes) -> tuple[Any, ...]:
    from yilian.dicom.dicomjson import int_of as _int
    from yilian.dicom.dicomjson import text_of as _text

    ds = pydicom.dcmread(io.BytesIO(data))
    return (
        {k: _text(ds, kw, n) for k, kw, n in (
            ("patient_id", "PatientID", 64), ("patient_name", "PatientName", 200),
            ("birth_date", "PatientBirthDate", 8), ("sex", "PatientSex", 16))},
        {k: _text(ds, kw, n) for k, kw, n in (
            ("study_date", "StudyDate", 8), ("study_time", "StudyTime", 16),
            ("accession_number", "AccessionNumber", 16), ("study_id", "StudyID", 16),
            ("study_description", "StudyDescription", 200),
            ("referring_physician_name", "ReferringPhysicianName", 200))},
        {"modality": _text(ds, "Modality", 16), "series_number": _int(ds, "SeriesNumber"),
         "series_description": _text(ds, "SeriesDescription"),
         "body_part": _text(ds, "BodyPartExamined", 16), "series_date": _text(ds, "SeriesDate", 8)},
        _int(ds, "InstanceNumber"),
    )


def test_index_attributes_read_from_the_json_model_match_the_dataset() -> None:
    from yilian.dicom.parse import InstanceRejected, prepare_instance

    checked = 0
    for path in _files():
        data = path.read_bytes()
        try:
            p = prepare_instance(data)
        except InstanceRejected:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = _index_fields_from_dataset(data)
        assert (p.patient, p.study, p.series, p.instance_number) == expected, path.name
        checked += 1
    assert checked > 30
