"""DICOM waveforms (PS3.3 C.10.9), ECGs above all: the checks a received waveform must pass
to be stored, and the drawing form the ECG view reads (``/waveform``, a Yilian addition to
DICOMweb: standard WADO-RS has no rendition of a waveform a browser can draw).

A waveform is multiplex groups (``WaveformSequence`` items), each a block of interleaved
samples of several channels at one sampling frequency; each channel's definition says what
it records (the lead) and how a sample becomes a voltage (sensitivity, correction factor,
baseline, in the units of its sensitivity units code).
"""

from __future__ import annotations

import math
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pydicom
from pydicom import Dataset

from yilian.dicom.acquired import acquired_at

#: Every waveform storage SOP class is under this root (ECG, audio, haemodynamic, EEG...).
WAVEFORM_ROOT = "1.2.840.10008.5.1.4.1.1.9."
#: Sample encodings (bits allocated, interpretation) the Waveform module allows.
SAMPLE_TYPES = {
    (8, "SB"): "int8", (8, "UB"): "uint8", (8, "MB"): "uint8", (8, "AB"): "uint8",
    (16, "SS"): "<i2", (16, "US"): "<u2", (32, "SL"): "<i4", (32, "UL"): "<u4",
    (64, "SV"): "<i8", (64, "UV"): "<u8",
}
#: The twelve standard leads, in the order the 12-lead layout reads them.
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
# SCP-ECG ("5.6.3-9-N") and ISO/IEEE 11073 MDC ("2:N") number the leads alike.
_LEAD_NUMBER = {1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6",
                61: "III", 62: "aVR", 63: "aVL", 64: "aVF"}
_LEAD_CODE = re.compile(r"^(?:5\.6\.3-9-|2:)(\d+)$")
_BY_NAME = {name.lower(): name for name in LEADS}
# Voltage units (UCUM) to microvolts.
_TO_MICROVOLTS = {"uv": 1.0, "mv": 1000.0, "v": 1_000_000.0}
# Device measurements by the concept name's meaning (SCP-ECG, MDC, LOINC wording).
_MEASURES = {
    "heart rate": "heart_rate", "ventricular heart rate": "heart_rate",
    "ventricular rate": "heart_rate", "rr interval": "rr", "pr interval": "pr",
    "qrs duration": "qrs", "qt interval": "qt", "qtc interval": "qtc",
    "qt interval corrected": "qtc", "p axis": "p_axis", "qrs axis": "qrs_axis",
    "t axis": "t_axis",
}
#: At most this many samples in one channel are accepted (a day of Holter data at 500 Hz
#: is 43.2 million; the ECG view draws seconds).
MAX_SAMPLES = 50_000_000


class WaveformError(ValueError):
    """A waveform that cannot be stored or drawn, and why."""


def is_waveform(sop_class_uid: str) -> bool:
    """Is this a waveform storage SOP class?"""
    return sop_class_uid.startswith(WAVEFORM_ROOT)


