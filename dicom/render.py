"""Rendered images (JPEG/PNG) of frames: rescale slope/intercept, window/level from the
request or the file, MONOCHROME1 inversion, RGB/YBR colour and palette colour LUTs."""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut

from yilian.dicom.pixels import DecodeError
from yilian.server.core.errors import BadRequest
from yilian.server.core.schemas import ascii_int

# A decimal number in ASCII (``float`` would also take "nan", "inf", "1_0" and other digits).
_DECIMAL = re.compile(r"[-+]?[0-9]{1,12}(\.[0-9]{1,12})?([eE][-+]?[0-9]{1,3})?")


def _decimal(text: str) -> float:
    text = text.strip(" ")
    value = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise ValueError(text)
    return value


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = "image/jpeg"
    window: tuple[float, float] | None = None  # center, width
    viewport: tuple[int, int] | None = None  # width, height
    quality: int = 90


def parse_render_options(params: dict[str, str], media_type: str,
                         default_viewport: tuple[int, int] | None = None) -> RenderOptions:
    """The rendering parameters of PS3.18 (window, viewport, quality) from a query."""
    window = None
    if params.get("window"):
        parts = params["window"].split(",")
        try:
            center, width = _decimal(parts[0]), _decimal(parts[1])
        except (ValueError, IndexError):
            raise BadRequest("window must be center,width[,function]",
                             code="invalid_query_parameter") from None
        if width <= 0:
            raise BadRequest("window width must be positive", code="invalid_query_parameter")
        window = (center, width)
    viewport = default_viewport
    if params.get("viewport"):
        sizes = [ascii_int(v, 1, 8192) for v in params["viewport"].split(",")[:2]]
        if len(sizes) != 2 or None in sizes:
            raise BadRequest("viewport must be width,height, each 1..8192 in ASCII digits",
                             code="invalid_query_parameter")
        viewport = (sizes[0] or 1, sizes[1] or 1)
    quality = 90
    if params.get("quality"):
        number = ascii_int(params["quality"], 1, 100)
        if number is None:
            raise BadRequest("quality must be 1..100", code="invalid_query_parameter")
        quality = number
    return RenderOptions(media_type, window, viewport, quality)


def _first(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    return None if value is None else float(value)  # type: ignore[arg-type]


def _window(arr: np.ndarray, header: Dataset, opts: RenderOptions,
            data_range: tuple[float, float] | None = None) -> np.ndarray:
    if opts.window is not None:
        center, width = opts.window
    else:
        c, w = _first(header.get("WindowCenter")), _first(header.get("WindowWidth"))
        if c is not None and w is not None and w > 0:
            center, width = c, w
        else:
            lo, hi = data_range or (float(np.min(arr)), float(np.max(arr)))
            center, width = (lo + hi) / 2, max(hi - lo, 1.0)
    # PS3.3 C.11.2.1.2.1 linear function
    lower = center - 0.5 - (width - 1) / 2
    scaled = (arr.astype(np.float32) - lower) / max(width - 1, 1.0)
    return np.clip(scaled * 255.0, 0, 255).astype(np.uint8)


def _lut_display(arr: np.ndarray, header: Dataset, opts: RenderOptions) -> np.ndarray:
    """Rescale + window through a lookup table over the stored value range.

    A CT slice has 262,144 pixels but at most a few thousand distinct stored values; doing the
    floating-point work once per value and then indexing is several times faster.
    """
    lo, hi = int(arr.min()), int(arr.max())
    slope = _first(header.get("RescaleSlope")) or 1.0
    intercept = _first(header.get("RescaleIntercept")) or 0.0
    ends = sorted((lo * slope + intercept, hi * slope + intercept))
    start = min(lo, 0)  # unsigned data indexes the table directly, without a shifted copy
    values = np.arange(start, hi + 1, dtype=np.float32) * slope + intercept
    lut = _window(values, header, opts, (ends[0], ends[1]))
    return lut[(arr.astype(np.int32) - start) if start else arr]


def to_display(arr: np.ndarray, header: Dataset, opts: RenderOptions) -> Image.Image:
    """An 8-bit Pillow image of one decoded frame; :class:`DecodeError` when the frame and
    its header cannot make one (a palette without its lookup table, no pixels, ...)."""
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise DecodeError(f"the frame holds no displayable pixels (shape {arr.shape})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflowing rescale values are clipped below
            return _to_display(arr, header, opts)
    except DecodeError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        raise DecodeError(f"the frame cannot be rendered: {str(exc)[:200]}") from None


def _to_display(arr: np.ndarray, header: Dataset, opts: RenderOptions) -> Image.Image:
    photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        if arr.ndim != 2:
            raise DecodeError("a PALETTE COLOR image has one sample per pixel")
        try:
            rgb = apply_color_lut(arr, header)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise DecodeError(f"the PALETTE COLOR lookup table is missing or unusable: "
                              f"{str(exc)[:200]}") from None
        bits = 16 if rgb.dtype.itemsize > 1 else 8
        return Image.fromarray((rgb >> (bits - 8)).astype(np.uint8), "RGB")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        if arr.dtype != np.uint8:
            bits = int(header.get("BitsStored", 8) or 8)
            arr = (arr.astype(np.float32) * (255.0 / ((1 << bits) - 1))).clip(0, 255)
        return Image.fromarray(arr[..., :3].astype(np.uint8), "RGB")
    if arr.ndim == 3:  # several samples but not colour: show the first
        arr = arr[..., 0]
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2 and "ModalityLUTSequence" not in header:
        out = _lut_display(arr, header, opts)
        return Image.fromarray(255 - out if photometric == "MONOCHROME1" else out, "L")
    try:
        values = apply_modality_lut(arr, header)
    except (AttributeError, ValueError, TypeError):
        values = arr
    out = _window(values, header, opts)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return Image.fromarray(out, "L")


def encode(image: Image.Image, opts: RenderOptions) -> bytes:
    """Resize into the viewport (keeping the aspect ratio) and encode."""
    if opts.viewport is not None:
        image = image.copy()
        image.thumbnail(opts.viewport, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if opts.media_type == "image/png":
        image.save(buf, "PNG", compress_level=3)
    elif opts.media_type == "image/gif":
        image.save(buf, "GIF")
    else:
        image.save(buf, "JPEG", quality=opts.quality)
    return buf.getvalue()


def render(arr: np.ndarray, header: Dataset, opts: RenderOptions) -> bytes:
    """One decoded frame as JPEG/PNG bytes (:class:`DecodeError` if it cannot be shown)."""
    return encode(to_display(arr, header, opts), opts)
