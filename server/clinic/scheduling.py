"""Slots from weekly rules and exceptions: a pure generator plus its persistence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.clinic.models import (
    AvailabilityException,
    AvailabilityRule,
    Consultation,
    Slot,
)
from yilian.server.core.db import utcnow
from yilian.server.core.writes import Writes


@dataclass(frozen=True)
class Window:
    """A weekly rule in the expert's local time."""

    weekday: int
    start: time
    end: time
    slot_minutes: int
    timezone: str


@dataclass(frozen=True)
class Block:
    """An exception: ``leave``/``onsite`` block slots; ``extra`` opens a one-off window."""

    kind: str
    start: datetime
    end: datetime
    slot_minutes: int | None = None


def parse_hhmm(value: str) -> time:
    """``"08:30"`` -> time(8, 30)."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterable[date]:
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def generate_slots(
    windows: Sequence[Window], blocks: Sequence[Block], start: datetime, end: datetime
) -> dict[datetime, tuple[datetime, str]]:
    """Map slot start (UTC) -> (slot end, "free" | "blocked") for slots wholly in [start, end)."""
    result: dict[datetime, tuple[datetime, str]] = {}

    def add(s: datetime, e: datetime) -> None:
        if s >= start and e <= end:
            result[s] = (e, "free")

    for w in windows:
        tz = ZoneInfo(w.timezone)
        step = timedelta(minutes=w.slot_minutes)
        for day in _days(start, end, tz):
            if day.weekday() != w.weekday:
                continue
            cursor = datetime.combine(day, w.start, tz).astimezone(UTC)
            stop = datetime.combine(day, w.end, tz).astimezone(UTC)
            while cursor + step <= stop:
                add(cursor, cursor + step)
                cursor += step
    for b in blocks:
        if b.kind == "extra" and b.slot_minutes:
            step = timedelta(minutes=b.slot_minutes)
            cursor = b.start
            if cursor < start:  # skip to the first slot of the window asked for, on its grid
                cursor += step * -((b.start - start) // step)
            stop = min(b.end, end)
            while cursor + step <= stop:
                add(cursor, cursor + step)
                cursor += step
    for b in blocks:
        if b.kind in ("leave", "onsite"):
            for s, (e, _) in list(result.items()):
                if s < b.end and e > b.start:
                    result[s] = (e, "blocked")
    return result


async def materialize_slots(
    session: AsyncSession, expert_id: int, start: datetime, end: datetime
) -> None:
    """Make the stored slots in [start, end) match the expert's rules; booked ones stay."""
    await session.run_sync(materialize_slots_sync, expert_id, start, end)


def materialize_slots_sync(session: Session, expert_id: int, start: datetime,
                           end: datetime) -> None:
    """:func:`materialize_slots` on a synchronous session. The slots as rows, not objects
    (an expert has a thousand in the horizon, and usually only the newest day changes)."""
    rules = session.scalars(
        select(AvailabilityRule).where(AvailabilityRule.expert_id == expert_id))
    exceptions = session.scalars(
        select(AvailabilityException).where(
            AvailabilityException.expert_id == expert_id,
            AvailabilityException.end > start,
            AvailabilityException.start < end,
        ))
    windows = [
        Window(r.weekday, parse_hhmm(r.start_time), parse_hhmm(r.end_time), r.slot_minutes,
               r.timezone)
        for r in rules
    ]
    blocks = [Block(x.kind, x.start, x.end, x.slot_minutes) for x in exceptions]
    wanted = generate_slots(windows, blocks, start, end)
    conn = session.connection()
    stale: list[int] = []
    reshaped: list[dict[str, object]] = []
    for slot_id, slot_start, slot_end, status in conn.execute(
            _IN_RANGE, {"b_expert": expert_id, "b_start": start, "b_end": end}):
        want = wanted.pop(slot_start, None)
        if status == "booked":
            continue
        if want is None:
            stale.append(slot_id)
        elif want != (slot_end, status):
            reshaped.append({"b_id": slot_id, "b_slot_end": want[0], "b_status": want[1]})
    if reshaped:
        conn.execute(_RESHAPE, reshaped)
    if stale:
        # A slot a past consultation still names (booked, then given back) is kept, blocked:
        # deleting it would break that consultation's history.
        named = select(Consultation.slot_id).where(Consultation.slot_id.in_(stale))
        conn.execute(update(_SLOTS).where(_SLOTS.c.id.in_(named)).values(status="blocked"))
        conn.execute(delete(_SLOTS).where(_SLOTS.c.id.in_(stale), _SLOTS.c.id.not_in(named)))
    if wanted:
        conn.execute(insert(_SLOTS), [
            {"expert_id": expert_id, "start": s, "end": e, "status": status}
            for s, (e, status) in sorted(wanted.items())])


