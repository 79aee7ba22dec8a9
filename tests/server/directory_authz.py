"""The administration routes' rows of the authorisation matrix (``test_authz_matrix``), and the
records they are called on.

``coordinator`` keeps the institutions of the Guangdong five-level alliance (Shalang among
them); administrators keep everything; nobody else keeps anything. Each call gets fresh
records where a call changes them (a department, a modality), and unique names where it
creates them. The id goes under the matrix's ``cid`` so its token tests fill every path alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from tests.server.directory_helpers import FIVE_LEVEL, SHALANG, alliances, by_name

ROLES = ("village", "township", "county", "expert", "coordinator", "admin", "guilin_doctor")
NOBODY = dict.fromkeys(ROLES, 403)
_serial = itertools.count(1)


def _only(status: int, *roles: str) -> dict[str, int]:
    return {**NOBODY, **dict.fromkeys(roles, status)}


async def prepare_directory(state: str, clients: dict[str, Any]) -> dict[str, Any]:
    """The record a row is called on, made by ``admin``."""
    admin = clients["admin"]
    shalang = (await by_name(admin))[SHALANG]["id"]
    ids: dict[str, Any] = {"eid": clients["expert"].user["id"], "shalang": shalang}
    n = next(_serial)
    if state == "directory:shalang":
        ids["cid"] = shalang
    elif state == "directory:department":
        status, d = await admin.post(f"/api/institutions/{shalang}/departments",
                                     {"name": f"Matrix {n}"})
        assert status == 201, d
        ids["cid"] = d["id"]
    elif state == "directory:alliance":
        five = (await alliances(admin))[FIVE_LEVEL]
        ids.update(cid=five["id"], members=five["member_ids"])
    elif state == "directory:modality":
        status, m = await admin.post("/api/modalities", {"ae_title": f"MATRIX_{n}",
                                                         "institution_id": shalang})
        assert status == 201, m
        ids["cid"] = m["id"]
    return ids


def directory_body(name: Any, ids: dict[str, Any]) -> Any:
    """The body named ``name``, filled from ``ids``; None if it is no such name."""
    n = next(_serial)
    bodies: dict[str, Callable[[], Any]] = {
        "institution": lambda: {"name": f"Matrix Clinic {n}", "level": "village",
                                "parent_id": ids["shalang"]},
        "department": lambda: {"name": f"Matrix Department {n}"},
        "alliance": lambda: {"name": f"Matrix Alliance {n}", "kind": "tight",
                             "lead_institution_id": ids["shalang"]},
        "members": lambda: {"member_ids": ids["members"]},
        "modality": lambda: {"ae_title": f"NEW_{n}", "institution_id": ids["shalang"]},
    }
    return bodies[name]() if isinstance(name, str) and name in bodies else None


def directory_cases(case: Callable[..., Any]) -> dict[tuple[str, str], Any]:
    """The rows, built with the matrix's ``Case``."""
    keepers = ("coordinator", "admin")
    return {
        ("GET", "/api/me/permissions"): case("GET", "/api/me/permissions",
                                             dict.fromkeys(ROLES, 200)),
        ("POST", "/api/institutions"): case("POST", "/api/institutions", _only(201, "admin"),
                                            state="directory:shalang", body="institution"),
        ("PATCH", "/api/institutions/{id}"): case(
            "PATCH", "/api/institutions/{cid}", _only(200, *keepers),
            state="directory:shalang", body={"local_name": "沙琅镇中心卫生院"}),
        ("GET", "/api/institutions/{id}/departments"): case(
            "GET", "/api/institutions/{cid}/departments", dict.fromkeys(ROLES, 200),
            state="directory:shalang"),
        ("POST", "/api/institutions/{id}/departments"): case(
            "POST", "/api/institutions/{cid}/departments", _only(201, *keepers),
            state="directory:shalang", body="department"),
        ("PATCH", "/api/departments/{id}"): case(
            "PATCH", "/api/departments/{cid}", _only(200, *keepers),
            state="directory:department", body={"specialty": "rehabilitation"}),
        ("DELETE", "/api/departments/{id}"): case(
            "DELETE", "/api/departments/{cid}", _only(204, *keepers),
            state="directory:department"),
        ("POST", "/api/alliances"): case("POST", "/api/alliances", _only(201, "admin"),
                                         state="directory:shalang", body="alliance"),
        ("PATCH", "/api/alliances/{id}"): case(
            "PATCH", "/api/alliances/{cid}", _only(200, "admin"),
            state="directory:alliance", body={"kind": "tight"}),
        ("PUT", "/api/alliances/{id}/members"): case(
            "PUT", "/api/alliances/{cid}/members", _only(200, "admin"),
            state="directory:alliance", body="members"),
        ("GET", "/api/modalities"): case("GET", "/api/modalities", _only(200, *keepers)),
        ("POST", "/api/modalities"): case("POST", "/api/modalities", _only(201, *keepers),
                                          state="directory:shalang", body="modality"),
        ("PATCH", "/api/modalities/{id}"): case(
            "PATCH", "/api/modalities/{cid}", _only(200, *keepers),
            state="directory:modality", body={"description": "DR room 2"}),
        ("DELETE", "/api/modalities/{id}"): case(
            "DELETE", "/api/modalities/{cid}", _only(204, *keepers),
            state="directory:modality"),
        # The body must be multipart/form-data: the administrator gets 415 for this JSON one
        # (test_import.py sends real files); everyone else is refused before it is read.
        ("POST", "/api/imports/dry-run"): case("POST", "/api/imports/dry-run",
                                               _only(415, "admin"), body={"users": "x"}),
        ("POST", "/api/imports"): case("POST", "/api/imports", _only(415, "admin"),
                                       body={"users": "x"}),
    }
