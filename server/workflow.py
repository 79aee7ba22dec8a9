"""The consultation state machine, as pure code: a table of allowed transitions."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.errors import InvalidTransition

KINDS = ("video", "outpatient", "imaging", "pathology")
URGENCIES = ("routine", "urgent", "emergency")
STATES = (
    "requested", "accepted", "in_progress", "completed",
    "declined", "cancelled", "no_show", "expired",
)
TERMINAL = frozenset({"completed", "declined", "cancelled", "no_show", "expired"})

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


URGENCY_RANK = {"emergency": 0, "urgent": 1, "routine": 2}
