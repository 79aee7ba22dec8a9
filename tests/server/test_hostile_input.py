"""Hostile input to the JSON API: numbers in other scripts or past 64 bits, pathological JSON,
dates at the ends of the calendar, and who may read /metrics. Each gets an exact 4xx, stores
nothing, and the server keeps answering."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from tests.conftest import Api, with_settings
from tests.server.helpers import new_patient
from yilian.server.app import create_app
from yilian.server.clinic.models import AvailabilityException, Consultation, Patient
from yilian.server.core.db import Database
from yilian.server.core.settings import Settings

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


async def raw_http(server: TestServer, request_line: bytes, headers: dict[str, str],
                   body: bytes = b"") -> tuple[int, Any]:
    """One request written byte for byte (no client library re-encodes the path); returns
    the status and the JSON body."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        head = request_line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        head += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n".encode()
        writer.write(head + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1])
    payload = data.split(b"\r\n\r\n", 1)[1]
    return status, json.loads(payload) if payload.startswith(b"{") else payload


async def _counts(settings: Settings) -> tuple[int, int, int]:
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        counts = tuple([await session.scalar(select(func.count()).select_from(m))
                        for m in (Patient, Consultation, AvailabilityException)])
    await db.close()
    return counts  # type: ignore[return-value]


async def _still_answers(api: Api) -> None:
    status, body = await api.get("/healthz")
    assert (status, body) == (200, {"status": "ok"})


# --- numbers -------------------------------------------------------------------------------


async def test_path_ids_take_ascii_digits_only(api: Api, server: TestServer) -> None:
    village = await api.login("village")
    patient = await new_patient(village)
    pid = str(patient["id"])
    assert (await village.get(f"/api/patients/{pid}"))[0] == 200
    for raw in (pid.translate(ARABIC_INDIC), pid.translate(FULL_WIDTH), "²", "¹²", f"+{pid}",
                f" {pid}", f"{pid} ", f"{pid}_0", f"{pid}.0", "99999999999999999999",
                str(2**64), "0", "-1", "0x1f"):
        status, body = await village.get(f"/api/patients/{raw}")  # percent-encoded by aiohttp
        assert (status, body["error"]["code"]) == (404, "not_found"), (raw, body)
    auth = {"Authorization": f"Bearer {village.token}"}
    for raw in (pid.translate(ARABIC_INDIC), "²"):
        # As raw UTF-8 in the request line, aiohttp's HTTP parser refuses it before routing.
        status, _ = await raw_http(server, f"GET /api/patients/{raw} HTTP/1.1".encode(), auth)
        assert status == 400, raw
        # Percent-encoded, it reaches the handler, which refuses it.
        quoted = "".join(f"%{b:02X}" for b in raw.encode())
        status, body = await raw_http(server, f"GET /api/patients/{quoted} HTTP/1.1".encode(),
                                      auth)
        assert (status, body["error"]["code"]) == (404, "not_found"), (raw, body)
    status, body = await village.get(f"/api/consultations/{'١'}/report")
    assert (status, body["error"]["code"]) == (404, "not_found")
    await _still_answers(api)


async def test_query_integers_take_ascii_digits_only(api: Api) -> None:
    village = await api.login("village")
    for value in ("١٠", "１０", "+10", " 10", "10 ", "1_0", "10.0", "1e1", "99999999999999999999",
                  str(2**64), "-5", ""):
        status, body = await village.get("/api/patients", params={"limit": value})
        assert (status, body["error"]["code"]) == (422, "validation_error"), (value, body)
    for value in ("١", "１", "+1", "1_0", str(2**63)):
        status, body = await village.get("/api/institutions", params={"alliance_id": value})
        assert (status, body["error"]["code"]) == (422, "validation_error"), (value, body)
    assert (await village.get("/api/patients", params={"limit": "10"}))[0] == 200
    assert (await village.get("/api/institutions", params={"alliance_id": "1"}))[0] == 200


# --- pathological JSON ---------------------------------------------------------------------


