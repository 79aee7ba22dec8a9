"""TURN through a real coturn with use-auth-secret: relay-only peers, credentials from the API."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.signaling.conftest import MakeClient, connected_pair
from tests.signaling.coturn import Coturn, start_coturn
from tests.support.rtc_client import ice_servers_from_json
from yilian.server.core.settings import Settings
from yilian.signaling.turn import verify_turn_credential

TURN_SECRET = "turn-shared-secret-for-tests"


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A real turnserver on loopback; CI installs coturn, so there it must run."""
    if shutil.which("turnserver") is None and os.environ.get("CI") != "true":
        pytest.skip("turnserver (Debian package coturn) is not installed")
    workdir = tmp_path / "coturn"
    workdir.mkdir()
    turn = start_coturn(workdir, TURN_SECRET)
    yield turn
    turn.stop()


@pytest.fixture
def settings(settings: Settings, coturn: Coturn) -> Settings:
    return settings.with_overrides(turn_urls=coturn.urls, turn_secret=TURN_SECRET, turn_ttl_seconds=600)


async def test_ice_servers_hand_out_coturn_rest_credentials(
    doctors: dict[str, Any], coturn: Coturn, api: Any
) -> None:
    status, body = await doctors["village"].get("/api/rtc/ice-servers")
    assert status == 200
    assert body["ttl"] == 600
    (server,) = body["iceServers"]  # no STUN configured, and none invented
    assert server["urls"] == coturn.urls
    expiry, user_id = server["username"].split(":")
    assert int(user_id) == doctors["village"].user["id"]
    assert abs(int(expiry) - (time.time() + 600)) < 30
    assert verify_turn_credential(TURN_SECRET, server["username"], server["credential"])
    assert (await api.get("/api/rtc/ice-servers"))[0] == 401


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_relay_only_call_through_coturn(
    doctors: dict[str, Any],
    rooms: dict[str, str],
    make_client: MakeClient,
    coturn: Coturn,
    transport: str,
) -> None:
    clients = []
    for name in ("expert", "village"):
        status, body = await doctors[name].get("/api/rtc/ice-servers")
        assert status == 200
        # One transport at a time: TCP is what gets through a hospital firewall.
        for server in body["iceServers"]:
            server["urls"] = [u for u in server["urls"] if u.endswith(f"transport={transport}")]
        client = await make_client(
            doctors[name], ice_servers=ice_servers_from_json(body), relay_only=True
        )
        clients.append(client)
    expert, village = clients
    assert (await expert.join(rooms["village"]))["ok"]
    assert (await village.join(rooms["village"]))["ok"]
    await connected_pair(village, expert, seconds=30)

    for client in clients:
        link = next(iter(client.links.values()))
        transports = {t.receiver.transport.transport for t in link.pc.getTransceivers()}
        kinds = {c.type for t in transports for c in t.iceGatherer.getLocalCandidates()}
        assert kinds == {"relay"}, kinds
    # coturn saw allocations for both users' REST usernames.
    log = coturn.log()
    for name in ("expert", "village"):
        assert f":{doctors[name].user['id']}>: incoming packet ALLOCATE processed, success" in log
