"""Authorisation by role, and the alliance links between institutions."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.errors import Forbidden
from yilian.server.core.models import CLINICAL_ROLES, AllianceMember, User


def require_role(user: User, roles: Iterable[str], what: str) -> None:
    """Raise 403 unless the user has one of ``roles``."""
    allowed = tuple(roles)
    if user.role not in allowed:
        raise Forbidden(
            f"a {user.role} may not {what}", details={"role": user.role, "allowed": list(allowed)}
        )


def require_clinical(user: User, what: str) -> None:
    """Patient data is for clinicians only (coordinators and admins read statistics)."""
    require_role(user, CLINICAL_ROLES, what)


async def shares_alliance(session: AsyncSession, a: int, b: int) -> bool:
    """Whether institutions ``a`` and ``b`` are members of a common alliance."""
    if a == b:
        return True
    m1, m2 = AllianceMember.__table__.alias("m1"), AllianceMember.__table__.alias("m2")
    stmt = select(
        exists().where(m1.c.alliance_id == m2.c.alliance_id, m1.c.institution_id == a,
                       m2.c.institution_id == b)
    )
    return bool((await session.execute(stmt)).scalar())


async def alliance_partner_ids(session: AsyncSession, institution_id: int) -> set[int]:
    """Every institution sharing an alliance with this one (itself included)."""
    m1, m2 = AllianceMember.__table__.alias("m1"), AllianceMember.__table__.alias("m2")
    rows = await session.execute(
        select(m2.c.institution_id).where(
            m1.c.alliance_id == m2.c.alliance_id, m1.c.institution_id == institution_id
        )
    )
    return {r[0] for r in rows} | {institution_id}
