"""The demo's referral stories are what their rows say: green-channel intervals computed from
the recorded time points, consistent states and time columns, on-call rosters that cover the
demo period, follow-ups at the village clinic, the chest-pain ECG, and a bell that is not empty.
(The demo loads once per run, on SQLite or PostgreSQL: the ``template`` fixture.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Api
from tests.dicom.conftest import dget
from yilian.server.clinic import keys as clinic_keys
from yilian.server.clinic.models import (
    Consultation,
    FollowUp,
    OnCallShift,
    Patient,
    Referral,
    ReferralMilestone,
)
from yilian.server.clinic.referrals.workflow import (
    CLINICAL_POINTS,
    MILESTONES,
    STAMPS,
    TRANSITION_POINTS,
    TRANSITIONS,
    accept_window,
)
from yilian.server.core import keys
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import Department, Institution, Notification, User
from yilian.server.core.settings import Settings

ZONE_OFFSET = timedelta(hours=8)


@pytest.fixture
async def session(settings: Settings) -> AsyncIterator[AsyncSession]:
    db = Database(settings.resolved_database_url)
    async with db.read() as s:
        yield s
    await db.close()


def current(r: Referral) -> dict[str, datetime]:
    """Each time point's value: the newest row of a milestone (corrections supersede), the
    referral's columns for transition points without a row."""
    out: dict[str, datetime] = {}
    for point, column in TRANSITION_POINTS.items():
        if getattr(r, column) is not None:
            out[point] = getattr(r, column)
    newest: dict[str, ReferralMilestone] = {}
    for m in r.milestones:
        if m.milestone not in newest or m.id > newest[m.milestone].id:
            newest[m.milestone] = m
    out |= {name: m.at for name, m in newest.items()}
    return out


def minutes(r: Referral, start: str, end: str) -> float:
    t = current(r)
    return (t[end] - t[start]).total_seconds() / 60


async def _referral(session: AsyncSession, patient: str, **where: object) -> Referral:
    stmt = select(Referral).join(Patient, Patient.id == Referral.patient_id).where(
        Patient.name.like(f"%{patient}%"))
    for column, value in where.items():
        stmt = stmt.where(getattr(Referral, column) == value)
    return (await session.execute(stmt)).scalars().one()


async def _user(session: AsyncSession, username: str) -> User:
    return (await session.execute(select(User).where(User.username == username))).scalar_one()


async def _on_call(session: AsyncSession, department_id: int, at: datetime) -> list[int]:
    return list((await session.execute(select(OnCallShift.user_id).where(
        OnCallShift.department_id == department_id, OnCallShift.start <= at,
        OnCallShift.end > at))).scalars())


async def test_every_referral_is_a_legal_history(session: AsyncSession) -> None:
    referrals = (await session.execute(select(Referral))).scalars().all()
    assert {r.status for r in referrals} >= {"requested", "accepted", "in_transit", "arrived",
                                             "completed", "rejected", "expired"}
    assert {r.direction for r in referrals} == {"up", "down"}
    for r in referrals:
        assert r.deadline == r.requested_at + accept_window(r.direction, r.green_channel)
        assert r.events[0].from_status is None and r.events[0].to_status == "requested"
        assert r.events[0].at == r.requested_at and r.events[0].actor_id == r.requester_id
        for before, after in zip(r.events, r.events[1:], strict=False):
            assert any(table.get(before.to_status) == after.to_status
                       for table in TRANSITIONS.values()), (r.id, before.to_status)
            assert after.from_status == before.to_status and after.at >= before.at
        assert r.events[-1].to_status == r.status and r.updated_at == r.events[-1].at
        for event in r.events:
            if event.to_status in STAMPS:
                assert getattr(r, STAMPS[event.to_status]) == event.at
        for state, column in STAMPS.items():
            if getattr(r, column) is not None:
                assert state in [e.to_status for e in r.events]
        transition_rows = {m.milestone: m.at for m in r.milestones if m.source == "transition"}
        assert transition_rows == {p: getattr(r, c) for p, c in TRANSITION_POINTS.items()
                                   if p != "onset" and getattr(r, c) is not None}
        clinical = [m.milestone for m in r.milestones if m.source != "transition"]
        assert all(m in CLINICAL_POINTS and m in MILESTONES[r.green_channel] for m in clinical)
        if r.status == "accepted" or r.accepted_at:
            assert r.accepted_by_id == next(e.actor_id for e in r.events
                                            if e.to_status == "accepted")
        assert r.requested_at <= utcnow()


