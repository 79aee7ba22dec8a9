"""Where room state lives: process memory, or Redis when several processes share rooms.

Both stores hand out a room's state under a per-room lock (``async with store.room(name)``)
and save it when the block exits cleanly, so the pure functions in ``signaling.rooms`` never
see a half-applied change from another connection or another process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from yilian.signaling.rooms import RoomState

KEY_PREFIX = "yilian:rtc:room:"


class RoomStore(Protocol):
    """The interface the namespace uses."""

    def room(self, name: str) -> Any:
        """An async context manager yielding the locked ``RoomState``."""

    async def peek(self, name: str) -> RoomState | None:
        """The current state without locking; read it, never change it."""

    async def close(self) -> None:
        """Release connections; idempotent."""


class MemoryRoomStore:
    """Rooms of a single process."""

    def __init__(self) -> None:
        self._rooms: dict[str, RoomState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def room(self, name: str) -> AsyncIterator[RoomState]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        self._users[name] = self._users.get(name, 0) + 1
        try:
            async with lock:
                held = self._rooms.get(name)
                # Work on a copy so a handler that raises half-way leaves the room untouched.
                state = RoomState.from_json(held.to_json()) if held else RoomState(name)
                yield state
                if state.empty:
                    self._rooms.pop(name, None)
                else:
                    self._rooms[name] = state
        finally:
            self._users[name] -= 1
            if not self._users[name]:
                # Nobody waits on this lock any more: drop it so idle rooms cost nothing.
                del self._users[name]
                del self._locks[name]

    async def peek(self, name: str) -> RoomState | None:
        """The current state without locking; read it, never change it."""
        return self._rooms.get(name)

    def room_names(self) -> list[str]:
        """Rooms that currently hold anyone (for tests and metrics)."""
        return sorted(self._rooms)

    async def close(self) -> None:
        self._rooms.clear()


class RedisRoomStore:
    """Rooms shared by every process pointed at the same Redis."""

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX, lock_timeout: float = 10.0) -> None:
        from redis import asyncio as aioredis

        self._prefix = prefix
        self._redis = aioredis.from_url(url)
        self._lock_timeout = lock_timeout
        self._closed = False

    @asynccontextmanager
    async def room(self, name: str) -> AsyncIterator[RoomState]:
        key = self._prefix + name
        lock = self._redis.lock(
            key + ":lock", timeout=self._lock_timeout, blocking_timeout=self._lock_timeout
        )
        async with lock:
            raw = await self._redis.get(key)
            state = RoomState.from_json(json.loads(raw)) if raw else RoomState(name)
            yield state
            if state.empty:
                await self._redis.delete(key)
            else:
                await self._redis.set(key, json.dumps(state.to_json()))

    async def peek(self, name: str) -> RoomState | None:
        """The current state without locking; read it, never change it."""
        raw = await self._redis.get(self._prefix + name)
        return RoomState.from_json(json.loads(raw)) if raw else None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._redis.aclose()
