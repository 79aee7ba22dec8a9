"""Consultation reports: draft, sign (frozen), correct by a new signed version."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access import get_visible_consultation
from server.api import ApiRequest, ApiRouter
from server.db import utcnow
from server.errors import Conflict, Forbidden, NotFound
from server.models import Consultation, ReportVersion, User
from server.schemas import ReportIn, ReportOut, ReportVersionOut

router = ApiRouter()
WRITABLE_STATES = ("in_progress", "completed")


def _version_out(v: ReportVersion) -> ReportVersionOut:
    return ReportVersionOut(
        version=v.version, findings=v.findings, impression=v.impression,
        recommendations=v.recommendations, author_id=v.author_id, created_at=v.created_at,
        signed=v.signed_at is not None, signed_at=v.signed_at, signed_by_id=v.signed_by_id,
    )


async def _versions(session: AsyncSession, consultation_id: int) -> list[ReportVersion]:
    return list(
        (
            await session.execute(
                select(ReportVersion)
                .where(ReportVersion.consultation_id == consultation_id)
                .order_by(ReportVersion.version)
            )
        ).scalars()
    )


def _report_out(c: Consultation, versions: list[ReportVersion]) -> ReportOut:
    return ReportOut(consultation_id=c.id, current=_version_out(versions[-1]),
                     versions=[_version_out(v) for v in versions])


def _require_expert(user: User, c: Consultation, what: str) -> None:
    if c.expert_id != user.id:
        raise Forbidden(f"only the consultation's expert may {what} its report")


@router.route("POST", "/api/consultations/{id}/report", summary="Write or update the draft "
              "report; after signing, this starts a correction (a new version)",
              tag="reports", body=ReportIn, response=ReportOut)
async def write_report(req: ApiRequest) -> ReportOut:
    body: ReportIn = req.body
    async with req.db.write() as session:
        c = await get_visible_consultation(session, req.user, req.path_id(), for_update=True)
        _require_expert(req.user, c, "write")
        if c.status not in WRITABLE_STATES:
            raise Conflict(f'cannot write a report for a consultation in state "{c.status}"',
                           code="invalid_transition", details={"status": c.status})
        versions = await _versions(session, c.id)
        latest = versions[-1] if versions else None
        now = utcnow()
        if latest is not None and latest.signed_at is None:
            latest.findings, latest.impression = body.findings, body.impression
            latest.recommendations, latest.updated_at = body.recommendations, now
        else:
            latest = ReportVersion(
                consultation_id=c.id, version=(latest.version + 1) if latest else 1,
                findings=body.findings, impression=body.impression,
                recommendations=body.recommendations, author_id=req.user.id, created_at=now,
                updated_at=now,
            )
            session.add(latest)
            versions.append(latest)
        await session.flush()
        audit.record(session, req.user, "write_report", "consultation", c.id,
                     patient_id=c.patient_id, ip=req.ip, detail={"version": latest.version})
        return _report_out(c, versions)


@router.route("POST", "/api/consultations/{id}/report/sign", summary="Sign the draft report; "
              "a signed version is frozen", tag="reports", response=ReportOut)
async def sign_report(req: ApiRequest) -> ReportOut:
    async with req.db.write() as session:
        c = await get_visible_consultation(session, req.user, req.path_id(), for_update=True)
        _require_expert(req.user, c, "sign")
        versions = await _versions(session, c.id)
        if not versions or versions[-1].signed_at is not None:
            raise Conflict("there is no draft report to sign", code="nothing_to_sign")
        draft = versions[-1]
        draft.signed_at, draft.signed_by_id = utcnow(), req.user.id
        await session.flush()
        audit.record(session, req.user, "sign_report", "consultation", c.id,
                     patient_id=c.patient_id, ip=req.ip, detail={"version": draft.version})
        return _report_out(c, versions)


@router.route("GET", "/api/consultations/{id}/report", summary="The report: the newest version "
              "and every earlier one (others than the expert see signed versions only)", tag="reports", response=ReportOut)
async def get_report(req: ApiRequest) -> ReportOut:
    async with req.db.write() as session:
        c = await get_visible_consultation(session, req.user, req.path_id())
        versions = await _versions(session, c.id)
        if c.expert_id != req.user.id:
            # A draft is the expert's own until signed: others read signed versions only.
            versions = [v for v in versions if v.signed_at is not None]
        if not versions:
            raise NotFound(f"consultation {c.id} has no signed report yet")
        audit.record(session, req.user, "read_report", "consultation", c.id,
                     patient_id=c.patient_id, ip=req.ip)
        return _report_out(c, versions)