async def test_the_yangshuo_stroke_runs_door_to_needle_in_42_minutes(
        session: AsyncSession) -> None:
    r = await _referral(session, "Mo Caixia")
    to = await session.get(Institution, r.to_institution_id)
    assert to is not None and to.name == "Yangshuo County People's Hospital"
    assert r.green_channel == "stroke" and r.status == "completed"
    assert minutes(r, "door", "needle") == 42
    assert minutes(r, "door", "ct_done") == 18
    assert minutes(r, "onset", "needle") == 130
    assert minutes(r, "request", "accept") == 3
    assert (r.arrived_at + ZONE_OFFSET).strftime("%H:%M") == "09:48"  # Beijing time
    assert r.accepted_by_id in await _on_call(session, r.department_id, r.accepted_at)
    # The case is a referral now, not an emergency consultation waiting in a queue.
    assert (await session.execute(select(Consultation).where(
        Consultation.patient_id == r.patient_id))).first() is None


async def test_the_chest_pain_case_and_its_ecg(session: AsyncSession, server: TestServer,
                                               api: Api) -> None:
    r = await _referral(session, "Zhang Dehai")
    assert r.green_channel == "chest_pain" and r.status == "arrived"
    assert minutes(r, "first_contact", "first_ecg") == 6
    assert minutes(r, "request", "accept") == 2
    assert minutes(r, "door", "cath_lab_activated") == 9
    assert minutes(r, "door", "balloon") == 68
    assert minutes(r, "first_contact", "balloon") == 135
    county = await _user(session, "county")
    dept = await session.get(Department, r.department_id)
    assert dept is not None and dept.specialty == "cardiology"
    assert dept.institution_id == county.institution_id == r.to_institution_id
    for point in ("accept", "door", "balloon"):
        assert county.id in await _on_call(session, dept.id, current(r)[point])

    (study_uid,) = [s.study_instance_uid for s in r.studies]
    ecg_row = next(m for m in r.milestones if m.milestone == "first_ecg")
    assert ecg_row.source == "ecg"
    catalog = server.app[clinic_keys.STUDY_CATALOG]
    async with server.app[keys.DATABASE].read() as s:
        assert await catalog.ecg_taken_at(s, study_uid) == ecg_row.at
    township = await api.login("township")
    status, found = await dget(township, "/dicomweb/studies",
                               params={"StudyInstanceUID": study_uid})
    assert status == 200 and len(found) == 1
    assert found[0]["00080061"]["Value"] == ["ECG"]
    assert found[0]["00100010"]["Value"][0]["Alphabetic"] == "Zhang^Dehai"
    status, meta = await dget(township, f"/dicomweb/studies/{study_uid}/metadata")
    assert status == 200 and meta[0]["00080016"]["Value"] == ["1.2.840.10008.5.1.4.1.1.9.1.1"]
    assert (await dget(await api.login("guilin_doctor"),
                       f"/dicomweb/studies/{study_uid}/metadata"))[0] == 404


async def test_the_night_stroke_escalated_and_the_running_one_is_open(
        session: AsyncSession) -> None:
    night = await _referral(session, "Huang Guiying")
    assert night.escalated_at == night.requested_at + timedelta(minutes=5)
    assert night.accepted_at > night.escalated_at
    head = await _user(session, "county_neurology")
    dept = await session.get(Department, night.department_id)
    assert dept is not None and dept.head_id == head.id == night.accepted_by_id
    assert minutes(night, "door", "needle") == 55

    running = await _referral(session, "Wu Yuzhen")
    assert running.green_channel == "stroke" and running.status in ("requested", "accepted")
    assert running.arrived_at is None and running.deadline > running.requested_at
    assert minutes(running, "request", "accept") == 3
    assert running.accepted_by_id in await _on_call(session, dept.id, running.accepted_at)


