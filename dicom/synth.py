"""Synthetic images for the demo, the tests and the bench: a CT-like series (16-bit, HU
rescale), a DR chest-like radiograph and a 12-lead ECG (pydicom's recorded one under new
identifiers), written as ordinary DICOM Part 10 files."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
DX_IMAGE = "1.2.840.10008.5.1.4.1.1.1.1"


def new_instance(sop_class: str, transfer_syntax: str, study_uid: str, series_uid: str
                 ) -> Dataset:
    """An empty instance with its file meta and identifying UIDs (a new SOP Instance UID)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    return ds


def _base(sop_class: str, study_uid: str, series_uid: str, patient: dict[str, str],
          modality: str) -> Dataset:
    now = datetime.now()
    ds = new_instance(sop_class, ExplicitVRLittleEndian, study_uid, series_uid)
    ds.PatientName = patient.get("name", "Anonymous")
    ds.PatientID = patient.get("id", "0")
    ds.PatientBirthDate = patient.get("birth_date", "")
    ds.PatientSex = patient.get("sex", "")
    ds.StudyDate = patient.get("study_date", now.strftime("%Y%m%d"))
    ds.StudyTime = now.strftime("%H%M%S")
    ds.AccessionNumber = patient.get("accession", "")
    ds.StudyID = "1"
    ds.StudyDescription = patient.get("description", "")
    ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.Manufacturer = "Yilian synthetic"
    return ds


def _phantom(size: int, z: float, rng: np.random.Generator) -> np.ndarray:
    """An axial slice of an ellipse 'body' with lungs and a spine, in HU."""
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    hu = np.full((size, size), -1000.0)
    hu[(x / 0.85) ** 2 + (y / 0.65) ** 2 < 1] = 40
    for cx in (-0.38, 0.38):
        hu[((x - cx) / 0.28) ** 2 + ((y + 0.05) / (0.42 - 0.1 * abs(z))) ** 2 < 1] = -850
    hu[(x / 0.09) ** 2 + ((y - 0.45) / 0.09) ** 2 < 1] = 700
    hu[((x - 0.1) / 0.18) ** 2 + ((y + 0.1) / 0.2) ** 2 < 1] = 55
    return hu + rng.normal(0, 8, hu.shape)


def ct_series(count: int, size: int = 512, *, patient: dict[str, str] | None = None,
              study_uid: str | None = None, series_uid: str | None = None, seed: int = 1
              ) -> list[bytes]:
    """A CT-like series of ``count`` 16-bit slices (RescaleIntercept -1024)."""
    patient = patient or {}
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        ds = _base(CT_IMAGE, study_uid, series_uid, patient, "CT")
        ds.SeriesDescription = "Chest axial 5 mm"
        ds.BodyPartExamined = "CHEST"
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [-175.0, -175.0, -5.0 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceThickness = 5.0
        ds.PixelSpacing = [350.0 / size, 350.0 / size]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = -600, 1500
        hu = _phantom(size, (i - count / 2) / max(count, 1), rng)
        ds.PixelData = np.clip(hu + 1024, 0, 4095).astype("<u2").tobytes()
        out.append(to_bytes(ds))
    return out


def dr_image(size: int = 1024, *, patient: dict[str, str] | None = None,
             study_uid: str | None = None) -> bytes:
    """A chest radiograph-like DX image, MONOCHROME1 like many DR detectors."""
    ds = _base(DX_IMAGE, study_uid or generate_uid(), generate_uid(), patient or {}, "DX")
    ds.SeriesDescription = "Chest PA"
    ds.BodyPartExamined = "CHEST"
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 14, 13, 0
    ds.WindowCenter, ds.WindowWidth = 8000, 12000
    ds.PixelSpacing = [0.35, 0.35]
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    attenuation = 3000 + 9000 * np.exp(-((x / 0.9) ** 2 + (y / 1.1) ** 2) * 2)
    lungs = ((np.abs(x) - 0.42) / 0.3) ** 2 + ((y + 0.05) / 0.6) ** 2 < 1
    attenuation[lungs] -= 6500
    attenuation[((x + 0.45) / 0.1) ** 2 + ((y - 0.3) / 0.1) ** 2 < 1] += 2500  # the opacity
    attenuation += np.random.default_rng(3).normal(0, 60, attenuation.shape)
    ds.PixelData = np.clip(16383 - attenuation, 0, 16383).astype("<u2").tobytes()
    return to_bytes(ds)


def ecg_12lead(*, patient: dict[str, str] | None = None, study_uid: str | None = None,
               acquired: datetime | None = None) -> bytes:
    """A 12-lead ECG waveform (10 s at 1 kHz, a median beat, the cart's measurements), from
    the Mortara recording pydicom ships, under new UIDs and the given patient; ``acquired``
    (local wall time) replaces its acquisition and content date/time."""
    path = get_testdata_file("waveform_ecg.dcm")
    assert path is not None, "pydicom's waveform_ecg.dcm is missing"
    ds = pydicom.dcmread(path)
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword in ("AccessionNumber", "AdmissionID", "InstitutionName"):
        ds.pop(keyword, None)
    p = patient or {}
    ds.PatientName = p.get("name", "Anonymous")
    ds.PatientID = p.get("id", "0")
    ds.PatientBirthDate = p.get("birth_date", "")
    ds.PatientSex = p.get("sex", "")
    if acquired is not None:
        day, time = acquired.strftime("%Y%m%d"), acquired.strftime("%H%M%S")
        ds.AcquisitionDateTime = day + time
        ds.StudyDate = ds.ContentDate = day
        ds.StudyTime = ds.ContentTime = time
    return to_bytes(ds)


def to_bytes(ds: Dataset) -> bytes:
    """A dataset as a Part 10 file in memory."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
