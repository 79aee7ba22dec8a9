"""The referral clocks the server watches: requests nobody answered before their deadline
expire (the system's event, the requester told), and a green-channel request still unanswered
a few minutes after it came in escalates, once, to the department head and the coordinators.
``scheduler_ctx`` runs both every ``referral_sweep_seconds``; tests call them directly."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from yilian.server.clinic.models import Referral
from yilian.server.clinic.referrals import alerts, moves
from yilian.server.core.db import Database, utcnow

logger = logging.getLogger(__name__)

EXPIRY_NOTE = "nobody accepted before the deadline"


async def expire_overdue(db: Database) -> int:
    """Expire requested referrals past their deadline; returns how many."""
    now = utcnow()
    async with db.write() as session:
        overdue = list((await session.execute(
            select(Referral).where(Referral.status == "requested", Referral.deadline < now)
            .order_by(Referral.id).with_for_update())).scalars())
        for r in overdue:
            await moves.take(session, r, "expire", None, note=EXPIRY_NOTE)
    if overdue:
        logger.info("expired %d referrals", len(overdue), extra={"count": len(overdue)})
    return len(overdue)


async def escalate_waiting(db: Database, after_seconds: float) -> int:
    """Escalate green-channel referrals still requested ``after_seconds`` after the request,
    each once; returns how many."""
    now = utcnow()
    async with db.write() as session:
        waiting = list((await session.execute(
            select(Referral).where(
                Referral.status == "requested", Referral.green_channel.is_not(None),
                Referral.escalated_at.is_(None),
                Referral.requested_at <= now - timedelta(seconds=after_seconds))
            .order_by(Referral.id).with_for_update())).scalars())
        for r in waiting:
            r.escalated_at = now
            minutes = int((now - r.requested_at).total_seconds() // 60)
            await alerts.escalated(session, r, minutes)
    if waiting:
        logger.info("escalated %d green-channel referrals", len(waiting),
                    extra={"count": len(waiting)})
    return len(waiting)
