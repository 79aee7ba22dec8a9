"""QIDO-RS: matching (exact, wildcard, date/time range, UID list) on the index, so a search
never opens a file, and answers in the DICOM JSON model."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.dicom.models import DicomInstance, DicomSeries, DicomStudy
from yilian.dicom.parse import INDEX_INT_MAX, INDEX_INT_MIN
from yilian.server.core.db import Database
from yilian.server.core.errors import BadRequest
from yilian.server.core.schemas import ascii_int

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
# The index's integer columns are 32-bit on PostgreSQL; limit and offset are bound as such.
INT_RANGE = (INDEX_INT_MIN, INDEX_INT_MAX)
MAX_OFFSET = INDEX_INT_MAX
CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}


@dataclass(frozen=True)
class Attr:
    tag: str
    keyword: str
    vr: str
    column: Any
    match: str  # str | pn | date | time | uid | int | modalities | none


def _a(tag: str, vr: str, column: Any, match: str) -> Attr:
    return Attr(tag, keyword_for_tag(int(tag, 16)), vr, column, match)


STUDY = [
    _a("00080020", "DA", DicomStudy.study_date, "date"),
    _a("00080030", "TM", DicomStudy.study_time, "time"),
    _a("00080050", "SH", DicomStudy.accession_number, "str"),
    _a("00080061", "CS", DicomStudy.modalities, "modalities"),
    _a("00080090", "PN", DicomStudy.referring_physician_name, "pn"),
    _a("00081030", "LO", DicomStudy.study_description, "str"),
    _a("00100010", "PN", DicomStudy.patient_name, "pn"),
    _a("00100020", "LO", DicomStudy.patient_id, "str"),
    _a("00100030", "DA", DicomStudy.patient_birth_date, "date"),
    _a("00100040", "CS", DicomStudy.patient_sex, "str"),
    _a("0020000D", "UI", DicomStudy.study_uid, "uid"),
    _a("00200010", "SH", DicomStudy.study_id, "str"),
    _a("00201206", "IS", DicomStudy.num_series, "none"),
    _a("00201208", "IS", DicomStudy.num_instances, "none"),
]
SERIES = [
    _a("00080021", "DA", DicomSeries.series_date, "date"),
    _a("00080060", "CS", DicomSeries.modality, "str"),
    _a("0008103E", "LO", DicomSeries.series_description, "str"),
    _a("00180015", "CS", DicomSeries.body_part, "str"),
    _a("0020000E", "UI", DicomSeries.series_uid, "uid"),
    _a("00200011", "IS", DicomSeries.series_number, "int"),
    _a("00201209", "IS", DicomSeries.num_instances, "none"),
]
INSTANCE = [
    _a("00080016", "UI", DicomInstance.sop_class_uid, "uid"),
    _a("00080018", "UI", DicomInstance.sop_uid, "uid"),
    _a("00200013", "IS", DicomInstance.instance_number, "int"),
    _a("00280008", "IS", DicomInstance.number_of_frames, "int"),
    _a("00280010", "US", DicomInstance.rows, "int"),
    _a("00280011", "US", DicomInstance.columns, "int"),
    _a("00083002", "UI", DicomInstance.transfer_syntax, "uid"),
]
LEVELS = {"study": STUDY, "series": SERIES, "instance": INSTANCE}
# What each level answers with by default, and what it may also match on.
SCOPE = {"study": ["study"], "series": ["series", "study"],
         "instance": ["instance", "series", "study"]}
DEFAULT_PARENT = {"series": ["0020000D"], "instance": ["0020000D", "0020000E"]}
# ASCII digits only (``\d`` would take Arabic-Indic or full-width ones).
_DATE = re.compile(r"^[0-9]{8}$")
_TIME = re.compile(r"^[0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?$")


def _tag_of(name: str) -> str:
    """A query key (keyword or 8-hex-digit tag) as an upper-case tag string."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        return name.upper()
    tag = tag_for_keyword(name)
    if tag is None:
        raise BadRequest(f"unknown attribute {name!r} in the query",
                         code="invalid_query_parameter", details={"parameter": name})
    return f"{tag:08X}"


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _valid_date(text: str) -> bool:
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:  # month 13, day 32, year 0000
        return False
    return True


