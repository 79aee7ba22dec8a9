"""The audit log for administrators and the compliance office: search by user, patient,
institution, action and period; the same as CSV (UTF-8 with BOM, for Excel)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import Select, select

from yilian.server.core import audit, keys
from yilian.server.core.access import require_role
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.csvfile import to_csv
from yilian.server.core.errors import ValidationFailed
from yilian.server.core.models import AuditEntry, User
from yilian.server.core.schemas import Id, Int, QueryDatetime

router = ApiRouter()
#: Rows one CSV export holds at most (narrow the period for more).
MAX_EXPORT_ROWS = 100_000
CSV_HEADER = ("at", "user_id", "username", "institution_id", "action", "resource_type",
              "resource_id", "patient_id", "ip", "detail")


class AuditQuery(BaseModel):
    user_id: Id | None = None
    patient_id: Id | None = None
    institution_id: Id | None = None
    action: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,48}$")] | None = None
    start: QueryDatetime | None = Field(default=None, alias="from")
    end: QueryDatetime | None = Field(default=None, alias="to")
    limit: Annotated[Int, Field(ge=1, le=500)] = 100
    #: The next page: entries older than this one (the last id of the page before). The log
    #: grows while it is read (the search itself is audited), so pages go by id, not offset.
    before_id: Id | None = None
    #: json (default) or csv.
    format: Annotated[str, StringConstraints(pattern=r"^(json|csv)$")] = "json"


class AuditOut(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    username: str | None
    institution_id: int | None
    action: str
    resource_type: str
    resource_id: str | None
    patient_id: int | None
    ip: str | None
    detail: dict[str, Any] | None


def _search(q: AuditQuery) -> Select[AuditEntry, str]:
    stmt = select(AuditEntry, User.username).outerjoin(User, User.id == AuditEntry.user_id)
    if q.user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == q.user_id)
    if q.patient_id is not None:
        stmt = stmt.where(AuditEntry.patient_id == q.patient_id)
    if q.institution_id is not None:
        stmt = stmt.where(AuditEntry.institution_id == q.institution_id)
    if q.action is not None:
        stmt = stmt.where(AuditEntry.action == q.action)
    if q.start is not None:
        stmt = stmt.where(AuditEntry.at >= q.start)
    if q.end is not None:
        stmt = stmt.where(AuditEntry.at < q.end)
    if q.before_id is not None:
        stmt = stmt.where(AuditEntry.id < q.before_id)
    return stmt.order_by(AuditEntry.id.desc())


def _out(entry: AuditEntry, username: str | None) -> AuditOut:
    return AuditOut(id=entry.id, at=entry.at, user_id=entry.user_id, username=username,
                    institution_id=entry.institution_id, action=entry.action,
                    resource_type=entry.resource_type, resource_id=entry.resource_id,
                    patient_id=entry.patient_id, ip=entry.ip, detail=entry.detail)




@router.route("GET", "/api/audit", summary="Search the audit log (admin): by user_id, "
              "patient_id, institution_id (the acting user's), action, from/to (ISO 8601); "
              "newest first, paged by limit and before_id; &format=csv gives every match (up to "
              "100,000) as CSV, UTF-8 with BOM", tag="audit", query=AuditQuery,
              response=list[AuditOut])
async def search_audit(req: ApiRequest) -> list[AuditOut] | web.Response:
    require_role(req.user, ("admin",), "read the audit log")
    q: AuditQuery = req.query
    if q.start is not None and q.end is not None and q.end <= q.start:
        raise ValidationFailed("'to' must be after 'from'", details={"errors": [
            {"loc": ["query", "to"], "msg": "before from", "type": "invalid_period"}]})
    await req.request.app[keys.AUDIT].flush()  # what was just done is in the answer
    filters = {k: v for k, v in q.model_dump(mode="json", by_alias=True).items()
               if v is not None and k not in ("limit", "before_id", "format")}
    if q.format == "csv":
        async with req.db.read() as session:
            rows = (await session.execute(_search(q).limit(MAX_EXPORT_ROWS))).all()
        req.request.app[keys.AUDIT].record(req.user, "audit_export", "audit", None, ip=req.ip,
                                           detail={"filters": filters, "rows": len(rows)})
        body = to_csv(CSV_HEADER, (
            (e.at.isoformat(), e.user_id, name, e.institution_id, e.action, e.resource_type,
             e.resource_id, e.patient_id, e.ip,
             orjson.dumps(e.detail).decode() if e.detail is not None else "")
            for e, name in rows))
        return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": 'attachment; filename="yilian-audit.csv"',
            "Cache-Control": "no-store"})
    async with req.db.read() as session:
        rows = (await session.execute(_search(q).limit(q.limit))).all()
        audit.record(session, req.user, "audit_search", "audit", None, ip=req.ip,
                     detail={"filters": filters})
    return [_out(e, name) for e, name in rows]
