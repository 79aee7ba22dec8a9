"""Reading a file of monthly outpatient visit totals: CSV (UTF-8, with or without a BOM, or
GB18030 as Excel saves it on a Chinese Windows) or Excel (.xlsx, the first sheet).

The first row names the columns, in English or Chinese: the institution by ``institution_id``
(机构编号) or by name (``institution``, 机构: its English or Chinese name), ``month`` (月份,
``YYYY-MM``; an Excel date cell counts as its month) and ``visits`` (门诊人次). Rows are
numbered as the spreadsheet shows them (the header is row 1); blank rows are skipped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.stats.schemas import VisitTotalOut
from yilian.server.clinic.stats.visits import (
    MAX_ROWS,
    RowErrors,
    check,
    save,
    writable_institutions,
)
from yilian.server.core.errors import UnsupportedMediaType, ValidationFailed
from yilian.server.core.models import Institution, User

CSV_TYPES = ("text/csv", "application/csv", "text/plain")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COLUMNS = {
    "institution_id": "institution_id", "机构编号": "institution_id", "机构id": "institution_id",
    "institution": "institution", "机构": "institution", "机构名称": "institution",
    "month": "month", "月份": "month",
    "visits": "visits", "门诊人次": "visits", "门诊总人次": "visits", "人次": "visits",
}
#: The most cells an .xlsx sheet may hold before it is refused (a small file can unpack huge).
MAX_CELLS = MAX_ROWS * 10

Raw = tuple[int, dict[str, Any]]


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"errors": [
        {"loc": ["body"], "msg": message, "type": "value_error"}]})


def _header(cells: list[Any]) -> dict[int, str]:
    names: dict[int, str] = {}
    for i, cell in enumerate(cells):
        key = COLUMNS.get(str(cell or "").strip().lstrip("\ufeff").lower())
        if key is not None and key not in names.values():
            names[i] = key
    found = set(names.values())
    if "month" not in found or "visits" not in found or not found & {"institution_id",
                                                                      "institution"}:
        raise _refuse("the first row must name the columns institution_id (or institution), "
                      "month and visits")
    return names


def _rows(table: list[tuple[int, list[Any]]]) -> list[Raw]:
    if not table:
        raise _refuse("the file is empty")
    names = _header(table[0][1])
    out: list[Raw] = []
    for number, cells in table[1:]:
        if all(c is None or str(c).strip() == "" for c in cells):
            continue
        out.append((number, {name: cells[i] if i < len(cells) else None
                             for i, name in names.items()}))
        if len(out) > MAX_ROWS:
            raise _refuse(f"a file holds at most {MAX_ROWS} rows")
    if not out:
        raise _refuse("the file has no rows under its header")
    return out


def read_csv(raw: bytes) -> list[Raw]:
    """The rows of a CSV file."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise _refuse("the file is not UTF-8 or GB18030 text")
    if "\x00" in text:
        raise _refuse("the file holds NUL characters: is it a CSV file?")
    try:
        table = [(n + 1, row) for n, row in enumerate(csv.reader(io.StringIO(text)))]
    except csv.Error as exc:
        raise _refuse(f"the CSV file cannot be read: {exc}") from None
    return _rows(table)  # type: ignore[arg-type]


def read_xlsx(raw: bytes) -> list[Raw]:
    """The rows of the first sheet of an Excel workbook (values, not formulas)."""
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
        if unpacked > 64 * 1024 * 1024:
            raise _refuse("the workbook unpacks to more than 64 MiB")
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except ValidationFailed:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise _refuse(f"the file is not an Excel workbook (.xlsx): {type(exc).__name__}"
                      ) from None
    try:
        sheet = book.worksheets[0]
        table: list[tuple[int, list[Any]]] = []
        cells = 0
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells += len(row)
            if cells > MAX_CELLS:
                raise _refuse(f"a file holds at most {MAX_ROWS} rows")
            table.append((number, list(row)))
    except ValidationFailed:
        raise
    except Exception as exc:  # a damaged sheet's XML fails while its rows are read
        raise _refuse(f"the workbook cannot be read: {type(exc).__name__}") from None
    finally:
        book.close()
    return _rows(table)


def _month(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"
    return value.strip() if isinstance(value, str) else value


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


def resolve_rows(rows: list[Raw], names: dict[str, int]) -> tuple[
        list[tuple[int, Any, Any, Any]], RowErrors]:
    """(row number, institution id, month, visits) for ``visits.check``; ``names`` maps each
    institution's English and Chinese name (lower case) to its id."""
    errors = RowErrors()
    out: list[tuple[int, Any, Any, Any]] = []
    for number, cells in rows:
        inst = _number(cells.get("institution_id"))
        if inst in (None, "") and "institution" in cells:
            name = str(cells.get("institution") or "").strip().lower()
            inst = names.get(name)
            if inst is None:
                errors.add(number, "institution", f"no institution named {name!r}"[:120])
                continue
        out.append((number, inst, _month(cells.get("month")), _number(cells.get("visits"))))
    return out, errors


async def import_file(session: AsyncSession, user: User, raw: bytes, content_type: str,
                      ip: str | None) -> list[VisitTotalOut]:
    """Check and write a whole file of totals, or nothing (422 listing every bad row)."""
    await writable_institutions(session, user)  # 403 before the file is even read
    if content_type == XLSX_TYPE:
        rows = await asyncio.to_thread(read_xlsx, raw)
    elif content_type in CSV_TYPES:
        rows = read_csv(raw)
    else:
        raise UnsupportedMediaType("send the totals as text/csv or as an .xlsx workbook "
                                   f"({XLSX_TYPE})", details={"content_type": content_type})
    names: dict[str, int] = {}
    for id_, name, local in await session.execute(
            select(Institution.id, Institution.name, Institution.local_name)):
        names[name.lower()] = id_
        if local:
            names[local.lower()] = id_
    resolved, errors = resolve_rows(rows, names)
    totals = await check(session, user, resolved, "the file was refused", errors)
    return await save(session, user, totals, ip, "import_visit_totals")