def _number(item: Dataset, keyword: str) -> float | None:
    try:
        value = item.get(keyword)
        number = None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def check_waveform(ds: Dataset) -> None:
    """Raise :class:`WaveformError` unless every multiplex group's samples can be read: its
    channel count, sample count, sample encoding, channel definitions and data length agree."""
    groups = ds.get("WaveformSequence")
    if not groups:
        raise WaveformError("a waveform instance must hold a Waveform Sequence (5400,0100)")
    for n, item in enumerate(groups, 1):
        where = f"multiplex group {n}"
        channels = _number(item, "NumberOfWaveformChannels")
        samples = _number(item, "NumberOfWaveformSamples")
        if not channels or channels < 1 or channels != int(channels):
            raise WaveformError(f"{where}: Number of Waveform Channels is missing or not a "
                                "positive number")
        if not samples or samples < 1 or samples > MAX_SAMPLES or samples != int(samples):
            raise WaveformError(f"{where}: Number of Waveform Samples is missing or out of "
                                f"range 1..{MAX_SAMPLES}")
        frequency = _number(item, "SamplingFrequency")
        if not frequency or frequency <= 0:
            raise WaveformError(f"{where}: Sampling Frequency is missing or not positive")
        bits = item.get("WaveformBitsAllocated")
        kind = str(item.get("WaveformSampleInterpretation") or "").strip()
        if (bits, kind) not in SAMPLE_TYPES:
            raise WaveformError(f"{where}: Waveform Bits Allocated {bits} with sample "
                                f"interpretation {kind!r} is not a sample encoding DICOM "
                                "allows (8, 16, 32 or 64 bits)")
        definitions = item.get("ChannelDefinitionSequence") or []
        if len(definitions) != int(channels):
            raise WaveformError(f"{where}: {len(definitions)} channel definition(s) for "
                                f"{int(channels)} channel(s)")
        data = item.get("WaveformData")
        expected = int(channels) * int(samples) * bits // 8
        held = len(data) if data is not None else 0
        if held not in (expected, expected + expected % 2):  # an odd length is padded
            raise WaveformError(f"{where}: Waveform Data holds {held} bytes; {int(channels)} "
                                f"channel(s) of {int(samples)} {bits}-bit samples are "
                                f"{expected}")


def lead_name(definition: Dataset) -> str:
    """A channel's lead as the 12-lead layout names it (I, aVR, V1...), from its source
    code (SCP-ECG or MDC), its code meaning or its label; otherwise the text it gives."""
    sources = definition.get("ChannelSourceSequence") or []
    code = sources[0] if sources else Dataset()
    match = _LEAD_CODE.match(str(code.get("CodeValue", "")).strip())
    if match and int(match.group(1)) in _LEAD_NUMBER:
        return _LEAD_NUMBER[int(match.group(1))]
    texts = [str(code.get("CodeMeaning", "")), str(definition.get("ChannelLabel", ""))]
    for text in texts:
        name = re.sub(r"\(.*?\)", "", text).strip()
        name = re.sub(r"^(mdc_ecg_)?lead[\s_-]*", "", name, flags=re.IGNORECASE).strip()
        if name.lower() in _BY_NAME:
            return _BY_NAME[name.lower()]
    return next((t.strip() for t in texts if t.strip()), "")


def _unit(definition: Dataset) -> str:
    units = definition.get("ChannelSensitivityUnitsSequence") or []
    return str(units[0].get("CodeValue", "")).strip() if units else ""


def _channel(definition: Dataset, raw: np.ndarray) -> dict[str, Any]:
    """One channel's samples in microvolts (rounded to 0.1 µV), with what they record."""
    sensitivity = _number(definition, "ChannelSensitivity")
    correction = _number(definition, "ChannelSensitivityCorrectionFactor")
    baseline = _number(definition, "ChannelBaseline") or 0.0
    unit = _unit(definition)
    factor = _TO_MICROVOLTS.get(unit.lower())
    calibrated = sensitivity is not None and factor is not None
    scale = (sensitivity or 1.0) * (1.0 if correction is None else correction)
    values = (raw.astype(np.float64) * scale + baseline) * (factor or 1.0)
    sources = definition.get("ChannelSourceSequence") or []
    return {
        "lead": lead_name(definition),
        "source": str(sources[0].get("CodeMeaning", "")) if sources else "",
        "label": str(definition.get("ChannelLabel", "") or ""),
        "unit": "uV" if calibrated else unit,
        "calibrated": calibrated,
        "filter_low": _number(definition, "FilterLowFrequency"),
        "filter_high": _number(definition, "FilterHighFrequency"),
        "notch": _number(definition, "NotchFilterFrequency"),
        "samples": np.round(values, 1).tolist(),
    }


