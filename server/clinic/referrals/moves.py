"""Moving a referral through its workflow: one transition with everything it entails (the
event, the stamped time, the timeline's time point, the follow-up, the notifications).

The user-facing checks (who may act) are the caller's; ``next_state`` still guards the state.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import Referral, ReferralEvent, ReferralMilestone
from yilian.server.clinic.referrals import alerts, followups
from yilian.server.clinic.referrals.workflow import STAMPS, TRANSITION_POINTS, next_state
from yilian.server.core.db import utcnow
from yilian.server.core.models import User

#: column -> the time point it holds (``accepted_at`` -> ``accept``).
_POINT_OF_COLUMN = {column: point for point, column in TRANSITION_POINTS.items()}


def apply_transition(r: Referral, action: str, actor: User | None, *, note: str | None = None,
                     at: datetime | None = None) -> ReferralEvent:
    """Move ``r`` by ``action`` (raising InvalidTransition), record who and when, stamp the
    state's time column and add its time point to the timeline. ``at``: when it happened,
    if earlier than now (a door time recorded a few minutes late)."""
    new = next_state(r.status, action)
    now = utcnow()
    when = at or now
    event = ReferralEvent(from_status=r.status, to_status=new,
                          actor_id=actor.id if actor else None, at=when, note=note)
    r.status = new
    r.updated_at = now
    r.events.append(event)
    column = STAMPS.get(new)
    if column is not None:
        setattr(r, column, when)
        point = _POINT_OF_COLUMN.get(column)
        if point is not None:
            r.milestones.append(ReferralMilestone(
                milestone=point, at=when, recorded_by_id=actor.id if actor else None,
                recorded_at=now, source="transition"))
    if action == "accept" and actor is not None:
        r.accepted_by_id = actor.id
    return event


async def take(session: AsyncSession, r: Referral, action: str, actor: User | None, *,
               note: str | None = None, at: datetime | None = None) -> ReferralEvent:
    """Apply a transition, then bring the follow-up along and tell whom it concerns."""
    event = apply_transition(r, action, actor, note=note, at=at)
    if action in ("reject", "cancel", "expire"):
        r.close_reason = note
    await session.flush()
    await followups.on_transition(session, r, action, actor)
    await alerts.transitioned(session, r, action, actor)
    return event
