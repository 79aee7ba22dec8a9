"""Whose figures a caller may read, and which institutions a request covers.

- an admin: everything, any alliance, any institution;
- a coordinator: the alliances their institution is a member of, and their member
  institutions (an institution "with those below it" keeps only members of those alliances);
- a village or township doctor or a specialist: their own institution only.

A scope that names an alliance or institution that does not exist is 404; one the caller may
not read is 403 (alliances and institutions are public names, so refusing discloses nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.errors import Forbidden, NotFound, ValidationFailed
from yilian.server.core.models import Alliance, AllianceMember, Institution, User

GRASSROOTS_LEVELS = ("township", "village")


@dataclass(frozen=True)
class Place:
    id: int
    name: str
    local_name: str | None
    level: str
    parent_id: int | None


@dataclass(frozen=True)
class Scope:
    """The institutions a request covers, as asked."""

    alliance_id: int | None
    institution_id: int | None
    include_below: bool
    places: list[Place]  # in id order

    @property
    def ids(self) -> list[int]:
        return [p.id for p in self.places]


async def _places(session: AsyncSession) -> dict[int, Place]:
    rows = await session.execute(select(Institution.id, Institution.name, Institution.local_name,
                                        Institution.level, Institution.parent_id))
    return {r.id: Place(r.id, r.name, r.local_name, r.level, r.parent_id) for r in rows}


async def _members(session: AsyncSession, alliance_ids: list[int] | None = None
                   ) -> dict[int, set[int]]:
    stmt = select(AllianceMember.alliance_id, AllianceMember.institution_id)
    if alliance_ids is not None:
        stmt = stmt.where(AllianceMember.alliance_id.in_(alliance_ids))
    out: dict[int, set[int]] = {}
    for alliance_id, institution_id in await session.execute(stmt):
        out.setdefault(alliance_id, set()).add(institution_id)
    return out


async def coordinator_alliances(session: AsyncSession, user: User) -> list[int]:
    """The alliances a coordinator looks after: those their institution is a member of."""
    rows = await session.execute(select(AllianceMember.alliance_id).where(
        AllianceMember.institution_id == user.institution_id).order_by(
        AllianceMember.alliance_id))
    return list(rows.scalars())


def below(places: dict[int, Place], root: int) -> set[int]:
    """``root`` and every institution under it (branches, their branches, ...)."""
    children: dict[int, list[int]] = {}
    for p in places.values():
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p.id)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:  # a loop in the parent links ends here
                found.add(child)
                todo.append(child)
    return found


def _refuse(user: User, what: str) -> Forbidden:
    return Forbidden(f"a {user.role} may not read the statistics of {what}",
                     details={"role": user.role})


async def resolve(session: AsyncSession, user: User, alliance_id: int | None,
                  institution_id: int | None, include_below: bool) -> Scope:
    """The scope asked for, checked against what ``user`` may read."""
    places = await _places(session)
    if alliance_id is not None and await session.get(Alliance, alliance_id) is None:
        raise NotFound(f"no such alliance: {alliance_id}")
    if institution_id is not None and institution_id not in places:
        raise NotFound(f"no such institution: {institution_id}")
    if include_below and institution_id is None:
        raise ValidationFailed("include_below needs an institution_id", details={"errors": [
            {"loc": ["query", "include_below"], "msg": "needs institution_id",
             "type": "missing"}]})
    allowed: set[int] | None  # None: every institution
    if user.role == "admin":
        allowed = None
    elif user.role == "coordinator":
        mine = await coordinator_alliances(session, user)
        if alliance_id is not None and alliance_id not in mine:
            raise _refuse(user, f"alliance {alliance_id} (not theirs)")
        members = await _members(session, [alliance_id] if alliance_id else mine)
        allowed = set().union(*members.values()) if members else set()
    else:
        if alliance_id is not None:
            raise _refuse(user, "an alliance (only of their own institution)")
        if institution_id is not None and institution_id != user.institution_id:
            raise _refuse(user, f"institution {institution_id} (only of their own)")
        if include_below:
            raise _refuse(user, "the institutions below theirs")
        allowed = {user.institution_id}
    if alliance_id is not None and allowed is None:
        allowed = (await _members(session, [alliance_id])).get(alliance_id, set())
    if institution_id is not None:
        if allowed is not None and institution_id not in allowed:
            if alliance_id is not None and user.role == "admin":
                raise ValidationFailed(
                    f"institution {institution_id} is not a member of alliance {alliance_id}",
                    details={"errors": [{"loc": ["query", "institution_id"],
                                         "msg": "not a member of the alliance",
                                         "type": "value_error"}]})
            raise _refuse(user, f"institution {institution_id} (outside their alliances)")
        chosen = below(places, institution_id) if include_below else {institution_id}
        ids = chosen if allowed is None else chosen & allowed
    else:
        ids = set(places) if allowed is None else allowed
    return Scope(alliance_id, institution_id, include_below,
                 [places[i] for i in sorted(ids) if i in places])
