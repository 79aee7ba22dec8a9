"""The DICOM JSON model (PS3.18 F.2) of a received dataset, as stored for /metadata and read
for the index: bulk data left out, values converted once, and readers of index attributes
over the model."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import orjson
import pydicom
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.jsonrep import convert_to_python_number
from pydicom.multival import MultiValue
from pydicom.values import convert_value

PIXEL_DATA = 0x7FE00010
# Binary values pydicom's to_json_dict turns into a BulkDataURI at a 1,024-byte threshold
# (the base64 length, so more than 768 raw bytes): left out of the stored document.
_BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW"})
_INLINE_BINARY_MAX = (1024 // 4) * 3
# ICC profiles (0028,2000) are the exception, written as InlineBinary up to this size (PS3.18
# F.2.7 lets the server choose): a slide viewer needs its optical path's profile to show the
# colours (an sRGB profile is about 3 KB; OHIF's microscopy viewer reads InlineBinary as well
# as a BulkDataURI), and one more request per instance would cost more than the bytes.
ICC_PROFILE = 0x00282000
ICC_INLINE_MAX = 64 * 1024
_INLINE = "\x00inline:"


def text_of(ds: Dataset, keyword: str, limit: int = 200) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed value is indexed as empty, the file keeps it
        return ""
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def int_of(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except Exception:
        return None


def _strip_bulk(node: Any) -> Any:
    """Bulk data left out of a JSON model; ICC profiles marked by :func:`_bulk` inlined."""
    if isinstance(node, dict):
        return {k: _inline(v) if _marked(v) else _strip_bulk(v) for k, v in node.items()
                if not (isinstance(v, dict) and "BulkDataURI" in v) or _marked(v)}
    if isinstance(node, list):
        return [_strip_bulk(v) for v in node]
    return node


def _bulk(elem: Any) -> str:
    """pydicom's bulk data handler: an ICC profile small enough is marked to be inlined."""
    if elem.tag == ICC_PROFILE and elem.value is not None and \
            len(elem.value) <= ICC_INLINE_MAX:
        return _INLINE + base64.b64encode(bytes(elem.value)).decode()
    return "-"


def _marked(v: Any) -> bool:
    return isinstance(v, dict) and str(v.get("BulkDataURI", "")).startswith(_INLINE)


def _inline(v: dict[str, Any]) -> dict[str, Any]:
    return {"vr": v["vr"], "InlineBinary": v["BulkDataURI"][len(_INLINE):]}


# Value representations whose JSON form is the converted value itself (PS3.18 F.2.3): their
# raw bytes go straight through pydicom's value converters, skipping the element objects,
# hooks and lookups of ``Dataset.__getitem__`` (half the cost of a header on ingest).
# PN, AT, SQ and the binary VRs take pydicom's own path.
_PLAIN_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "SH", "SL", "SS",
                        "ST", "TM", "UC", "UI", "UL", "UR", "US", "UT", "FL", "FD"})


def _plain_json(vr: str, raw: RawDataElement, encodings: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"vr": vr}
    if raw.length:
        value = convert_value(vr, raw, encodings)
        values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
        if not (len(values) == 1 and values[0] in ("", None)):
            element["Value"] = convert_to_python_number(values, vr)
    return element


def metadata_of(ds: Dataset) -> dict[str, Any]:
    """The DICOM JSON model of a dataset, pixel and other bulk data left out.

    The same document as pydicom's ``Dataset.to_json_dict`` (tests/dicom/test_metadata.py
    compares them over every file pydicom ships). Converting every value also validates
    them: truncated or malformed elements raise here.
    """
    encodings = ds._character_set
    doc: dict[str, Any] = {}
    for tag, elem in ds._dict.items():
        vr = elem.VR
        if isinstance(elem, RawDataElement):
            if elem.value is None and elem.length and (vr in _BYTES_VRS or tag == PIXEL_DATA) \
                    and not (tag == ICC_PROFILE and elem.length <= ICC_INLINE_MAX):
                continue  # deferred bulk data (binary however implicit VR resolves it)
            if vr in _BYTES_VRS and elem.value is not None and \
                    len(elem.value) > _INLINE_BINARY_MAX and tag != ICC_PROFILE:
                continue  # bulk data, left out without reading it
            if vr in _PLAIN_VRS and elem.value is not None:
                doc[f"{tag:08X}"] = _plain_json(vr, elem, encodings)
                continue
        element = ds[tag].to_json_dict(_bulk, 1024)
        if _marked(element):
            element = _inline(element)
        elif "BulkDataURI" in element:
            continue
        if element.get("vr") == "SQ" and "Value" in element:
            element["Value"] = _strip_bulk(element["Value"])
        doc[f"{tag:08X}"] = element
    return doc


def dumps(doc: dict[str, Any]) -> str:
    try:
        return orjson.dumps(doc).decode()
    except TypeError:  # an integer beyond 64 bits, say: kept, as the JSON number it is
        return json.dumps(_finite(doc), allow_nan=False)


def _finite(node: Any) -> Any:
    """Non-finite floats (a DS of "1e400") as null, as orjson writes them: NaN and Infinity
    are not JSON."""
    if isinstance(node, float) and not math.isfinite(node):
        return None
    if isinstance(node, dict):
        return {k: _finite(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_finite(v) for v in node]
    return node


_MISSING = object()


class MetaHeader:
    """Header attributes read from the JSON model, as a dataset would answer them (one
    value, a list of several, None when empty); what the model does not hold as a plain
    value (person names, sequences, bulk data) is read from the dataset."""

    __slots__ = ("_meta", "_ds")

    def __init__(self, meta: dict[str, Any], ds: Dataset) -> None:
        self._meta = meta
        self._ds = ds

    def get(self, keyword: str, default: Any = None) -> Any:
        element = self._meta.get(f"{tag_for_keyword(keyword):08X}")
        if element is None or element.get("vr") not in _PLAIN_VRS:
            return self._ds.get(keyword, default)
        values = element.get("Value")
        if not values:
            return None
        return values[0] if len(values) == 1 else list(values)

    def __getattr__(self, keyword: str) -> Any:
        value = self.get(keyword, _MISSING)
        if value is _MISSING:
            raise AttributeError(keyword)
        return value


def index_fields(meta: dict[str, Any], ds: Dataset) -> tuple[Any, Any]:
    """Readers of index attributes from the JSON model already built (each value converted
    once), as ``text_of`` and ``int_of`` would read them from the dataset; names go through the
    dataset (their JSON form is split into component groups)."""

    def text(keyword: str, limit: int = 200) -> str:
        element = meta.get(f"{tag_for_keyword(keyword):08X}")
        if element is None or element.get("vr") == "PN":
            return text_of(ds, keyword, limit)
        values = element.get("Value") or []
        return "\\".join("" if v is None else str(v) for v in values).strip()[:limit]

    def number(keyword: str) -> int | None:
        element = meta.get(f"{tag_for_keyword(keyword):08X}")
        if element is None or element.get("vr") not in ("IS", "US", "UL", "SS", "SL"):
            return int_of(ds, keyword)
        values = element.get("Value") or []
        return values[0] if len(values) == 1 and isinstance(values[0], int) else None

    return text, number

