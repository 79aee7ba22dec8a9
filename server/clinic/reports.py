"""Consultation reports: the expert drafts, signs (a signed version is frozen) and corrects
by writing again (a new version; the old ones stay readable). Others read signed versions.

Signing may re-enter the signer's password (the web client always does): a wrong one is
refused, audited and counted by the login limiter, so the sign route is no way around the
limit on guessing passwords. A signed version keeps the signer's name, title and institution
as they were at signing."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic import notices
from yilian.server.clinic.access import get_visible_consultation
from yilian.server.clinic.models import Consultation, ReportVersion
from yilian.server.clinic.schemas import ReportIn, ReportOut, ReportVersionOut
from yilian.server.clinic.workflow import REPORT_WRITABLE
from yilian.server.core import audit
from yilian.server.core.auth import LoginLimiter, verify_password
from yilian.server.core.db import Database, utcnow
from yilian.server.core.errors import Conflict, Forbidden, NotFound, TooManyRequests
from yilian.server.core.models import Institution, User


def _version_out(v: ReportVersion) -> ReportVersionOut:
    return ReportVersionOut(
        version=v.version, findings=v.findings, impression=v.impression,
        recommendations=v.recommendations, author_id=v.author_id, created_at=v.created_at,
        signed=v.signed_at is not None, signed_at=v.signed_at, signed_by_id=v.signed_by_id,
        signer_name=v.signer_name, signer_title=v.signer_title,
        signer_institution=v.signer_institution, signed_with_password=v.signed_with_password,
        corrects_version=v.version - 1 if v.version > 1 else None,
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


async def write(session: AsyncSession, user: User, consultation_id: int, body: ReportIn,
                ip: str | None) -> ReportOut:
    """Write or update the draft; after signing, start a correction (a new version)."""
    c = await get_visible_consultation(session, user, consultation_id, for_update=True)
    _require_expert(user, c, "write")
    if c.status not in REPORT_WRITABLE:
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
            recommendations=body.recommendations, author_id=user.id, created_at=now,
            updated_at=now,
        )
        session.add(latest)
        versions.append(latest)
    await session.flush()
    audit.record(session, user, "write_report", "consultation", c.id, patient_id=c.patient_id,
                 ip=ip, detail={"version": latest.version})
    return _report_out(c, versions)


def _draft_to_sign(user: User, c: Consultation, versions: list[ReportVersion]) -> ReportVersion:
    _require_expert(user, c, "sign")
    if not versions or versions[-1].signed_at is not None:
        raise Conflict("there is no draft report to sign", code="nothing_to_sign")
    return versions[-1]


async def confirm_signer(db: Database, limiter: LoginLimiter, user: User, consultation_id: int,
                         password: str, ip: str | None) -> None:
    """Before signing with a password: the draft is this user's to sign and the password is
    theirs. A wrong password is 403 ``invalid_password``, audited and counted as a failed login
    (too many → 429 for signing and logging in alike)."""
    async with db.read() as session:
        c = await get_visible_consultation(session, user, consultation_id)
        draft = _draft_to_sign(user, c, await _versions(session, c.id))
        password_hash = (await session.execute(
            select(User.password_hash).where(User.id == user.id))).scalar_one_or_none()

    async def refuse(reason: str) -> None:
        await db.log_audit([audit.entry(
            user, "sign_report_refused", "consultation", c.id, patient_id=c.patient_id, ip=ip,
            detail={"version": draft.version, "reason": reason})])

    try:
        stamp = limiter.attempt(user.username, ip)  # counted before argon2 runs
    except TooManyRequests:
        await refuse("too_many_attempts")
        raise
    if await asyncio.to_thread(verify_password, password_hash, password):
        limiter.succeeded(user.username, ip, stamp)
        return
    await refuse("invalid_password")
    raise Forbidden("the password is not the signer's; the report was not signed",
                    code="invalid_password")


async def sign(session: AsyncSession, user: User, consultation_id: int, ip: str | None, *,
               with_password: bool = False) -> ReportOut:
    """Sign the draft: from now on that version is frozen, with the signer as they are now.
    ``with_password``: the caller has checked the re-entered password (``confirm_signer``)."""
    c = await get_visible_consultation(session, user, consultation_id, for_update=True)
    versions = await _versions(session, c.id)
    draft = _draft_to_sign(user, c, versions)
    signer = await session.get(User, user.id)
    assert signer is not None  # the caller has just authenticated
    institution = await session.get(Institution, signer.institution_id)
    draft.signed_at, draft.signed_by_id = utcnow(), user.id
    draft.signer_name, draft.signer_title = signer.display_name, signer.title
    # The institution's own (Chinese) name where it has one: it is the name on its seal.
    draft.signer_institution = (institution.local_name or institution.name) if institution \
        else None
    draft.signed_with_password = with_password
    await session.flush()
    audit.record(session, user, "sign_report", "consultation", c.id, patient_id=c.patient_id,
                 ip=ip, detail={"version": draft.version, "with_password": with_password})
    await session.run_sync(notices.report_signed, c, signer)
    return _report_out(c, versions)


async def read(session: AsyncSession, user: User, consultation_id: int, ip: str | None
               ) -> ReportOut:
    """The newest version and every earlier one; a draft is the expert's own until signed."""
    c = await get_visible_consultation(session, user, consultation_id)
    versions = await _versions(session, c.id)
    if c.expert_id != user.id:
        versions = [v for v in versions if v.signed_at is not None]
    if not versions:
        raise NotFound(f"consultation {c.id} has no signed report yet")
    audit.record(session, user, "read_report", "consultation", c.id, patient_id=c.patient_id,
                 ip=ip)
    return _report_out(c, versions)
