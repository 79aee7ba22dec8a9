"""Attendance figures from the stays the room recorded (pure: no database here).

A viewer who reconnects, or watches in two tabs, leaves several overlapping or adjacent rows;
the reports count each person once: first join, last leave, and minutes as the length of the
union of their stays (overlaps counted once), rounded to the nearest whole minute (30 s and up
rounds up). A stay still open counts up to ``now`` (or to the session's end once it has ended).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Stay:
    """One attendance row."""

    user_id: int
    institution_id: int
    joined_at: datetime
    left_at: datetime | None


@dataclass(frozen=True)
class Attendee:
    """One person's merged attendance."""

    user_id: int
    institution_id: int  # of their first stay
    joined_at: datetime
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


def merge(stays: Iterable[Stay], until: datetime) -> list[Attendee]:
    """One ``Attendee`` per user, in order of first joining; open stays count to ``until``."""
    by_user: dict[int, list[Stay]] = {}
    for stay in stays:
        by_user.setdefault(stay.user_id, []).append(stay)
    people: list[Attendee] = []
    for user_id, rows in by_user.items():
        rows.sort(key=lambda s: s.joined_at)
        still_in = any(s.left_at is None for s in rows)
        last = None if still_in else max(s.left_at for s in rows if s.left_at is not None)
        seconds = union_seconds((s.joined_at, s.left_at if s.left_at is not None else until)
                                for s in rows)
        people.append(Attendee(user_id, rows[0].institution_id, rows[0].joined_at, last,
                               seconds))
    people.sort(key=lambda a: (a.joined_at, a.user_id))
    return people


def by_institution(people: Iterable[Attendee]) -> dict[int, tuple[int, int]]:
    """institution id -> (distinct people, their whole minutes summed)."""
    totals: dict[int, tuple[int, int]] = {}
    for person in people:
        count, mins = totals.get(person.institution_id, (0, 0))
        totals[person.institution_id] = (count + 1, mins + person.minutes)
    return totals


#: Formula characters a spreadsheet would execute at the start of a cell.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a BOM (so Excel on a Chinese Windows reads it as UTF-8), CRLF lines, and
    cells that would start a formula defused with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
