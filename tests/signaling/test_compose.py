"""docker-compose.yml and its nginx config: parsed and checked (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_two_yilian_processes_behind_nginx_with_shared_backends() -> None:
    services = _compose()["services"]
    assert set(services) == {"yilian1", "yilian2", "nginx", "postgres", "redis", "coturn"}
    for name in ("yilian1", "yilian2"):
        service = services[name]
        env = service["environment"]
        assert env["YILIAN_REDIS_URL"] == "redis://redis:6379/0"
        assert (
            env["YILIAN_DATABASE_URL"].startswith("postgresql+asyncpg://")
            and "@postgres:" in env["YILIAN_DATABASE_URL"]
        )
        assert "YILIAN_TURN_SECRET" in env and "YILIAN_SECRET_KEY" in env
        urls = env["YILIAN_TURN_URLS"].split(",")
        assert any(u.startswith("turn:") and u.endswith("transport=udp") for u in urls)
        assert any(u.startswith("turn:") and u.endswith("transport=tcp") for u in urls)
        assert any(u.startswith("turns:") and ":443?" in u for u in urls)
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["command"][:2] == ["yilian", "serve"]
        assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    # One DICOM SCP is enough; the second process leaves the port alone.
    assert services["yilian2"]["command"][-2:] == ["--dicom-port", "off"]
    assert set(services["nginx"]["depends_on"]) == {"yilian1", "yilian2"}
    mount = services["nginx"]["volumes"][0].split(":")
    assert (ROOT / mount[0]).is_file() and mount[1] == "/etc/nginx/nginx.conf"
    for backend in ("postgres", "redis"):
        assert "healthcheck" in services[backend]


def test_coturn_uses_the_rest_secret_on_udp_tcp_and_tls_443() -> None:
    flags = _compose()["services"]["coturn"]["command"]
    assert "--use-auth-secret" in flags
    assert any(f.startswith("--static-auth-secret=${YILIAN_TURN_SECRET") for f in flags)
    assert "--tls-listening-port=443" in flags and "--listening-port=3478" in flags
    assert not any(f in flags for f in ("--lt-cred-mech", "--no-auth"))


def test_nginx_routes_sticky_and_upgrades_websockets() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert code.count("{") == code.count("}")
    upstream = re.search(r"upstream yilian \{(.*?)\}", code, re.S)
    assert upstream is not None
    assert "ip_hash;" in upstream.group(1)
    assert re.findall(r"server (yilian\d):8080", upstream.group(1)) == ["yilian1", "yilian2"]
    socketio = re.search(r"location /socket\.io/ \{(.*?)\}", code, re.S)
    assert socketio is not None
    block = socketio.group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert "proxy_set_header Connection $connection_upgrade;" in block
    assert "proxy_http_version 1.1;" in block
    # Every statement ends with ';' or opens/closes a block.
    for line in code.splitlines():
        stripped = line.strip()
        assert not stripped or stripped.endswith((";", "{", "}")), stripped
