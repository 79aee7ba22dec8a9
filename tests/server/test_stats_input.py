"""Bad requests to the statistics routes: every one a clear 4xx with a code, nothing stored;
and the visit totals behind the grassroots share (enter, replace, import CSV and Excel, all
or nothing)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api
from tests.server.referral_helpers import institutions
from yilian.server.clinic.stats.models import OutpatientVisitTotal
from yilian.server.core import keys

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"from": "yesterday"}, 422, "validation_error"),
    ({"from": "2024-02-30"}, 422, "validation_error"),
    ({"from": "2024-01-01T10:00"}, 422, "validation_error"),  # no offset
    ({"from": "1850-01-01"}, 422, "validation_error"),
    ({"from": "2024-03-01", "to": "2024-02-01"}, 422, "validation_error"),
    ({"from": "2024-03-01T00:00:00+08:00", "to": "2024-03-01T00:00:00+08:00"}, 422,
     "validation_error"),
    ({"from": "2000-01-01", "to": "2024-01-01"}, 422, "validation_error"),  # > 120 months
    ({"alliance_id": "abc"}, 422, "validation_error"),
    ({"alliance_id": "0"}, 422, "validation_error"),
    ({"institution_id": "1.5"}, 422, "validation_error"),
    ({"include_below": "maybe"}, 422, "validation_error"),
    ({"include_below": "true"}, 422, "validation_error"),  # without an institution
    ({"format": "pdf"}, 422, "validation_error"),
    ({"alliance_id": "999999"}, 404, "not_found"),
    ({"institution_id": "999999"}, 404, "not_found"),
])
async def test_bad_queries(api: Api, params: dict[str, str], status: int, code: str) -> None:
    admin = await api.login("admin")
    got, body = await admin.get("/api/stats", params=params)
    assert (got, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]


async def _ids(client: Api) -> dict[str, int]:
    inst = await institutions(client)
    status, alliances = await client.get("/api/alliances")
    assert status == 200
    ids = {"guilin_alliance": next(a["id"] for a in alliances if "Guilin" in a["name"]),
           "guangdong": next(a["id"] for a in alliances if "Guangdong" in a["name"])}
    for key, name in (("guilin", "Guilin People's Hospital"),
                      ("dianbai", "Dianbai District People's Hospital"),
                      ("shangtang", "Shangtang Village Clinic"),
                      ("gdph", "Guangdong Provincial People's Hospital"),
                      ("yangshuo", "Yangshuo County People's Hospital")):
        ids[key] = inst[name]["id"]
    return ids


async def test_forbidden_scopes(api: Api) -> None:
    coordinator, village = await api.login("coordinator"), await api.login("village")
    admin = await api.login("admin")
    ids = await _ids(admin)
    for client, params, status in [
        (coordinator, {"alliance_id": ids["guilin_alliance"]}, 403),
        (coordinator, {"institution_id": ids["guilin"]}, 403),
        (village, {"alliance_id": ids["guangdong"]}, 403),
        (village, {"institution_id": ids["dianbai"]}, 403),
        (village, {"institution_id": ids["shangtang"], "include_below": "true"}, 403),
        (admin, {"alliance_id": ids["guangdong"], "institution_id": ids["yangshuo"]}, 422),
    ]:
        got, body = await client.get("/api/stats", params={k: str(v) for k, v in
                                                            params.items()})
        assert got == status, (client.user["username"], params, body)
        assert body["error"]["code"] == {403: "forbidden", 422: "validation_error"}[status]
    # what each may read
    for client, params in [(coordinator, {"alliance_id": ids["guangdong"]}),
                           (coordinator, {"institution_id": ids["gdph"],
                                          "include_below": "true"}),
                           (village, {"institution_id": ids["shangtang"]}),
                           (admin, {"alliance_id": ids["guilin_alliance"]})]:
        got, body = await client.get("/api/stats", params={k: str(v) for k, v in
                                                            params.items()})
        assert got == 200, body


async def _count(api: Api) -> int:
    async with api.server.app[keys.DATABASE].read() as session:
        return int((await session.execute(select(func.count(OutpatientVisitTotal.id))))
                   .scalar_one())


async def test_enter_and_replace_visit_totals(api: Api) -> None:
    coordinator = await api.login("coordinator")
    ids = await _ids(coordinator)
    rows = [{"institution_id": ids["shangtang"], "month": "2024-01", "visits": 300},
            {"institution_id": ids["dianbai"], "month": "2024-01", "visits": 900}]
    status, saved = await coordinator.put("/api/stats/visits", {"totals": rows})
    assert status == 200, saved
    assert [(s["month"], s["visits"]) for s in saved] == [("2024-01", 300), ("2024-01", 900)]
    status, saved = await coordinator.put("/api/stats/visits", {"totals": [
        {"institution_id": ids["shangtang"], "month": "2024-01", "visits": 310}]})
    assert status == 200
    status, listed = await coordinator.get("/api/stats/visits", params={
        "institution_id": str(ids["shangtang"])})
    assert [(x["month"], x["visits"]) for x in listed] == [("2024-01", 310)]
    status, body = await coordinator.get("/api/stats", params={"from": "2024-01-01",
                                                               "to": "2024-01-31"})
    assert body["visits"]["total"] == 1210 and body["visits"]["grassroots"] == 310
    assert body["visits"]["grassroots_share"] == 0.2562
    assert await _count(api) == 2


async def test_bad_visit_totals_are_all_listed_and_nothing_is_stored(api: Api) -> None:
    coordinator = await api.login("coordinator")
    ids = await _ids(coordinator)
    rows = [{"institution_id": ids["shangtang"], "month": "2024-01", "visits": 1},  # fine
            {"institution_id": ids["guilin"], "month": "2024-01", "visits": 1},  # not theirs
            {"institution_id": 999999, "month": "2024-01", "visits": 1},
            {"institution_id": ids["dianbai"], "month": "2024-13", "visits": 1},
            {"institution_id": ids["shangtang"], "month": "2024-01", "visits": 2}]  # twice
    status, body = await coordinator.put("/api/stats/visits", {"totals": rows})
    assert status == 422 and body["error"]["code"] == "validation_error"
    # the month pattern is the request schema's: refused before the rows are looked at
    assert [e["loc"] for e in body["error"]["details"]["errors"]] == [
        ["totals", "3", "month"]]
    rows[3]["month"] = "2024-02"
    status, body = await coordinator.put("/api/stats/visits", {"totals": rows})
    assert status == 422
    assert [e["loc"][:2] for e in body["error"]["details"]["errors"]] == [
        ["row", 1], ["row", 2], ["row", 4]]
    for bad in ({"totals": []}, {"totals": [{"institution_id": "5", "month": "2024-01",
                                              "visits": 1}]},
                {"totals": [{"institution_id": 5, "month": "2024-01", "visits": -1}]},
                {"totals": [{"institution_id": 5, "month": "2024-01", "visits": 1.5}]},
                {"totals": [{"institution_id": 5, "month": "2024-01", "visits": 1,
                             "extra": 1}]}):
        status, body = await coordinator.put("/api/stats/visits", bad)
        assert status == 422, (bad, body)
    status, body = await coordinator.request("PUT", "/api/stats/visits", data=b"{not json",
                                             headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"]["code"] == "invalid_json"
    village = await api.login("village")
    status, body = await village.put("/api/stats/visits", {"totals": rows[:1]})
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert await _count(api) == 0


async def _import(client: Api, data: bytes, content_type: str) -> tuple[int, Any]:
    return await client.request("POST", "/api/stats/visits/import", data=data,
                                headers={"Content-Type": content_type})


async def test_import_csv_with_chinese_names(api: Api) -> None:
    coordinator = await api.login("coordinator")
    ids = await _ids(coordinator)
    text = ("机构,月份,门诊人次\r\n尚塘村卫生站,2024-01,320\r\n"
            "Dianbai District People's Hospital,2024-01,1500\r\n,,\r\n")
    status, body = await _import(coordinator, ("\ufeff" + text).encode(), "text/csv")
    assert status == 200, body
    assert body["imported"] == 2
    assert {(t["institution_id"], t["visits"]) for t in body["totals"]} == {
        (ids["shangtang"], 320), (ids["dianbai"], 1500)}
    # GB18030, as Excel saves "CSV" on a Chinese Windows; by id this time
    text = f"机构编号,月份,门诊人次\r\n{ids['shangtang']},2024-02,330\r\n"
    status, body = await _import(coordinator, text.encode("gb18030"), "text/csv")
    assert status == 200 and body["imported"] == 1
    assert await _count(api) == 3


async def test_import_refuses_a_file_with_bad_rows_and_lists_them(api: Api) -> None:
    coordinator = await api.login("coordinator")
    ids = await _ids(coordinator)
    text = (f"institution_id,month,visits\n{ids['shangtang']},2024-01,10\n"
            f"{ids['guilin']},2024-01,10\nabc,2024-01,10\n{ids['dianbai']},Jan 2024,10\n"
            f"{ids['dianbai']},2024-02,-3\n{ids['gdph']},2024-02,1e3\n")
    status, body = await _import(coordinator, text.encode(), "text/csv")
    assert status == 422, body
    assert [e["loc"][:2] for e in body["error"]["details"]["errors"]] == [
        ["row", 3], ["row", 4], ["row", 5], ["row", 6], ["row", 7]]
    assert "5 bad row(s)" in body["error"]["message"]
    for data, ctype in [(b"", "text/csv"), (b"month,visits\n2024-01,3\n", "text/csv"),
                        (b"institution,month,visits\n", "text/csv"),
                        (b"institution,month,visits\nNowhere,2024-01,3\n", "text/csv"),
                        (b"PK\x03\x04 not a workbook", XLSX), (b"\x00\x01", "text/csv")]:
        status, body = await _import(coordinator, data, ctype)
        assert status == 422 and body["error"]["code"] == "validation_error", (data, body)
    status, body = await _import(coordinator, b"{}", "application/json")
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    village = await api.login("village")
    status, body = await _import(village, text.encode(), "text/csv")
    assert status == 403
    assert await _count(api) == 0


async def test_import_an_excel_workbook(api: Api) -> None:
    from datetime import datetime

    from openpyxl import Workbook

    admin = await api.login("admin")
    ids = await _ids(admin)
    book = Workbook()
    sheet = book.active
    sheet.append(["机构编号", "月份", "门诊人次"])
    sheet.append([ids["shangtang"], "2024-03", 400])
    sheet.append([ids["guilin"], datetime(2024, 3, 1), 8000.0])  # a date cell: its month
    out = io.BytesIO()
    book.save(out)
    status, body = await _import(admin, out.getvalue(), XLSX)
    assert status == 200, body
    assert {(t["institution_id"], t["month"], t["visits"]) for t in body["totals"]} == {
        (ids["shangtang"], "2024-03", 400), (ids["guilin"], "2024-03", 8000)}
