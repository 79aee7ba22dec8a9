"""Notifications: what needs a user's attention, kept in their inbox and pushed live.

A service calls :func:`send` inside its write transaction; the rows are part of that
transaction (a refused change notifies nobody). Once it has committed, ``Database.write`` hands
the rows to ``Database.notify_sink``: the ``/notify`` socket.io namespace, which emits each to
its user's room on every server process (through Redis when several run). A user who is not
connected finds it in ``GET /api/notifications``.

Titles and bodies are written in each recipient's language when the notification is created:
the caller gives the text in every language (``Texts``), usually from a table in its domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.db import PENDING_NOTIFY, utcnow
from yilian.server.core.models import Notification, User

DEFAULT_LOCALE = "zh-CN"
#: locale -> (title, body); must hold ``DEFAULT_LOCALE``.
Texts = Mapping[str, tuple[str, str]]


def text_for(texts: Texts, locale: str | None) -> tuple[str, str]:
    """The title and body in ``locale``, else in the default language."""
    return texts.get(locale or DEFAULT_LOCALE) or texts[DEFAULT_LOCALE]


def send(session: AsyncSession, recipients: Iterable[User], kind: str, texts: Texts, *,
         resource_type: str | None = None, resource_id: object = None,
         urgent: bool = False, at: datetime | None = None) -> list[Notification]:
    """Notify each recipient (once, inactive accounts skipped) in this session's transaction."""
    now = at or utcnow()
    rows: list[Notification] = []
    seen: set[int] = set()
    for user in recipients:
        if user.id in seen or not user.active:
            continue
        seen.add(user.id)
        title, body = text_for(texts, user.locale)
        rows.append(Notification(
            user_id=user.id, kind=kind, title=title[:200], body=body,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id)[:64],
            urgent=urgent, created_at=now, read_at=None))
    if rows:
        session.add_all(rows)
        session.info.setdefault(PENDING_NOTIFY, []).extend(rows)
    return rows


def payload(n: Notification) -> dict[str, Any]:
    """The ``notification`` event's data (api.md), also the inbox's item."""
    resource = None
    if n.resource_type is not None:
        rid: object = n.resource_id
        if isinstance(rid, str) and rid.isdigit():
            rid = int(rid)
        resource = {"type": n.resource_type, "id": rid}
    return {
        "id": n.id, "kind": n.kind, "title": n.title, "body": n.body, "resource": resource,
        "urgent": n.urgent, "created_at": n.created_at.isoformat(),
        "read_at": n.read_at.isoformat() if n.read_at else None,
    }
