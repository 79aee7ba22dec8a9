"""The audit log search (by user, patient, institution, action and period) and its CSV export;
and ``yilian admin create-user`` on an empty data directory."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import TEST_SECRET
from tests.server.helpers import new_patient

ROOT = Path(__file__).resolve().parents[2]


async def test_search_by_user_patient_action_and_period(api: Any) -> None:
    admin, village = await api.login("admin"), await api.login("village")
    patient = await new_patient(village)
    assert (await village.get(f"/api/patients/{patient['id']}"))[0] == 200
    await admin.request("PATCH", f"/api/users/{village.user['id']}", {"title": "乡村医生"})

    status, rows = await admin.get("/api/audit", params={"patient_id": str(patient["id"])})
    assert status == 200 and rows and {r["patient_id"] for r in rows} == {patient["id"]}
    assert all(r["user_id"] == village.user["id"] and r["username"] == "village" for r in rows)
    status, rows = await admin.get("/api/audit", params={"action": "update_user"})
    assert status == 200 and len(rows) == 1
    assert rows[0]["detail"]["before"] == {"title": "Village Doctor"}
    assert rows[0]["detail"]["after"] == {"title": "乡村医生"}
    status, rows = await admin.get("/api/audit", params={
        "user_id": str(village.user["id"]),
        "institution_id": str(village.user["institution_id"])})
    assert status == 200 and rows and all(r["user_id"] == village.user["id"] for r in rows)
    times = [r["at"] for r in rows]
    assert times == sorted(times, reverse=True)

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    status, rows = await admin.get("/api/audit", params={"from": future})
    assert status == 200 and rows == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    status, rows = await admin.get("/api/audit", params={"from": past, "to": future,
                                                         "limit": "2"})
    assert status == 200 and len(rows) == 2
    status, more = await admin.get("/api/audit", params={"from": past, "to": future,
                                                         "limit": "2",
                                                         "before_id": str(rows[-1]["id"])})
    assert status == 200 and len(more) == 2 and more[0]["id"] < rows[-1]["id"]

    # The search itself is audited.
    status, rows = await admin.get("/api/audit", params={"action": "audit_search"})
    assert status == 200 and rows and rows[0]["user_id"] == admin.user["id"]


async def test_bad_queries_and_who_may_read(api: Any) -> None:
    admin = await api.login("admin")
    for params in ({"from": "yesterday"}, {"from": "2026-01-01T00:00:00"},
                   {"user_id": "x"}, {"limit": "501"}, {"action": "DROP TABLE"},
                   {"format": "xml"},
                   {"from": "2026-02-01T00:00:00+08:00", "to": "2026-01-01T00:00:00+08:00"}):
        status, err = await admin.get("/api/audit", params=params)
        assert status == 422, (params, err)
    for name in ("coordinator", "village", "expert"):
        client = await api.login(name)
        status, err = await client.get("/api/audit")
        assert status == 403 and err["error"]["code"] == "forbidden"


async def test_csv_export_for_the_compliance_office(api: Any) -> None:
    admin = await api.login("admin")
    village = await api.login("village")
    await admin.request("PATCH", f"/api/users/{village.user['id']}",
                        {"display_name": "=HYPERLINK(\"x\")", "title": "乡村医生"})
    async with api.http.get(api.url("/api/audit"), params={"format": "csv",
                                                           "action": "update_user"},
                            headers=admin.headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in resp.headers["Content-Disposition"]
        raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["at", "user_id", "username", "institution_id", "action",
                       "resource_type", "resource_id", "patient_id", "ip", "detail"]
    assert len(rows) == 2 and rows[1][2] == "admin" and rows[1][4] == "update_user"
    assert "乡村医生" in rows[1][9] and "hash" not in raw.decode()
    status, rows = await admin.get("/api/audit", params={"action": "audit_export"})
    assert status == 200 and rows[0]["detail"]["rows"] == 1


def _cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "YILIAN_SECRET_KEY": TEST_SECRET, "HOME": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "yilian.server.cli", "admin", "create-user",
                           "--data-dir", str(data_dir), *args], input=stdin, text=True,
                          capture_output=True, cwd=ROOT, env=env, timeout=120)


def test_the_first_administrator_from_an_empty_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    args = ("--username", "Wang.Admin", "--display-name", "王管理员", "--role", "admin",
            "--institution", "茂名市人民医院")
    done = _cli(data, *args, stdin="correct-horse-battery\n")
    assert done.returncode == 2 and "--institution-level" in done.stderr, done.stderr
    done = _cli(data, *args, "--institution-level", "city", stdin="short\n")
    assert done.returncode == 2 and "at least 10 characters" in done.stderr, done.stderr
    done = _cli(data, *args, "--institution-level", "city", stdin="correct-horse-battery\n")
    assert done.returncode == 0, done.stderr
    assert "created admin 'wang.admin'" in done.stdout and "茂名市人民医院" in done.stdout
    assert "correct-horse-battery" not in done.stdout + done.stderr
    again = _cli(data, *args, stdin="another-good-password\n")
    assert again.returncode == 2 and "taken" in again.stderr, again.stderr
    spec = _cli(data, "--username", "doc", "--display-name", "Doc", "--role", "specialist",
                "--institution", "1", stdin="another-good-password\n")
    assert spec.returncode == 2 and "specialty" in spec.stderr, spec.stderr


async def test_the_cli_account_logs_in(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    assert _cli(data, "--username", "root", "--display-name", "Root", "--role", "admin",
                "--institution", "Test Hospital", "--institution-level", "province",
                stdin="correct-horse-battery\n").returncode == 0
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from tests.conftest import base_settings
    from yilian.server.app import create_app

    server = TestServer(create_app(base_settings(data)), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with ClientSession() as http:
            async with http.post(server.make_url("/api/auth/login"), json={
                    "username": "root", "password": "correct-horse-battery"}) as resp:
                body = await resp.json()
                assert resp.status == 200 and body["must_change_password"] is False, body
            async with http.get(server.make_url("/api/audit"), params={
                    "action": "create_user"},
                    headers={"Authorization": f"Bearer {body['token']}"}) as resp:
                rows = await resp.json()
                assert resp.status == 200 and rows[0]["user_id"] is None  # the command line
                assert rows[0]["detail"]["after"]["username"] == "root"
    finally:
        await server.close()
