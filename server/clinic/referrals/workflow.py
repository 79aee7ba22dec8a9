"""The referral rules, as pure code: states, the table of allowed transitions, who may take
each, and the clinical time points each green channel keeps. Stated once, here; the service
and the HTTP layer only use them (the interval arithmetic is in ``clock``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, get_args

from yilian.server.core.errors import InvalidTransition

Direction = Literal["up", "down"]
GreenChannel = Literal["stroke", "chest_pain", "trauma", "maternal", "neonatal"]
State = Literal["requested", "accepted", "rejected", "in_transit", "arrived", "completed",
                "cancelled", "expired"]
STATES: tuple[str, ...] = get_args(State)
GREEN_CHANNELS: tuple[str, ...] = get_args(GreenChannel)
TERMINAL = frozenset({"rejected", "completed", "cancelled", "expired"})
#: Still moving: it belongs in the inboxes' working lists.
OPEN = ("requested", "accepted", "in_transit", "arrived")

# action -> {from_state: to_state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "accept": {"requested": "accepted"},
    "reject": {"requested": "rejected"},
    # the patient leaves the referring site
    "depart": {"accepted": "in_transit"},
    # the patient is at the receiving door (an ambulance the receiving side sent, or a patient
    # who came by themselves, arrives without a recorded departure)
    "arrive": {"accepted": "arrived", "in_transit": "arrived"},
    "complete": {"arrived": "completed"},
    "cancel": {"requested": "cancelled", "accepted": "cancelled", "in_transit": "cancelled"},
    "expire": {"requested": "expired"},
}
ACTIONS: tuple[str, ...] = tuple(TRANSITIONS)

#: Who may take each action: the receiving team (clinical staff of the receiving institution),
#: the referring team (clinical staff of the referring institution), either, or the system.
Actor = Literal["receiving", "referring", "either", "system"]
ACTORS: dict[str, Actor] = {
    "accept": "receiving", "reject": "receiving", "depart": "referring",
    "arrive": "receiving", "complete": "receiving", "cancel": "referring", "expire": "system",
}

#: The column of ``referrals`` each state's arrival stamps (who is in ``referral_events``).
STAMPS: dict[str, str] = {
    "accepted": "accepted_at", "in_transit": "departed_at", "arrived": "arrived_at",
    "completed": "completed_at",
}

# How long a referral may wait for the receiving side to accept it.
ACCEPT_WINDOW = {
    "green_channel": timedelta(hours=1),
    "up": timedelta(hours=48),
    "down": timedelta(hours=72),
}

_VERB = {"accept": "accept", "reject": "reject", "depart": "record the departure of",
         "arrive": "record the arrival of", "complete": "complete", "cancel": "cancel",
         "expire": "expire"}


def next_state(current: str, action: str) -> str:
    """The state ``action`` leads to from ``current``, or raise InvalidTransition (409)."""
    try:
        table = TRANSITIONS[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None
    if current not in table:
        raise InvalidTransition(
            f'cannot {_VERB[action]} a referral in state "{current}"',
            details={"status": current, "action": action, "allowed_from": sorted(table)},
        )
    return table[current]


def accept_window(direction: str, green_channel: str | None) -> timedelta:
    """How long the request waits for an answer before it expires."""
    return ACCEPT_WINDOW["green_channel" if green_channel else direction]


# --- the clinical clock --------------------------------------------------------------------

#: Time points that are the referral's own transitions or fields: recorded by the transition
#: (or at creation), correctable through the milestones route like any other.
TRANSITION_POINTS: dict[str, str] = {
    "onset": "onset_at", "request": "requested_at", "accept": "accepted_at",
    "departure": "departed_at", "door": "arrived_at",
}

#: The time points each green channel keeps, in clinical order. The receiving team records
#: the clinical ones with one tap; the transition ones come from the workflow.
MILESTONES: dict[str, tuple[str, ...]] = {
    "stroke": ("onset", "request", "accept", "departure", "door", "ct_done", "needle",
               "puncture"),
    "chest_pain": ("onset", "first_contact", "first_ecg", "request", "accept", "departure",
                   "door", "cath_lab_activated", "balloon"),
    "trauma": ("onset", "first_contact", "request", "accept", "departure", "door", "ct_done",
               "surgery"),
    "maternal": ("onset", "first_contact", "request", "accept", "departure", "door",
                 "surgery"),
    "neonatal": ("onset", "first_contact", "request", "accept", "departure", "door",
                 "nicu_admitted"),
}
#: Every time point any channel keeps that is recorded through the milestones route.
CLINICAL_POINTS: frozenset[str] = frozenset(
    m for ms in MILESTONES.values() for m in ms if m not in TRANSITION_POINTS)
ALL_POINTS: frozenset[str] = frozenset(m for ms in MILESTONES.values() for m in ms)

#: name -> (from point, to point, target minutes or None), per channel, in display order.
#: Targets: national practice for stroke centres (door-to-CT ≤ 25, door-to-needle ≤ 60,
#: door-to-puncture ≤ 90 min) and chest-pain centres (first contact to ECG ≤ 10,
#: door-to-balloon ≤ 90, first contact to balloon ≤ 120 min).
INTERVALS: dict[str, tuple[tuple[str, str, str, int | None], ...]] = {
    "stroke": (
        ("request_to_accept", "request", "accept", None),
        ("request_to_door", "request", "door", None),
        ("onset_to_door", "onset", "door", None),
        ("door_to_ct", "door", "ct_done", 25),
        ("door_to_needle", "door", "needle", 60),
        ("door_to_puncture", "door", "puncture", 90),
        ("onset_to_needle", "onset", "needle", 270),
    ),
    "chest_pain": (
        ("contact_to_ecg", "first_contact", "first_ecg", 10),
        ("request_to_accept", "request", "accept", None),
        ("request_to_door", "request", "door", None),
        ("door_to_balloon", "door", "balloon", 90),
        ("contact_to_balloon", "first_contact", "balloon", 120),
    ),
    "trauma": (
        ("request_to_accept", "request", "accept", None),
        ("request_to_door", "request", "door", None),
        ("door_to_ct", "door", "ct_done", None),
        ("door_to_surgery", "door", "surgery", None),
    ),
    "maternal": (
        ("request_to_accept", "request", "accept", None),
        ("request_to_door", "request", "door", None),
        ("door_to_surgery", "door", "surgery", None),
    ),
    "neonatal": (
        ("request_to_accept", "request", "accept", None),
        ("request_to_door", "request", "door", None),
        ("door_to_nicu", "door", "nicu_admitted", None),
    ),
    # an ordinary referral keeps the workflow's own clock
    "": (
        ("request_to_accept", "request", "accept", None),
        ("request_to_door", "request", "door", None),
    ),
}

#: The transition a transition point is first recorded by: tapping "door" on a referral that
#: is on its way is the arrival itself (at the time given). Later, the point is corrected.
POINT_ACTIONS: dict[str, str] = {"accept": "accept", "departure": "depart", "door": "arrive"}

#: Who records which time points. The referring team keeps its side of the clock (onset, first
#: medical contact, first ECG; the departure is its transition); the receiving team everything
#: it sees happen, and onset / first contact / first ECG too (it may learn them on arrival).
#: ``request`` is the server's own record of when the referral came in: nobody changes it.
REFERRING_POINTS = frozenset({"onset", "first_contact", "first_ecg", "departure"})
RECEIVING_POINTS = frozenset(ALL_POINTS - {"request", "departure"})

#: A time point may not be later than now by more than a clock's skew...
CLOCK_SKEW = timedelta(minutes=2)
#: ... nor earlier than the request by more than this (onset excepted: it is before, often).
BEFORE_REQUEST = timedelta(days=1)

#: A downward referral's follow-up falls due this long after the patient arrives (until the
#: arrival, this long after the request), unless the referring doctor sets a date.
FOLLOW_UP_AFTER = timedelta(days=7)


def side_may_record(side: str, point: str) -> bool:
    """Whether the ``"referring"`` or ``"receiving"`` team records (or corrects) ``point``."""
    return point in (REFERRING_POINTS if side == "referring" else RECEIVING_POINTS)
