"""Import files for the tests and the benchmark: CSV text and .xlsx workbooks built with
openpyxl, for an alliance moving in."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from aiohttp import FormData

Rows = Sequence[Sequence[str]]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_bytes(rows: Rows, *, bom: bool = True, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return (b"\xef\xbb\xbf" if bom and encoding == "utf-8" else b"") + \
        out.getvalue().encode(encoding)


def xlsx_bytes(sheets: dict[str, Rows]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def form(**files: bytes) -> FormData:
    """A multipart body with one file per table (or ``workbook``)."""
    data = FormData()
    for name, content in files.items():
        is_xlsx = content.startswith(b"PK")
        data.add_field(name, content, filename=f"{name}.{'xlsx' if is_xlsx else 'csv'}",
                       content_type=XLSX if is_xlsx else "text/csv")
    return data


def alliance_rows(n_institutions: int, n_users: int, prefix: str = "bench"
                  ) -> dict[str, list[list[str]]]:
    """A county with its townships and villages: ``n_institutions`` institutions (one county
    hospital, then townships and villages in turn), a department each, ``n_users`` users."""
    insts = [["name", "local_name", "level", "parent"],
             [f"{prefix} County Hospital", f"{prefix}县人民医院", "county", ""]]
    depts = [["institution", "name", "specialty"],
             [f"{prefix} County Hospital", "Internal Medicine", "internal_medicine"]]
    township = ""
    for i in range(1, n_institutions):
        if i % 5 == 1:
            township = f"{prefix} Township {i}"
            insts.append([township, f"{prefix}第{i}镇卫生院", "township",
                          f"{prefix} County Hospital"])
            depts.append([township, "General Practice", "general_practice"])
        else:
            name = f"{prefix} Village {i}"
            insts.append([name, f"{prefix}第{i}村卫生室", "village", township])
            depts.append([name, "General Practice", "general_practice"])
    names = [r[0] for r in insts[1:]]
    users = [["username", "display_name", "role", "institution", "department", "specialties",
              "title"]]
    for u in range(n_users):
        inst = names[u % len(names)]
        specialist = inst.endswith("County Hospital")
        users.append([f"{prefix}_{u}", f"医生{u}", "specialist" if specialist else
                      ("village_doctor" if "Village" in inst else "township_doctor"), inst,
                      "Internal Medicine" if specialist else "General Practice",
                      "internal_medicine" if specialist else "", "主治医师"])
    return {"institutions": insts, "departments": depts, "users": users}
