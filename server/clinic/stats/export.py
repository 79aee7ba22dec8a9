"""The statistics as a spreadsheet: CSV (UTF-8 with a BOM, so Excel on a Chinese Windows keeps
the Chinese) and Excel (.xlsx, three sheets), in the caller's language (Chinese by default).

Both hold the same three tables: the summary (figure, value), the months and the
institutions. Cells that would start a formula are defused (``core.csvfile``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

from yilian.server.clinic.stats.figures import ROW_FIELDS, SENT_RECEIVED
from yilian.server.core.csvfile import defuse, to_csv

# key -> (Chinese, English)
LABELS: dict[str, tuple[str, str]] = {
    "summary": ("汇总", "Summary"), "by_month": ("按月", "By month"),
    "by_institution": ("按机构", "By institution"),
    "figure": ("指标", "Figure"), "value": ("数值", "Value"),
    "period": ("统计期间", "Period"), "month": ("月份", "Month"),
    "institution_id": ("机构编号", "Institution id"), "name": ("机构", "Institution"),
    "level": ("级别", "Level"),
    "consultations": ("远程会诊申请", "Consultations requested"),
    "consultations_received": ("受邀远程会诊", "Consultations received"),
    "kind.video": ("视频会诊", "Video consultations"),
    "kind.outpatient": ("远程门诊", "Remote outpatient"),
    "kind.imaging": ("远程影像", "Remote imaging"),
    "kind.pathology": ("远程病理", "Remote pathology"),
    "outcome.completed": ("已完成", "Completed"), "outcome.declined": ("已拒绝", "Declined"),
    "outcome.cancelled": ("已取消", "Cancelled"), "outcome.no_show": ("未到", "No-show"),
    "outcome.expired": ("已过期", "Expired"), "outcome.open": ("进行中", "Open"),
    "outpatient_visits": ("远程门诊人次", "Remote outpatient visits"),
    "imaging_reads": ("远程影像诊断", "Imaging reads"),
    "pathology_reads": ("远程病理诊断", "Pathology reads"),
    "referrals_up": ("上转", "Referred up"), "referrals_down": ("下转", "Referred down"),
    "referrals_up_sent": ("上转（转出）", "Up, sent"),
    "referrals_down_sent": ("下转（转出）", "Down, sent"),
    "referrals_up_received": ("上转（接收）", "Up, received"),
    "referrals_down_received": ("下转（接收）", "Down, received"),
    "green_channel": ("绿色通道", "Green channel"),
    "median_request_to_accept_min": ("绿色通道申请至接收中位数（分钟）",
                                     "Green channel request to accept, median (min)"),
    "median_request_to_arrival_min": ("绿色通道申请至到院中位数（分钟）",
                                      "Green channel request to arrival, median (min)"),
    "teaching_sessions": ("远程示教场次", "Teaching sessions"),
    "person_times": ("培训人次", "Attendee person-times"),
    "visits": ("门诊总人次", "Outpatient visits"),
    "grassroots_visits": ("基层门诊人次", "Grassroots visits"),
    "grassroots_share": ("基层就诊占比", "Grassroots share"),
}
LEVELS = {"province": ("省级", "province"), "city": ("市级", "city"),
          "county": ("县级", "county"), "township": ("乡镇", "township"),
          "village": ("村级", "village")}
INSTITUTION_FIELDS = (*ROW_FIELDS, "grassroots_share", *SENT_RECEIVED)
MONTH_FIELDS = (*ROW_FIELDS, "grassroots_share")


class Sheets:
    """The three tables in one language."""

    def __init__(self, stats: dict[str, Any], locale: str | None) -> None:
        self.en = locale == "en"
        self.stats = stats

    def t(self, key: str) -> str:
        zh, en = LABELS[key]
        return en if self.en else zh

    def summary(self) -> list[list[Any]]:
        s = self.stats
        c, r, g = s["consultations"], s["referrals"], s["referrals"]["green_channel"]
        period = s["period"]
        rows: list[list[Any]] = [
            [self.t("period"), f"{period['from']} / {period['to']}"],
            [self.t("consultations"), c["total"]],
            *[[self.t(f"kind.{k}"), n] for k, n in c["by_kind"].items()],
            *[[self.t(f"outcome.{k}"), n] for k, n in c["by_outcome"].items()],
            [self.t("consultations_received"), c["received"]["total"]],
            [self.t("outpatient_visits"), c["outpatient_visits"]],
            [self.t("imaging_reads"), c["imaging_reads"]],
            [self.t("pathology_reads"), c["pathology_reads"]],
            [self.t("referrals_up"), r["up"]], [self.t("referrals_down"), r["down"]],
            [self.t("green_channel"), g["count"]],
            [self.t("median_request_to_accept_min"), g["median_request_to_accept_min"]],
            [self.t("median_request_to_arrival_min"), g["median_request_to_arrival_min"]],
            [self.t("teaching_sessions"), s["teaching"]["sessions"]],
            [self.t("person_times"), s["teaching"]["person_times"]],
            [self.t("visits"), s["visits"]["total"]],
            [self.t("grassroots_visits"), s["visits"]["grassroots"]],
            [self.t("grassroots_share"), s["visits"]["grassroots_share"]],
        ]
        return [[self.t("figure"), self.t("value")], *rows]

    def months(self) -> list[list[Any]]:
        head = [self.t("month"), *[self.t(f) for f in MONTH_FIELDS]]
        return [head, *[[m["month"], *[m[f] for f in MONTH_FIELDS]]
                        for m in self.stats["by_month"]]]

    def institutions(self) -> list[list[Any]]:
        head = [self.t("institution_id"), self.t("name"), self.t("level"),
                *[self.t(f) for f in INSTITUTION_FIELDS]]
        rows = [[i["institution_id"], self._name(i), LEVELS[i["level"]][1 if self.en else 0],
                 *[i[f] for f in INSTITUTION_FIELDS]] for i in self.stats["by_institution"]]
        return [head, *rows]

    def _name(self, row: dict[str, Any]) -> str:
        return str(row["name"] if self.en or not row["local_name"] else row["local_name"])

    def tables(self) -> list[tuple[str, list[list[Any]]]]:
        return [(self.t("summary"), self.summary()), (self.t("by_month"), self.months()),
                (self.t("by_institution"), self.institutions())]


def _plain(value: Any) -> Any:
    return "" if value is None else value


def csv_bytes(stats: dict[str, Any], locale: str | None) -> bytes:
    """The three tables one after another, a blank line and the table's title between."""
    rows: list[Sequence[Any]] = []
    for index, (title, table) in enumerate(Sheets(stats, locale).tables()):
        if index:
            rows += [[], [title]]
        rows += [[_plain(v) for v in row] for row in table]
    return to_csv(rows[0], rows[1:])


def xlsx_bytes(stats: dict[str, Any], locale: str | None) -> bytes:
    """A workbook of three sheets; numbers stay numbers, the share a percentage."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook(write_only=False)
    book.remove(book.active)  # type: ignore[arg-type]
    for title, table in Sheets(stats, locale).tables():
        sheet = book.create_sheet(title)
        for row in table:
            sheet.append([_xlsx_cell(v) for v in row])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        _widths(sheet, table)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_cell(value: Any) -> Any:
    if value is None:
        return None
    return value if isinstance(value, int | float) else defuse(value)


def _widths(sheet: Any, table: Iterable[Sequence[Any]]) -> None:
    from openpyxl.utils import get_column_letter

    widths: dict[int, int] = {}
    for row in table:
        for i, v in enumerate(row):
            text = str(v)
            size = sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
            widths[i] = min(max(widths.get(i, 8), size + 2), 48)
    for i, w in widths.items():
        sheet.column_dimensions[get_column_letter(i + 1)].width = w
