"""The consultation rules, as pure code: its states and the table of allowed transitions,
who may take each, which states allow what, deadlines and urgency order. Each is stated
once, here; the service (``consultations``, ``reports``) and the HTTP layer only use them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, get_args

from yilian.server.core.errors import InvalidTransition

Kind = Literal["video", "outpatient", "imaging", "pathology"]
Urgency = Literal["routine", "urgent", "emergency"]
State = Literal[
    "requested", "accepted", "in_progress", "completed",
    "declined", "cancelled", "no_show", "expired",
]
STATES: tuple[str, ...] = get_args(State)
TERMINAL = frozenset({"completed", "declined", "cancelled", "no_show", "expired"})
#: The consultation is still going to happen: its video room is open to its participants.
OPEN = ("requested", "accepted", "in_progress")
#: It will not take place: nothing more can be shared with it.
CALLED_OFF = ("declined", "cancelled", "expired", "no_show")
#: The expert may write (or correct) the report.
REPORT_WRITABLE = ("in_progress", "completed")
#: Kinds that happen live, so an accepted request needs a slot (except emergencies).
SLOT_REQUIRED_KINDS = ("video", "outpatient")

# action -> {from_state: to_state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "accept": {"requested": "accepted"},
    "decline": {"requested": "declined"},
    "cancel": {"requested": "cancelled", "accepted": "cancelled"},
    "expire": {"requested": "expired"},
    "start": {"accepted": "in_progress"},
    "no_show": {"accepted": "no_show"},
    "complete": {"in_progress": "completed"},
}

# How long a request may wait for an expert to accept it.
ACCEPT_WINDOW = {
    "emergency": timedelta(hours=1),
    "urgent": timedelta(hours=12),
    "routine": timedelta(hours=72),
}

_PAST = {
    "accept": "accept", "decline": "decline", "cancel": "cancel", "expire": "expire",
    "start": "start", "no_show": "mark as no-show", "complete": "complete",
}


def next_state(current: str, action: str) -> str:
    """The state ``action`` leads to from ``current``, or raise InvalidTransition."""
    try:
        table = TRANSITIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None
    if current not in table:
        allowed = sorted(table)
        raise InvalidTransition(
            f'cannot {_PAST[action]} a consultation in state "{current}"',
            details={"status": current, "action": action, "allowed_from": allowed},
        )
    return table[current]


def deadline_for(urgency: str, created_at: datetime, slot_start: datetime | None) -> datetime:
    """When an unaccepted request expires: its urgency's window, or the slot's start if sooner."""
    deadline = created_at + ACCEPT_WINDOW[urgency]
    if slot_start is not None and slot_start < deadline:
        return max(slot_start, created_at)
    return deadline


#: Queue order: the most urgent first.
URGENCY_RANK = {"emergency": 0, "urgent": 1, "routine": 2}

#: Who may take each action: the assigned expert (or, while unassigned, a specialist the
#: queue reaches), the requester, either participant, or the assigned expert only.
Actor = Literal["responder", "requester", "participant", "expert"]
ACTORS: dict[str, Actor] = {
    "accept": "responder", "decline": "responder", "cancel": "requester",
    "start": "participant", "no_show": "expert", "complete": "expert",
}
_ACTOR_TEXT = {
    "responder": "only the assigned expert may {action} this consultation",
    "requester": "only the requester may {action} this consultation",
    "participant": "only the requester or the expert may {action} the consultation",
    "expert": "only the expert may {action} this consultation",
}


def may_act(action: str, user_id: int, requester_id: int, expert_id: int | None,
            reaches_queue: bool) -> bool:
    """Whether this user may take ``action`` (``reaches_queue``: an unassigned request is in
    a queue of theirs)."""
    actor = ACTORS[action]
    if actor == "responder":
        return expert_id == user_id if expert_id is not None else reaches_queue
    if actor == "requester":
        return user_id == requester_id
    if actor == "participant":
        return user_id in (requester_id, expert_id)
    return user_id == expert_id


def actor_refusal(action: str) -> str:
    """The message of a 403 for someone who may not take ``action``."""
    return _ACTOR_TEXT[ACTORS[action]].format(action=action.replace("_", "-"))