def _valid_time(text: str) -> bool:
    parts = [int(text[i:i + 2]) for i in range(0, min(len(text), 6), 2)]
    return all(p <= top for p, top in zip(parts, (23, 59, 60), strict=False))  # 60: leap


def _range(value: str, pattern: re.Pattern[str], what: str) -> tuple[str, str]:
    lo, sep, hi = value.partition("-")
    bounds = [lo, hi] if sep else [value, value]
    valid = _valid_date if what == "date" else _valid_time
    for b in bounds:
        if b and not (pattern.fullmatch(b) and valid(b)):
            raise BadRequest(f"{value[:40]!r} is not a valid {what} or {what} range",
                             code="invalid_query_parameter")
    if not any(bounds):
        raise BadRequest(f"empty {what} range", code="invalid_query_parameter")
    return bounds[0], bounds[1]


def _condition(attr: Attr, value: str) -> ColumnElement[bool]:
    col = attr.column
    if attr.match == "uid":
        uids = [u.strip() for u in re.split(r"[,\\]", value) if u.strip()]
        return col.in_(uids)
    if attr.match == "date":
        lo, hi = _range(value, _DATE, "date")
        conds = [col != ""]
        if lo:
            conds.append(col >= lo)
        if hi:
            conds.append(col <= hi)
        return and_(*conds)
    if attr.match == "time":
        lo, hi = _range(value.replace(":", ""), _TIME, "time")
        t = func.substr(col, 1, 6)
        conds = [col != ""]
        if lo:
            conds.append(t >= lo[:6].ljust(6, "0"))
        if hi:
            conds.append(t <= hi[:6].ljust(6, "9"))
        return and_(*conds)
    if attr.match == "int":
        number = ascii_int(value, *INT_RANGE)
        if number is None:
            raise BadRequest(f"{attr.keyword} must be an integer in ASCII digits between "
                             f"{INT_RANGE[0]} and {INT_RANGE[1]}",
                             code="invalid_query_parameter",
                             details={"parameter": attr.keyword})
        return col == number
    if attr.match == "modalities":
        mods = [m.strip() for m in re.split(r"[,\\]", value) if m.strip()]
        return DicomStudy.id.in_(select(DicomSeries.study_ref)
                                 .where(DicomSeries.modality.in_(mods)))
    if attr.match == "pn":
        if "*" in value or "?" in value:
            return func.lower(col).like(_like(value.lower()), escape="\\")
        return func.lower(col) == value.lower()
    if "*" in value or "?" in value:
        return col.like(_like(value), escape="\\")
    return col == value


@dataclass
class Query:
    level: str
    filters: list[ColumnElement[bool]]
    returned: list[Attr]
    extra_tags: list[str]
    limit: int
    offset: int
    warnings: list[str]


def parse_query(level: str, params: Mapping[str, str], path: Mapping[str, str]) -> Query:
    """Turn QIDO query parameters into filters and the attributes to return."""
    known = {a.tag: a for lv in SCOPE[level] for a in LEVELS[lv]}
    filters: list[ColumnElement[bool]] = []
    warnings: list[str] = []
    returned = list(LEVELS[level]) + [known[t] for t in DEFAULT_PARENT.get(level, [])]
    extra: list[str] = []
    limit, offset = DEFAULT_LIMIT, 0
    for key, value in params.items():
        if key == "limit" or key == "offset":
            number = ascii_int(value, 0, MAX_OFFSET)
            if number is None:
                raise BadRequest(f"{key} must be an integer in ASCII digits between 0 and "
                                 f"{MAX_OFFSET}", code="invalid_query_parameter",
                                 details={"parameter": key})
            if key == "limit":
                limit = min(number, MAX_LIMIT)
            else:
                offset = number
            continue
        if key == "fuzzymatching":
            continue
        if key == "includefield":
            for name in re.split(r"[,\s]+", value):
                if not name:
                    continue
                if name == "all":
                    returned += [a for a in known.values() if a not in returned]
                    continue
                tag = _tag_of(name)
                if tag in known:
                    if known[tag] not in returned:
                        returned.append(known[tag])
                elif tag not in extra:
                    extra.append(tag)
            continue
        tag = _tag_of(key)
        attr = known.get(tag)
        if attr is None or attr.match == "none":
            warnings.append(f"299 yilian \"{key} is not supported for matching at {level} "
                            "level and was ignored\"")
            continue
        if value == "":
            continue  # universal matching: return the attribute, match everything
        filters.append(_condition(attr, value))
        if attr not in returned:
            returned.append(attr)
    for key, value in path.items():
        filters.append(known[key].column == value)
    return Query(level, filters, returned, extra, limit, offset, warnings)


