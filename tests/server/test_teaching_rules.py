"""Pure rules of teaching sessions: transitions, the start window, attendance merging, CSV,
signed recording links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yilian.server.clinic.teaching import attendance, recordings, workflow
from yilian.server.clinic.teaching.attendance import Stay
from yilian.server.clinic.teaching.workflow import Roles
from yilian.server.core.errors import Forbidden, InvalidTransition, ValidationFailed

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PRESENTER = Roles(presenter=True, organiser=False, invited=False, overseer=False)
ORGANISER = Roles(presenter=False, organiser=True, invited=False, overseer=False)
VIEWER = Roles(presenter=False, organiser=False, invited=True, overseer=False)
OVERSEER = Roles(presenter=False, organiser=False, invited=False, overseer=True)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_transitions_table() -> None:
    assert workflow.transition("scheduled", "start") == "live"
    assert workflow.transition("scheduled", "end") == "ended"
    assert workflow.transition("live", "end") == "ended"
    for status, action in (("live", "start"), ("ended", "start"), ("ended", "end")):
        with pytest.raises(InvalidTransition) as err:
            workflow.transition(status, action)
        assert err.value.code == "invalid_transition" and status in err.value.message


def test_only_the_presenter_starts_within_the_window() -> None:
    start, end = at(60), at(120)
    workflow.check_start(PRESENTER, "scheduled", start, end, at(30))  # 30 min early: fine
    workflow.check_start(PRESENTER, "scheduled", start, end, at(119))
    for who in (ORGANISER, VIEWER, OVERSEER):
        with pytest.raises(Forbidden):
            workflow.check_start(who, "scheduled", start, end, at(60))
    with pytest.raises(InvalidTransition) as early:
        workflow.check_start(PRESENTER, "scheduled", start, end, at(29))
    assert early.value.code == "too_early"
    with pytest.raises(InvalidTransition) as late:
        workflow.check_start(PRESENTER, "scheduled", start, end, at(120))
    assert late.value.code == "too_late"
    with pytest.raises(InvalidTransition) as again:
        workflow.check_start(PRESENTER, "live", start, end, at(60))
    assert again.value.code == "invalid_transition"


def test_end_and_edit_rights() -> None:
    workflow.check_end(PRESENTER, "live")
    workflow.check_end(ORGANISER, "scheduled")
    for who in (VIEWER, OVERSEER):
        with pytest.raises(Forbidden):
            workflow.check_end(who, "live")
        with pytest.raises(Forbidden):
            workflow.check_edit(who, "scheduled")
    with pytest.raises(InvalidTransition):
        workflow.check_edit(ORGANISER, "live")
    assert VIEWER.watcher and not VIEWER.manager
    assert OVERSEER.visible and OVERSEER.manager and not OVERSEER.watcher


def test_window_checks() -> None:
    workflow.check_window(at(0), at(720))
    for start, end in ((at(0), at(0)), (at(10), at(0)), (at(0), at(721))):
        with pytest.raises(ValidationFailed) as err:
            workflow.check_window(start, end)
        assert err.value.code == "invalid_window"


@pytest.mark.parametrize("object_id,expected", [
    ("7", 7), ("2147483647", 2147483647), ("07", None), ("+7", None), ("٧", None), ("", None),
    ("2147483648", None), ("7a", None)])
def test_room_ids_are_canonical(object_id: str, expected: int | None) -> None:
    assert workflow.session_id(object_id) == expected


def test_union_of_intervals() -> None:
    assert attendance.union_seconds([]) == 0
    assert attendance.union_seconds([(at(0), at(10))]) == 600
    # overlapping, nested, adjacent and reversed
    assert attendance.union_seconds([(at(0), at(10)), (at(5), at(15)), (at(6), at(7)),
                                     (at(15), at(20)), (at(30), at(25))]) == 1200
    assert attendance.union_seconds([(at(30), at(40)), (at(0), at(10))]) == 1200


def test_merge_reconnects_first_join_last_leave_union_minutes() -> None:
    stays = [
        Stay(1, 10, at(0), at(10)),
        Stay(1, 10, at(12), at(30)),   # reconnect after a 2-minute gap
        Stay(1, 10, at(20), at(25)),   # a second tab inside the stay
        Stay(2, 20, at(5), None),      # still in the room
        Stay(3, 20, at(1), at(1.4)),   # 24 s: rounds down to 0
        Stay(4, 10, at(2), at(2.5)),   # 30 s: rounds up to 1
    ]
    people = attendance.merge(stays, started_at=at(0), ended_at=None, now=at(35))
    assert [p.user_id for p in people] == [1, 3, 4, 2]
    first = people[0]
    assert (first.joined_at, first.left_at, first.minutes) == (at(0), at(30), 28)
    open_one = people[-1]
    assert (open_one.left_at, open_one.minutes) == (None, 30)
    assert [p.minutes for p in people[1:3]] == [0, 1]
    assert attendance.by_institution(people) == {10: (2, 29), 20: (2, 30)}


def test_merge_counts_only_the_broadcast() -> None:
    stays = [
        Stay(1, 10, at(-30), at(10)),     # opened the page half an hour early
        Stay(2, 10, at(-30), at(-1)),     # only waited before the start: not an attendee
        Stay(3, 20, at(-1440), None),     # a day early, still open: runs to the end
        Stay(4, 20, at(50), at(70)),      # a row left past the end counts up to it
        Stay(5, 10, at(-5), at(0.2)),     # 12 s inside: listed, 0 minutes
        Stay(6, 10, at(-5), at(0)),       # left exactly at the start: nothing inside
        Stay(2, 20, at(-20), at(-10)),    # user 2 again, still before the start
    ]
    people = attendance.merge(stays, started_at=at(0), ended_at=at(60), now=at(100))
    assert [(p.user_id, p.joined_at, p.left_at, p.minutes) for p in people] == [
        (1, at(0), at(10), 10), (3, at(0), at(60), 60), (5, at(0), at(0.2), 0),
        (4, at(50), at(60), 10)]
    assert attendance.by_institution(people) == {10: (2, 10), 20: (2, 70)}
    # live: clipped to now; an open stay is still in the room
    live = attendance.merge(stays, started_at=at(0), ended_at=None, now=at(30))
    assert [(p.user_id, p.left_at, p.minutes) for p in live] == [
        (1, at(10), 10), (3, None, 30), (5, at(0.2), 0)]
    # the institution of the first stay inside the broadcast, not of an earlier wait
    moved = attendance.merge([Stay(7, 10, at(-9), at(-2)), Stay(7, 20, at(1), at(3))],
                             started_at=at(0), ended_at=at(60), now=at(60))
    assert [(p.institution_id, p.joined_at, p.minutes) for p in moved] == [(20, at(1), 2)]
    # reconnects across the start: the union of the clipped stays
    across = attendance.merge([Stay(8, 10, at(-10), at(5)), Stay(8, 10, at(3), at(8)),
                               Stay(8, 10, at(-20), at(-15))],
                              started_at=at(0), ended_at=at(60), now=at(60))
    assert [(p.joined_at, p.left_at, p.minutes) for p in across] == [(at(0), at(8), 8)]


def test_a_session_that_never_started_has_no_attendees() -> None:
    stays = [Stay(1, 10, at(-30), at(10)), Stay(2, 20, at(-5), None)]
    for ended in (None, at(20)):
        people = attendance.merge(stays, started_at=None, ended_at=ended, now=at(30))
        assert people == [] and attendance.by_institution(people) == {}
    assert attendance.clip(stays[1], at(0), at(30)) == (at(0), at(30))
    assert attendance.clip(stays[0], at(10), at(30)) is None


def test_signed_links_bind_recording_user_and_expiry() -> None:
    secret, now = "s3cret", datetime.now(UTC)
    url = recordings.signed_url(secret, 5, 9, now)
    query = dict(p.split("=") for p in url.split("?")[1].split("&"))
    exp, sig = int(query["exp"]), query["sig"]
    assert url.startswith("/api/teaching-recordings/5?") and query["uid"] == "9"
    assert exp == int((now + recordings.LINK_TTL).timestamp())
    recordings.check_link(secret, 5, 9, exp, sig, now)
    recordings.check_link(secret, 5, 9, exp, sig.upper(), now)
    for args in ((6, 9, exp, sig), (5, 8, exp, sig), (5, 9, exp + 1, sig),
                 (5, 9, exp, "0" * 64)):
        with pytest.raises(Forbidden) as bad:
            recordings.check_link(secret, *args, now)
        assert bad.value.code == "invalid_link"
    with pytest.raises(Forbidden) as other_secret:
        recordings.check_link("other", 5, 9, exp, sig, now)
    assert other_secret.value.code == "invalid_link"
    with pytest.raises(Forbidden) as expired:
        recordings.check_link(secret, 5, 9, exp, sig, now + recordings.LINK_TTL)
    assert expired.value.code == "link_expired"
