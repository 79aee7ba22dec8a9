"""The kept notification inbox over HTTP (api.md "Notifications"): what reached a user live on
``/notify`` — or would have, had they been connected — stays here until they read it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from yilian.server.core import inbox
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.notify import payload
from yilian.server.core.schemas import Id, Int

router = ApiRouter()


class ResourceOut(BaseModel):
    type: str
    id: int | str


class NotificationOut(BaseModel):
    """The ``notification`` event's data, and one item of the inbox."""

    id: int
    kind: str
    title: str
    body: str
    resource: ResourceOut | None
    urgent: bool
    created_at: datetime
    read_at: datetime | None


class NotificationsQuery(BaseModel):
    unread: Literal["true", "false"] | None = None
    limit: Annotated[Int, Field(ge=1, le=inbox.MAX_PAGE)] = 50
    before: Id | None = None


class CountOut(BaseModel):
    count: int


@router.route("GET", "/api/notifications", summary="The caller's notifications, newest first "
              "(unread=true: only unread ones; page on with before=<the last id seen>)",
              tag="notifications", query=NotificationsQuery, response=list[NotificationOut])
async def list_notifications(req: ApiRequest) -> list[NotificationOut]:
    q: NotificationsQuery = req.query
    async with req.db.read() as session:
        rows = await inbox.page(session, req.user.id, unread_only=q.unread == "true",
                                limit=q.limit, before=q.before)
    return [NotificationOut.model_validate(payload(n)) for n in rows]


@router.route("GET", "/api/notifications/unread-count", summary="How many of the caller's "
              "notifications are unread (an addition to api.md, for the bell's badge)",
              tag="notifications", response=CountOut)
async def unread_count(req: ApiRequest) -> CountOut:
    async with req.db.read() as session:
        return CountOut(count=await inbox.unread_count(session, req.user.id))


@router.route("POST", "/api/notifications/{id}/read", summary="Mark one of the caller's "
              "notifications read (another user's id is a 404)", tag="notifications",
              response=NotificationOut)
async def read_one(req: ApiRequest) -> NotificationOut:
    async with req.db.write() as session:
        n = await inbox.mark_read(session, req.user.id, req.path_id())
        return NotificationOut.model_validate(payload(n))


@router.route("POST", "/api/notifications/read-all", summary="Mark all the caller's "
              "notifications read; returns how many were unread (an addition to api.md)",
              tag="notifications", response=CountOut)
async def read_all(req: ApiRequest) -> CountOut:
    async with req.db.write() as session:
        return CountOut(count=await inbox.mark_all_read(session, req.user.id))
