"""A hand-built quarter (Q1 2024, Beijing time) with known counts, far from the demo's own
dates: every consultation kind and outcome, referrals up and down, green-channel intervals
(with a corrected door time), teaching with reconnects, waiting before the start and a
called-off session, visit totals, and rows on both sides of every period and month edge,
including 23:30 Beijing time on the last day of a month (15:30 UTC, the same day)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select

from yilian.server.clinic.models import Consultation, Patient, Referral, ReferralMilestone
from yilian.server.clinic.stats.models import OutpatientVisitTotal
from yilian.server.clinic.teaching.models import (
    TeachingAttendance,
    TeachingInvitation,
    TeachingSession,
)
from yilian.server.core.db import Database
from yilian.server.core.models import Institution, User

BJ = timezone(timedelta(hours=8))


def bj(text: str) -> datetime:
    """A Beijing wall-clock time."""
    return datetime.fromisoformat(text).replace(tzinfo=BJ)


# (requester, kind, status, created (Beijing)); the expert is `expert` unless target given
CONSULTATIONS: list[tuple[str, str, str, str, str | None]] = [
    ("village", "video", "completed", "2024-01-10 10:00", None),
    ("village", "outpatient", "completed", "2024-01-31 23:30", None),  # January, 15:30 UTC
    ("village", "outpatient", "completed", "2024-02-01 00:10", None),  # February (Jan 31 UTC)
    ("village", "imaging", "completed", "2024-02-15 09:00", None),
    ("village", "pathology", "completed", "2024-03-03 09:00", None),
    ("village", "imaging", "declined", "2024-03-10 09:00", None),
    ("village", "video", "cancelled", "2024-01-20 09:00", None),
    ("village", "video", "no_show", "2024-02-02 09:00", None),
    ("village", "outpatient", "expired", "2024-02-03 09:00", None),
    ("village", "video", "requested", "2024-03-31 23:59", None),  # the last minute: in
    ("village", "video", "accepted", "2024-03-05 09:00", None),
    ("village", "imaging", "in_progress", "2024-03-06 09:00", None),
    ("village", "video", "completed", "2023-12-31 23:59", None),  # before the period
    ("village", "video", "completed", "2024-04-01 00:00", None),  # after it
    ("township", "imaging", "completed", "2024-01-05 09:00", "dianbai"),
    ("guilin_doctor", "video", "completed", "2024-01-05 09:00", None),  # another alliance
]

# (from, to, direction, status, green channel, requested (Beijing), accept after min,
#  arrive after min, clinical points {name: minutes after arrival}, door corrected to +min)
REFERRALS: list[tuple[Any, ...]] = [
    ("shalang", "dianbai", "up", "completed", "stroke", "2024-01-10 08:00", 5, 50,
     {"needle": 42}, None),
    ("shangtang", "dianbai", "up", "completed", "chest_pain", "2024-02-10 08:00", 3, 40,
     {"balloon": 68}, 2),
    ("shalang", "dianbai", "up", "rejected", None, "2024-01-15 08:00", None, None, {}, None),
    ("dianbai", "shangtang", "down", "completed", None, "2024-02-20 08:00", 30, 240, {}, None),
    ("dianbai", "shalang", "down", "cancelled", None, "2024-03-31 23:30", None, None, {}, None),
    ("shalang", "gdph", "up", "expired", None, "2024-03-01 08:00", None, None, {}, None),
    ("shangtang", "dianbai", "up", "arrived", "stroke", "2024-03-02 08:00", 10, 70, {}, None),
    ("baisha", "yangshuo", "up", "completed", "stroke", "2024-03-02 08:00", 1, 20, {}, None),
    ("shalang", "dianbai", "up", "completed", None, "2024-04-01 00:00", 5, 50, {}, None),
]

VISITS = [("shalang", "2024-01", 1000), ("shalang", "2024-02", 1200),
          ("shangtang", "2024-01", 300), ("dianbai", "2024-01", 2000),
          ("dianbai", "2024-02", 2500), ("gdph", "2024-03", 5000), ("gdph", "2024-04", 9999),
          ("baisha", "2024-01", 700)]

INSTITUTIONS = {"gdph": "Guangdong Provincial People's Hospital",
                "maoming": "Maoming People's Hospital",
                "dianbai": "Dianbai District People's Hospital",
                "shalang": "Shalang Town Central Health Centre",
                "shangtang": "Shangtang Village Clinic",
                "yangshuo": "Yangshuo County People's Hospital",
                "baisha": "Baisha Town Health Centre, Yangshuo"}


async def build(db: Database) -> dict[str, Any]:
    """Insert the quarter; return the ids the tests need."""
    async with db.write() as session:
        inst = {k: (await session.execute(select(Institution.id).where(
            Institution.name == name))).scalar_one() for k, name in INSTITUTIONS.items()}
        users = {u.username: u for u in (await session.execute(select(User))).scalars()}
        patient = (await session.execute(select(Patient.id).limit(1))).scalar_one()
        expert = users["expert"]
        rows = []
        for who, kind, status, created, target in CONSULTATIONS:
            at = bj(created)
            rows.append({"patient_id": patient, "requester_id": users[who].id,
                         "requester_institution_id": users[who].institution_id, "kind": kind,
                         "urgency": "routine", "question": "q", "status": status,
                         "expert_id": None if target else expert.id,
                         "target_institution_id": inst[target] if target else None,
                         "specialty": "radiology" if target else None,
                         "deadline": at + timedelta(days=3), "created_at": at,
                         "updated_at": at})
        await session.execute(insert(Consultation), rows)
        referral_ids = []
        for src, dst, direction, status, green, requested, acc, arr, points, door_fix in \
                REFERRALS:
            at = bj(requested)
            accepted = at + timedelta(minutes=acc) if acc is not None else None
            arrived = at + timedelta(minutes=arr) if arr is not None else None
            rid = (await session.execute(insert(Referral).values(
                patient_id=patient, direction=direction, status=status,
                from_institution_id=inst[src], to_institution_id=inst[dst],
                requester_id=users["township"].id, reason="r", green_channel=green,
                deadline=at + timedelta(hours=1), requested_at=at, accepted_at=accepted,
                arrived_at=arrived, updated_at=at).returning(Referral.id))).scalar_one()
            referral_ids.append(rid)
            if arrived is not None and green:
                door = (await session.execute(insert(ReferralMilestone).values(
                    referral_id=rid, milestone="door", at=arrived, source="transition",
                    recorded_at=arrived).returning(ReferralMilestone.id))).scalar_one()
                if door_fix is not None:
                    await session.execute(insert(ReferralMilestone).values(
                        referral_id=rid, milestone="door",
                        at=arrived + timedelta(minutes=door_fix), corrects_id=door,
                        reason="clock was wrong", recorded_at=arrived))
                for name, after in points.items():
                    await session.execute(insert(ReferralMilestone).values(
                        referral_id=rid, milestone=name,
                        at=arrived + timedelta(minutes=after), recorded_at=arrived))
        teaching = await _teaching(session, inst, users)
        await session.execute(insert(OutpatientVisitTotal), [
            {"institution_id": inst[k], "month": m, "visits": v} for k, m, v in VISITS])
    return {"institutions": inst, "referrals": referral_ids, "teaching": teaching,
            "users": {k: u.id for k, u in users.items()}}


async def _teaching(session: Any, inst: dict[str, int], users: dict[str, User]
                    ) -> dict[str, int]:
    async def add(org: str, kind: str, start: str, end: str, started: bool, status: str
                  ) -> int:
        s, e = bj(start), bj(end)
        return (await session.execute(insert(TeachingSession).values(
            title="t", kind=kind, start=s, end=e, presenter_id=users["expert"].id,
            organiser_id=users["expert"].id, institution_id=inst[org], status=status,
            started_at=s if started else None, ended_at=e if started else s,
            created_at=s - timedelta(days=1)).returning(TeachingSession.id))).scalar_one()

    t1 = await add("gdph", "lecture", "2024-01-20 10:00", "2024-01-20 11:00", True, "ended")
    t2 = await add("gdph", "rounds", "2024-02-20 10:00", "2024-02-20 11:00", False, "ended")
    t3 = await add("dianbai", "rounds", "2024-03-31 23:00", "2024-04-01 00:30", True, "ended")
    for t in (t1, t2, t3):
        for k in ("dianbai", "shalang", "shangtang"):
            await session.execute(insert(TeachingInvitation).values(session_id=t,
                                                                    institution_id=inst[k]))

    def stay(t: int, who: str, joined: str, left: str | None) -> dict[str, Any]:
        return {"session_id": t, "user_id": users[who].id,
                "institution_id": users[who].institution_id, "joined_at": bj(joined),
                "left_at": bj(left) if left else None}

    await session.execute(insert(TeachingAttendance), [
        stay(t1, "village", "2024-01-20 09:58", "2024-01-20 10:20"),  # reconnects: one
        stay(t1, "village", "2024-01-20 10:19", "2024-01-20 10:50"),
        stay(t1, "township", "2024-01-20 09:30", "2024-01-20 09:55"),  # waited, left: none
        stay(t1, "county", "2024-01-20 10:30", None),  # never left: counted to the end
        stay(t1, "guilin_doctor", "2024-01-20 10:05", "2024-01-20 10:45"),
        stay(t2, "village", "2024-02-20 10:00", "2024-02-20 10:30"),  # called off: none
        stay(t3, "village", "2024-03-31 23:10", "2024-03-31 23:50"),
    ])
    return {"t1": t1, "t2": t2, "t3": t3}
