"""Patients: registered at the caller's institution, found again by search, never elsewhere."""

from __future__ import annotations

from sqlalchemy import select

from tests.server.helpers import new_patient
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry


async def test_search_finds_own_institutions_patients_only(api, settings) -> None:
    village, guilin = await api.login("village"), await api.login("guilin_doctor")
    wang = await new_patient(village, "Wang Xiuying (王秀英)")
    li = await new_patient(village, "Li Ming (李明)")
    await new_patient(guilin, "Wang Fang (王芳)")

    status, found = await village.get("/api/patients", params={"q": "王"})
    assert status == 200 and [p["id"] for p in found] == [wang["id"]]
    status, found = await village.get("/api/patients", params={"q": "li ming"})
    assert [p["id"] for p in found] == [li["id"]]  # case-insensitive for Latin letters
    status, found = await village.get("/api/patients")
    ids = [p["id"] for p in found]
    assert ids[:2] == [li["id"], wang["id"]]  # newest first
    assert all(p["institution_id"] == village.user["institution_id"] for p in found)
    assert all("national_id" not in p for p in found)
    assert all(p["national_id_masked"] is None or "****" in p["national_id_masked"] for p in found)

    status, found = await guilin.get("/api/patients", params={"q": "Wang"})
    assert status == 200 and [p["name"] for p in found] == ["Wang Fang (王芳)"]

    # LIKE wildcards in the query are literal text.
    status, found = await village.get("/api/patients", params={"q": "%"})
    assert status == 200 and found == []
    status, found = await village.get("/api/patients", params={"limit": 1})
    assert len(found) == 1

    await village.flush_audit()
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        entries = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "list",
                                     AuditEntry.resource_type == "patient",
                                     AuditEntry.user_id == village.user["id"]))).scalars().all()
    await db.close()
    assert len(entries) == 5 and wang["id"] in entries[0].detail["patient_ids"]


async def test_search_refuses_bad_parameters(api) -> None:
    village, coordinator = await api.login("village"), await api.login("coordinator")
    for params in ({"limit": 0}, {"limit": "many"}, {"q": "x" * 121}, {"q": "a\x00b"}):
        status, body = await village.get("/api/patients", params=params)
        assert status == 422 and body["error"]["code"] == "validation_error", (params, body)
    status, body = await coordinator.get("/api/patients")
    assert status == 403


async def test_names_longer_than_the_column_are_refused(api) -> None:
    village = await api.login("village")
    status, body = await village.post("/api/patients", {"name": "0" * 121, "sex": "male"})
    assert status == 422, body
    status, body = await village.post("/api/patients", {"name": "Zhang\x00San", "sex": "male"})
    assert status == 422 and body["error"]["code"] == "validation_error", body
    status, body = await village.post("/api/patients", {"name": "Zhang \ud800", "sex": "male"})
    assert status in (400, 422), body
