"""Request-level safeguards: login limits per account, the client's real address behind a
trusted proxy, security headers, refused requests audited, no Host reflection, file modes."""

from __future__ import annotations

import asyncio
import stat

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from tests.conftest import Api, with_settings
from tests.server.live import live_server
from yilian.server.app import create_app
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry


async def _login(api: Api, username: str, password: str, headers: dict[str, str] | None = None
                 ) -> tuple[int, dict]:
    return await api.post("/api/auth/login", {"username": username, "password": password},
                          headers=headers)


async def test_wrong_passwords_lock_that_account_not_everyone(api: Api) -> None:
    """Behind one proxy address, ten wrong passwords for one user used to lock out all."""
    for _ in range(5):  # the fifth locks the account (YILIAN_LOCKOUT_ATTEMPTS)
        status, body = await _login(api, "village", "wrong")
        assert status == 401 and body["error"]["code"] == "invalid_credentials"
    status, body = await _login(api, "village", "yilian-demo")
    assert status == 429 and body["error"]["details"]["scope"] == "account"
    assert body["error"]["code"] == "account_locked"
    status, body = await _login(api, "township", "yilian-demo")  # same address, other account
    assert status == 200, body


async def test_an_address_spraying_many_accounts_is_stopped(settings) -> None:
    srv = TestServer(create_app(with_settings(settings, login_attempts_per_address_per_minute=15)),
                     host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        async with ClientSession() as http:
            api = Api(srv, http)
            for n in range(15):
                status, _ = await _login(api, f"nobody{n}", "guess")
                assert status == 401
            status, body = await _login(api, "expert", "yilian-demo")
            assert status == 429 and body["error"]["details"]["scope"] == "address"
    finally:
        await srv.close()


async def _audit(settings, **where: object) -> list[AuditEntry]:
    db = Database(settings.resolved_database_url)
    async with db.read() as session:
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, name) == value)
        rows = list((await session.execute(stmt)).scalars())
    await db.close()
    return rows


async def test_forwarded_address_is_believed_only_from_a_trusted_proxy(settings) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}
    for trusted, expected in (("", "127.0.0.1"), ("127.0.0.1/32", "203.0.113.9")):
        srv = TestServer(create_app(with_settings(settings, trusted_proxies=trusted or None)),
                         host="127.0.0.1", port=0)
        await srv.start_server()
        try:
            async with ClientSession() as http:
                api = Api(srv, http)
                status, _ = await _login(api, "village", "nope", forwarded)
                assert status == 401
                await api.flush_audit()
        finally:
            await srv.close()
        denied = await _audit(settings, action="denied", resource_id="/api/auth/login")
        assert denied[-1].ip == expected


async def test_refused_requests_are_audited(api: Api, settings) -> None:
    village, guilin = await api.login("village"), await api.login("guilin_doctor")
    status, mine = await village.get("/api/consultations")
    cid = mine[0]["id"]
    status, body = await guilin.get(f"/api/consultations/{cid}")
    assert status == 404
    coordinator = await api.login("coordinator")
    status, _ = await coordinator.get("/api/patients")
    assert status == 403
    status, _ = await api.get("/api/me")  # no token
    assert status == 401
    await api.flush_audit()
    denied = await _audit(settings, action="denied")
    by_path = {(d.resource_id, d.user_id): d for d in denied}
    entry = by_path[(f"/api/consultations/{cid}", guilin.user["id"])]
    assert entry.detail == {"method": "GET", "status": 404, "code": "not_found"}
    assert entry.institution_id == guilin.user["institution_id"] and entry.ip == "127.0.0.1"
    assert ("/api/patients", coordinator.user["id"]) in by_path
    assert by_path[("/api/me", None)].detail["status"] == 401


async def test_security_headers_and_no_caching_of_patient_data(api: Api) -> None:
    village = await api.login("village")
    async with api.http.get(api.url("/api/me"), headers=village.headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    async with api.http.get(api.url("/dicomweb/studies"), headers=village.headers()) as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    async with api.http.get(api.url("/")) as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    async with api.http.get(api.url("/static/js/app.js")) as resp:
        assert resp.status == 200 and resp.headers.get("Cache-Control") != "no-store"
    async with api.http.get(api.url("/api/consultations/999999"),
                            headers=village.headers()) as resp:
        assert resp.status == 404 and resp.headers["Cache-Control"] == "no-store"


async def _raw_get(server: TestServer, path: str, host: str, token: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                  "Accept: application/dicom+json\r\nConnection: close\r\n\r\n").encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_the_host_header_is_not_reflected_into_dicomweb_urls(api: Api, server) -> None:
    township = await api.login("township")
    for host in ("evil.example/x?", "a b", "evil.example\">"):
        status, body = await _raw_get(server, "/dicomweb/studies", host, township.token or "")
        assert status in (200, 400), body[:200]
        assert b"evil" not in body and b"a b" not in body
    status, body = await _raw_get(server, "/dicomweb/studies", "pacs.example:8443",
                                  township.token or "")
    assert status == 200 and b"http://pacs.example:8443/dicomweb/studies/" in body


async def test_public_url_is_what_dicomweb_answers_name(settings) -> None:
    srv = TestServer(create_app(with_settings(settings, public_url="https://yilian.example.cn/")),
                     host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        async with ClientSession() as http:
            township = await Api(srv, http).login("township")
            status, body = await _raw_get(srv, "/dicomweb/studies", "other.example",
                                          township.token or "")
            assert status == 200 and b"https://yilian.example.cn/dicomweb/studies/" in body
            assert b"other.example" not in body
    finally:
        await srv.close()


def test_patient_data_on_disk_is_for_the_service_account_only(settings) -> None:
    """A real `yilian serve` on a data directory made world-readable: it closes it."""
    data = settings.data_dir
    data.chmod(0o755)
    for path in data.glob("yilian.sqlite3*"):
        path.chmod(0o644)
    with live_server(settings):
        pass
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "audit").stat().st_mode) & 0o077 == 0
    for path in [*data.glob("yilian.sqlite3*"), data / "secret_key"]:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
