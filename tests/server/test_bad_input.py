"""Malformed requests of every kind get the documented 4xx shape and store nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from yilian.server.clinic.models import Consultation, Patient
from yilian.server.core.db import Database

BAD_BODIES = [
    # (body bytes, content type, expected status, expected code)
    (b"{not json", "application/json", 400, "invalid_json"),
    (b"", "application/json", 400, "invalid_json"),
    (b"[1, 2]", "application/json", 422, "validation_error"),
    (b'"just a string"', "application/json", 422, "validation_error"),
    (b'{"name": "A", "sex": "female"}', "text/plain", 415, "unsupported_media_type"),
    (b'{"name": 5, "sex": "female"}', "application/json", 422, "validation_error"),
    (b'{"name": "A", "sex": "female", "shoe_size": 42}', "application/json", 422,
     "validation_error"),
    (b'{"name": "A", "sex": "robot"}', "application/json", 422, "validation_error"),
    (b'{"name": "A", "sex": "female", "birth_date": "yesterday"}', "application/json", 422,
     "validation_error"),
    (b'{"name": "A", "sex": "female", "national_id": "123"}', "application/json", 422,
     "validation_error"),
    (b'{"name": "", "sex": "female"}', "application/json", 422, "validation_error"),
    (b"\xff\xfe\x00garbage", "application/json", 400, "invalid_json"),
]


async def _counts(settings) -> tuple[int, int]:
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        p = (await session.execute(select(func.count(Patient.id)))).scalar()
        c = (await session.execute(select(func.count(Consultation.id)))).scalar()
    await db.close()
    return p, c


async def test_malformed_patient_bodies(api, settings) -> None:
    village = await api.login("village")
    before = await _counts(settings)
    for raw, ctype, status, code in BAD_BODIES:
        got, body = await village.request("POST", "/api/patients", data=raw,
                                          headers={"Content-Type": ctype})
        assert (got, body["error"]["code"]) == (status, code), (raw, body)
        assert body["error"]["message"]
    assert await _counts(settings) == before


async def test_wrong_types_in_consultation_request(api, settings) -> None:
    village = await api.login("village")
    before = await _counts(settings)
    cases = [
        {"patient_id": "1", "kind": "video", "question": "q", "expert_id": 5},
        {"patient_id": 1, "kind": "hologram", "question": "q", "expert_id": 5},
        {"patient_id": 1, "kind": "video", "urgency": "whenever", "question": "q",
         "expert_id": 5},
        {"patient_id": 1, "kind": "video", "question": "q", "expert_id": 5.5},
        {"patient_id": 1, "kind": "video", "question": "q", "expert_id": True},
        {"patient_id": 1, "kind": "video", "question": "q", "expert_id": -3},
        {"patient_id": 1, "kind": "video", "question": "q", "expert_id": 2**40},
        {"patient_id": 1, "kind": "video", "question": "q", "study_uids": "1.2.3",
         "expert_id": 5},
        {"patient_id": 1, "kind": "video", "question": "q", "study_uids": ["not a uid"],
         "expert_id": 5},
        {"patient_id": 1, "kind": "video", "question": "q"},  # neither expert nor queue
        {"patient_id": 1, "kind": "video", "question": "q", "slot_id": 3},  # slot w/o expert
        {"patient_id": 1, "kind": "video", "question": "q" * 5000, "expert_id": 5},
    ]
    for case in cases:
        status, body = await village.post("/api/consultations", case)
        assert status == 422 and body["error"]["code"] == "validation_error", (case, body)
    assert await _counts(settings) == before


async def test_unknown_references_are_4xx_and_store_nothing(api, settings) -> None:
    village = await api.login("village")
    before = await _counts(settings)
    status, body = await village.post("/api/consultations", {
        "patient_id": 999999, "kind": "video", "question": "q", "expert_id": 5})
    assert status == 404
    patient = (await village.post("/api/patients", {"name": "A", "sex": "male"}))[1]
    before = await _counts(settings)
    for extra, want in (({"expert_id": 999999}, 422),
                        ({"expert_id": village.user["id"] + 0, "kind": "video"}, 422),
                        ({"specialty": "radiology", "target_institution_id": 99999}, 422)):
        status, body = await village.post("/api/consultations", {
            "patient_id": patient["id"], "kind": "imaging", "question": "q", **extra})
        assert status == want, (extra, body)
    # a slot of another expert
    expert = await api.login("expert")
    county = await api.login("county")
    slots = (await village.get(f"/api/experts/{county.user['id']}/slots",
                               params={"status": "free"}))[1]
    status, body = await village.post("/api/consultations", {
        "patient_id": patient["id"], "kind": "video", "question": "q",
        "expert_id": expert.user["id"], "slot_id": slots[0]["id"]})
    assert status == 422 and body["error"]["details"]["field"] == "slot_id"
    assert await _counts(settings) == before


async def test_oversized_body_is_413(api) -> None:
    village = await api.login("village")
    big = b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'", "sex": "male"}'
    status, body = await village.request("POST", "/api/patients", data=big,
                                         headers={"Content-Type": "application/json"})
    assert status == 413 and body["error"]["code"] == "payload_too_large"


async def test_unknown_routes_methods_and_ids(api) -> None:
    village = await api.login("village")
    for path, want, code in (("/api/nothing-here", 404, "not_found"),
                             ("/api/consultations/abc", 404, "not_found"),
                             ("/api/consultations/0", 404, "not_found"),
                             ("/api/consultations/99999999999999", 404, "not_found"),
                             ("/api/patients/-1", 404, "not_found")):
        status, body = await village.get(path)
        assert (status, body["error"]["code"]) == (want, code), path
    status, body = await village.request("DELETE", "/api/consultations")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


async def test_bad_query_parameters(api) -> None:
    village = await api.login("village")
    for path, params in (("/api/experts/5/slots", {"from": "0.5"}),
                         ("/api/experts/5/slots", {"from": "2026-12-01T00:00:00"}),
                         ("/api/experts/5/slots", {"from": "2026-12-02T00:00:00+08:00",
                                                   "to": "2026-12-01T00:00:00+08:00"}),
                         ("/api/experts/5/slots", {"from": "2026-01-01T00:00:00+08:00",
                                                   "to": "2027-01-01T00:00:00+08:00"}),
                         ("/api/consultations", {"status": "lost"}),
                         ("/api/institutions", {"level": "galaxy"}),
                         ("/api/institutions", {"alliance_id": "x"})):
        status, body = await village.get(path, params=params)
        assert status == 422 and body["error"]["code"] == "validation_error", (path, params)


async def test_healthz_and_metrics(api) -> None:
    status, body = await api.get("/healthz")
    assert (status, body) == (200, {"status": "ok"})
    await api.get("/api/me")
    admin = await api.login("admin")  # /metrics is not public (tests/server/test_hostile_input.py)
    status, text = await admin.get("/metrics")
    assert status == 200 and b"yilian_http_requests_total" in text
    assert b'route="/api/me"' in text
