"""Every /api route, called by every role, with no token and with an expired token.

The table below is the allowed/forbidden matrix. A route the app registers but this table does
not name fails the test: new routes must state who may call them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.server.accounts_authz import accounts_body, accounts_cases, prepare_accounts
from tests.server.directory_authz import directory_body, directory_cases, prepare_directory
from tests.server.helpers import book, new_patient
from tests.server.referral_authz import prepare_referral, referral_body, referral_cases
from tests.server.teaching_authz import prepare_teaching, teaching_body, teaching_cases
from yilian.server.app import api_router
from yilian.server.core.api import ApiRouter
from yilian.server.core.auth import token_digest
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import AuthToken

ROLES = ("village", "township", "county", "expert", "coordinator", "admin", "guilin_doctor")
ALL_OK = dict.fromkeys(ROLES, 200)
CLINICAL = ("village", "township", "county", "expert", "guilin_doctor")
NOT_CLINICAL = {"coordinator": 403, "admin": 403}
# For a consultation booked by `village` with `expert`: who sees it and who acts on it.
OUTSIDERS = {"township": 404, "county": 404, "guilin_doctor": 404}
REPORT = {"findings": "f", "impression": "i", "recommendations": "r"}


@dataclass
class Case:
    method: str
    path: str
    expected: dict[str, int | tuple[int, ...]]
    state: str | None = None  # consultation state to prepare
    body: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def as_consultation(expected_for: dict[str, int | tuple[int, ...]]) -> dict[str, Any]:
    return {**OUTSIDERS, **NOT_CLINICAL, **expected_for}


CASES: dict[tuple[str, str], Case] = {
    ("POST", "/api/auth/logout"): Case("POST", "/api/auth/logout", dict.fromkeys(ROLES, 204)),
    ("GET", "/api/me"): Case("GET", "/api/me", ALL_OK),
    ("PUT", "/api/me/preferences"): Case("PUT", "/api/me/preferences", ALL_OK,
                                         body={"locale": "en"}),
    ("GET", "/api/institutions"): Case("GET", "/api/institutions", ALL_OK),
    ("GET", "/api/alliances"): Case("GET", "/api/alliances", ALL_OK),
    ("GET", "/api/experts"): Case("GET", "/api/experts", ALL_OK),
    ("GET", "/api/experts/{id}/slots"): Case("GET", "/api/experts/{eid}/slots", ALL_OK),
    ("GET", "/api/experts/{id}/availability"): Case("GET", "/api/experts/{eid}/availability",
                                                    ALL_OK),
    ("PUT", "/api/experts/{id}/availability"): Case(
        "PUT", "/api/experts/{eid}/availability",
        {**dict.fromkeys(ROLES, 403), "expert": 200, "coordinator": 200, "admin": 200},
        body={"weekly": [{"weekday": 0, "start": "09:00", "end": "10:00"}]}),
    ("POST", "/api/patients"): Case(
        "POST", "/api/patients", {**dict.fromkeys(CLINICAL, 201), **NOT_CLINICAL},
        body={"name": "P", "sex": "female"}),
    ("GET", "/api/patients"): Case("GET", "/api/patients",
                                   {**dict.fromkeys(CLINICAL, 200), **NOT_CLINICAL}),
    ("GET", "/api/patients/{id}"): Case(
        "GET", "/api/patients/{pid}", as_consultation({"village": 200, "expert": 200}),
        state="requested"),
    ("POST", "/api/consultations"): Case(
        "POST", "/api/consultations",
        {**dict.fromkeys(CLINICAL, 404), **NOT_CLINICAL, "village": 201},
        state="patient", body="consultation"),
    ("GET", "/api/consultations"): Case("GET", "/api/consultations",
                                        {**dict.fromkeys(CLINICAL, 200), **NOT_CLINICAL}),
    ("GET", "/api/consultations/{id}"): Case(
        "GET", "/api/consultations/{cid}", as_consultation({"village": 200, "expert": 200}),
        state="requested"),
    ("POST", "/api/consultations/{id}/accept"): Case(
        "POST", "/api/consultations/{cid}/accept", as_consultation({"village": 403,
                                                                    "expert": 200}),
        state="requested", body={}),
    ("POST", "/api/consultations/{id}/decline"): Case(
        "POST", "/api/consultations/{cid}/decline", as_consultation({"village": 403,
                                                                     "expert": 200}),
        state="requested", body={"reason": "r"}),
    ("POST", "/api/consultations/{id}/cancel"): Case(
        "POST", "/api/consultations/{cid}/cancel", as_consultation({"village": 200,
                                                                    "expert": 403}),
        state="requested", body={"reason": "r"}),
    ("POST", "/api/consultations/{id}/start"): Case(
        "POST", "/api/consultations/{cid}/start", as_consultation({"village": 200,
                                                                   "expert": 200}),
        state="accepted"),
    ("POST", "/api/consultations/{id}/no-show"): Case(
        "POST", "/api/consultations/{cid}/no-show", as_consultation({"village": 403,
                                                                     "expert": 200}),
        state="accepted"),
    ("POST", "/api/consultations/{id}/complete"): Case(
        "POST", "/api/consultations/{cid}/complete", as_consultation({"village": 403,
                                                                      "expert": 200}),
        state="signed"),
    ("POST", "/api/consultations/{id}/studies"): Case(
        "POST", "/api/consultations/{cid}/studies",
        # No such study exists: participants get a 4xx about the UID, never a 2xx.
        as_consultation({"village": (404, 422), "expert": (404, 422)}),
        state="requested", body={"study_uid": "1.2.3.999"}),
    ("POST", "/api/consultations/{id}/teaching-copies"): Case(
        "POST", "/api/consultations/{cid}/teaching-copies",
        # The study is not shared with this consultation: a 404 for everyone who may see it.
        as_consultation({"village": 404, "expert": 404}),
        state="requested", body={"study_uid": "1.2.3.999"}),
    ("POST", "/api/consultations/{id}/report"): Case(
        "POST", "/api/consultations/{cid}/report", as_consultation({"village": 403,
                                                                    "expert": 200}),
        state="in_progress", body=REPORT),
    ("POST", "/api/consultations/{id}/report/sign"): Case(
        "POST", "/api/consultations/{cid}/report/sign", as_consultation({"village": 403,
                                                                         "expert": 200}),
        state="draft"),
    ("GET", "/api/consultations/{id}/report"): Case(
        "GET", "/api/consultations/{cid}/report", as_consultation({"village": 200,
                                                                   "expert": 200}),
        state="signed"),
    ("GET", "/api/rtc/ice-servers"): Case("GET", "/api/rtc/ice-servers", ALL_OK),
    # Everyone has an inbox (a coordinator hears of escalations); a notification is its
    # recipient's alone: the expert's, from the booking.
    ("GET", "/api/notifications"): Case("GET", "/api/notifications", ALL_OK),
    ("GET", "/api/notifications/unread-count"): Case("GET", "/api/notifications/unread-count",
                                                     ALL_OK),
    ("POST", "/api/notifications/read-all"): Case("POST", "/api/notifications/read-all", ALL_OK),
    ("POST", "/api/notifications/{id}/read"): Case(
        "POST", "/api/notifications/{nid}/read", {**dict.fromkeys(ROLES, 404), "expert": 200},
        state="requested"),
}
CASES.update(referral_cases(Case))
CASES.update(teaching_cases(Case))
CASES.update(accounts_cases(Case))
CASES.update(directory_cases(Case))
# Statistics (issue 11): each role reads its own scope by default (a doctor their institution,
# a coordinator their alliances, an admin everything); visit totals are entered by a
# coordinator of the institution's alliance or an admin (5: Shangtang Village Clinic, in the
# five-level alliance); the import reaches its content-type check (415 for a JSON body) only
# past the role check.
CASES.update({
    ("GET", "/api/stats"): Case("GET", "/api/stats", ALL_OK),
    ("GET", "/api/stats/visits"): Case("GET", "/api/stats/visits", ALL_OK),
    ("PUT", "/api/stats/visits"): Case(
        "PUT", "/api/stats/visits", {**dict.fromkeys(ROLES, 403), "coordinator": 200,
                                     "admin": 200},
        body={"totals": [{"institution_id": 5, "month": "2024-01", "visits": 10}]}),
    ("POST", "/api/stats/visits/import"): Case(
        "POST", "/api/stats/visits/import", {**dict.fromkeys(ROLES, 403), "coordinator": 415,
                                             "admin": 415}, body={}),
})


def registered() -> ApiRouter:
    return api_router()


def test_every_registered_route_is_in_the_matrix() -> None:
    routes = {(r.method, r.path) for r in registered().routes if r.auth}
    missing = routes - set(CASES)
    assert not missing, f"add these routes to the authorisation matrix: {sorted(missing)}"


async def _prepare(case: Case, clients: dict[str, Any]) -> dict[str, Any]:
    village, expert = clients["village"], clients["expert"]
    ids: dict[str, Any] = {"eid": expert.user["id"]}
    if case.state is None:
        return ids
    if case.state.startswith("referral:"):
        return await prepare_referral(case.state, clients)
    if case.state.startswith("teaching:"):
        return await prepare_teaching(case.state, clients)
    if case.state.startswith("accounts:"):
        return await prepare_accounts(case.state, clients)
    if case.state.startswith("directory:"):
        return await prepare_directory(case.state, clients)
    if case.state == "patient":
        ids["pid"] = (await new_patient(village))["id"]
        return ids
    c = await book(village, expert.user["id"])
    ids.update(cid=c["id"], pid=c["patient_id"])
    if "{nid}" in case.path:
        status, items = await expert.get("/api/notifications", params={"limit": "1"})
        assert status == 200 and items[0]["resource"]["id"] == c["id"], items
        ids["nid"] = items[0]["id"]
    steps = {
        "requested": [],
        "accepted": [(expert, "accept", {})],
        "in_progress": [(expert, "accept", {}), (village, "start", None)],
        "draft": [(expert, "accept", {}), (village, "start", None), (expert, "report", REPORT)],
        "signed": [(expert, "accept", {}), (village, "start", None), (expert, "report", REPORT),
                   (expert, "report/sign", None)],
    }[case.state]
    for client, action, body in steps:
        status, resp = await client.post(f"/api/consultations/{c['id']}/{action}", body)
        assert status == 200, resp
    return ids


def _body(case: Case, ids: dict[str, Any]) -> Any:
    if (body := referral_body(case.body, ids)) is not None:
        return body
    if (body := teaching_body(case.body, ids)) is not None:
        return body
    if (body := accounts_body(case.body, ids)) is not None:
        return body
    if (body := directory_body(case.body, ids)) is not None:
        return body
    if case.body == "consultation":
        return {"patient_id": ids["pid"], "kind": "imaging", "question": "q",
                "specialty": "radiology"}
    return case.body


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]} {k[1]}")
async def test_route_by_role(api, key: tuple[str, str]) -> None:
    if key not in {(r.method, r.path) for r in registered().routes}:
        pytest.skip("route not registered in this build")
    case = CASES[key]
    clients = {u: await api.login(u) for u in ROLES}
    for role in ROLES:
        if key == ("POST", "/api/auth/logout"):
            clients[role] = await api.login(role)
        ids = await _prepare(case, clients)
        path = case.path.format(**ids)
        status, body = await clients[role].request(case.method, path, _body(case, ids))
        want = case.expected[role]
        allowed = want if isinstance(want, tuple) else (want,)
        assert status in allowed, f"{role} {case.method} {path}: {status} {body}"
        if status >= 400:
            assert set(body["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]} {k[1]}")
async def test_route_without_or_with_expired_token(api, settings, key: tuple[str, str]) -> None:
    if key not in {(r.method, r.path) for r in registered().routes}:
        pytest.skip("route not registered in this build")
    case = CASES[key]
    path = case.path.format(eid=1, pid=1, cid=1, nid=1)
    status, body = await api.request(case.method, path, case.body)
    assert status == 401 and body["error"]["code"] == "unauthorized"

    expert = await api.login("expert")
    token = secrets.token_urlsafe(32)
    db = Database(settings.resolved_database_url)
    async with db.write() as session:
        session.add(AuthToken(token_hash=token_digest(token), user_id=expert.user["id"],
                              created_at=utcnow() - timedelta(days=2),
                              expires_at=utcnow() - timedelta(seconds=1)))
    await db.close()
    expired = type(api)(api.server, api.http, token)
    status, body = await expired.request(case.method, path, case.body)
    assert status == 401 and body["error"]["code"] == "invalid_token"


async def test_unrelated_institution_never_sees_patients_or_consultations(api) -> None:
    village, expert = await api.login("village"), await api.login("expert")
    c = await book(village, expert.user["id"])
    guilin = await api.login("guilin_doctor")
    status, listed = await guilin.get("/api/consultations")
    assert status == 200
    assert all(x["requester_institution_id"] == guilin.user["institution_id"] for x in listed)
    assert c["id"] not in [x["id"] for x in listed]
    for path in (f"/api/consultations/{c['id']}", f"/api/patients/{c['patient_id']}",
                 f"/api/consultations/{c['id']}/report"):
        status, body = await guilin.get(path)
        assert status == 404, (path, body)