async def test_someone_is_on_call_now_at_each_green_channel_department(
        session: AsyncSession) -> None:
    now = utcnow()
    green = (await session.execute(select(Referral).where(
        Referral.green_channel.is_not(None)))).scalars().all()
    departments = {r.department_id for r in green}
    rostered = set((await session.execute(select(OnCallShift.department_id))).scalars())
    assert departments <= rostered and len(rostered) >= 5
    for dept_id in rostered:
        dept = await session.get(Department, dept_id)
        assert dept is not None and dept.head_id is not None
        shifts = (await session.execute(select(OnCallShift).where(
            OnCallShift.department_id == dept_id).order_by(OnCallShift.start))).scalars().all()
        assert len(await _on_call(session, dept_id, now)) == 1
        # continuous 12-hour shifts from a week before loading to four weeks after
        assert all(a.end == b.start for a, b in zip(shifts, shifts[1:], strict=False))
        assert all(s.end - s.start == timedelta(hours=12) for s in shifts)
        assert {(s.start + ZONE_OFFSET).hour for s in shifts} == {8, 20}
        assert shifts[0].start <= now - timedelta(days=7)
        assert shifts[-1].end - shifts[0].start >= timedelta(days=35)
        people = {s.user_id for s in shifts}
        staff = (await session.execute(select(User).where(User.id.in_(people)))).scalars()
        assert all(u.is_clinical and u.institution_id == dept.institution_id for u in staff)
        assert len(people) == 3
    # ``county`` held the Dianbai cardiology shift the demo was loaded in (14 minutes after
    # the running stroke was requested) and one in every three.
    county = await _user(session, "county")
    loaded = (await _referral(session, "Wu Yuzhen")).requested_at + timedelta(minutes=14)
    cardio = (await _referral(session, "Zhang Dehai")).department_id
    assert await _on_call(session, cardio, loaded) == [county.id]
    mine = (await session.execute(select(OnCallShift).where(
        OnCallShift.department_id == cardio, OnCallShift.user_id == county.id))).scalars().all()
    total = (await session.execute(select(OnCallShift).where(
        OnCallShift.department_id == cardio))).scalars().all()
    assert len(mine) == -(-len(total) // 3) or len(mine) == len(total) // 3


async def test_the_village_doctor_has_follow_ups_due_overdue_and_done(
        session: AsyncSession) -> None:
    village = await _user(session, "village")
    now = utcnow()
    rows = (await session.execute(select(FollowUp).where(
        FollowUp.institution_id == village.institution_id))).scalars().all()
    assert all(f.assigned_to_id == village.id for f in rows)
    done = [f for f in rows if f.status == "completed"]
    due = [f for f in rows if f.status == "due" and f.due_at > now]
    overdue = [f for f in rows if f.status == "due" and f.due_at <= now]
    assert len(done) == len(due) == len(overdue) == 1
    assert done[0].outcome and done[0].completed_by_id == village.id
    assert done[0].completed_at >= done[0].due_at
    assert due[0].due_at - now < timedelta(days=3)
    assert now - overdue[0].due_at > timedelta(days=2)
    for f in rows:
        r = await session.get(Referral, f.referral_id)
        assert r is not None and r.direction == "down" and r.to_institution_id == \
            village.institution_id and r.patient_id == f.patient_id
        assert r.accepted_at is not None and f.created_at >= r.accepted_at


async def test_the_demo_users_bells_are_not_empty(session: AsyncSession) -> None:
    for username in ("village", "township", "county", "expert", "coordinator",
                     "guilin_doctor"):
        user = await _user(session, username)
        rows = (await session.execute(select(Notification).where(
            Notification.user_id == user.id))).scalars().all()
        assert rows and all(any("\u4e00" <= ch <= "\u9fff" for ch in n.title) for n in rows)
        assert any(n.read_at is None for n in rows), username
        assert all(n.created_at <= utcnow() for n in rows)
    county = await _user(session, "county")
    chest = await _referral(session, "Zhang Dehai")
    alert = (await session.execute(select(Notification).where(
        Notification.user_id == county.id, Notification.kind == "referral.green_channel"))
    ).scalar_one()
    assert alert.urgent and alert.read_at is None and alert.resource_type == "referral"
    assert alert.resource_id == str(chest.id) and alert.created_at == chest.requested_at
    # worded as the live alert is: the channel and the number, no patient name
    assert alert.title == "绿色通道：胸痛患者转诊" and f"#{chest.id}" in alert.body
    assert "张德海" not in alert.title + alert.body
    village = await _user(session, "village")
    kinds = (await session.execute(select(Notification.kind).where(
        Notification.user_id == village.id, Notification.read_at.is_(None)))).scalars().all()
    assert "follow_up.created" in kinds


@pytest.mark.parametrize("hour", range(24))
def test_the_chest_pain_case_fits_a_county_shift_whenever_the_demo_loads(hour: int) -> None:
    """Pure: at any load time the case (100 min into one of county's shifts, 122 min long)
    ends before loading, within that shift, and county holds the shift the demo loads in."""
    from yilian.server.demo.oncall import SHIFT, Rosters, shift_start

    now = datetime(2026, 3, 9, hour, 17, tzinfo=UTC) - ZONE_OFFSET
    team = [User(username=n) for n in ("county", "ye", "zhong")]
    rosters = Rosters(anchor=shift_start(now), teams={1: team})
    assert rosters.on_call(1, now) is team[0]
    assert rosters.on_call(1, now + SHIFT) is team[1]
    assert rosters.on_call(1, now - SHIFT) is team[2]
    start = rosters.shift_of(1, team[0], ending_before=now, lasting=timedelta(minutes=242))
    request, balloon = start + timedelta(minutes=100), start + timedelta(minutes=222)
    assert balloon + timedelta(minutes=20) <= now and now - request < timedelta(hours=40)
    assert rosters.on_call(1, request) is rosters.on_call(1, balloon) is team[0]
    assert shift_start(request) == shift_start(balloon) == start
