"""The teaching session's rules as pure code: kinds, states, transitions and who may act.

States: ``scheduled`` -> ``live`` (the presenter starts it) -> ``ended`` (the presenter or the
organiser ends it, or the sweep does hours after its end when the presenter never came back);
``scheduled`` -> ``ended`` calls a session off without it ever starting.

Starting is allowed from ``START_EARLY`` before the scheduled start (the presenter checks the
picture and the viewers gather) until the scheduled end; a session not started by its end can
only be ended (called off), and the sweep does that after ``ABANDON_AFTER``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from yilian.server.core.errors import Forbidden, InvalidTransition, ValidationFailed
from yilian.server.core.models import CLINICAL_ROLES, User
from yilian.server.core.schemas import MAX_ID, ascii_int

KINDS = ("rounds", "lecture", "surgery_demo", "training")
STATES = ("scheduled", "live", "ended")
#: Where each action may start from, and where it leads.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"scheduled"}), "live"),
    "end": (frozenset({"scheduled", "live"}), "ended"),
}
#: Rooms of these sessions may be joined (viewers gather before it goes live).
OPEN = ("scheduled", "live")
#: Roles that may organise a session (the presenter must hold a clinical role).
ORGANISER_ROLES = (*CLINICAL_ROLES, "coordinator", "admin")
#: How early before its scheduled start the presenter may go live.
START_EARLY = timedelta(minutes=30)
#: A session still live (presenter gone) or never started this long after its scheduled end
#: is ended by the sweep.
ABANDON_AFTER = timedelta(hours=3)
#: The reminder goes to the invited sites this long before the start.
REMIND_BEFORE = timedelta(minutes=15)
#: Longest session one may schedule.
MAX_DURATION = timedelta(hours=12)


@dataclass(frozen=True)
class Roles:
    """How one user stands to one session (computed by the service from the rows)."""

    presenter: bool
    organiser: bool
    invited: bool  # the user's institution is invited
    overseer: bool  # an admin, or a coordinator of the organising institution's alliances

    @property
    def watcher(self) -> bool:
        """May join the room, read the questions and replay the recordings."""
        return self.presenter or self.organiser or self.invited

    @property
    def visible(self) -> bool:
        return self.watcher or self.overseer

    @property
    def manager(self) -> bool:
        """May read attendance and its exports."""
        return self.presenter or self.organiser or self.overseer


def session_id(object_id: str) -> int | None:
    """The id in ``teaching:<id>`` written canonically (ASCII digits, no sign, no leading zero)
    so that one session has one room."""
    return None if object_id.startswith("0") else ascii_int(object_id, 1, MAX_ID)


def transition(status: str, action: str) -> str:
    """The state ``action`` leads to from ``status``; raise ``InvalidTransition`` if none."""
    allowed, target = TRANSITIONS[action]
    if status not in allowed:
        raise InvalidTransition(f'cannot {action} a teaching session in state "{status}"',
                                details={"status": status, "action": action})
    return target


def check_start(roles: Roles, status: str, start: datetime, end: datetime,
                now: datetime) -> None:
    """Only the presenter starts, from ``START_EARLY`` before the start until the end."""
    if not roles.presenter:
        raise Forbidden("only the presenter may start a teaching session")
    transition(status, "start")
    if now < start - START_EARLY:
        raise InvalidTransition(
            f"the session may start at most {int(START_EARLY.total_seconds() // 60)} minutes "
            "before its scheduled start", code="too_early",
            details={"earliest": (start - START_EARLY).isoformat()})
    if now >= end:
        raise InvalidTransition("the session's scheduled end has passed; schedule a new one",
                                code="too_late", details={"end": end.isoformat()})


def check_end(roles: Roles, status: str) -> None:
    """The presenter or the organiser ends (or calls off) a session."""
    if not (roles.presenter or roles.organiser):
        raise Forbidden("only the presenter or the organiser may end a teaching session")
    transition(status, "end")


def check_edit(roles: Roles, status: str) -> None:
    """The organiser or presenter changes a session while it is still scheduled."""
    if not (roles.presenter or roles.organiser):
        raise Forbidden("only the organiser or the presenter may change a teaching session")
    if status != "scheduled":
        raise InvalidTransition(f'cannot change a teaching session in state "{status}"',
                                details={"status": status})


def check_window(start: datetime, end: datetime) -> None:
    """A session ends after it starts and lasts at most ``MAX_DURATION``."""
    if end <= start:
        raise ValidationFailed("the end must be after the start", code="invalid_window")
    if end - start > MAX_DURATION:
        raise ValidationFailed(
            f"a session lasts at most {int(MAX_DURATION.total_seconds() // 3600)} hours",
            code="invalid_window")


def may_organise(user: User) -> bool:
    return user.role in ORGANISER_ROLES


def may_present(user: User) -> bool:
    """Presenting is clinical teaching: an active clinical user."""
    return user.active and user.role in CLINICAL_ROLES
