"""The kept inbox over HTTP, and the notifications each consultation step leaves in it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.server.helpers import book, new_patient
from yilian.server.clinic.consultations import expire_overdue
from yilian.server.clinic.models import Consultation
from yilian.server.core.db import Database, utcnow
from yilian.server.core.settings import Settings

REPORT = {"findings": "Q waves V1-V3", "impression": "Old anterior infarct",
          "recommendations": "Echo; secondary prevention"}


async def about(client: Api, cid: int) -> list[dict[str, Any]]:
    """The caller's notifications about consultation ``cid``, newest first."""
    code, items = await client.get("/api/notifications", params={"limit": "200"})
    assert code == 200, items
    return [n for n in items if n["resource"] == {"type": "consultation", "id": cid}]


async def queue_request(client: Api, target: int, specialty: str | None,
                        urgency: str = "routine") -> dict[str, Any]:
    patient = await new_patient(client)
    body: dict[str, Any] = {"patient_id": patient["id"], "kind": "imaging", "urgency": urgency,
                            "question": "Please read this chest film", "target_institution_id":
                            target}
    if specialty:
        body["specialty"] = specialty
    code, c = await client.post("/api/consultations", body)
    assert code == 201, c
    return c


async def test_inbox_pages_newest_first_and_reads_only_your_own(api: Api) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    made = [await book(village, expert.user["id"], slot_index=i) for i in range(5)]
    code, unread = await expert.get("/api/notifications", params={"unread": "true"})
    assert code == 200
    ids = [n["id"] for n in unread]
    assert ids == sorted(ids, reverse=True)
    mine = [n for n in unread if n["kind"] == "consultation.requested"][:5]
    assert [n["resource"]["id"] for n in mine] == [c["id"] for c in reversed(made)]

    code, first = await expert.get("/api/notifications", params={"limit": "2"})
    code2, rest = await expert.get("/api/notifications",
                                   params={"limit": "2", "before": str(first[-1]["id"])})
    assert (code, code2, len(first), len(rest)) == (200, 200, 2, 2)
    assert [n["id"] for n in first + rest] == ids[:4]

    code, total = await expert.get("/api/notifications/unread-count")
    assert code == 200 and total["count"] == len(unread)
    top = mine[0]
    code, body = await expert.post(f"/api/notifications/{top['id']}/read")
    assert code == 200 and body["id"] == top["id"] and body["read_at"] is not None
    code, again = await expert.post(f"/api/notifications/{top['id']}/read")
    assert code == 200 and again["read_at"] == body["read_at"]  # the first read is kept
    assert (await expert.get("/api/notifications/unread-count"))[1]["count"] == total["count"] - 1
    code, unread_now = await expert.get("/api/notifications", params={"unread": "true"})
    assert top["id"] not in [n["id"] for n in unread_now]

    # Another user's notification, or one that does not exist, is a 404 alike.
    code, err = await village.post(f"/api/notifications/{mine[1]['id']}/read")
    assert code == 404 and err["error"]["code"] == "not_found"
    assert (await village.post("/api/notifications/999999/read"))[0] == 404
    assert (await village.post("/api/notifications/abc/read"))[0] == 404
    code, unread_again = await expert.get("/api/notifications", params={"unread": "true"})
    assert mine[1]["id"] in [n["id"] for n in unread_again]

    code, done = await expert.post("/api/notifications/read-all")
    assert (code, done) == (200, {"count": total["count"] - 1})
    assert (await expert.get("/api/notifications/unread-count"))[1] == {"count": 0}
    assert (await expert.get("/api/notifications", params={"unread": "true"}))[1] == []
    assert (await expert.post("/api/notifications/read-all"))[1] == {"count": 0}


async def test_inbox_query_is_strict(api: Api) -> None:
    expert = await api.login("expert")
    for params in ({"unread": "yes"}, {"unread": "1"}, {"limit": "0"}, {"limit": "201"},
                   {"limit": "+5"}, {"before": "x"}, {"before": "0"}, {"limit": "５"}):
        code, body = await expert.get("/api/notifications", params=params)
        assert code == 422 and body["error"]["code"] == "validation_error", (params, body)
    assert (await api.get("/api/notifications"))[0] == 401
    assert (await api.get("/api/notifications/unread-count"))[0] == 401
    assert (await api.post("/api/notifications/read-all"))[0] == 401


