"""Reading stored instances for WADO-RS: headers, frames (from the index, cached), decoded
and transcoded pixel data. Everything here is blocking and runs in worker threads."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.pixels import pack_bits, pixel_array
from pydicom.uid import ExplicitVRLittleEndian

from yilian.dicom.frames import read_frame
from yilian.dicom.pixels import (
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    DecodeError,
    decode_frame,
    is_encapsulated,
    native_bytes,
)
from yilian.server.core.cache import LRUCache

# Compressed transfer syntaxes and the media type their frames are served as.
FRAME_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}


@dataclass(frozen=True)
class StoredInstance:
    """What retrieval needs to know about one stored instance (from its index row)."""

    sop_uid: str
    path: Path
    transfer_syntax: str
    number_of_frames: int
    frames: list[list[list[int]]] | None
    sha256: str


class Reader:
    """Frame and header access with small caches (tiles of a slide are asked for often)."""

    def __init__(self, tile_cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.frames: LRUCache[bytes] = LRUCache(tile_cache_bytes)
        self.headers: LRUCache[Dataset] = LRUCache(2000)

    def header(self, inst: StoredInstance) -> Dataset:
        """The dataset without pixel data (cached by content hash)."""
        cached = self.headers.get(inst.sha256)
        if cached is not None:
            return cached
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(inst.path, stop_before_pixels=True)
        self.headers.put(inst.sha256, ds, 1)
        return ds

    def raw_frame(self, inst: StoredInstance, number: int) -> bytes:
        """Frame ``number`` (1-based) as stored; only that frame's bytes are read."""
        key = (inst.sha256, number)
        cached = self.frames.get(key)
        if cached is not None:
            return cached
        if inst.frames is None:
            data = native_bytes_unindexed(inst, number, self.header(inst))
        else:
            data = read_frame(inst.path, inst.frames[number - 1])
        self.frames.put(key, data, len(data))
        return data

    def decoded_frame(self, inst: StoredInstance, number: int) -> np.ndarray:
        """Frame ``number`` decoded to an array (YBR converted to RGB)."""
        header = self.header(inst)
        if inst.frames is None:
            return _unindexed_array(inst, number)
        return decode_frame(self.raw_frame(inst, number), inst.transfer_syntax, header)

    def frames_as(self, inst: StoredInstance, numbers: Sequence[int], transfer_syntax: str,
                  budget: int) -> list[bytes]:
        """The first of ``numbers`` as ``frame_as`` gives them, as many as about ``budget``
        bytes hold (at least one): a streamed answer reads its frames batch by batch."""
        out: list[bytes] = []
        size = 0
        for n in numbers:
            out.append(self.frame_as(inst, n, transfer_syntax))
            size += len(out[-1])
            if size >= budget:
                break
        return out

    def frame_as(self, inst: StoredInstance, number: int, transfer_syntax: str) -> bytes:
        """Frame bytes in ``transfer_syntax`` (as stored, or native explicit VR LE)."""
        if transfer_syntax == inst.transfer_syntax or (
                inst.frames is None and transfer_syntax == EXPLICIT_LE):
            return self.raw_frame(inst, number)
        if transfer_syntax != EXPLICIT_LE:
            raise DecodeError(f"frames of this instance are available as {inst.transfer_syntax} "
                              f"or {EXPLICIT_LE}, not {transfer_syntax}")
        if inst.transfer_syntax == IMPLICIT_LE:
            return self.raw_frame(inst, number)
        return native_bytes(self.decoded_frame(inst, number), self.header(inst))


def _unindexed_array(inst: StoredInstance, number: int) -> np.ndarray:
    """Frames that are not byte-addressable: deflated files are inflated whole."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if inst.transfer_syntax != DEFLATED_LE:
                return pixel_array(str(inst.path), index=number - 1)
            arr = pydicom.dcmread(inst.path).pixel_array
            return arr[number - 1] if inst.number_of_frames > 1 else arr
    except Exception as exc:
        raise DecodeError(f"the pixel data cannot be decoded: {exc}") from None


def native_bytes_unindexed(inst: StoredInstance, number: int, header: Dataset) -> bytes:
    """Native frame bytes of files whose frames are not byte-addressable (1-bit, deflated)."""
    arr = _unindexed_array(inst, number)
    if int(header.BitsAllocated) == 1:
        return pack_bits(arr)
    return native_bytes(arr, header)


def read_part(path: Path, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of a stored file from ``offset``: a file streamed read by read."""
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(size)


def transcode_to_explicit_le(path: Path) -> bytes:
    """The whole instance re-encoded as Explicit VR Little Endian (decompressed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        ts = str(ds.file_meta.TransferSyntaxUID)
        if "PixelData" in ds and is_encapsulated(ts) and ts != "1.2.840.10008.1.2.1.99":
            try:
                ds.decompress()
            except Exception as exc:
                raise DecodeError(f"the pixel data cannot be decoded: {exc}") from None
        elif "PixelData" in ds and ts == EXPLICIT_BE:
            arr = ds.pixel_array
            ds.PixelData = native_bytes(arr, ds)
            ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
