"""The authorisation matrix rows of the accounts routes (users, own password and sessions,
the audit log), with what they need prepared. ``{eid}`` is the demo expert's account (in the
coordinator's alliance); ``{cid}`` a second session of the expert's."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

ROLES = ("village", "township", "county", "expert", "coordinator", "admin", "guilin_doctor")
MANAGERS = {**dict.fromkeys(ROLES, 403), "coordinator": 200, "admin": 200}
ADMIN = {**dict.fromkeys(ROLES, 403), "admin": 200}


def accounts_body(name: Any, ids: dict[str, Any]) -> Any:
    """The body named ``name``, filled from ``ids``; None if it is no such name."""
    if name == "accounts:new_user":
        return {"username": ids["username"], "display_name": "Matrix", "role": "village_doctor",
                "institution_id": ids["institution_id"], "password": "temporary-pass-1"}
    if name == "accounts:password":
        return {"old_password": "yilian-demo", "new_password": "a-new-good-password"}
    return None


def accounts_cases(case: Callable[..., Any]) -> dict[tuple[str, str], Any]:
    """The rows, built with the matrix's ``Case``."""
    everyone = dict.fromkeys(ROLES, 200)
    return {
        ("POST", "/api/auth/password"): case("POST", "/api/auth/password", everyone,
                                             body="accounts:password"),
        ("GET", "/api/auth/sessions"): case("GET", "/api/auth/sessions", everyone),
        ("DELETE", "/api/auth/sessions"): case("DELETE", "/api/auth/sessions", everyone),
        # Only the expert's own: anyone else's is not found.
        ("DELETE", "/api/auth/sessions/{id}"): case(
            "DELETE", "/api/auth/sessions/{cid}", {**dict.fromkeys(ROLES, 404), "expert": 204},
            state="accounts:session"),
        ("POST", "/api/users"): case(
            "POST", "/api/users", {**dict.fromkeys(ROLES, 403), "coordinator": 201,
                                   "admin": 201},
            state="accounts:new_user", body="accounts:new_user"),
        ("GET", "/api/users"): case("GET", "/api/users", MANAGERS),
        ("GET", "/api/users/{id}"): case("GET", "/api/users/{eid}", MANAGERS),
        ("PATCH", "/api/users/{id}"): case("PATCH", "/api/users/{eid}", MANAGERS,
                                           body={"title": "主任医师"}),
        ("GET", "/api/audit"): case("GET", "/api/audit", ADMIN),
    }


async def prepare_accounts(state: str, clients: dict[str, Any]) -> dict[str, Any]:
    """Ids for an ``accounts:<what>`` state: ``new_user`` (a fresh username and the
    township's institution) or ``session`` (a second session of the expert's)."""
    expert = clients["expert"]
    ids: dict[str, Any] = {"eid": expert.user["id"]}
    if state == "accounts:new_user":
        ids["username"] = f"m{secrets.token_hex(5)}"
        ids["institution_id"] = clients["township"].user["institution_id"]
    elif state == "accounts:session":
        second = await expert.login("expert")
        status, sessions = await second.get("/api/auth/sessions")
        assert status == 200, sessions
        ids["cid"] = next(s["id"] for s in sessions if s["current"])
    return ids
