"""Authorisation by role, and the alliance links between institutions."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, exists, select
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


# Built once, run with parameters: building a SELECT (aliases, comparisons) costs more CPU than
# running it from SQLAlchemy's compiled cache, and these run on most requests.
_M1, _M2 = AllianceMember.__table__.alias("m1"), AllianceMember.__table__.alias("m2")
_SHARES_ALLIANCE = select(exists().where(
    _M1.c.alliance_id == _M2.c.alliance_id, _M1.c.institution_id == bindparam("a"),
    _M2.c.institution_id == bindparam("b")))
_PARTNERS = select(_M2.c.institution_id).where(
    _M1.c.alliance_id == _M2.c.alliance_id, _M1.c.institution_id == bindparam("institution_id"))


async def shares_alliance(session: AsyncSession, a: int, b: int) -> bool:
    """Whether institutions ``a`` and ``b`` are members of a common alliance."""
    if a == b:
        return True
    return bool((await session.execute(_SHARES_ALLIANCE, {"a": a, "b": b})).scalar())


async def alliance_partner_ids(session: AsyncSession, institution_id: int) -> set[int]:
    """Every institution sharing an alliance with this one (itself included)."""
    rows = await session.execute(_PARTNERS, {"institution_id": institution_id})
    return {r[0] for r in rows} | {institution_id}
