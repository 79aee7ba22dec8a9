"""The import files: CSV (UTF-8 with or without BOM, or GB18030 as Excel saves it in China)
or Excel .xlsx, one table per file, or one workbook with a sheet per table. The header row
names the columns, in English or Chinese."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

from yilian.server.clinic.admin.schemas import ImportProblem

TABLES = ("institutions", "departments", "users")
#: The columns of each table; the required ones first.
COLUMNS: dict[str, tuple[str, ...]] = {
    "institutions": ("name", "level", "local_name", "parent", "alliance"),
    "departments": ("institution", "name", "specialty"),
    "users": ("username", "display_name", "role", "institution", "department", "specialties",
              "title"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "institutions": ("name", "level"),
    "departments": ("institution", "name"),
    "users": ("username", "display_name", "role", "institution"),
}
#: Header names a Chinese spreadsheet may use.
ALIASES: dict[str, dict[str, str]] = {
    "institutions": {"名称": "name", "机构名称": "name", "级别": "level", "层级": "level",
                     "中文名称": "local_name", "本地名称": "local_name", "上级机构": "parent",
                     "上级": "parent", "医联体": "alliance"},
    "departments": {"机构": "institution", "所属机构": "institution", "机构名称": "institution",
                    "科室": "name", "科室名称": "name", "名称": "name", "专科": "specialty"},
    "users": {"用户名": "username", "账号": "username", "姓名": "display_name",
              "显示名": "display_name", "角色": "role", "机构": "institution",
              "所属机构": "institution", "科室": "department", "专科": "specialties",
              "职称": "title"},
}
SHEET_ALIASES = {"机构": "institutions", "科室": "departments", "用户": "users",
                 "人员": "users"}
#: Rows one table may hold.
MAX_ROWS = 20_000
#: Characters one cell may hold.
MAX_CELL = 1000


@dataclass
class Table:
    name: str
    #: (row number as the spreadsheet shows it, {column: text})
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@dataclass
class Upload:
    tables: dict[str, Table] = field(default_factory=dict)
    problems: list[ImportProblem] = field(default_factory=list)

    def problem(self, table: str, row: int, column: str, code: str, message: str) -> None:
        self.problems.append(ImportProblem.model_validate(
            {"table": table, "row": row, "column": column, "code": code, "message": message}))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel keeps numbers as floats: 101 not 101.0
    return str(value).strip()


def _decode(data: bytes) -> str | None:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _csv_rows(data: bytes) -> list[list[str]] | None:
    text = _decode(data)
    if text is None:
        return None
    try:
        return [[_text(c) for c in row] for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error:  # a field beyond the csv module's limit, a stray quote at the end
        return None


MAX_UNPACKED = 64 * 1024 * 1024  # what a workbook may unpack to


def _xlsx_sheets(data: bytes) -> dict[str, list[list[str]]] | None:
    from openpyxl import load_workbook  # only imports need it

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(i.file_size for i in archive.infolist()) > MAX_UNPACKED:
                return None  # a zip bomb is not read
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is not a workbook
        return None
    try:
        # read-only sheets parse their XML while the rows are read: a damaged sheet raises
        # here (ParseError, a SyntaxError), not at load
        return {ws.title.strip(): [[_text(c) for c in row] for row in ws.iter_rows(
            values_only=True, max_row=MAX_ROWS + 50)] for ws in book.worksheets}
    except Exception:
        return None
    finally:
        book.close()


def is_xlsx(data: bytes) -> bool:
    """Whether the bytes are a zip archive holding a workbook."""
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "xl/workbook.xml" in z.namelist()
    except zipfile.BadZipFile:
        return False


def _table(upload: Upload, name: str, grid: list[list[str]]) -> None:
    rows = [(i + 1, r) for i, r in enumerate(grid) if any(c for c in r)]
    if not rows:
        upload.problem(name, 0, "", "empty_table", "the table has no header row")
        return
    header_no, header = rows[0]
    aliases = ALIASES[name]
    columns: list[str | None] = []
    for raw in header:
        key = raw.strip().lstrip("\ufeff")
        col = aliases.get(key, key.lower().replace(" ", "_"))
        columns.append(col if col in COLUMNS[name] else None)
        if key and col not in COLUMNS[name]:
            upload.problem(name, header_no, key[:40], "unknown_column",
                           f"unknown column {key[:40]!r}; the columns are "
                           f"{', '.join(COLUMNS[name])}")
    for col in REQUIRED[name]:
        if col not in columns:
            upload.problem(name, header_no, col, "missing_column",
                           f"the column {col!r} is missing")
    if len(rows) - 1 > MAX_ROWS:
        upload.problem(name, 0, "", "too_many_rows",
                       f"a table holds at most {MAX_ROWS} rows; split the file")
        return
    table = upload.tables.setdefault(name, Table(name))
    for number, cells in rows[1:]:
        record: dict[str, str] = {}
        for column, value in zip(columns, cells, strict=False):
            if column is None:
                continue
            if "\x00" in value:
                upload.problem(name, number, column, "bad_character", "the cell holds a NUL "
                               "character")
                value = value.replace("\x00", "")
            if len(value) > MAX_CELL:
                upload.problem(name, number, column, "too_long",
                               f"at most {MAX_CELL} characters in a cell")
                value = value[:MAX_CELL]
            record[column] = value
        table.rows.append((number, record))


def read_part(upload: Upload, part_name: str, data: bytes) -> None:
    """Add one uploaded file: ``part_name`` is its table, or ``workbook`` for an .xlsx file
    with a sheet per table (named ``institutions``, ``departments``, ``users`` or 机构, 科室,
    用户)."""
    where = part_name if part_name in TABLES else "file"
    if is_xlsx(data):
        sheets = _xlsx_sheets(data)
        if sheets is None:
            upload.problem(where, 0, "", "unreadable_file",
                           f"the {part_name} file is not a readable .xlsx workbook")
            return
        if part_name in TABLES:
            named = {SHEET_ALIASES.get(k, k.lower()): v for k, v in sheets.items()}
            _table(upload, part_name, named.get(part_name) or next(iter(sheets.values()), []))
            return
        found = False
        for title, grid in sheets.items():
            name = SHEET_ALIASES.get(title, title.lower())
            if name in TABLES:
                found = True
                _table(upload, name, grid)
        if not found:
            upload.problem("file", 0, "", "no_tables", "the workbook has no sheet named "
                           "institutions, departments or users")
        return
    if part_name not in TABLES:
        upload.problem("file", 0, "", "unreadable_file",
                       "a workbook upload must be an .xlsx file; send CSV files as "
                       "institutions, departments and users")
        return
    if data.startswith(b"PK") or b"\x00" in data[:4096]:
        upload.problem(part_name, 0, "", "unreadable_file",
                       "the file is neither CSV text nor an .xlsx workbook")
        return
    text_rows = _csv_rows(data)
    if text_rows is None:
        upload.problem(part_name, 0, "", "unreadable_file",
                       "the file is not CSV text in UTF-8 or GB18030")
        return
    _table(upload, part_name, text_rows)
