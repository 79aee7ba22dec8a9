"""The consultation state machine, tested on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yilian.server.clinic.workflow import STATES, TERMINAL, TRANSITIONS, deadline_for, next_state
from yilian.server.core.errors import InvalidTransition


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("requested", "accept", "accepted"),
        ("requested", "decline", "declined"),
        ("requested", "cancel", "cancelled"),
        ("requested", "expire", "expired"),
        ("accepted", "start", "in_progress"),
        ("accepted", "cancel", "cancelled"),
        ("accepted", "no_show", "no_show"),
        ("in_progress", "complete", "completed"),
    ],
)
def test_allowed_transitions(state: str, action: str, expected: str) -> None:
    assert next_state(state, action) == expected


def test_every_other_pair_is_refused_with_the_state_named() -> None:
    allowed = {(s, a) for a, table in TRANSITIONS.items() for s in table}
    refused = 0
    for state in STATES:
        for action in TRANSITIONS:
            if (state, action) in allowed:
                continue
            with pytest.raises(InvalidTransition) as info:
                next_state(state, action)
            assert f'state "{state}"' in info.value.message
            assert info.value.status == 409 and info.value.code == "invalid_transition"
            refused += 1
    assert refused == len(STATES) * len(TRANSITIONS) - len(allowed)


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL:
        assert all(state not in table for table in TRANSITIONS.values())


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        next_state("requested", "teleport")


def test_deadline_by_urgency_and_slot() -> None:
    now = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    assert deadline_for("routine", now, None) == now + timedelta(hours=72)
    assert deadline_for("urgent", now, None) == now + timedelta(hours=12)
    assert deadline_for("emergency", now, None) == now + timedelta(hours=1)
    soon = now + timedelta(hours=3)
    assert deadline_for("routine", now, soon) == soon
    assert deadline_for("emergency", now, soon) == now + timedelta(hours=1)
