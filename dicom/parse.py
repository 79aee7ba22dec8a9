"""Reading a received DICOM Part 10 file into what storage and the index need, and refusing
the ones that are broken, with a reason and a DICOM failure code."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pydicom
from pydicom import Dataset, config
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag

from yilian.dicom import frames as framemod
from yilian.dicom.dicomjson import (
    PIXEL_DATA,
    MetaHeader,
    dumps,
    index_fields,
    int_of,
    metadata_of,
    text_of,
)
from yilian.dicom.pixels import (
    DEFLATED_LE,
    DecodeError,
    decode_frame,
    frame_length,
    is_encapsulated,
)
from yilian.dicom.waveform import WaveformError, check_waveform, is_waveform

# Failure reasons of PS3.18 STOW-RS (Table 10.5.3-2) and PS3.4.
PROCESSING_FAILURE = 0x0110
NOT_AUTHORIZED = 0x0124
DATASET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
TS_NOT_SUPPORTED = 0xC122

logger = logging.getLogger(__name__)

UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
# Integers the index's columns hold (32-bit on PostgreSQL). A value outside (an IS of twenty
# digits, say) is not indexed: the instance is stored, its metadata keeps the value as sent,
# and QIDO cannot match on it. A NumberOfFrames outside refuses the instance (frames could
# not be addressed).
INDEX_INT_MIN, INDEX_INT_MAX = -(2**31), 2**31 - 1
_PIXEL_TAG = BaseTag(PIXEL_DATA)
BULK_VRS = ("OB", "OW", "OF", "OD", "OL", "OV", "UN")
# Values longer than this are located in the file but not read (pydicom's ``defer_size``):
# the pixel data of a received instance is never copied or decoded as a whole on ingest.
DEFER_SIZE = 8192
# pydicom checks every value it reads against its VR and, by default, only warns. Received
# values are kept as sent and the warnings were discarded anyway (see prepare_instance), so
# the checks are skipped: a fifth of the parsing time on ingest. What must hold is checked
# where it matters (UIDs, numbers in the JSON model, frame geometry).
config.settings.reading_validation_mode = config.IGNORE


class InstanceRejected(ValueError):
    """A received instance that cannot be stored; ``reason`` is a DICOM failure code."""

    def __init__(self, message: str, reason: int = CANNOT_UNDERSTAND,
                 sop_class_uid: str = "", sop_instance_uid: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the reason across processes
        return (type(self), (self.message, self.reason, self.sop_class_uid,
                             self.sop_instance_uid))


class BufferFile:
    """A read-only, seekable file over a bytes-like object (a part of an upload), for pydicom:
    a read copies only the bytes read, so the deferred pixel data is never copied."""

    __slots__ = ("_view", "_pos", "_size", "name")

    def __init__(self, data: bytes | memoryview) -> None:
        self._view = memoryview(data)
        self._pos = 0
        self._size = self._view.nbytes
        self.name = None

    def read(self, size: int | None = -1) -> bytes:
        start = self._pos
        end = self._size if size is None or size < 0 else min(start + size, self._size)
        if end <= start:
            return b""
        self._pos = end
        return self._view[start:end].tobytes()

    def seek(self, offset: int, whence: int = 0) -> int:
        base = 0 if whence == 0 else self._pos if whence == 1 else self._size
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        """Nothing to release; the view belongs to the upload."""


@dataclass
class PreparedInstance:
    """A parsed, validated instance ready to be written and indexed."""

    data: bytes | memoryview | None  # None once written and parsed in a worker
    size: int
    sha256: str
    transfer_syntax: str
    sop_class_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    patient: dict[str, str]
    study: dict[str, str]
    series: dict[str, Any]
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int
    frames: framemod.FrameRanges | None
    metadata_json: str
    extra: dict[str, Any] = field(default_factory=dict)


def _indexable(value: int | None) -> int | None:
    """``value`` if an index column can hold it, else None (not indexed)."""
    return value if value is not None and INDEX_INT_MIN <= value <= INDEX_INT_MAX else None


def _uid(text: Callable[[str, int], str], keyword: str, sop_class: str, sop: str) -> str:
    value = text(keyword, 100).rstrip("\x00")
    if not value:
        raise InstanceRejected(f"{keyword} is missing", DATASET_MISMATCH, sop_class, sop)
    if len(value) > 64 or not UID_RE.match(value):
        raise InstanceRejected(f"{keyword} {value!r} is not a valid UID", DATASET_MISMATCH,
                               sop_class, sop)
    return value


def read_dataset(data: bytes | memoryview) -> tuple[Dataset, RawDataElement | None]:
    """Parse a Part 10 file, keeping the raw pixel data element (it knows its file offset).

    Values over ``DEFER_SIZE`` bytes (native pixel data above all) are located, not read;
    reading one later (``ds[tag]``) goes back to ``data``.
    """
    if len(data) < 132 or bytes(data[128:132]) != b"DICM":
        raise InstanceRejected("not a DICOM Part 10 file (no 'DICM' prefix after the preamble)")
    fp: Any = io.BytesIO(data) if isinstance(data, bytes) else BufferFile(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, defer_size=DEFER_SIZE)
            raw = ds._dict.get(_PIXEL_TAG)
    except (InvalidDicomError, EOFError) as exc:
        raise InstanceRejected(f"the file cannot be read: {exc}") from None
    except Exception as exc:  # pydicom raises assorted types on corrupt input
        raise InstanceRejected(f"the file cannot be parsed: {type(exc).__name__}: {exc}") from None
    ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    if not ts:
        raise InstanceRejected("the file meta information names no Transfer Syntax UID",
                               TS_NOT_SUPPORTED)
    return ds, raw if isinstance(raw, RawDataElement) else None


def prepare_instance(data: bytes | memoryview) -> PreparedInstance:
    """Parse and validate one received file (runs in a worker thread). Whatever goes wrong
    with one file refuses that file (:class:`InstanceRejected`), never the whole upload."""
    with warnings.catch_warnings():
        # Invalid values are kept as sent and indexed leniently; they are not our log's job.
        warnings.simplefilter("ignore")
        try:
            return _prepare(data)
        except (InstanceRejected, MemoryError):
            raise
        except Exception as exc:  # a hostile file found a path the checks above missed
            logger.warning("refused a DICOM file that failed unexpectedly", exc_info=True)
            raise InstanceRejected(f"the file cannot be processed: {type(exc).__name__}: "
                                   f"{str(exc)[:200]}", PROCESSING_FAILURE) from None


def _prepare(data: bytes | memoryview) -> PreparedInstance:
    ds, raw = read_dataset(data)
    meta: dict[str, Any] | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid values are kept as sent; not our log's job
            meta = metadata_of(ds)
        meta_error = None
    except Exception as exc:  # refused below, once the UIDs that name it are known
        meta_error = exc
    # Index attributes are read from the JSON model (each value converted once); a dataset
    # that has none is read directly, far enough to name it in the refusal.
    if meta is not None:
        text, number = index_fields(meta, ds)
        header: Any = MetaHeader(meta, ds)
    else:
        text, number, header = partial(text_of, ds), partial(int_of, ds), ds
    sop_class = text("SOPClassUID", 64) or str(
        getattr(ds.file_meta, "MediaStorageSOPClassUID", "") or "")
    sop = text("SOPInstanceUID", 64)
    sop_class = _uid(text, "SOPClassUID", sop_class, sop)
    sop = _uid(text, "SOPInstanceUID", sop_class, sop)
    study_uid = _uid(text, "StudyInstanceUID", sop_class, sop)
    series_uid = _uid(text, "SeriesInstanceUID", sop_class, sop)
    ts = str(ds.file_meta.TransferSyntaxUID)
    frames, n_frames = _index_pixels(ds, header, number, raw, data, ts, sop_class, sop)
    if is_waveform(sop_class):  # an ECG cart's samples must be readable to be drawn
        try:
            check_waveform(ds)
        except WaveformError as exc:
            raise InstanceRejected(str(exc), DATASET_MISMATCH, sop_class, sop) from None
    if meta is None:
        raise InstanceRejected(f"the dataset cannot be expressed as DICOM JSON: {meta_error}",
                               PROCESSING_FAILURE, sop_class, sop) from None
    rows, cols = number("Rows"), number("Columns")
    return PreparedInstance(
        data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest(), transfer_syntax=ts,
        sop_class_uid=sop_class, sop_uid=sop, study_uid=study_uid, series_uid=series_uid,
        patient={"patient_id": text("PatientID", 64),
                 "patient_name": text("PatientName"),
                 "birth_date": text("PatientBirthDate", 8),
                 "sex": text("PatientSex", 16)},
        study={"study_date": text("StudyDate", 8), "study_time": text("StudyTime", 16),
               "accession_number": text("AccessionNumber", 16),
               "study_id": text("StudyID", 16),
               "study_description": text("StudyDescription"),
               "referring_physician_name": text("ReferringPhysicianName")},
        series={"modality": text("Modality", 16),
                "series_number": _indexable(number("SeriesNumber")),
                "series_description": text("SeriesDescription"),
                "body_part": text("BodyPartExamined", 16),
                "series_date": text("SeriesDate", 8)},
        instance_number=_indexable(number("InstanceNumber")), rows=_indexable(rows),
        columns=_indexable(cols),
        number_of_frames=n_frames, frames=frames, metadata_json=dumps(meta),
    )


def _index_pixels(ds: Dataset, header: Any, number: Callable[[str], int | None],
                  raw: RawDataElement | None, data: bytes | memoryview, ts: str,
                  sop_class: str, sop: str) -> tuple[framemod.FrameRanges | None, int]:
    """Frame ranges of the pixel data and the number of frames, after checking the first
    frame decodes. ``header`` answers the image pixel attributes (the dataset, or the JSON
    model read through :class:`MetaHeader`)."""
    if raw is None:
        if PIXEL_DATA in ds:
            raise InstanceRejected("the pixel data cannot be located in the file",
                                   PROCESSING_FAILURE, sop_class, sop)
        return None, 0
    deflated = ts == DEFLATED_LE  # offsets are into the inflated dataset, not the file
    if raw.value_tell is None:
        raise InstanceRejected("the pixel data cannot be located in the file", PROCESSING_FAILURE,
                               sop_class, sop)
    n_frames = number("NumberOfFrames") or 1
    if not 1 <= n_frames <= INDEX_INT_MAX:
        raise InstanceRejected(f"NumberOfFrames is {str(n_frames)[:40]}", DATASET_MISMATCH,
                               sop_class, sop)
    try:
        if is_encapsulated(ts):
            if raw.length != 0xFFFFFFFF:
                raise framemod.FrameIndexError("compressed pixel data must be encapsulated")
            ext = ds.get("ExtendedOffsetTable")
            ext_offsets = None
            if ext:
                ext_offsets = list(memoryview(bytes(ext)).cast("Q"))
            # A deferred value ends at its sequence delimiter, where the walk stops.
            value = raw.value if raw.value is not None else \
                memoryview(data)[raw.value_tell:]
            ranges = framemod.encapsulated_ranges(value, raw.value_tell, n_frames, ext_offsets)
        else:
            length = None if deflated else frame_length(header)
            if length is None:  # bit-packed frames do not start on byte boundaries
                ranges = None
            else:
                # What the file holds of the value (a truncated file holds less than declared).
                held = len(raw.value) if raw.value is not None else \
                    max(0, min(raw.length, len(data) - raw.value_tell))
                ranges = framemod.native_ranges(raw.value_tell, held, length, n_frames)
        if ranges is not None:
            decode_frame(frame_bytes(data, ranges[0]), ts, header)
        else:
            _decode_whole(ds)
    except (framemod.FrameIndexError, DecodeError) as exc:
        raise InstanceRejected(str(exc), TS_NOT_SUPPORTED if isinstance(exc, DecodeError)
                               else DATASET_MISMATCH, sop_class, sop) from None
    return ranges, n_frames


def frame_bytes(data: bytes | memoryview, ranges: list[list[int]]) -> bytes | memoryview:
    """One frame's bytes taken from the file in memory (a view when it is one fragment)."""
    if len(ranges) == 1:
        offset, length = ranges[0]
        return memoryview(data)[offset:offset + length]
    view = memoryview(data)
    return b"".join(view[o:o + n] for o, n in ranges)


def _decode_whole(ds: Dataset) -> None:
    """Check pixel data that is not frame-addressable (deflated, bit-packed) decodes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.pixel_array  # noqa: B018
    except Exception as exc:
        raise DecodeError(f"the pixel data cannot be decoded: {exc}") from None
