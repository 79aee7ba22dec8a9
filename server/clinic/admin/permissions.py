"""Who may change what in the directory.

An administrator keeps everything. A coordinator keeps the institutions of their alliances
(every member of an alliance their own institution belongs to, and their own institution):
those institutions' details and departments, their modalities, their experts' availability and
their on-call rosters. Creating institutions and alliances, changing an alliance's members and
importing whole alliances is for administrators. Everyone else keeps nothing (a specialist
keeps their own availability).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.admin.schemas import PermissionsOut
from yilian.server.core.access import alliance_partner_ids
from yilian.server.core.errors import Forbidden
from yilian.server.core.models import User

MANAGERS = ("coordinator", "admin")


async def managed_institutions(session: AsyncSession, user: User) -> set[int] | None:
    """The institutions this user keeps: None for every one (an administrator)."""
    if user.role == "admin":
        return None
    if user.role == "coordinator":
        return await alliance_partner_ids(session, user.institution_id)
    return set()


async def manages(session: AsyncSession, user: User, institution_id: int) -> bool:
    """Whether the user keeps this institution."""
    scope = await managed_institutions(session, user)
    return scope is None or institution_id in scope


def require_admin(user: User, what: str) -> None:
    """403 unless the user is an administrator."""
    if user.role != "admin":
        raise Forbidden(f"only an administrator may {what}",
                        details={"role": user.role, "allowed": ["admin"]})


async def require_keeper(session: AsyncSession, user: User, institution_id: int,
                         what: str) -> None:
    """403 unless the user keeps this institution (an administrator, or a coordinator of an
    alliance it belongs to)."""
    if not await manages(session, user, institution_id):
        raise Forbidden(f"only an administrator or a coordinator of its alliance may {what}",
                        details={"role": user.role, "institution_id": institution_id})


async def permissions(session: AsyncSession, user: User) -> PermissionsOut:
    """What the caller may do, for the browser to offer exactly that."""
    scope = await managed_institutions(session, user)
    admin = user.role == "admin"
    return PermissionsOut(
        role=user.role,  # type: ignore[arg-type]
        administration=user.role in MANAGERS,
        all_institutions=scope is None,
        institution_ids=sorted(scope or ()),
        create_institutions=admin,
        manage_alliances=admin,
        import_directory=admin,
        modalities=user.role in MANAGERS,
        availability=user.role in MANAGERS or user.role == "specialist",
        on_call=user.role in MANAGERS,
    )
