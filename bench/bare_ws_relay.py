"""The baseline for signalling_bench: a bare aiohttp WebSocket relay.

Clients connect to ``/ws?room=<room>&peer=<peer id>`` and send ``{"to": <peer id>, ...}``;
the relay forwards the message with ``"from"`` added to the named peer of the same room.
No auth, no validation beyond JSON, no rooms beyond a dict: the least a relay can do. It
parses and writes JSON with orjson, the codec the /rtc server uses, so the two compare like
for like.

    python bench/bare_ws_relay.py      # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import socket

import orjson
from aiohttp import WSMsgType, web

PEERS: web.AppKey[dict[str, tuple[str, web.WebSocketResponse]]] = web.AppKey("peers")


async def relay(request: web.Request) -> web.WebSocketResponse:
    room, peer = request.query.get("room", ""), request.query.get("peer", "")
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    peers = request.app[PEERS]
    peers[peer] = (room, ws)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            try:
                data = orjson.loads(msg.data)
            except ValueError:
                continue
            to = data.pop("to", None) if isinstance(data, dict) else None
            target = peers.get(to) if isinstance(to, str) else None
            if target is not None and target[0] == room:
                data["from"] = peer
                await target[1].send_str(orjson.dumps(data).decode())
    finally:
        peers.pop(peer, None)
    return ws


def make_app() -> web.Application:
    app = web.Application()
    app[PEERS] = {}
    app.router.add_get("/ws", relay)
    return app


if __name__ == "__main__":
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    web.run_app(make_app(), sock=sock, print=None, access_log=None)
