"""The referral, follow-up and on-call routes' rows of the authorisation matrix
(``test_authz_matrix``), and the states they are called in.

A referral is raised by ``township`` (Shalang) to Dianbai, where ``county`` works; a follow-up
comes from a referral ``county`` made down to ``village``'s clinic. Prepared ids go under the
matrix's own names (``cid`` for the object of the route, ``pid`` for a patient) so that its
token tests can fill every path alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.server.helpers import new_patient
from tests.server.referral_helpers import (
    DIANBAI,
    department,
    institutions,
    refer_down,
    refer_up,
)

ROLES = ("village", "township", "county", "expert", "coordinator", "admin", "guilin_doctor")
CLINICAL = ("village", "township", "county", "expert", "guilin_doctor")
NOT_CLINICAL = {"coordinator": 403, "admin": 403}
# Neither the referring (township) nor the receiving (county) team: the referral is not there.
UNRELATED = {"village": 404, "expert": 404, "guilin_doctor": 404}
KEEPERS = {**dict.fromkeys(ROLES, 403), "coordinator": 200, "admin": 200}


def _referral(expected: dict[str, int]) -> dict[str, int]:
    return {**UNRELATED, **NOT_CLINICAL, **expected}


def _shift(ids: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"department_id": ids["dept"], "user_id": ids["staff"],
            "start": now.isoformat(), "end": (now + timedelta(hours=8)).isoformat()}


#: Bodies that need prepared ids, by the name a case gives as its body.
BODIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "referral": lambda ids: {"patient_id": ids["pid"], "direction": "up",
                             "to_institution_id": ids["to"], "reason": "r"},
    "on_call": _shift,
    "head": lambda ids: {"user_id": ids["staff"]},
}


def referral_body(name: Any, ids: dict[str, Any]) -> Any:
    """The body named ``name``, filled from ``ids``; None if it is no such name."""
    maker = BODIES.get(name) if isinstance(name, str) else None
    return maker(ids) if maker else None


def referral_cases(case: Callable[..., Any]) -> dict[tuple[str, str], Any]:
    """The rows, built with the matrix's ``Case``."""
    rows = {
        ("POST", "/api/referrals"): case(
            "POST", "/api/referrals",
            {**dict.fromkeys(CLINICAL, 404), **NOT_CLINICAL, "township": 201},
            state="referral:patient", body="referral"),
        ("GET", "/api/referrals"): case(
            "GET", "/api/referrals", {**dict.fromkeys(CLINICAL, 200), **NOT_CLINICAL}),
        ("GET", "/api/referrals/{id}"): case(
            "GET", "/api/referrals/{cid}", _referral({"township": 200, "county": 200}),
            state="referral:requested"),
        ("POST", "/api/referrals/{id}/accept"): case(
            "POST", "/api/referrals/{cid}/accept", _referral({"township": 403, "county": 200}),
            state="referral:requested"),
        ("POST", "/api/referrals/{id}/reject"): case(
            "POST", "/api/referrals/{cid}/reject", _referral({"township": 403, "county": 200}),
            state="referral:requested", body={"reason": "r"}),
        ("POST", "/api/referrals/{id}/cancel"): case(
            "POST", "/api/referrals/{cid}/cancel", _referral({"township": 200, "county": 403}),
            state="referral:requested", body={"reason": "r"}),
        ("POST", "/api/referrals/{id}/depart"): case(
            "POST", "/api/referrals/{cid}/depart", _referral({"township": 200, "county": 403}),
            state="referral:accepted"),
        ("POST", "/api/referrals/{id}/arrive"): case(
            "POST", "/api/referrals/{cid}/arrive", _referral({"township": 403, "county": 200}),
            state="referral:accepted"),
        ("POST", "/api/referrals/{id}/complete"): case(
            "POST", "/api/referrals/{cid}/complete",
            _referral({"township": 403, "county": 200}), state="referral:arrived"),
        ("POST", "/api/referrals/{id}/milestones"): case(
            "POST", "/api/referrals/{cid}/milestones",
            _referral({"township": 403, "county": 200}), state="referral:requested",
            body={"milestone": "accept"}),
        ("POST", "/api/referrals/{id}/share"): case(
            "POST", "/api/referrals/{cid}/share",
            # No such study: the referring team gets a 4xx about the UID, never a 2xx.
            _referral({"township": 404, "county": 403}), state="referral:requested",
            body={"study_uids": ["1.2.3.999"]}),
        ("GET", "/api/referral-targets"): case(
            "GET", "/api/referral-targets?direction=up",
            {**dict.fromkeys(CLINICAL, 200), **NOT_CLINICAL}),
        ("GET", "/api/follow-ups"): case(
            "GET", "/api/follow-ups", {**dict.fromkeys(CLINICAL, 200), **NOT_CLINICAL}),
        ("POST", "/api/follow-ups/{id}/complete"): case(
            "POST", "/api/follow-ups/{cid}/complete",
            {**dict.fromkeys(CLINICAL, 404), **NOT_CLINICAL, "village": 200},
            state="referral:follow_up", body={"outcome": "well"}),
        ("GET", "/api/on-call"): case("GET", "/api/on-call", dict.fromkeys(ROLES, 200)),
        ("POST", "/api/on-call"): case(
            "POST", "/api/on-call", {**KEEPERS, "coordinator": 201, "admin": 201},
            state="referral:department", body="on_call"),
        ("DELETE", "/api/on-call/{id}"): case(
            "DELETE", "/api/on-call/{cid}", {**KEEPERS, "coordinator": 204, "admin": 204},
            state="referral:shift"),
        ("PUT", "/api/departments/{id}/head"): case(
            "PUT", "/api/departments/{cid}/head", KEEPERS, state="referral:department",
            body="head"),
    }
    return rows


async def prepare_referral(state: str, clients: dict[str, Any]) -> dict[str, Any]:
    """Ids for a ``referral:<what>`` state, made by the people whose work it is."""
    township, county, village = clients["township"], clients["county"], clients["village"]
    what = state.split(":", 1)[1]
    inst = await institutions(township)
    ids: dict[str, Any] = {"eid": clients["expert"].user["id"], "to": inst[DIANBAI]["id"],
                           "dept": department(inst[DIANBAI], "internal_medicine"),
                           "staff": county.user["id"]}
    if what == "patient":
        ids["pid"] = (await new_patient(township))["id"]
    elif what == "follow_up":
        r = await refer_down(county)
        status, _ = await village.post(f"/api/referrals/{r['id']}/accept")
        assert status == 200
        ids["cid"] = r["follow_up_id"]
    elif what == "department":
        ids["cid"] = ids["dept"]
    elif what == "shift":
        status, shift = await clients["coordinator"].post("/api/on-call", _shift(ids))
        assert status == 201, shift
        ids["cid"] = shift["id"]
    else:
        r = await refer_up(township)
        path = {"requested": [], "accepted": [(county, "accept")],
                "arrived": [(county, "accept"), (county, "arrive")]}[what]
        for client, action in path:
            status, _ = await client.post(f"/api/referrals/{r['id']}/{action}")
            assert status == 200
        ids.update(cid=r["id"], pid=r["patient_id"])
    return ids
