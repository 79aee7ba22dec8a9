"""The clinical clock as pure arithmetic, against hand-worked cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from yilian.server.clinic.referrals import clock
from yilian.server.clinic.referrals.clock import PointRow
from yilian.server.clinic.referrals.workflow import INTERVALS, MILESTONES

CST = timezone(timedelta(hours=8))


def t(hhmm: str, day: int = 1) -> datetime:
    h, m = hhmm.split(":")
    return datetime(2025, 3, day, int(h), int(m), tzinfo=CST)


def test_door_to_needle_42_minutes_is_met() -> None:
    points = {"door": t("08:12"), "needle": t("08:54")}
    i = clock.intervals("stroke", points, None)["door_to_needle"]
    assert (i.minutes, i.done, i.met, i.target_minutes) == (42.0, True, True, 60)


def test_door_to_needle_past_target_is_not_met() -> None:
    points = {"door": t("08:12"), "needle": t("09:13")}
    i = clock.intervals("stroke", points, None)["door_to_needle"]
    assert (i.minutes, i.done, i.met) == (61.0, True, False)
    exact = clock.intervals("stroke", {"door": t("08:12"), "needle": t("09:12")},
                            None)["door_to_needle"]
    assert (exact.minutes, exact.met) == (60.0, True)  # "within 60" includes 60


def test_seconds_round_to_one_decimal() -> None:
    door = t("08:12")
    points = {"door": door, "ct_done": door + timedelta(minutes=19, seconds=50)}
    assert clock.intervals("stroke", points, None)["door_to_ct"].minutes == 19.8
    points["ct_done"] = door + timedelta(minutes=19, seconds=57)
    assert clock.intervals("stroke", points, None)["door_to_ct"].minutes == 20.0


def test_running_interval_measures_to_now() -> None:
    points = {"door": t("08:12")}
    now = t("08:40")
    i = clock.intervals("stroke", points, now)["door_to_needle"]
    assert (i.minutes, i.done, i.met) == (28.0, False, None)  # running, still in time
    late = clock.intervals("stroke", points, t("09:30"))["door_to_needle"]
    assert (late.minutes, late.done, late.met) == (78.0, False, False)
    stopped = clock.intervals("stroke", points, None)["door_to_needle"]
    assert (stopped.minutes, stopped.done, stopped.met) == (None, False, None)


def test_not_started_interval() -> None:
    i = clock.intervals("stroke", {"needle": t("09:00")}, t("09:30"))["door_to_needle"]
    assert (i.minutes, i.done, i.met) == (None, False, None)


def test_chest_pain_case_worked_by_hand() -> None:
    # First contact 07:05, ECG 07:13 (8 min), request 07:20, accept 07:24, door 08:01,
    # balloon 09:17 (door-to-balloon 76, contact-to-balloon 132 > 120).
    points = {"first_contact": t("07:05"), "first_ecg": t("07:13"), "request": t("07:20"),
              "accept": t("07:24"), "door": t("08:01"), "balloon": t("09:17")}
    got = clock.intervals("chest_pain", points, t("10:00"))
    assert list(got) == [name for name, *_ in INTERVALS["chest_pain"]]
    summary = {k: (v.minutes, v.met) for k, v in got.items()}
    assert summary == {"contact_to_ecg": (8.0, True), "request_to_accept": (4.0, None),
                       "request_to_door": (41.0, None), "door_to_balloon": (76.0, True),
                       "contact_to_balloon": (132.0, False)}


def test_across_midnight_and_zones() -> None:
    door = datetime(2025, 3, 1, 23, 50, tzinfo=CST)
    needle = datetime(2025, 3, 1, 16, 35, tzinfo=UTC)  # 00:35 next day in Beijing
    i = clock.intervals("stroke", {"door": door, "needle": needle}, None)["door_to_needle"]
    assert (i.minutes, i.met) == (45.0, True)


def test_corrections_newest_unsuperseded_row_wins() -> None:
    rows = [PointRow(1, "door", t("08:12")), PointRow(2, "needle", t("08:50")),
            PointRow(3, "door", t("08:10"), corrects_id=1),
            PointRow(4, "needle", t("08:52"), corrects_id=2),
            PointRow(5, "door", t("08:11"), corrects_id=3)]
    assert clock.superseded_ids(rows) == {1, 2, 3}
    current = clock.current_rows(reversed(rows))
    assert {k: v.id for k, v in current.items()} == {"door": 5, "needle": 4}
    points = clock.current_points(rows, {})
    assert clock.intervals("stroke", points, None)["door_to_needle"].minutes == 41.0


def test_transition_points_fall_back_to_columns() -> None:
    columns = {"requested_at": t("07:00"), "accepted_at": t("07:03"), "arrived_at": t("07:45"),
               "onset_at": None, "departed_at": None}
    points = clock.current_points([], columns)
    assert points == {"request": t("07:00"), "accept": t("07:03"), "door": t("07:45")}
    rows = [PointRow(9, "door", t("07:40"))]
    assert clock.current_points(rows, columns)["door"] == t("07:40")  # a row wins
    got = clock.intervals(None, points, None)
    assert (got["request_to_accept"].minutes, got["request_to_door"].minutes) == (3.0, 45.0)


def test_points_of_each_channel() -> None:
    assert clock.points_of(None) == ("request", "accept", "departure", "door")
    for channel, points in MILESTONES.items():
        assert clock.points_of(channel) == points
        for _, start, end, _ in INTERVALS[channel]:
            assert start in points and end in points, (channel, start, end)


def test_met_is_judged_on_the_exact_time() -> None:
    door = t("08:00")
    points = {"door": door, "needle": door + timedelta(minutes=60, seconds=2)}
    i = clock.intervals("stroke", points, None)["door_to_needle"]
    assert (i.minutes, i.met) == (60.0, False)
    assert clock.minutes_between(door + timedelta(minutes=5), door) == -5.0
