"""The ``/notify`` namespace's view of the inbox: unread counts and marking read, each in a
transaction that first checks the socket's token is still good (a logout on another process
is seen at once, not at the next re-check)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core import inbox
from yilian.server.core.auth import token_holder
from yilian.server.core.db import Database
from yilian.signaling.errors import Unauthorized
from yilian.signaling.session import UNAUTHORIZED


class Inbox(Protocol):
    """What ``/notify`` needs to answer ``unread``, ``read`` and ``read-all``. ``token`` is the
    socket's token digest; each call raises ``Unauthorized`` when it is no longer good."""

    async def unread(self, token: str) -> int:
        """How many of the token holder's notifications are unread."""

    async def read(self, token: str, notification_id: int) -> int:
        """Mark one of the holder's notifications read (``NotFound`` for anyone else's);
        returns the unread count after."""

    async def read_all(self, token: str) -> tuple[int, int]:
        """Mark all read; returns (how many were unread, the unread count after)."""


class DatabaseInbox:
    """``Inbox`` over the application's database."""

    def __init__(self, database: Callable[[], Database]) -> None:
        # A callable: the database is opened by a cleanup context after the app is built.
        self._database = database

    @staticmethod
    async def _holder_id(session: AsyncSession, token: str) -> int:
        found = await token_holder(session, token)
        if found is None:
            raise Unauthorized(UNAUTHORIZED)
        return found[0].id

    async def unread(self, token: str) -> int:
        async with self._database().read() as session:
            return await inbox.unread_count(session, await self._holder_id(session, token))

    async def read(self, token: str, notification_id: int) -> int:
        async with self._database().write() as session:
            user_id = await self._holder_id(session, token)
            await inbox.mark_read(session, user_id, notification_id)
            await session.flush()
            return await inbox.unread_count(session, user_id)

    async def read_all(self, token: str) -> tuple[int, int]:
        async with self._database().write() as session:
            marked = await inbox.mark_all_read(session, await self._holder_id(session, token))
            return marked, 0
