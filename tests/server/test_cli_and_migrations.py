"""The command line as a user runs it, and the migrations against the models."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.server.live import live_server, wait_ready
from yilian.server.core.db import Database
from yilian.server.core.settings import settings_from_env
from yilian.server.schema import metadata as schema_metadata

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def _metrics(base: str, token: str) -> str:
    req = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def test_yilian_demo_prints_ready_line_and_serves(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "yilian.server.cli", "demo", "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(data), "--dicom-port", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env=os.environ | {"YILIAN_METRICS_TOKEN": "scrape-secret"})
    try:
        assert proc.stdout is not None
        base = wait_ready(proc.stdout, proc)
        assert base.startswith("http://127.0.0.1:")
        assert _get(base + "/healthz") == {"status": "ok"}
        # It serves on uvloop (settings.event_loop's default), and stops cleanly on it below.
        assert 'yilian_event_loop{loop="uvloop"} 1.0' in _metrics(base, "scrape-secret")
        req = urllib.request.Request(base + "/api/auth/login", method="POST",
                                     data=b'{"username":"guilin_doctor","password":"yilian-demo"}',
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            login = json.load(resp)
        assert login["user"]["role"] == "township_doctor"
        assert (data / "yilian.sqlite3").exists() and (data / "secret_key").exists()
        # An image search is audited through a buffer written every few seconds; SIGTERM
        # (systemd, docker stop) must still get it on disk before the process ends.
        req = urllib.request.Request(base + "/dicomweb/studies", headers={
            "Authorization": f"Bearer {login['token']}", "Accept": "application/dicom+json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status in (200, 204)
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        rest = proc.stdout.read()
        assert "leaked" not in rest and "Traceback" not in rest, rest
        con = sqlite3.connect(data / "yilian.sqlite3")
        try:
            (n,) = con.execute("SELECT count(*) FROM audit_log WHERE resource_type = "
                               "'dicom_query'").fetchone()
        finally:
            con.close()
        assert n == 1
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=15)


def test_serve_takes_settings_from_the_environment(settings) -> None:
    with live_server(settings, env={"YILIAN_TOKEN_TTL_SECONDS": "5", "YILIAN_EVENT_LOOP": "asyncio",
                                    "YILIAN_METRICS_TOKEN": "scrape-secret"}) as base:
        assert _get(base + "/healthz") == {"status": "ok"}
        assert 'yilian_event_loop{loop="asyncio"} 1.0' in _metrics(base, "scrape-secret")
        doc = _get(base + "/api/openapi.json")
        assert isinstance(doc, dict) and doc["openapi"].startswith("3.")


def test_settings_from_env_and_overrides(tmp_path: Path) -> None:
    s = settings_from_env({"YILIAN_PORT": "9000", "YILIAN_DICOM_PORT": "off",
                           "YILIAN_DATA_DIR": str(tmp_path),
                           "YILIAN_TURN_URLS": "turn:a:3478?transport=udp, turns:a:443"},
                          port=0)
    assert s.port == 0 and s.dicom.port is None and s.data_dir == tmp_path
    assert s.rtc.turn_urls == ["turn:a:3478?transport=udp", "turns:a:443"]
    assert len(s.secret_key) > 40
    assert settings_from_env({"YILIAN_DATA_DIR": str(tmp_path)}).secret_key == s.secret_key


def test_bad_command_line_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "yilian.server.cli", "serve", "--port", "abc"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "invalid int value" in result.stderr


async def test_migrations_match_the_models(settings) -> None:
    db = Database(settings.resolved_database_url)
    metadata = schema_metadata()

    def diff(conn: object) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return compare_metadata(ctx, metadata)

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await db.close()
    assert differences == [], differences


def _api_bench(*args: str) -> str:
    """What ``bench/api_bench.py args`` prints (it must succeed)."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "api_bench.py"), *args],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_api_bench_smoke() -> None:
    assert "ratio uvloop/bare" in _api_bench("--quick")


@pytest.mark.slow
def test_api_bench_lists_the_statements_of_each_step() -> None:
    out = _api_bench("--statements", "--flows", "1")
    for step in ("experts", "slots", "book", "accept"):
        assert any(line.startswith(step) and "statements" in line
                   for line in out.splitlines()), out
    assert "INSERT INTO consultations" in out


@pytest.mark.slow
def test_api_bench_profiles_the_server_by_layer() -> None:
    out = _api_bench("--profile", "--flows", "4")
    for layer in ("the whole process", "aiohttp: the request",
                  "route POST /api/consultations ", "Database.read_sync"):
        assert layer in out, out
