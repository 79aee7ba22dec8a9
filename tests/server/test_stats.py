"""GET /api/stats over the hand-built quarter (``stats_fixture``): every figure, by month and
by institution, for each kind of scope; the exports; the audit entry. Runs on SQLite and, with
YILIAN_TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import Api
from tests.server import stats_fixture
from yilian.server.core import keys
from yilian.server.core.models import AuditEntry

Q1 = {"from": "2024-01-01", "to": "2024-03-31"}


@pytest.fixture
async def quarter(api: Api) -> dict[str, Any]:
    return await stats_fixture.build(api.server.app[keys.DATABASE])


async def stats(client: Api, **params: str) -> dict[str, Any]:
    status, body = await client.get("/api/stats", params={**Q1, **params})
    assert status == 200, body
    return body


def month(body: dict[str, Any], label: str) -> dict[str, Any]:
    return next(m for m in body["by_month"] if m["month"] == label)


def place(body: dict[str, Any], inst: int) -> dict[str, Any]:
    return next(i for i in body["by_institution"] if i["institution_id"] == inst)


async def test_alliance_figures_for_its_coordinator(api: Api, quarter: dict[str, Any]) -> None:
    coordinator = await api.login("coordinator")
    body = await stats(coordinator)
    inst = quarter["institutions"]
    alliance = [inst[k] for k in ("gdph", "maoming", "dianbai", "shalang", "shangtang")]
    assert body["scope"]["institution_ids"] == sorted(alliance)
    assert body["period"]["months"] == ["2024-01", "2024-02", "2024-03"]
    assert body["period"]["from"] == "2023-12-31T16:00:00Z"
    assert body["period"]["to"] == "2024-03-31T16:00:00Z"

    c = body["consultations"]
    assert c["total"] == 13
    assert c["by_kind"] == {"video": 5, "outpatient": 3, "imaging": 4, "pathology": 1}
    assert c["by_outcome"] == {"completed": 6, "declined": 1, "cancelled": 1, "no_show": 1,
                               "expired": 1, "open": 3}
    assert c["by_status"]["requested"] == 1 and c["by_status"]["accepted"] == 1
    assert c["by_status"]["in_progress"] == 1
    assert (c["outpatient_visits"], c["imaging_reads"], c["pathology_reads"]) == (2, 2, 1)
    # received: the 12 addressed to the provincial expert, the Dianbai queue's one, and the
    # Guilin doctor's request to the same expert (from outside, received inside)
    assert c["received"]["total"] == 14
    assert c["received"]["by_kind"] == {"video": 6, "outpatient": 3, "imaging": 4,
                                        "pathology": 1}

    r = body["referrals"]
    assert (r["up"], r["down"], r["total"]) == (5, 2, 7)
    assert r["by_outcome"] == {"requested": 0, "accepted": 0, "rejected": 1, "in_transit": 0,
                               "arrived": 1, "completed": 3, "cancelled": 1, "expired": 1}
    assert r["sent"] == {"up": 5, "down": 2} and r["received"] == {"up": 5, "down": 2}
    g = r["green_channel"]
    assert g["count"] == 3
    assert g["by_channel"] == {"stroke": 2, "chest_pain": 1, "trauma": 0, "maternal": 0,
                               "neonatal": 0}
    assert g["median_request_to_accept_min"] == 5.0  # 3, 5, 10
    # 42 (the corrected door time), 50 (recorded), 70 (the arrival column)
    assert g["median_request_to_arrival_min"] == 50.0
    intervals = {(i["name"], i["channel"]): i for i in g["intervals"]}
    assert intervals[("request_to_accept", "stroke")] | {} == {
        "name": "request_to_accept", "channel": "stroke", "count": 2, "median_min": 7.5,
        "target_min": None, "met": None}
    assert intervals[("door_to_needle", "stroke")]["median_min"] == 42.0
    assert intervals[("door_to_needle", "stroke")]["target_min"] == 60
    assert intervals[("door_to_needle", "stroke")]["met"] == 1
    assert intervals[("door_to_balloon", "chest_pain")]["median_min"] == 66.0
    assert intervals[("door_to_balloon", "chest_pain")]["met"] == 1
    assert ("door_to_puncture", "stroke") not in intervals  # nobody was timed

    t = body["teaching"]
    assert t["sessions"] == 2
    assert t["by_kind"] == {"rounds": 1, "lecture": 1, "surgery_demo": 0, "training": 0}
    assert t["person_times"] == 3

    v = body["visits"]
    assert (v["total"], v["grassroots"], v["grassroots_share"]) == (12000, 2500, 0.2083)
    assert v["months"] == ["2024-01", "2024-02", "2024-03"]
    assert v["institutions_missing"] == sorted(alliance)

    # the months: 23:30 Beijing on 31 January is January, 00:10 on 1 February is February;
    # 31 March 23:30 and 23:59 are March (the date ``to`` includes its day)
    jan, feb, mar = (month(body, m) for m in ("2024-01", "2024-02", "2024-03"))
    assert (jan["consultations"], feb["consultations"], mar["consultations"]) == (4, 4, 5)
    assert (jan["outpatient_visits"], feb["outpatient_visits"]) == (1, 1)
    assert (jan["referrals_up"], feb["referrals_up"], mar["referrals_up"]) == (2, 1, 2)
    assert (jan["referrals_down"], feb["referrals_down"], mar["referrals_down"]) == (0, 1, 1)
    assert [m["green_channel"] for m in body["by_month"]] == [1, 1, 1]
    assert [m["teaching_sessions"] for m in body["by_month"]] == [1, 0, 1]
    assert [m["person_times"] for m in body["by_month"]] == [2, 0, 1]
    assert [m["visits"] for m in body["by_month"]] == [3300, 3700, 5000]
    assert [m["grassroots_share"] for m in body["by_month"]] == [0.3939, 0.3243, 0.0]

    shangtang, dianbai = place(body, inst["shangtang"]), place(body, inst["dianbai"])
    assert shangtang["consultations"] == 12 and shangtang["person_times"] == 2
    assert shangtang["level"] == "village" and shangtang["grassroots_share"] == 1.0
    assert (dianbai["referrals_up_received"], dianbai["referrals_down_sent"]) == (4, 2)
    assert (dianbai["referrals_up"], dianbai["referrals_down"]) == (4, 2)
    assert dianbai["consultations_received"] == 1 and dianbai["teaching_sessions"] == 1
    assert place(body, inst["gdph"])["consultations_received"] == 13
    for field in ("consultations", "teaching_sessions", "person_times", "visits"):
        assert sum(i[field] for i in body["by_institution"]) == \
            sum(m[field] for m in body["by_month"]), field


async def test_an_institution_alone_and_with_those_below_it(api: Api, quarter: dict[str, Any]
                                                           ) -> None:
    admin = await api.login("admin")
    inst = quarter["institutions"]
    body = await stats(admin, institution_id=str(inst["dianbai"]))
    assert body["scope"]["institution_ids"] == [inst["dianbai"]]
    assert body["consultations"]["total"] == 0
    assert body["consultations"]["received"]["total"] == 1
    r = body["referrals"]
    assert (r["up"], r["down"]) == (4, 2)
    assert r["sent"] == {"up": 0, "down": 2} and r["received"] == {"up": 4, "down": 0}
    assert r["green_channel"]["count"] == 3
    assert body["teaching"] == {"sessions": 1, "by_kind": {"rounds": 1, "lecture": 0,
                                                           "surgery_demo": 0, "training": 0},
                                "person_times": 1}

    body = await stats(admin, institution_id=str(inst["gdph"]), include_below="true")
    assert body["scope"]["institution_ids"] == sorted([inst["gdph"], inst["dianbai"]])
    assert body["teaching"]["sessions"] == 2
    assert body["referrals"]["up"] == 5  # R6 to the province hospital too


async def test_a_doctor_sees_their_own_institution(api: Api, quarter: dict[str, Any]) -> None:
    village = await api.login("village")
    body = await stats(village)
    assert body["scope"]["institution_ids"] == [quarter["institutions"]["shangtang"]]
    assert body["consultations"]["total"] == 12
    assert (body["referrals"]["up"], body["referrals"]["down"]) == (2, 1)
    assert body["visits"]["grassroots_share"] == 1.0


async def test_person_times_agree_with_the_attendance_api(api: Api, quarter: dict[str, Any]
                                                          ) -> None:
    admin = await api.login("admin")
    body = await stats(admin)  # every institution: the Guilin doctor counts too
    t1, t3 = quarter["teaching"]["t1"], quarter["teaching"]["t3"]
    listed = 0
    for session_id in (t1, t3, quarter["teaching"]["t2"]):
        status, people = await admin.get(f"/api/teaching-sessions/{session_id}/attendance")
        assert status == 200, people
        listed += len(people)
    assert listed == 4
    assert body["teaching"]["person_times"] == listed
    assert body["consultations"]["total"] == 14


async def test_csv_and_xlsx_exports_hold_the_same_figures(api: Api, quarter: dict[str, Any]
                                                          ) -> None:
    coordinator = await api.login("coordinator")
    body = await stats(coordinator)
    async with api.http.get(api.url("/api/stats"), params={**Q1, "format": "csv"},
                            headers=coordinator.headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/csv")
        assert 'filename="yilian-stats-2024-01-2024-03.csv"' in \
            resp.headers["Content-Disposition"]
        raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    summary = {r[0]: r[1] for r in rows[1:] if len(r) == 2}
    assert summary["远程会诊申请"] == "13" and summary["上转"] == "5" and summary["下转"] == "2"
    assert summary["培训人次"] == "3" and summary["基层就诊占比"] == "0.2083"
    assert summary["绿色通道申请至到院中位数（分钟）"] == "50.0"
    assert any(r and r[0] == "2024-01" and r[1] == "4" for r in rows)
    assert any("尚塘村卫生站" in r for r in rows)

    async with api.http.get(api.url("/api/stats"), params={**Q1, "format": "xlsx"},
                            headers=coordinator.headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/vnd.openxmlformats")
        data = await resp.read()
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["汇总", "按月", "按机构"]
    cells = {r[0]: r[1] for r in book["汇总"].iter_rows(values_only=True)}
    assert cells["远程会诊申请"] == body["consultations"]["total"] == 13
    assert cells["基层门诊人次"] == 2500
    months = list(book["按月"].iter_rows(values_only=True))
    assert months[1][:2] == ("2024-01", 4)


async def test_english_export_for_an_english_user(api: Api, quarter: dict[str, Any]) -> None:
    coordinator = await api.login("coordinator")
    status, _ = await coordinator.put("/api/me/preferences", {"locale": "en"})
    assert status == 200
    async with api.http.get(api.url("/api/stats"), params={**Q1, "format": "csv"},
                            headers=coordinator.headers()) as resp:
        text = (await resp.read()).decode("utf-8-sig")
    assert "Consultations requested,13" in text and "Shangtang Village Clinic" in text


async def test_every_read_is_audited(api: Api, quarter: dict[str, Any]) -> None:
    coordinator = await api.login("coordinator")
    await stats(coordinator)
    await stats(coordinator, format="csv")
    await api.flush_audit()
    async with api.server.app[keys.DATABASE].read() as session:
        entries = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "read_stats",
            AuditEntry.user_id == coordinator.user["id"]))).scalars().all()
    assert [e.detail["format"] for e in entries] == ["json", "csv"]
    assert all(e.patient_id is None for e in entries)
    assert entries[0].detail["from"] == "2023-12-31T16:00:00+00:00"


async def test_no_patient_identifying_data_in_the_figures(api: Api, quarter: dict[str, Any]
                                                          ) -> None:
    admin = await api.login("admin")
    status, body = await admin.get("/api/stats", params=Q1)
    assert status == 200
    keys_seen: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            keys_seen.update(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    assert not {k for k in keys_seen if k.startswith("patient") or k in (
        "name_of_patient", "national_id", "phone", "birth_date", "sex", "display_name",
        "username", "user_id", "requester_id", "expert_id")}


async def test_the_scan_per_month_and_the_case_per_row_agree(api: Api, quarter: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """A scope too large for one scan per month (``MAX_MONTH_SCANS``) is counted with a CASE
    per row instead: the same figures."""
    from yilian.server.clinic.stats import queries

    admin = await api.login("admin")
    fast = await stats(admin)
    monkeypatch.setattr(queries, "MAX_MONTH_SCANS", 0)
    slow = await stats(admin)
    assert slow == fast
