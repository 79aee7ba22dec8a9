"""The receiving departments' on-call rosters: 12-hour day (08:00–20:00) and night
(20:00–08:00) shifts, Beijing time, from a week before the demo was loaded to four weeks after.

Each department's team takes the shifts in turn; the first person listed holds the shift in
which the demo was loaded, and every third shift from it (every 36 hours, day and night in
turn). So ``county`` (Dr. Lin Weiming) is on call for Dianbai cardiology right after loading,
and a chest-pain referral a demo user raises then alerts him."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import OnCallShift
from yilian.server.core.models import Institution, User
from yilian.server.demo.alliance import department

ZONE = ZoneInfo("Asia/Shanghai")
SHIFT = timedelta(hours=12)
#: local hours at which shifts change
CHANGEOVER = (8, 20)
BEFORE, AFTER = timedelta(days=7), timedelta(days=28)

# institution key, department specialty, team in turn (first: the shift at load), roster keeper
ROSTERS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("dianbai", "cardiology", ("county", "county_cardiology_ye", "county_cardiology_zhong"),
     "coordinator"),
    ("dianbai", "neurology", ("county_neurology_xie", "county_neurology_guo", "county_neurology"),
     "coordinator"),
    ("dianbai", "emergency", ("county_emergency_rao", "county_emergency_deng",
                              "county_emergency"), "coordinator"),
    ("maoming", "neurology", ("maoming_neurology_ke", "maoming_neurology_yang",
                              "maoming_neurology"), "coordinator"),
    ("yangshuo", "neurosurgery", ("yangshuo_neurosurgery", "yangshuo_neurosurgery_ou",
                                  "yangshuo_neurosurgery_head"), "guilin_coordinator"),
    ("guilin", "neurosurgery", ("guilin_neurosurgery_nong", "guilin_neurosurgery_liu",
                                "guilin_neurosurgery"), "guilin_coordinator"),
]


def shift_start(at: datetime) -> datetime:
    """The start of the shift that ``at`` falls in (an 08:00 or 20:00 Beijing time)."""
    local = at.astimezone(ZONE)
    hour = max((h for h in CHANGEOVER if h <= local.hour), default=None)
    start = local.replace(hour=hour if hour is not None else CHANGEOVER[-1], minute=0, second=0,
                          microsecond=0)
    if hour is None:
        start -= timedelta(days=1)
    return start.astimezone(UTC)


@dataclass
class Rosters:
    """Who is on call when, per department id (the rows written, kept for the stories)."""

    anchor: datetime  # start of the shift the demo was loaded in
    teams: dict[int, list[User]]

    def shift_index(self, at: datetime) -> int:
        """Which shift ``at`` falls in, counted from the one the demo was loaded in."""
        return (shift_start(at) - self.anchor) // SHIFT

    def on_call(self, department_id: int, at: datetime) -> User:
        """Who holds the department's shift at ``at``."""
        team = self.teams[department_id]
        return team[self.shift_index(at) % len(team)]

    def shift_of(self, department_id: int, user: User, *, ending_before: datetime,
                 lasting: timedelta) -> datetime:
        """The start of ``user``'s latest shift at the department with ``lasting`` of it over
        before ``ending_before`` (a case placed there happens while they are on call)."""
        start = shift_start(ending_before - lasting)
        while self.on_call(department_id, start) is not user:
            start -= SHIFT
        return start


def write_rosters(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
                  now: datetime) -> Rosters:
    """Add every department's shifts, covering ``now - BEFORE`` to ``now + AFTER``."""
    anchor = shift_start(now)
    first = -(-BEFORE // SHIFT)  # shifts before the anchor's, rounded up
    count = first + -(-(AFTER + SHIFT) // SHIFT)
    rosters = Rosters(anchor=anchor, teams={})
    for ikey, specialty, team, keeper in ROSTERS:
        dept = department(inst[ikey], specialty)
        people = [users[u] for u in team]
        rosters.teams[dept.id] = people
        for k in range(-first, count - first):
            start = anchor + k * SHIFT
            session.add(OnCallShift(department_id=dept.id, user_id=people[k % len(people)].id,
                                    start=start, end=start + SHIFT,
                                    created_by_id=users[keeper].id,
                                    created_at=now - BEFORE - timedelta(days=3)))
    return rosters