def _patient_body(**extra: Any) -> dict[str, Any]:
    return {"name": "A", "sex": "female", **extra}


async def test_pathological_json_is_refused_quickly(api: Api, settings: Settings) -> None:
    village = await api.login("village")
    before = await _counts(settings)
    deep_list = b'{"name": "A", "sex": "female", "phone": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    deep_obj = b'{"name": "A", "sex": "female", "x": ' + b'{"a": ' * 1000 + b"1" + \
        b"}" * 1000 + b"}"
    cases: list[tuple[bytes, int, str]] = [
        (deep_list, 400, "invalid_json"),
        (deep_obj, 400, "invalid_json"),
        (b"[" * 200_000, 400, "invalid_json"),  # unterminated, and far deeper than any stack
        (b'{"name": "A", "sex": "female", "x": ' + b"[" * 40 + b"]" * 40 + b"}", 400,
         "invalid_json"),  # past the documented depth of 32
        (b'{"name": NaN, "sex": "female"}', 400, "invalid_json"),
        (b'{"name": "A", "sex": "female", "birth_date": Infinity}', 400, "invalid_json"),
        (b'{"name": "A", "sex": "female", "birth_date": -Infinity}', 400, "invalid_json"),
        (b'{"name": "A", "sex": "female", "birth_date": 1e400}', 400, "invalid_json"),
        (b'{"name": "A", "sex": "female", "name": "B"}', 400, "invalid_json"),
        (b'{"name": "A", "sex": "female", "phone": ' + b"9" * 5000 + b"}", 400, "invalid_json"),
        (b'{"name": "A", "sex": "female", "x": [' + b",".join([b"{}"] * 500_000) + b"]}", 400,
         "invalid_json"),
    ]
    for raw, want, code in cases:
        started = asyncio.get_running_loop().time()
        status, body = await village.request("POST", "/api/patients", data=raw,
                                             headers={"Content-Type": "application/json"})
        assert (status, body["error"]["code"]) == (want, code), (raw[:60], body)
        assert body["error"]["message"]
        # generous: the point is "refused while parsing", not a benchmark
        assert asyncio.get_running_loop().time() - started < 5, raw[:60]
    status, body = await village.post("/api/patients", _patient_body(phone=2**64))
    assert (status, body["error"]["code"]) == (422, "validation_error")
    assert (await _counts(settings)) == before
    await _still_answers(api)


async def test_huge_lists_in_short_list_fields(api: Api, settings: Settings) -> None:
    village = await api.login("village")
    patient = await new_patient(village)
    before = await _counts(settings)
    status, body = await village.post("/api/consultations", {
        "patient_id": patient["id"], "kind": "video", "question": "q", "expert_id": 5,
        "study_uids": ["not a uid"] * 100_000})
    assert (status, body["error"]["code"]) == (422, "validation_error")
    assert len(body["error"]["details"]["errors"]) <= 20
    expert = await api.login("expert")
    path = f"/api/experts/{expert.user['id']}/availability"
    status, body = await expert.put(path, {"weekly": [9] * 100_000})
    assert (status, body["error"]["code"]) == (422, "validation_error")
    assert len(body["error"]["details"]["errors"]) <= 20
    assert len(json.dumps(body)) < 10_000
    # 100,000 objects: refused before the parser builds them (more than 10,000 containers)
    status, body = await expert.put(path, {"weekly": [], "exceptions": [{}] * 100_000})
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    assert body["error"]["details"] == {"max_containers": 10_000}
    status, body = await expert.put(path, {"weekly": [[[], []]] * 100_000})
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    assert (await _counts(settings)) == before
    await _still_answers(api)


# --- dates at the ends of the calendar -----------------------------------------------------

EDGE_DATETIMES = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z",
                  "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+14:00",
                  "1899-12-31T23:59:59Z", "2201-01-01T00:00:00Z",
                  "10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z",
                  "٢٠٢٦-01-01T00:00:00+08:00", "２０２６-01-01T00:00:00+08:00"]


async def test_slot_ranges_at_the_ends_of_the_calendar(api: Api) -> None:
    village = await api.login("village")
    for value in EDGE_DATETIMES:
        for params in ({"from": value}, {"to": value},
                       {"from": value, "to": "2026-12-01T00:00:00+08:00"}):
            status, body = await village.get("/api/experts/5/slots", params=params)
            assert (status, body["error"]["code"]) == (422, "validation_error"), (params, body)
    ok = await village.get("/api/experts/5/slots",
                           params={"from": "2200-12-01T00:00:00-14:00"})
    assert ok[0] == 200 and ok[1] == []
    await _still_answers(api)


async def test_availability_exceptions_at_the_ends_of_the_calendar(api: Api,
                                                                   settings: Settings) -> None:
    expert = await api.login("expert")
    path = f"/api/experts/{expert.user['id']}/availability"
    status, current = await expert.get(path)
    assert status == 200
    before = await _counts(settings)
    for start, end in (("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00+14:00"),
                       ("9999-12-30T00:00:00-14:00", "9999-12-31T23:59:59-14:00"),
                       ("2026-01-01T00:00:00+08:00", "9999-12-31T23:59:59+14:00"),
                       ("-0001-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
                       ("2026-01-01T00:00:00+08:00", "10000-01-01T00:00:00Z")):
        status, body = await expert.put(path, {
            "timezone": current["timezone"], "weekly": current["weekly"],
            "exceptions": [{"kind": "extra", "start": start, "end": end, "slot_minutes": 30}]})
        assert (status, body["error"]["code"]) == (422, "validation_error"), (start, end, body)
    assert (await _counts(settings)) == before
    assert (await expert.get(path))[1] == current
    await _still_answers(api)


async def test_birth_dates_at_the_ends_of_the_calendar(api: Api, settings: Settings) -> None:
    village = await api.login("village")
    before = await _counts(settings)
    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    for value in ("0001-01-01", "1899-12-31", "9999-12-31", future, "10000-01-01",
                  "-0001-01-01", "٢٠٠٠-01-01", "2000-02-30"):
        status, body = await village.post("/api/patients", _patient_body(birth_date=value))
        assert (status, body["error"]["code"]) == (422, "validation_error"), (value, body)
    assert (await _counts(settings)) == before
    status, body = await village.post("/api/patients", _patient_body(birth_date="1900-01-01"))
    assert status == 201 and body["birth_date"] == "1900-01-01"


# --- /metrics ------------------------------------------------------------------------------

METRICS_SECRET = "scrape-secret-for-tests-0123456789"


async def test_metrics_need_the_scrape_secret_or_an_admin(settings: Settings) -> None:
    app = create_app(with_settings(settings, metrics_token=METRICS_SECRET))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with ClientSession() as http:
            api = Api(server, http)
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": f"Bearer {METRICS_SECRET}x"},
                            {"Authorization": f"Basic {METRICS_SECRET}"}):
                status, body = await api.get("/metrics", headers=headers)
                assert status == 401 and body["error"]["code"] in (
                    "unauthorized", "invalid_token"), (headers, body)
            village = await api.login("village")
            status, body = await village.get("/metrics")
            assert (status, body["error"]["code"]) == (403, "forbidden")
            status, text = await api.get("/metrics",
                                         headers={"Authorization": f"Bearer {METRICS_SECRET}"})
            assert status == 200 and b"yilian_http_requests_total" in text
            assert b'status="401"' in text  # the refused scrapes are counted like any request
            admin = await api.login("admin")
            status, text = await admin.get("/metrics")
            assert status == 200 and b"yilian_http_request_seconds" in text
    finally:
        await server.close()


async def test_metrics_without_a_secret_configured(api: Api) -> None:
    assert (await api.get("/metrics"))[0] == 401
    status, _ = await api.get("/metrics", headers={"Authorization": "Bearer "})
    assert status == 401
    assert (await (await api.login("admin")).get("/metrics"))[0] == 200
