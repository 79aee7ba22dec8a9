"""An engine.io websocket spoken by hand, for tests that send what a socket.io client never
would and watch every frame the server sends back (docs/signalling.md, "Wire format")."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp

NAMESPACE = "/rtc"
_ACK = re.compile(r"^43/rtc,([0-9]+)(\[.*)$", re.S)
_EVENT = re.compile(r"^42/rtc,(\[.*)$", re.S)


class RawSocket:
    """One websocket to ``/socket.io``: answers pings, keeps every frame, resolves acks."""

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames: list[str] = []
        self.events: list[tuple[str, Any]] = []
        self.ended = asyncio.Event()  # the server disconnected /rtc ("41/rtc,")
        self.closed = asyncio.Event()  # the websocket itself closed
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._connect_reply: asyncio.Future[str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next_id = 1000

    async def open(self, http: aiohttp.ClientSession, base_url: str) -> None:
        """The engine.io handshake only."""
        url = base_url.replace("http", "ws", 1).rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await http.ws_connect(url, max_msg_size=0)
        opening = await self.ws.receive_str()
        assert opening.startswith("0{"), opening
        self._reader = asyncio.create_task(self._read())

    async def connect(self, http: aiohttp.ClientSession, base_url: str, token: str) -> str:
        """Open and connect to ``/rtc`` with ``token``; returns the server's reply frame."""
        await self.open(http, base_url)
        return await self.connect_rtc(token)

    async def connect_rtc(self, token: str) -> str:
        self._connect_reply = asyncio.get_running_loop().create_future()
        await self.send(f"40{NAMESPACE}," + json.dumps({"token": token}))
        return await asyncio.wait_for(self._connect_reply, 10)

    async def send(self, frame: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    def expect_ack(self, ack_id: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        return future

    async def call(self, event: str, data: Any, seconds: float = 10) -> Any:
        """Send an event with an ack id and wait for its ack."""
        self._next_id += 1
        future = self.expect_ack(self._next_id)
        await self.send(f"42{NAMESPACE},{self._next_id}" + json.dumps([event, data]))
        return await asyncio.wait_for(future, seconds)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                text: str = msg.data
                self.frames.append(text)
                if text == "2":
                    await self.ws.send_str("3")
                elif text.startswith(("40/rtc,", "44/rtc,")):
                    if self._connect_reply is not None and not self._connect_reply.done():
                        self._connect_reply.set_result(text)
                elif text.startswith("41/rtc"):
                    self.ended.set()
                elif (ack := _ACK.match(text)) is not None:
                    future = self._acks.pop(int(ack.group(1)), None)
                    if future is not None and not future.done():
                        payload = json.loads(ack.group(2))
                        future.set_result(payload[0] if payload else None)
                elif (event := _EVENT.match(text)) is not None:
                    payload = json.loads(event.group(1))
                    self.events.append((payload[0], payload[1] if len(payload) > 1 else None))
        finally:
            self.closed.set()

    def got(self, name: str) -> list[Any]:
        """The payloads of the server events called ``name`` received so far."""
        return [data for event, data in self.events if event == name]

    async def close(self) -> None:
        """Close the websocket and stop the reader; idempotent."""
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
