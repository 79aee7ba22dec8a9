"""The notification inbox's reads and writes, shared by the HTTP routes and the ``/notify``
socket (both mark read and count unread the same way, each only for the caller's own rows)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.db import utcnow
from yilian.server.core.errors import NotFound
from yilian.server.core.models import Notification

#: The most notifications one page of the inbox holds.
MAX_PAGE = 200


async def page(session: AsyncSession, user_id: int, *, unread_only: bool = False,
               limit: int = 50, before: int | None = None) -> Sequence[Notification]:
    """The user's notifications, newest first; ``before`` an id to page on from."""
    stmt = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    stmt = stmt.order_by(Notification.id.desc()).limit(min(limit, MAX_PAGE))
    return (await session.execute(stmt)).scalars().all()


async def unread_count(session: AsyncSession, user_id: int) -> int:
    """How many of the user's notifications are unread."""
    count = await session.execute(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None)))
    return int(count.scalar_one())


async def mark_read(session: AsyncSession, user_id: int, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (again: harmless); 404 for anyone else's,
    so another user's ids are not disclosed."""
    n = await session.get(Notification, notification_id)
    if n is None or n.user_id != user_id:
        raise NotFound(f"no notification {notification_id}")
    if n.read_at is None:
        n.read_at = utcnow()
    return n


async def mark_all_read(session: AsyncSession, user_id: int) -> int:
    """Mark every unread notification of the user read; returns how many were unread."""
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
