"""How a user stands to a teaching session, and loading a session without disclosing it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.teaching.models import TeachingSession
from yilian.server.clinic.teaching.workflow import Roles
from yilian.server.core.access import shares_alliance
from yilian.server.core.errors import NotFound
from yilian.server.core.models import User


async def roles_of(session: AsyncSession, user: User, ts: TeachingSession,
                   partners: set[int] | None = None) -> Roles:
    """The user's roles in ``ts``: presenter, organiser, invited site, or overseer (an admin,
    or a coordinator whose institution shares an alliance with the organising one; give a
    coordinator's ``partners`` when asking about many sessions, to look them up once)."""
    invited = any(i.institution_id == user.institution_id for i in ts.invitations)
    if user.role == "coordinator":
        overseer = (ts.institution_id in partners if partners is not None
                    else await shares_alliance(session, user.institution_id, ts.institution_id))
    else:
        overseer = user.role == "admin"
    return Roles(presenter=ts.presenter_id == user.id, organiser=ts.organiser_id == user.id,
                 invited=invited and user.active, overseer=overseer)


async def visible_session(session: AsyncSession, user: User, session_id: int,
                          *, for_update: bool = False) -> tuple[TeachingSession, Roles]:
    """The session and the user's roles, or 404 alike for "no such session" and "not yours"."""
    ts = await session.get(TeachingSession, session_id, with_for_update=for_update)
    if ts is not None:
        roles = await roles_of(session, user, ts)
        if roles.visible:
            return ts, roles
    raise NotFound(f"no such teaching session: {session_id}")
