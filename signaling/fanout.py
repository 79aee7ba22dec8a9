"""python-socketio's Redis manager, plus one message that carries many emits.

A green-channel alert or a broadcast notice is one event to many users, each with its own
data (every user's notification has its own inbox id). Through the stock manager that is one
Redis publish per user, awaited in turn, and one pub/sub message per user for every other
process to decode: at 1,000 users, seconds (bench/notify_bench.py ``--redis``). Here the whole
batch is one publish; each other process hands it to the namespace that registered for it,
which writes to its own sockets. The sending process delivers to its own sockets itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import socketio

#: The event name that marks a batch message (never delivered to a client as such).
FANOUT_EVENT = "yilian:fanout"

#: ``handler(event, [(room, data), ...])``: deliver to this process's sockets.
FanoutHandler = Callable[[str, list[Any]], Awaitable[None]]


class FanoutRedisManager(socketio.AsyncRedisManager):
    """``AsyncRedisManager`` with :meth:`publish_each` for batches of per-room emits."""

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self.fanout: dict[str, FanoutHandler] = {}

    async def publish_each(self, namespace: str, event: str,
                           items: list[tuple[str, Any]]) -> None:
        """Tell the other processes to emit ``event`` with each item's data to its room."""
        await self._publish({
            "method": "emit", "event": FANOUT_EVENT, "data": [event, items], "binary": False,
            "namespace": namespace, "room": None, "skip_sid": None, "callback": None,
            "host_id": self.host_id,
        })

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") != FANOUT_EVENT:
            await super()._handle_emit(message)
            return
        handler = self.fanout.get(message.get("namespace") or "/")
        data = message.get("data")
        if handler is not None and isinstance(data, list) and len(data) == 2:
            await handler(data[0], data[1])
