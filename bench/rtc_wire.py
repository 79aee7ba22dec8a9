"""A minimal socket.io (engine.io v4) client for ``/rtc`` over one aiohttp WebSocket.

The benchmark drives 1,000 of these: they parse and frame messages about as cheaply as the
bare-WebSocket baseline's clients, so the comparison measures the servers, not the clients.
It also shows how little a third-party client needs (docs/signalling.md, "Wire format").
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

NAMESPACE = "/rtc"
_EVENT = re.compile(r"^(\d*)(\[.*)$", re.S)

OnEvent = Callable[[str, Any], Awaitable[None]]


class WireClient:
    """One socket.io connection to ``/rtc``: ``call`` waits for the ack, ``emit`` does not."""

    def __init__(self, on_event: OnEvent) -> None:
        self.on_event = on_event
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._reader: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[Any] | None = None

    async def connect(self, http: aiohttp.ClientSession, base_url: str, token: str) -> None:
        url = (
            base_url.replace("http", "ws", 1).rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        )
        self.ws = await http.ws_connect(url, max_msg_size=0)
        opening = await self.ws.receive_str()
        assert opening.startswith("0{"), opening
        self._connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        await self.ws.send_str(f"40{NAMESPACE}," + json.dumps({"token": token}))
        reply = await asyncio.wait_for(self._connected, 10)
        if reply.get("message"):
            raise ConnectionError(reply["message"])

    async def call(self, event: str, data: Any) -> Any:
        assert self.ws is not None
        self._next_id += 1
        ack_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self.ws.send_str(f"42{NAMESPACE},{ack_id}" + json.dumps([event, data]))
        return await asyncio.wait_for(future, 30)

    async def emit(self, event: str, data: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(f"42{NAMESPACE}," + json.dumps([event, data]))

    async def _read(self) -> None:
        assert self.ws is not None
        prefix = f"{NAMESPACE},"
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            text: str = msg.data
            if text == "2":  # engine.io ping
                await self.ws.send_str("3")
                continue
            kind, rest = text[:2], text[2:]
            if not rest.startswith(prefix):
                continue
            body = rest[len(prefix) :]
            if kind in ("40", "44") and self._connected is not None and not self._connected.done():
                self._connected.set_result(json.loads(body) if body else {})
                continue
            match = _EVENT.match(body)
            if match is None:
                continue
            payload = json.loads(match.group(2))
            if kind == "43":
                future = self._acks.pop(int(match.group(1)), None)
                if future is not None and not future.done():
                    future.set_result(payload[0] if payload else None)
            elif kind == "42":
                await self.on_event(payload[0], payload[1] if len(payload) > 1 else None)

    async def close(self) -> None:
        """Close the socket and stop the reader; idempotent."""
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
