"""The teaching routes' rows of the authorisation matrix (``test_authz_matrix``), and the
sessions they are called on.

Each call gets a fresh session organised by ``coordinator``, presented by ``expert`` (the
provincial hospital) and inviting Dianbai (``county``), Shalang (``township``) and Shangtang
(``village``); ``guilin_doctor`` is of another alliance. The prepared session's id goes under
the matrix's ``cid`` so its token tests fill every path alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.server.referral_helpers import DIANBAI, SHALANG, SHANGTANG, institutions

ROLES = ("village", "township", "county", "expert", "coordinator", "admin", "guilin_doctor")
# Not invited, not running it, not overseeing it: the session is not there.
OUTSIDER = {"guilin_doctor": 404}
WATCHERS = {"village": 200, "township": 200, "county": 200, "expert": 200,
            "coordinator": 200, "admin": 200, **OUTSIDER}
# Attendance is for those who run the session and those who oversee it.
KEEPERS = {"village": 403, "township": 403, "county": 403, "expert": 200,
           "coordinator": 200, "admin": 200, **OUTSIDER}


def _window() -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(minutes=10)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}


def teaching_body(name: Any, ids: dict[str, Any]) -> Any:
    """The body named ``name``, filled from ``ids``; None if it is no such name."""
    if name == "teaching":
        return {"title": "Rounds", "kind": "rounds", **_window(),
                "presenter_id": ids["eid"], "invited_institution_ids": ids["invited"]}
    if name == "teaching_patch":
        return {"title": "Rounds, moved"}
    return None


def teaching_cases(case: Callable[..., Any]) -> dict[tuple[str, str], Any]:
    """The rows, built with the matrix's ``Case``."""
    base = "/api/teaching-sessions"
    return {
        # Anyone clinical or running an alliance may schedule; the presenter and the invited
        # sites must be in the organiser's alliances, which Guilin's doctor's are not.
        ("POST", base): case("POST", base, {**dict.fromkeys(ROLES, 201), "guilin_doctor": 422},
                             state="teaching:none", body="teaching"),
        ("GET", base): case("GET", base, dict.fromkeys(ROLES, 200)),
        ("GET", base + "/{id}"): case("GET", base + "/{cid}", WATCHERS, state="teaching:scheduled"),
        ("PATCH", base + "/{id}"): case(
            "PATCH", base + "/{cid}",
            {**dict.fromkeys(ROLES, 403), **OUTSIDER, "expert": 200, "coordinator": 200},
            state="teaching:scheduled", body="teaching_patch"),
        ("POST", base + "/{id}/start"): case(
            "POST", base + "/{cid}/start",
            {**dict.fromkeys(ROLES, 403), **OUTSIDER, "expert": 200},
            state="teaching:scheduled"),
        ("POST", base + "/{id}/end"): case(
            "POST", base + "/{cid}/end",
            {**dict.fromkeys(ROLES, 403), **OUTSIDER, "expert": 200, "coordinator": 200},
            state="teaching:live"),
        ("GET", base + "/{id}/attendance"): case("GET", base + "/{cid}/attendance", KEEPERS,
                                                 state="teaching:live"),
        ("GET", base + "/{id}/attendance/by-institution"): case(
            "GET", base + "/{cid}/attendance/by-institution", KEEPERS, state="teaching:live"),
        ("GET", base + "/{id}/questions"): case("GET", base + "/{cid}/questions", WATCHERS,
                                                state="teaching:live"),
        ("GET", "/api/teaching-recordings/usage"): case(
            "GET", "/api/teaching-recordings/usage",
            {**dict.fromkeys(ROLES, 403), "admin": 200}),
    }


async def prepare_teaching(state: str, clients: dict[str, Any]) -> dict[str, Any]:
    """Ids for a ``teaching:<what>`` state: ``none`` (only the ids a new one needs),
    ``scheduled`` or ``live``."""
    coordinator, expert = clients["coordinator"], clients["expert"]
    inst = await institutions(coordinator)
    ids: dict[str, Any] = {"eid": expert.user["id"],
                           "invited": [inst[n]["id"] for n in (DIANBAI, SHALANG, SHANGTANG)]}
    what = state.split(":", 1)[1]
    if what == "none":
        return ids
    status, session = await coordinator.post("/api/teaching-sessions", teaching_body("teaching", ids))
    assert status == 201, session
    ids["cid"] = session["id"]
    if what == "live":
        status, started = await expert.post(f"/api/teaching-sessions/{session['id']}/start")
        assert status == 200, started
    return ids