async def test_each_consultation_step_notifies_the_other_side(api: Api,
                                                              settings: Settings) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    # The expert reads English; the village doctor has not chosen (Chinese, the default).
    assert (await expert.put("/api/me/preferences", {"locale": "en"}))[0] == 200
    c = await book(village, expert.user["id"], kind="imaging")
    cid = c["id"]
    [n] = await about(expert, cid)
    assert (n["kind"], n["urgent"], n["title"]) == (
        "consultation.requested", False, "New consultation request")
    assert f"#{cid}" in n["body"] and "Zhang San" not in n["body"] and "张三" not in n["body"]
    assert await about(village, cid) == []  # the requester is not told of their own request

    assert (await expert.post(f"/api/consultations/{cid}/accept", {}))[0] == 200
    [n] = await about(village, cid)
    assert (n["kind"], n["title"]) == ("consultation.accepted", "会诊已接受")
    assert await about(expert, cid) != [] and len(await about(expert, cid)) == 1

    assert (await village.post(f"/api/consultations/{cid}/start"))[0] == 200
    assert (await expert.post(f"/api/consultations/{cid}/report", REPORT))[0] == 200
    code, body = await expert.post(f"/api/consultations/{cid}/report/sign")
    assert code == 200, body
    kinds = [n["kind"] for n in await about(village, cid)]
    assert kinds == ["report.signed", "consultation.accepted"]

    declined = await book(village, expert.user["id"], kind="imaging", slot_index=1)
    code, _ = await expert.post(f"/api/consultations/{declined['id']}/decline",
                                {"reason": "Outside my field; ask radiology"})
    assert code == 200
    [n] = await about(village, declined["id"])
    assert n["kind"] == "consultation.declined" and "ask radiology" in n["body"]

    cancelled = await book(village, expert.user["id"], kind="imaging", slot_index=2)
    code, _ = await village.post(f"/api/consultations/{cancelled['id']}/cancel",
                                 {"reason": "Patient transferred"})
    assert code == 200
    kinds = [(n["kind"], n["title"]) for n in await about(expert, cancelled["id"])]
    assert kinds == [("consultation.cancelled", "Consultation cancelled"),
                     ("consultation.requested", "New consultation request")]

    expiring = await book(village, expert.user["id"], kind="imaging", slot_index=3)
    db = Database(settings.resolved_database_url)
    try:
        async with db.write() as session:
            row = await session.get(Consultation, expiring["id"])
            assert row is not None
            row.deadline = utcnow()
        assert await expire_overdue(db) >= 1
    finally:
        await db.close()
    [n] = await about(village, expiring["id"])
    assert n["kind"] == "consultation.expired"


async def test_queue_requests_reach_the_matching_specialists(api: Api) -> None:
    township = await api.login("township")
    county, radiology, expert = (await api.login("county"), await api.login("county_radiology"),
                                 await api.login("expert"))
    dianbai = county.user["institution_id"]
    c = await queue_request(township, dianbai, "radiology", urgency="emergency")
    [n] = await about(radiology, c["id"])
    assert n["kind"] == "consultation.requested" and n["urgent"] is True
    assert n["title"] == "急诊会诊申请"
    assert await about(county, c["id"]) == []  # internal medicine: not this queue
    assert await about(expert, c["id"]) == []  # another institution

    anyone = await queue_request(township, dianbai, None)
    assert len(await about(radiology, anyone["id"])) == 1
    assert len(await about(county, anyone["id"])) == 1
    assert (await radiology.post(f"/api/consultations/{anyone['id']}/accept", {}))[0] == 200
    [n] = await about(township, anyone["id"])
    assert n["kind"] == "consultation.accepted"


async def test_a_refused_request_notifies_nobody(api: Api) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    before = (await expert.get("/api/notifications/unread-count"))[1]["count"]
    code, _ = await village.post("/api/consultations", {
        "patient_id": 999999, "kind": "imaging", "question": "?", "expert_id": expert.user["id"]})
    assert code == 404
    assert (await expert.get("/api/notifications/unread-count"))[1]["count"] == before


async def test_openapi_describes_the_inbox(api: Api) -> None:
    code, doc = await api.get("/api/openapi.json")
    assert code == 200
    for path in ("/api/notifications", "/api/notifications/{id}/read",
                 "/api/notifications/read-all", "/api/notifications/unread-count"):
        assert path in doc["paths"], path
