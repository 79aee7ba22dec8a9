"""Modalities of the C-STORE SCP kept through the API: the CLI's validation, the institutions a
coordinator keeps, audited changes, and the SCP following the table without a restart (a real
pynetdicom SCU)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import Api, with_settings
from tests.dicom.test_network_policy import Association, associate
from tests.server.directory_helpers import GUILIN, SHALANG, audit_entries, by_name
from yilian.dicom import keys as dicom_keys
from yilian.server.app import create_app
from yilian.server.core.settings import Settings


@pytest.fixture
async def scp_api(settings: Settings) -> AsyncIterator[Api]:
    """The real application with its SCP on a free port, and an anonymous client."""
    before = {t.ident for t in threading.enumerate()}
    srv = TestServer(create_app(with_settings(settings, dicom_port=0)), host="127.0.0.1", port=0)
    await srv.start_server()
    async with ClientSession() as http:
        yield Api(srv, http)
    await srv.close()
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()
              and t.name.startswith("Acceptor")]
    assert not leaked, leaked


async def test_modalities_through_the_api_reach_the_scp_at_once(scp_api: Api) -> None:
    api = scp_api
    port = api.server.app[dicom_keys.DICOM_PORT]
    admin = await api.login("admin")
    inst = await by_name(admin)
    shalang = inst[SHALANG]["id"]
    assert await asyncio.to_thread(associate, port, "SHALANG_US", "127.0.0.7") == Association(
        False, (1, 1, 3))
    status, m = await admin.post("/api/modalities", {
        "ae_title": "SHALANG_US", "institution_id": shalang, "description": "超声",
        "addresses": ["127.0.0.7"]})
    assert status == 201, m
    assert m["networks"] == ["127.0.0.7/32"] and not m["anywhere"]
    assert await asyncio.to_thread(associate, port, "SHALANG_US", "127.0.0.7") == Association(
        True, echo=0)
    # from another address: refused, until the network is widened
    assert not (await asyncio.to_thread(associate, port, "SHALANG_US", "127.0.0.8")).established
    status, m = await admin.request("PATCH", f"/api/modalities/{m['id']}",
                                    {"addresses": ["127.0.0.0/24"]})
    assert status == 200 and m["networks"] == ["127.0.0.0/24"]
    assert (await asyncio.to_thread(associate, port, "SHALANG_US", "127.0.0.8")).established
    status, _ = await admin.request("DELETE", f"/api/modalities/{m['id']}")
    assert status == 204
    assert not (await asyncio.to_thread(associate, port, "SHALANG_US", "127.0.0.7")).established
    entries = [e for e in await audit_entries(api, "dicom_modality")
               if e.resource_id == str(m["id"])]
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert entries[1].detail["before"]["networks"] == ["127.0.0.7/32"]  # type: ignore[index]
    assert entries[1].detail["after"]["networks"] == ["127.0.0.0/24"]  # type: ignore[index]


async def test_modality_validation_and_scope(api: Api) -> None:
    admin = await api.login("admin")
    inst = await by_name(admin)
    shalang, guilin = inst[SHALANG]["id"], inst[GUILIN]["id"]
    bad = [({"ae_title": "BAD\\TITLE", "institution_id": shalang}, 422, "invalid_ae_title"),
           ({"ae_title": " LEADING", "institution_id": shalang}, 422, "invalid_ae_title"),
           ({"ae_title": "X" * 17, "institution_id": shalang}, 422, "validation_error"),
           ({"ae_title": "CT1", "institution_id": shalang, "addresses": ["pacs.example.org"]},
            422, "invalid_address"),
           ({"ae_title": "CT1", "institution_id": shalang, "addresses": ["10.1.2.3/16"]},
            422, "invalid_address"),
           ({"ae_title": "CT1", "institution_id": 999999}, 422, "unknown_institution"),
           ({"ae_title": "SHALANG_DR", "institution_id": shalang}, 409, "ae_title_taken")]
    for body, want, code in bad:
        status, resp = await admin.post("/api/modalities", body)
        assert (status, resp["error"]["code"]) == (want, code), (body, resp)
    status, listed = await admin.get("/api/modalities")
    assert [m["ae_title"] for m in listed] == ["SHALANG_DR"]

    coordinator = await api.login("coordinator")
    status, m = await coordinator.post("/api/modalities", {
        "ae_title": "SHALANG_CT", "institution_id": shalang, "addresses": ["any"]})
    assert status == 201 and m["anywhere"] is True
    status, resp = await coordinator.post("/api/modalities", {
        "ae_title": "GUILIN_CT", "institution_id": guilin})
    assert status == 403
    status, g = await admin.post("/api/modalities", {"ae_title": "GUILIN_CT",
                                                     "institution_id": guilin})
    assert status == 201
    status, listed = await coordinator.get("/api/modalities")
    assert status == 200 and "GUILIN_CT" not in [x["ae_title"] for x in listed]
    for method, body in (("PATCH", {"description": "x"}), ("DELETE", None)):
        status, resp = await coordinator.request(method, f"/api/modalities/{g['id']}", body)
        assert status == 404, resp
    status, resp = await coordinator.request("PATCH", f"/api/modalities/{m['id']}",
                                             {"institution_id": guilin})
    assert status == 403
    status, resp = await coordinator.request("PATCH", f"/api/modalities/{m['id']}",
                                             {"addresses": None})
    assert status == 422
    for user in ("township", "expert"):
        client = await api.login(user)
        status, resp = await client.get("/api/modalities")
        assert status == 403
