"""A year of history for the statistics dashboard: what the demo alliances did over the past
twelve Beijing months, of the order of the figures Qianxinan reported for 2017
(shared/design/demo-alliance.md: 427 remote consultations received, 135 remote outpatient
visits, 14 imaging and 4 pathology reads, 4 trainings with 70+ attendees, 734 upward and
1,436 downward referrals, a grassroots share of visits of 47%).

Only ``yilian demo`` loads it (``prepare_demo``): the tests' demo stays small. Rows are written
in bulk (SQLAlchemy Core, one executemany per table) from a fixed seed, about 3,000 rows in
well under a second; they reuse the demo's people and patients, and every row is closed (no
open request wakes a sweep or an alert).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from yilian.server.clinic.models import Consultation, Patient, Referral, ReferralMilestone
from yilian.server.clinic.stats.models import OutpatientVisitTotal
from yilian.server.clinic.stats.period import SHANGHAI, month_start
from yilian.server.clinic.teaching.models import TeachingAttendance, TeachingSession
from yilian.server.core.db import Database
from yilian.server.core.models import Institution, User

SEED = 2017
#: The reason / question of every history row (they hold no clinical text).
HISTORY = "(history)"
# (requester, expert, kind, how many in the year): 427 requested in the Guangdong chain
CONSULTATIONS = [
    ("village", "expert", "video", 92), ("township", "expert", "video", 81),
    ("village", "county", "video", 52), ("township", "gdph_neurosurgery", "video", 35),
    ("village", "county", "outpatient", 70), ("township", "expert", "outpatient", 65),
    ("township", "gdph_radiology", "imaging", 9), ("village", "maoming_radiology", "imaging", 5),
    ("county_radiology", "gdph_pathology", "pathology", 4),
    ("guilin_doctor", "guilin_radiology", "imaging", 6),
    ("guilin_doctor", "yangshuo_neurosurgery", "video", 8),
]
# outcome weights of a consultation a year old: most were held
OUTCOMES = [("completed", 86), ("declined", 4), ("cancelled", 4), ("no_show", 3), ("expired", 3)]
# (from, to, direction, how many, of which green channel (kind, count))
REFERRALS = [
    ("shalang", "dianbai", "up", 410, [("stroke", 26), ("chest_pain", 22), ("trauma", 8)]),
    ("shangtang", "dianbai", "up", 180, [("stroke", 9), ("chest_pain", 7)]),
    ("dianbai", "gdph", "up", 104, [("stroke", 5), ("chest_pain", 4)]),
    ("dianbai", "maoming", "up", 40, []),
    ("dianbai", "shalang", "down", 760, []), ("dianbai", "shangtang", "down", 420, []),
    ("gdph", "dianbai", "down", 256, []),
    ("baisha", "yangshuo", "up", 60, [("stroke", 6)]), ("yangshuo", "baisha", "down", 90, []),
]
REFERRAL_OUTCOMES = [("completed", 88), ("rejected", 5), ("cancelled", 4), ("expired", 3)]
# (organiser, presenter, kind, attendees per Guangdong member site)
TEACHING = [("gdph", "expert", "training", 6), ("gdph", "gdph_neurosurgery", "rounds", 5),
            ("dianbai", "county", "lecture", 4), ("gdph", "gdph_radiology", "training", 5)]
# monthly outpatient visits per institution, before seasonal noise (grassroots ~47%)
VISITS = {"gdph": 0, "maoming": 0, "dianbai": 21000, "shalang": 14200, "shangtang": 4400,
          "guilin": 0, "pingle": 9000, "xingan": 8000, "yangshuo": 8500, "baisha": 5200}
INSTITUTION_KEYS = {"gdph": "Guangdong Provincial People's Hospital",
                    "maoming": "Maoming People's Hospital",
                    "dianbai": "Dianbai District People's Hospital",
                    "shalang": "Shalang Town Central Health Centre",
                    "shangtang": "Shangtang Village Clinic",
                    "guilin": "Guilin People's Hospital",
                    "pingle": "Pingle County People's Hospital",
                    "xingan": "Xing'an County People's Hospital",
                    "yangshuo": "Yangshuo County People's Hospital",
                    "baisha": "Baisha Town Health Centre, Yangshuo"}


def past_months(now: datetime, count: int = 12) -> list[tuple[datetime, datetime]]:
    """The ``count`` Beijing months before the current one, oldest first: [start, end)."""
    local = now.astimezone(SHANGHAI)
    year, month = local.year, local.month
    out = []
    for _ in range(count):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        nxt = (year + 1, 1) if month == 12 else (year, month + 1)
        out.append((month_start(year, month), month_start(*nxt)))
    return out[::-1]


def _when(rng: random.Random, months: list[tuple[datetime, datetime]]) -> datetime:
    """A working-hours moment (08:00-20:00 Beijing) in a random month of the year."""
    start, end = rng.choice(months)
    day = rng.randrange((end - start).days)
    return start + timedelta(days=day, hours=8, minutes=rng.randrange(12 * 60))


def _pick(rng: random.Random, weights: list[tuple[str, int]]) -> str:
    return rng.choices([w[0] for w in weights], [w[1] for w in weights])[0]


async def history(db: Database, now: datetime | None = None) -> dict[str, int]:
    """Write the year; returns how many rows of each kind."""
    now = now or datetime.now(UTC)
    rng = random.Random(SEED)
    months = past_months(now)
    async with db.write() as session:
        inst = {k: (await session.execute(select(Institution.id).where(
            Institution.name == name))).scalar_one() for k, name in INSTITUTION_KEYS.items()}
        users = {u.username: u for u in (await session.execute(select(User))).scalars()}
        patients: dict[int, list[int]] = {}
        for pid, iid in await session.execute(select(Patient.id, Patient.institution_id)):
            patients.setdefault(iid, []).append(pid)
        anyone = [p for ps in patients.values() for p in ps]

        def patient_of(iid: int) -> int:
            return rng.choice(patients.get(iid) or anyone)

        consultations = _consultations(rng, months, users, patient_of)
        await session.execute(insert(Consultation), consultations)
        referrals = _referrals(rng, months, inst, users, patient_of)
        await session.execute(insert(Referral), referrals)
        ids = (await session.execute(select(Referral.id, Referral.requested_at, Referral.arrived_at,
                                            Referral.green_channel)
                                     .where(Referral.green_channel.is_not(None),
                                            Referral.arrived_at.is_not(None),
                                            Referral.reason == HISTORY))).all()
        milestones = _milestones(rng, ids)
        if milestones:
            await session.execute(insert(ReferralMilestone), milestones)
        sessions = await _teaching(session, rng, months, inst, users)
        visits = [{"institution_id": inst[k], "month": start.astimezone(SHANGHAI).strftime("%Y-%m"),
                   "visits": int(base * rng.uniform(0.85, 1.15))}
                  for start, _ in months for k, base in VISITS.items() if base]
        await session.execute(insert(OutpatientVisitTotal), visits)
    return {"consultations": len(consultations), "referrals": len(referrals),
            "milestones": len(milestones), "teaching_sessions": sessions,
            "visit_totals": len(visits)}


def _consultations(rng: random.Random, months: list[tuple[datetime, datetime]],
                   users: dict[str, User], patient_of: Any) -> list[dict[str, Any]]:
    rows = []
    for who, expert, kind, count in CONSULTATIONS:
        requester, to = users[who], users[expert]
        for _ in range(count):
            at = _when(rng, months)
            rows.append({"patient_id": patient_of(requester.institution_id),
                         "requester_id": requester.id,
                         "requester_institution_id": requester.institution_id, "kind": kind,
                         "urgency": _pick(rng, [("routine", 80), ("urgent", 17),
                                                ("emergency", 3)]),
                         "question": HISTORY, "status": _pick(rng, OUTCOMES),
                         "expert_id": to.id, "deadline": at + timedelta(days=3),
                         "created_at": at, "updated_at": at + timedelta(days=1)})
    return rows


def _referrals(rng: random.Random, months: list[tuple[datetime, datetime]],
               inst: dict[str, int], users: dict[str, User], patient_of: Any
               ) -> list[dict[str, Any]]:
    requester = {"shalang": "township", "shangtang": "village", "dianbai": "county",
                 "gdph": "expert", "baisha": "guilin_doctor", "yangshuo": "yangshuo_neurosurgery"}
    rows = []
    for src, dst, direction, count, channels in REFERRALS:
        kinds = [c for c, n in channels for _ in range(n)]
        for i in range(count):
            channel = kinds[i] if i < len(kinds) else None
            at = _when(rng, months)
            status = "completed" if channel else _pick(rng, REFERRAL_OUTCOMES)
            accept = at + timedelta(minutes=rng.uniform(1, 9) if channel else rng.uniform(20, 600))
            arrive = accept + timedelta(minutes=rng.uniform(25, 80) if channel
                                        else rng.uniform(120, 2000))
            took = status == "completed"
            rows.append({"patient_id": patient_of(inst[src]), "direction": direction,
                         "status": status, "from_institution_id": inst[src],
                         "to_institution_id": inst[dst], "requester_id": users[requester[src]].id,
                         "reason": HISTORY, "green_channel": channel,
                         "onset_at": at - timedelta(minutes=rng.uniform(30, 150)) if channel
                         else None, "deadline": at + timedelta(hours=24),
                         "requested_at": at, "accepted_at": accept if took else None,
                         "departed_at": accept + timedelta(minutes=5) if took else None,
                         "arrived_at": arrive if took else None,
                         "completed_at": arrive + timedelta(days=3) if took else None,
                         "updated_at": at})
    return rows


def _milestones(rng: random.Random, rows: Any) -> list[dict[str, Any]]:
    """The clinical time points of the green-channel cases: door, then CT and needle (stroke)
    or the cath lab and balloon (chest pain)."""
    out = []
    for rid, _requested, arrived, channel in rows:
        points = [("door", 0.0)]
        if channel == "stroke":
            ct = rng.uniform(8, 30)
            points += [("ct_done", ct), ("needle", ct + rng.uniform(15, 45))]
        elif channel == "chest_pain":
            lab = rng.uniform(10, 40)
            points += [("cath_lab_activated", lab), ("balloon", lab + rng.uniform(25, 60))]
        for name, after in points:
            at = arrived + timedelta(minutes=after)
            out.append({"referral_id": rid, "milestone": name, "at": at,
                        "source": "transition" if name == "door" else "manual",
                        "recorded_at": at})
    return out


async def _teaching(session: Any, rng: random.Random, months: list[tuple[datetime, datetime]],
                    inst: dict[str, int], users: dict[str, User]) -> int:
    members = [u for u in users.values() if u.institution_id in
               {inst[k] for k in ("dianbai", "shalang", "shangtang", "maoming")}]
    for number, (org, presenter, kind, per_site) in enumerate(TEACHING):
        start, _ = months[(number * 3 + 1) % len(months)]
        begin = start + timedelta(days=9 + number, hours=6)  # 14:00 Beijing
        ended = begin + timedelta(minutes=90)
        sid = (await session.execute(insert(TeachingSession).values(
            title=f"(history) {kind}", kind=kind, start=begin, end=ended,
            presenter_id=users[presenter].id, organiser_id=users[presenter].id,
            institution_id=inst[org], status="ended", record=False, started_at=begin,
            ended_at=ended, created_at=begin - timedelta(days=7)).returning(TeachingSession.id)
        )).scalar_one()
        watchers = rng.sample(members, min(len(members), per_site * 4))
        await session.execute(insert(TeachingAttendance), [
            {"session_id": sid, "user_id": u.id, "institution_id": u.institution_id,
             "joined_at": begin + timedelta(minutes=rng.uniform(0, 10)),
             "left_at": ended - timedelta(minutes=rng.uniform(0, 15))} for u in watchers])
    return len(TEACHING)