def _statement(q: Query, user_filter: ColumnElement[bool]) -> Select[Any]:
    cols = [a.column for a in q.returned]
    ids = {"study": DicomStudy.id, "series": DicomSeries.id, "instance": DicomInstance.id}
    stmt = select(ids[q.level], *cols)
    if q.level == "instance":
        stmt = stmt.add_columns(DicomInstance.metadata_json) if q.extra_tags else stmt
        stmt = stmt.select_from(DicomInstance).join(
            DicomSeries, DicomSeries.id == DicomInstance.series_ref).join(
            DicomStudy, DicomStudy.id == DicomInstance.study_ref)
    elif q.level == "series":
        stmt = stmt.select_from(DicomSeries).join(DicomStudy,
                                                  DicomStudy.id == DicomSeries.study_ref)
    else:
        stmt = stmt.select_from(DicomStudy)
    # Studies newest received first (what a study picker shows first); series and instances
    # in their numbered order.
    orders: dict[str, list[Any]] = {
        "study": [DicomStudy.id.desc()],
        "series": [DicomSeries.series_number, DicomSeries.id],
        "instance": [DicomInstance.instance_number, DicomInstance.id]}
    order = orders[q.level]
    return (stmt.where(user_filter, *q.filters).order_by(*order)
            .limit(q.limit).offset(q.offset))


def _element(attr: Attr, value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return {"vr": attr.vr}
    if attr.vr == "PN":
        return {"vr": "PN", "Value": [{"Alphabetic": value}]}
    if attr.vr in ("IS", "US"):
        return {"vr": attr.vr, "Value": [int(value)]}
    if attr.match == "modalities":
        return {"vr": "CS", "Value": value.split("\\")}
    return {"vr": attr.vr, "Value": [value]}


def retrieve_url(base: str, row: Mapping[str, Any], level: str) -> str:
    """The WADO-RS URL of a study, series or instance."""
    url = f"{base}/studies/{row['0020000D']}"
    if level in ("series", "instance"):
        url += f"/series/{row['0020000E']}"
    if level == "instance":
        url += f"/instances/{row['00080018']}"
    return url


async def search(source: AsyncSession | Database, user_filter: ColumnElement[bool], q: Query,
                 base: str) -> list[dict[str, Any]]:
    """Run a parsed query (in ``source``'s transaction, or as one fast read of the database)
    and answer in the DICOM JSON model."""
    stmt = _statement(q, user_filter)
    if isinstance(source, Database):
        rows = await source.rows(stmt)
    else:
        rows = list((await source.execute(stmt)).all())
    out = []
    for row in rows:
        values = {a.tag: row[i + 1] for i, a in enumerate(q.returned)}
        doc: dict[str, Any] = {}
        for attr in q.returned:
            elem = _element(attr, values[attr.tag])
            if elem is not None:
                doc[attr.tag] = elem
        if q.extra_tags and q.level == "instance":
            meta = json.loads(row[-1])
            for tag in q.extra_tags:
                if tag in meta:
                    doc[tag] = meta[tag]
        if all(t in values for t in ("0020000D", "0020000E", "00080018")[
                : {"study": 1, "series": 2, "instance": 3}[q.level]]):
            doc["00081190"] = {"vr": "UR", "Value": [retrieve_url(base, values, q.level)]}
        out.append(dict(sorted(doc.items())))
    return out
