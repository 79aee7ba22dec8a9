"""Recording the clinical time points of a referral (one tap, the time defaulting to now).

The first value of a transition point is the transition itself: tapping ``door`` on a
referral that is on its way records the arrival, at the time given. A point that already has
a value is corrected: the old row stays, the new one names it (``corrects_id``) and a reason;
correcting a transition point moves the referral's time column with it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.access import get_visible_referral, referral_side, require_side
from yilian.server.clinic.models import ReferralMilestone
from yilian.server.clinic.referrals import clock, moves
from yilian.server.clinic.referrals.schemas import MilestoneIn, ReferralOut
from yilian.server.clinic.referrals.service import check_time
from yilian.server.clinic.referrals.views import columns, point_rows, referral_views
from yilian.server.clinic.referrals.workflow import (
    ACTORS,
    POINT_ACTIONS,
    TRANSITION_POINTS,
    next_state,
    side_may_record,
)
from yilian.server.core import audit
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Forbidden, InvalidTransition, ValidationFailed
from yilian.server.core.models import User

#: States whose clock is over for good (a completed referral still takes late records).
CLOSED = frozenset({"rejected", "cancelled", "expired"})


async def record(session: AsyncSession, user: User, referral_id: int, body: MilestoneIn,
                 ip: str | None) -> ReferralOut:
    """Record (or correct) one time point of the referral's channel."""
    r = await get_visible_referral(session, user, referral_id, for_update=True)
    point = body.milestone
    allowed = clock.points_of(r.green_channel)
    if point not in allowed:
        raise ValidationFailed(f"{point!r} is not a time point of this referral",
                               code="unknown_milestone",
                               details={"field": "milestone", "allowed": list(allowed)})
    if point == "request":
        raise ValidationFailed("the request time is the server's record of it",
                               code="unknown_milestone",
                               details={"field": "milestone", "allowed": list(allowed)})
    side = referral_side(user, r)
    assert side is not None  # get_visible_referral let the user see it
    if not side_may_record(side, point):
        raise Forbidden(f"the {side} team does not record {point!r}",
                        details={"side": side, "milestone": point})
    if r.status in CLOSED:
        raise InvalidTransition(f'cannot record time points of a referral in state "{r.status}"',
                                details={"status": r.status})
    now = utcnow()
    at = body.at or now
    check_time("at", at, now, None if point == "onset" else r.requested_at)
    rows = point_rows(r)
    current = clock.current_points(rows, columns(r)).get(point)
    if current is None and point in POINT_ACTIONS:
        action = POINT_ACTIONS[point]
        require_side(user, r, ACTORS[action], f"record {point!r}")
        next_state(r.status, action)
        await moves.take(session, r, action, user, at=at)
    elif current is None:
        r.milestones.append(ReferralMilestone(milestone=point, at=at, recorded_by_id=user.id,
                                              recorded_at=now, source="manual",
                                              reason=body.reason))
    else:
        if body.reason is None:
            raise ValidationFailed(f"{point!r} is already recorded; a correction needs a "
                                   "reason", code="reason_required",
                                   details={"field": "reason"})
        old = clock.current_rows(rows).get(point)
        r.milestones.append(ReferralMilestone(milestone=point, at=at, recorded_by_id=user.id,
                                              recorded_at=now, source="manual",
                                              corrects_id=old.id if old else None,
                                              reason=body.reason))
    if point in TRANSITION_POINTS and current is not None:
        setattr(r, TRANSITION_POINTS[point], at)
    elif point == "onset":
        r.onset_at = at
    r.updated_at = now
    await session.flush()
    audit.record(session, user, "record_milestone", "referral", r.id, patient_id=r.patient_id,
                 ip=ip, detail={"milestone": point, "at": at.isoformat(),
                                "correction": current is not None})
    return (await referral_views(session, [r], user))[0]
