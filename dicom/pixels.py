"""Decoding single frames (native or compressed) into numpy arrays, with pydicom's decoders
(pylibjpeg with its openjpeg, libjpeg and RLE plugins for compressed syntaxes)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import UID

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
NATIVE_SYNTAXES = (IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE)


class DecodeError(ValueError):
    """Pixel data that cannot be decoded with the installed codecs."""


def is_encapsulated(transfer_syntax: str) -> bool:
    """Whether pixel data in this syntax is stored as compressed fragments."""
    return transfer_syntax not in NATIVE_SYNTAXES


def pixel_options(header: Dataset) -> dict[str, Any]:
    """The image pixel description the decoders need, from a header without pixel data."""
    try:
        opts: dict[str, Any] = {
            "rows": int(header.Rows),
            "columns": int(header.Columns),
            "samples_per_pixel": int(header.get("SamplesPerPixel", 1) or 1),
            "bits_allocated": int(header.BitsAllocated),
            "bits_stored": int(header.get("BitsStored", header.BitsAllocated)
                               or header.BitsAllocated),
            "pixel_representation": int(header.get("PixelRepresentation", 0) or 0),
            "photometric_interpretation": str(header.get("PhotometricInterpretation", "")
                                              or "MONOCHROME2").strip(),
            "number_of_frames": 1,
            "pixel_keyword": "PixelData",
        }
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"the image pixel module is incomplete: {exc}") from None
    # Values no decoder can work with; caught here so that no decoder is asked to.
    if opts["bits_allocated"] not in (1, 8, 16, 32, 64):
        raise DecodeError(f"BitsAllocated {opts['bits_allocated']} is not 1, 8, 16, 32 or 64")
    if not 1 <= opts["samples_per_pixel"] <= 4:
        raise DecodeError(f"SamplesPerPixel {opts['samples_per_pixel']} is not 1 to 4")
    if opts["samples_per_pixel"] > 1:
        opts["planar_configuration"] = int(header.get("PlanarConfiguration", 0) or 0)
    return opts


def decode_frame(frame: bytes | memoryview, transfer_syntax: str, header: Dataset, *,
                 as_rgb: bool = True) -> np.ndarray:
    """Decode one frame's bytes (as stored) into an array (rows, cols[, samples])."""
    opts = pixel_options(header)
    fast = _native_monochrome(frame, transfer_syntax, opts)
    if fast is not None:
        return fast
    frame = bytes(frame)  # the codecs take bytes (a no-op for bytes)
    src = encapsulate([frame]) if is_encapsulated(transfer_syntax) else frame
    try:
        decoder = get_decoder(UID(transfer_syntax))
    except NotImplementedError:
        raise DecodeError(f"no decoder for transfer syntax {transfer_syntax}") from None
    try:
        opts["as_rgb"] = as_rgb
        arr, _ = decoder.as_array(src, index=0, **opts)
    except Exception as exc:  # codec plugins raise assorted types on corrupt data
        raise DecodeError(f"the pixel data cannot be decoded: {exc}") from None
    return arr


def _native_monochrome(frame: bytes | memoryview, transfer_syntax: str, opts: dict[str, Any]
                       ) -> np.ndarray | None:
    """Little-endian single-sample frames are a plain array view; no decoder needed.

    Only where the decoder would not change the values: unsigned data, or signed data that
    uses every allocated bit (otherwise the sign bit must be extended).
    """
    bits = opts["bits_allocated"]
    if (transfer_syntax not in (EXPLICIT_LE, IMPLICIT_LE) or opts["samples_per_pixel"] != 1
            or bits not in (8, 16, 32)):
        return None
    signed = opts["pixel_representation"] == 1
    if signed and opts["bits_stored"] != bits:
        return None
    count = opts["rows"] * opts["columns"]
    if len(frame) < count * bits // 8:
        raise DecodeError("the frame is shorter than Rows x Columns")
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    return np.frombuffer(frame, dtype, count).reshape(opts["rows"], opts["columns"])


def frame_length(header: Dataset) -> int | None:
    """Bytes per native frame, or None for bit-packed (1-bit) images."""
    opts = pixel_options(header)
    if opts["bits_allocated"] % 8:
        return None
    samples = opts["samples_per_pixel"]
    pixels = opts["rows"] * opts["columns"]
    if opts["photometric_interpretation"] == "YBR_FULL_422":
        return pixels * 2 * opts["bits_allocated"] // 8
    return pixels * samples * opts["bits_allocated"] // 8


def native_bytes(arr: np.ndarray, header: Dataset) -> bytes:
    """Little-endian native bytes of a decoded frame, interleaved (PlanarConfiguration 0)."""
    bits = int(header.BitsAllocated)
    signed = int(header.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{max(bits, 8) // 8}")
    return np.ascontiguousarray(arr.astype(dtype, copy=False)).tobytes()
