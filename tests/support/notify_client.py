"""A Python ``/notify`` client (python-socketio), for the tests: it keeps every event it gets
and lets a test wait for the next one of a name."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

NAMESPACE = "/notify"


class NotifyClient:
    """One socket to ``/notify``; ``events`` holds ``(name, data)`` in arrival order."""

    def __init__(self, base_url: str, token: str, label: str = "notify") -> None:
        self.base_url, self.token, self.label = base_url, token, label
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._arrived = asyncio.Event()
        self.sio.on("*", self._record, namespace=NAMESPACE)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))
        self._arrived.set()

    async def connect(self) -> None:
        """Connect (websocket only); raises ``socketio.exceptions.ConnectionError`` when
        refused."""
        await self.sio.connect(self.base_url, namespaces=[NAMESPACE], auth={"token": self.token},
                               transports=["websocket"], wait_timeout=10)

    def got(self, name: str) -> list[Any]:
        """The payloads of the events called ``name`` received so far."""
        return [data for event, data in self.events if event == name]

    async def wait_for(self, name: str, count: int = 1, seconds: float = 10.0) -> list[Any]:
        """Wait until ``count`` events called ``name`` have arrived; returns their payloads."""
        async with asyncio.timeout(seconds):
            while len(self.got(name)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.got(name)

    async def call(self, event: str, data: Any = None, seconds: float = 10.0) -> Any:
        """Emit an event and return the server's ack."""
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=seconds)

    async def close(self) -> None:
        await self.sio.shutdown()
