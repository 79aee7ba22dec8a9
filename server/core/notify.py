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
from functools import partial
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.core.db import PENDING_NOTIFY, utcnow
from yilian.server.core.models import Notification
from yilian.server.core.writes import Writes, transient

DEFAULT_LOCALE = "zh-CN"
#: locale -> (title, body); must hold ``DEFAULT_LOCALE``.
Texts = Mapping[str, tuple[str, str]]


def text_for(texts: Texts, locale: str | None) -> tuple[str, str]:
    """The title and body in ``locale``, else in the default language."""
    return texts.get(locale or DEFAULT_LOCALE) or texts[DEFAULT_LOCALE]


class Addressee(Protocol):
    """Whom a notification is for: a ``User``, or a row of these columns of one."""

    @property
    def id(self) -> int: ...
    @property
    def active(self) -> bool: ...
    @property
    def locale(self) -> str | None: ...


def send(session: AsyncSession | Session, recipients: Iterable[Addressee], kind: str,
         texts: Texts, *,
         resource_type: str | None = None, resource_id: object = None,
         urgent: bool = False, at: datetime | None = None,
         writes: Writes | None = None) -> list[Notification]:
    """Notify each recipient (once, inactive accounts skipped) in this session's transaction;
    with ``writes``, the rows are inserted by that batch (``core.writes``) with the change."""
    now = at or utcnow()
    rows: list[Notification] = []
    seen: set[int] = set()
    for user in recipients:
        if user.id in seen or not user.active:
            continue
        seen.add(user.id)
        title, body = text_for(texts, user.locale)
        rows.append(transient(Notification, {
            "user_id": user.id, "kind": kind, "title": title[:200], "body": body,
            "resource_type": resource_type,
            "resource_id": None if resource_id is None else str(resource_id)[:64],
            "urgent": urgent, "created_at": now, "read_at": None}))
    if not rows:
        return rows
    if writes is not None:
        for n in rows:
            writes.insert(_TABLE, {col: getattr(n, col) for col in _COLUMNS},
                          on_key=partial(setattr, n, "id"))
    elif isinstance(session, Session):
        # Core on the session's connection, not the unit of work's flush: one INSERT …
        # RETURNING id (a plain one for the usual single recipient: a batch of one costs
        # more). The rows stay out of the session: the live payload, read, never changed.
        params = [{col: getattr(n, col) for col in _COLUMNS} for n in rows]
        conn = session.connection()
        if len(rows) == 1:
            rows[0].id = conn.execute(_INSERT_ONE, params[0]).scalar_one()
        else:
            for n, key in zip(rows, conn.execute(_INSERT, params).scalars(), strict=True):
                n.id = key
    else:
        session.add_all(rows)
    session.info.setdefault(PENDING_NOTIFY, []).extend(rows)
    return rows


_TABLE = cast(Table, Notification.__table__)
_COLUMNS = [col.key for col in _TABLE.columns if col.key != "id"]
_INSERT = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
_INSERT_ONE = insert(_TABLE).returning(_TABLE.c.id)


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