def _group(item: Dataset) -> dict[str, Any]:
    channels = int(item.NumberOfWaveformChannels)
    samples = int(item.NumberOfWaveformSamples)
    dtype = np.dtype(SAMPLE_TYPES[(item.WaveformBitsAllocated,
                                   str(item.WaveformSampleInterpretation).strip())])
    data = np.frombuffer(bytes(item.WaveformData)[:channels * samples * dtype.itemsize],
                         dtype=dtype).reshape(samples, channels)
    frequency = float(item.SamplingFrequency)
    return {
        "label": str(item.get("MultiplexGroupLabel", "") or ""),
        "sampling_frequency": frequency,
        "number_of_samples": samples,
        "duration": samples / frequency,
        "channels": [_channel(d, data[:, i])
                     for i, d in enumerate(item.ChannelDefinitionSequence)],
    }


def _code_meaning(item: Dataset, keyword: str) -> str:
    codes = item.get(keyword) or []
    return str(codes[0].get("CodeMeaning", "")).strip() if codes else ""


def device_annotations(ds: Dataset) -> tuple[list[dict[str, Any]], list[str]]:
    """The device's measurements (heart rate, PR, QRS, QT/QTc, axes; ``key`` names the ones
    the view knows) and its interpretation statements, from the Waveform Annotation
    Sequence. A heart rate the device did not state is derived from its RR interval."""
    measurements: list[dict[str, Any]] = []
    statements: list[str] = []
    for item in ds.get("WaveformAnnotationSequence") or []:
        text = str(item.get("UnformattedTextValue", "") or "").strip()
        if text:
            statements.append(text)
            continue
        value = _number(item, "NumericValue")
        name = _code_meaning(item, "ConceptNameCodeSequence")
        if value is None or not name:
            continue
        units = item.get("MeasurementUnitsCodeSequence") or []
        unit = str(units[0].get("CodeValue", "")).strip() if units else ""
        measurements.append({"key": _MEASURES.get(name.lower()), "name": name,
                             "value": value, "unit": unit})
    known = {m["key"]: m for m in measurements if m["key"]}
    rr = known.get("rr")
    if "heart_rate" not in known and rr and rr["unit"] == "ms" and rr["value"] > 0:
        measurements.insert(0, {"key": "heart_rate", "name": "Heart Rate (from RR)",
                                "value": round(60_000 / rr["value"]), "unit": "/min",
                                "derived": True})
    return measurements, statements


def _when_meta(ds: Dataset) -> dict[str, object]:
    """The date/time attributes ``acquired_at`` reads, in DICOM JSON form."""
    tags = {"0008002A": "AcquisitionDateTime", "00080022": "AcquisitionDate",
            "00080032": "AcquisitionTime", "00080023": "ContentDate", "00080033": "ContentTime",
            "00080021": "SeriesDate", "00080031": "SeriesTime", "00080020": "StudyDate",
            "00080030": "StudyTime", "00080201": "TimezoneOffsetFromUTC"}
    return {tag: {"Value": [str(ds.get(keyword))]} for tag, keyword in tags.items()
            if ds.get(keyword) not in (None, "")}


def read_ecg(path: Path, zone: ZoneInfo) -> dict[str, Any]:
    """The drawing form of a stored waveform instance (runs in a worker thread): every
    multiplex group's channels in microvolts, when it was acquired (ISO 8601 with the
    offset of ``zone`` when the file gives none), the device's measurements."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
    check_waveform(ds)
    when: datetime | None = acquired_at(_when_meta(ds), zone)
    measurements, statements = device_annotations(ds)
    return {
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "acquired_at": when.astimezone(zone).isoformat() if when else None,
        "manufacturer": str(ds.get("Manufacturer", "") or ""),
        "model": str(ds.get("ManufacturerModelName", "") or ""),
        "groups": [_group(item) for item in ds.WaveformSequence],
        "measurements": measurements,
        "statements": statements,
    }
