"""Where a referral may go: ``up`` to an institution of a strictly higher level, ``down`` to
one strictly lower (province > city > county > township > village). Members of the caller's
alliances come first in the picker; others are allowed (a patient may need a hospital outside
the alliance), and creating a referral checks the same rule."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from yilian.server.clinic.models import OnCallShift
from yilian.server.clinic.referrals.schemas import ReferralTargetOut, TargetDepartmentOut
from yilian.server.core.access import alliance_partner_ids, require_clinical
from yilian.server.core.db import utcnow
from yilian.server.core.errors import ValidationFailed
from yilian.server.core.models import Department, Institution, User
from yilian.server.core.models.alliance import LEVELS

# LEVELS runs from the top (province) down: a smaller rank is a higher level.
RANK = {level: i for i, level in enumerate(LEVELS)}


def level_allows(direction: str, from_level: str, to_level: str) -> bool:
    """Whether a referral in ``direction`` may go from an institution of ``from_level`` to
    one of ``to_level``."""
    if direction == "up":
        return RANK[to_level] < RANK[from_level]
    return RANK[to_level] > RANK[from_level]


async def check_target(session: AsyncSession, user: User, direction: str,
                       to_institution_id: int, department_id: int | None
                       ) -> tuple[Institution, Department | None]:
    """The receiving institution and department, or 422 naming what is wrong."""
    home = await session.get(Institution, user.institution_id)
    target = await session.get(Institution, to_institution_id)
    if target is None:
        raise ValidationFailed(f"no institution {to_institution_id}",
                               details={"field": "to_institution_id"})
    assert home is not None  # the user's own institution
    if not level_allows(direction, home.level, target.level):
        higher = "higher" if direction == "up" else "lower"
        raise ValidationFailed(
            f"a referral {direction} goes to an institution of a {higher} level than yours "
            f"({home.level}); {target.name} is {target.level}", code="invalid_referral_target",
            details={"field": "to_institution_id", "direction": direction,
                     "from_level": home.level, "to_level": target.level})
    department = None
    if department_id is not None:
        department = await session.get(Department, department_id)
        if department is None or department.institution_id != target.id:
            raise ValidationFailed(
                f"department {department_id} is not a department of {target.name}",
                code="unknown_department", details={"field": "department"})
    return target, department


async def on_call_counts(session: AsyncSession, department_ids: list[int]) -> dict[int, int]:
    """department id -> how many people are on call there now."""
    if not department_ids:
        return {}
    now = utcnow()
    rows = await session.execute(
        select(OnCallShift.department_id, func.count(func.distinct(OnCallShift.user_id)))
        .where(OnCallShift.department_id.in_(department_ids), OnCallShift.start <= now,
               OnCallShift.end > now)
        .group_by(OnCallShift.department_id))
    return {d: n for d, n in rows}


async def targets(session: AsyncSession, user: User, direction: str) -> list[ReferralTargetOut]:
    """Institutions a referral in ``direction`` may go to: alliance partners first, then by
    level (nearest first) and name; each with its departments and who is on call now."""
    require_clinical(user, "refer patients")
    home = await session.get(Institution, user.institution_id)
    assert home is not None
    wanted = [lvl for lvl in LEVELS if level_allows(direction, home.level, lvl)]
    if not wanted:
        return []
    rows = list((await session.execute(
        select(Institution).options(selectinload(Institution.departments))
        .where(Institution.level.in_(wanted)))).scalars())
    partners = await alliance_partner_ids(session, user.institution_id)
    counts = await on_call_counts(session, [d.id for i in rows for d in i.departments])
    distance = {lvl: abs(RANK[lvl] - RANK[home.level]) for lvl in wanted}
    rows.sort(key=lambda i: (i.id not in partners, distance[i.level], i.name))
    return [
        ReferralTargetOut(
            id=i.id, name=i.name, local_name=i.local_name, level=i.level, parent_id=i.parent_id,
            in_my_alliance=i.id in partners,
            departments=[TargetDepartmentOut(id=d.id, name=d.name, specialty=d.specialty,
                                             on_call_now=counts.get(d.id, 0))
                         for d in sorted(i.departments, key=lambda d: d.name)])
        for i in rows
    ]
