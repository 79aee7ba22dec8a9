"""Alliances: create, change, and set their members (administrators). The lead institution is
always a member. Every change is audited with what it was before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.admin import rules
from yilian.server.clinic.admin.permissions import require_admin
from yilian.server.clinic.admin.schemas import AllianceIn, AlliancePatch, MembersIn
from yilian.server.clinic.schemas import AllianceOut
from yilian.server.core import audit
from yilian.server.core.db import one_at_a_time
from yilian.server.core.errors import Conflict, NotFound, ValidationFailed
from yilian.server.core.models import Alliance, AllianceMember, Institution, User


async def _member_ids(session: AsyncSession, alliance_id: int) -> list[int]:
    rows = await session.scalars(select(AllianceMember.institution_id).where(
        AllianceMember.alliance_id == alliance_id).order_by(AllianceMember.institution_id))
    return list(rows)


def _out(a: Alliance, members: list[int]) -> AllianceOut:
    return AllianceOut(id=a.id, name=a.name, kind=a.kind,  # type: ignore[arg-type]
                       specialty=a.specialty, lead_institution_id=a.lead_institution_id,
                       member_ids=sorted(members))


def _snapshot(a: Alliance) -> dict[str, Any]:
    return {"name": a.name, "kind": a.kind, "specialty": a.specialty,
            "lead_institution_id": a.lead_institution_id}


async def _alliance(session: AsyncSession, alliance_id: int, *, lock: bool = False) -> Alliance:
    """The alliance; ``lock``: its row held until commit, so changes to its members take turns."""
    found = await session.get(Alliance, alliance_id, with_for_update=lock or None)
    if found is None:
        raise NotFound(f"no alliance {alliance_id}")
    return found


async def _name_free(session: AsyncSession, name: str, alliance_id: int | None = None) -> None:
    await one_at_a_time(session, "alliance-name")
    other = await session.scalar(select(Alliance.id).where(
        func.lower(Alliance.name) == name.lower()))
    if other is not None and other != alliance_id:
        raise Conflict(f"an alliance is already called {name!r}", code="name_taken",
                       details={"field": "name", "alliance_id": other})


async def _check_institutions(session: AsyncSession, ids: list[int], field: str) -> None:
    if not ids:
        return
    known = set(await session.scalars(select(Institution.id).where(Institution.id.in_(ids))))
    unknown = sorted(set(ids) - known)
    if unknown:
        raise ValidationFailed(f"no institution {unknown[0]}" if len(unknown) == 1 else
                               f"no institutions {unknown[:20]}", code="unknown_institution",
                               details={"field": field, "unknown_ids": unknown[:100]})


async def _set_members(session: AsyncSession, alliance_id: int, ids: set[int]) -> None:
    await session.execute(delete(AllianceMember).where(AllianceMember.alliance_id == alliance_id))
    if ids:
        await session.execute(insert(AllianceMember), [
            {"alliance_id": alliance_id, "institution_id": i} for i in sorted(ids)])


async def create_alliance(session: AsyncSession, user: User, body: AllianceIn,
                          ip: str | None) -> AllianceOut:
    """A new alliance with its lead institution and members (the lead is one of them)."""
    require_admin(user, "create alliances")
    rules.check_alliance_kind(body.kind, body.specialty)
    await _name_free(session, body.name)
    await _check_institutions(session, [body.lead_institution_id], "lead_institution_id")
    await _check_institutions(session, body.member_ids, "member_ids")
    alliance = Alliance(name=body.name, kind=body.kind, specialty=body.specialty,
                        lead_institution_id=body.lead_institution_id)
    session.add(alliance)
    await session.flush()
    members = {*body.member_ids, body.lead_institution_id}
    await _set_members(session, alliance.id, members)
    audit.record(session, user, "create", "alliance", alliance.id, ip=ip,
                 detail={"after": {**_snapshot(alliance), "member_ids": sorted(members)}})
    return _out(alliance, list(members))


async def change_alliance(session: AsyncSession, user: User, alliance_id: int,
                          body: AlliancePatch, ip: str | None) -> AllianceOut:
    """Rename an alliance, change its kind, specialty or lead (a new lead joins it)."""
    require_admin(user, "change alliances")
    alliance = await _alliance(session, alliance_id, lock=True)
    given = body.model_fields_set
    for field in ("name", "kind", "lead_institution_id"):
        if field in given and getattr(body, field) is None:
            raise ValidationFailed(f"an alliance keeps its {field}", details={"field": field})
    before = _snapshot(alliance)
    members = await _member_ids(session, alliance.id)
    members_before = sorted(members)
    if body.name is not None:
        await _name_free(session, body.name, alliance.id)
        alliance.name = body.name
    if body.kind is not None:
        alliance.kind = body.kind
    if "specialty" in given:
        alliance.specialty = body.specialty
    rules.check_alliance_kind(alliance.kind, alliance.specialty)
    if body.lead_institution_id is not None:
        await _check_institutions(session, [body.lead_institution_id], "lead_institution_id")
        alliance.lead_institution_id = body.lead_institution_id
        if body.lead_institution_id not in members:
            members.append(body.lead_institution_id)
            await _set_members(session, alliance.id, set(members))
    await session.flush()
    after = _snapshot(alliance)
    if after != before:
        detail: dict[str, Any] = {"before": before, "after": after}
        if sorted(members) != members_before:  # a new lead joins as a member
            detail["before"] = {**before, "member_ids": members_before}
            detail["after"] = {**after, "member_ids": sorted(members)}
            detail["added"] = sorted(set(members) - set(members_before))
        audit.record(session, user, "update", "alliance", alliance.id, ip=ip, detail=detail)
    return _out(alliance, members)


async def set_members(session: AsyncSession, user: User, alliance_id: int, body: MembersIn,
                      ip: str | None) -> AllianceOut:
    """Replace an alliance's members; the lead stays one (422 ``lead_not_member`` if left
    out). Audited with the members before and after."""
    require_admin(user, "change an alliance's members")
    alliance = await _alliance(session, alliance_id, lock=True)
    wanted = set(body.member_ids)
    if alliance.lead_institution_id not in wanted:
        raise ValidationFailed("the lead institution stays a member of its alliance",
                               code="lead_not_member",
                               details={"field": "member_ids",
                                        "lead_institution_id": alliance.lead_institution_id})
    await _check_institutions(session, sorted(wanted), "member_ids")
    before = await _member_ids(session, alliance.id)
    if set(before) != wanted:
        await _set_members(session, alliance.id, wanted)
        audit.record(session, user, "set_members", "alliance", alliance.id, ip=ip,
                     detail={"before": before, "after": sorted(wanted),
                             "added": sorted(wanted - set(before)),
                             "removed": sorted(set(before) - wanted)})
    # The relationship loaded before the change would be stale in this session.
    session.expire(alliance, ["members"])
    return _out(alliance, sorted(wanted))
