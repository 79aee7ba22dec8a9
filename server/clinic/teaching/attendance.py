"""Attendance figures from the stays the room recorded (pure: no database here).

A viewer who reconnects, or watches in two tabs, leaves several overlapping or adjacent rows;
the reports count each person once: first join, last leave, and minutes as the length of the
union of their stays (overlaps counted once), rounded to the nearest whole minute (30 s and up
rounds up).

Only the broadcast counts: every stay is clipped to ``[started_at, ended_at or now]`` (the
room opens while the session is still scheduled, so a viewer may wait in it before the
start), and a session that never started (called off) has no attendees. A person with no time
inside the broadcast is not an attendee; for the others, first join and last leave are those
of their clipped stays. A stay still open counts up to ``now`` (or to the session's end once
it has ended).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Stay:
    """One attendance row."""

    user_id: int
    institution_id: int
    joined_at: datetime  # clipped to the broadcast, like left_at and seconds
    left_at: datetime | None


@dataclass(frozen=True)
class Attendee:
    """One person's merged attendance."""

    user_id: int
    institution_id: int  # of their first stay inside the broadcast
    joined_at: datetime  # clipped to the broadcast, like left_at and seconds
    left_at: datetime | None  # None while they are still in the room
    seconds: float

    @property
    def minutes(self) -> int:
        return minutes(self.seconds)


def minutes(seconds: float) -> int:
    """Whole minutes, half a minute rounding up (not banker's rounding)."""
    return int((seconds + 30) // 60)


def union_seconds(intervals: Iterable[tuple[datetime, datetime]]) -> float:
    """Length of the union of the intervals, in seconds (empty or reversed ones count 0)."""
    total = timedelta()
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if current is None or start > current[1]:
            if current is not None:
                total += current[1] - current[0]
            current = (start, end)
        elif end > current[1]:
            current = (current[0], end)
    if current is not None:
        total += current[1] - current[0]
    return total.total_seconds()


def clip(stay: Stay, start: datetime, until: datetime) -> tuple[datetime, datetime] | None:
    """The part of ``stay`` inside ``[start, until]`` (an open stay runs to ``until``), or None
    when it has none (a stay wholly before the start, or after the end, or of no length)."""
    begin = max(stay.joined_at, start)
    end = min(stay.left_at if stay.left_at is not None else until, until)
    return (begin, end) if end > begin else None


def merge(stays: Iterable[Stay], *, started_at: datetime | None, ended_at: datetime | None,
          now: datetime) -> list[Attendee]:
    """One ``Attendee`` per user with time inside the broadcast ``[started_at, ended_at or
    now]``, in order of (clipped) first joining; none when it never started."""
    if started_at is None:
        return []
    until = ended_at if ended_at is not None else now
    by_user: dict[int, list[tuple[Stay, tuple[datetime, datetime]]]] = {}
    for stay in stays:
        inside = clip(stay, started_at, until)
        if inside is not None:
            by_user.setdefault(stay.user_id, []).append((stay, inside))
    people: list[Attendee] = []
    for user_id, rows in by_user.items():
        rows.sort(key=lambda r: (r[1][0], r[0].joined_at))
        still_in = ended_at is None and any(s.left_at is None for s, _ in rows)
        last = None if still_in else max(end for _, (_, end) in rows)
        people.append(Attendee(user_id, rows[0][0].institution_id, rows[0][1][0], last,
                               union_seconds(inside for _, inside in rows)))
    people.sort(key=lambda a: (a.joined_at, a.user_id))
    return people


def by_institution(people: Iterable[Attendee]) -> dict[int, tuple[int, int]]:
    """institution id -> (distinct people, their whole minutes summed)."""
    totals: dict[int, tuple[int, int]] = {}
    for person in people:
        count, mins = totals.get(person.institution_id, (0, 0))
        totals[person.institution_id] = (count + 1, mins + person.minutes)
    return totals