async def extend_horizon(session: AsyncSession, expert_id: int, days: int) -> None:
    """Materialize from now to ``days`` ahead."""
    await session.run_sync(extend_horizon_sync, expert_id, days)


def extend_horizon_sync(session: Session, expert_id: int, days: int) -> None:
    """:func:`extend_horizon` on a synchronous session (``Database.write_sync``)."""
    now = utcnow().replace(second=0, microsecond=0)
    materialize_slots_sync(session, expert_id, now, now + timedelta(days=days))


def book_slot(session: Session, slot_id: int, expert_id: int,
              holder: int | None = None) -> Row[datetime, datetime] | None:
    """Atomically take a free future slot for the consultation ``holder``: its start and end,
    or None if somebody else has it (or it is gone)."""
    return session.connection().execute(_BOOK, _booking(slot_id, expert_id, holder)).first()


def guard_booking(writes: Writes, slot_id: int, expert_id: int, holder: int) -> None:
    """Book the slot for the consultation ``holder`` with the rest of ``writes``, which then
    stands only if the slot was free (its guard returns the slot's start and end)."""
    writes.guard(_BOOK, _booking(slot_id, expert_id, holder))


def _booking(slot_id: int, expert_id: int, holder: int | None) -> dict[str, object]:
    """:data:`_BOOK`'s parameters."""
    return {"b_id": slot_id, "b_expert": expert_id, "b_now": utcnow(), "b_holder": holder}


def release_slot_with(writes: Writes, slot_id: int) -> None:
    """:func:`release_slot` as one of ``writes``."""
    writes.update(_RELEASE, {"b_id": slot_id})


def release_slot(session: Session, slot_id: int | None) -> None:
    """Give a booked slot back (the consultation that held it ended early)."""
    if slot_id is not None:
        session.connection().execute(_RELEASE, {"b_id": slot_id})


# Built once, run with parameters (every booking and every cancellation runs one); an UPDATE's
# parameters may not be named like its columns.
# Over the table, not the mapped class: an ORM UPDATE first looks for the rows in the session
# to synchronize them, which cost more than the statement.
_SLOTS = cast(Table, Slot.__table__)
_BOOK = (update(_SLOTS)
         .where(_SLOTS.c.id == bindparam("b_id"), _SLOTS.c.expert_id == bindparam("b_expert"),
                _SLOTS.c.status == "free", _SLOTS.c.start > bindparam("b_now"))
         .values(status="booked", consultation_id=bindparam("b_holder"))
         .returning(_SLOTS.c.start, _SLOTS.c.end))
_IN_RANGE = (select(_SLOTS.c.id, _SLOTS.c.start, _SLOTS.c.end, _SLOTS.c.status)
             .where(_SLOTS.c.expert_id == bindparam("b_expert"),
                    _SLOTS.c.start >= bindparam("b_start"), _SLOTS.c.start < bindparam("b_end")))
_RESHAPE = (update(_SLOTS).where(_SLOTS.c.id == bindparam("b_id"))
            .values(end=bindparam("b_slot_end"), status=bindparam("b_status")))
_RELEASE = (update(_SLOTS).where(_SLOTS.c.id == bindparam("b_id"), _SLOTS.c.status == "booked")
            .values(status="free", consultation_id=None))
