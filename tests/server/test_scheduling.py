"""Slot generation from weekly rules and exceptions (pure), and its persistence via the API."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from yilian.server.clinic.scheduling import Block, Window, generate_slots

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday


def test_weekly_rule_in_shanghai_time() -> None:
    w = Window(0, time(9, 0), time(12, 0), 30, "Asia/Shanghai")
    slots = generate_slots([w], [], MONDAY - timedelta(days=1), MONDAY + timedelta(days=7))
    starts = sorted(slots)
    assert len(starts) == 6
    # 09:00 in Shanghai is 01:00 UTC
    assert starts[0] == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    assert slots[starts[-1]][0] == datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    assert all(status == "free" for _, status in slots.values())


def test_leave_blocks_and_extra_adds() -> None:
    w = Window(0, time(9, 0), time(10, 0), 30, "Asia/Shanghai")
    leave = Block("leave", datetime(2026, 11, 30, 1, 15, tzinfo=UTC),
                  datetime(2026, 11, 30, 1, 45, tzinfo=UTC))
    extra = Block("extra", datetime(2026, 12, 1, 6, 0, tzinfo=UTC),
                  datetime(2026, 12, 1, 7, 0, tzinfo=UTC), 20)
    slots = generate_slots([w], [leave, extra], MONDAY, MONDAY + timedelta(days=7))
    assert [slots[s][1] for s in sorted(slots)[:2]] == ["blocked", "blocked"]
    extras = [s for s in slots if s.day == 1]
    assert len(extras) == 3 and all(slots[s][1] == "free" for s in extras)


def test_slots_straddling_the_range_are_left_out() -> None:
    w = Window(0, time(9, 0), time(12, 0), 60, "Asia/Shanghai")
    start = datetime(2026, 11, 30, 1, 30, tzinfo=UTC)
    slots = generate_slots([w], [], start, start + timedelta(hours=2))
    assert sorted(slots) == [datetime(2026, 11, 30, 2, 0, tzinfo=UTC)]


async def test_put_availability_regenerates_free_slots_and_keeps_booked(api) -> None:
    expert = await api.login("expert")
    village = await api.login("village")
    eid = expert.user["id"]
    status, slots = await village.get(f"/api/experts/{eid}/slots", params={"status": "free"})
    assert status == 200 and slots
    taken = slots[0]
    status, pats = await village.post("/api/patients", {"name": "Test Patient", "sex": "female"})
    assert status == 201
    status, c = await village.post("/api/consultations", {
        "patient_id": pats["id"], "kind": "video", "question": "q", "expert_id": eid,
        "slot_id": taken["id"]})
    assert status == 201, c
    rules = {"timezone": "Asia/Shanghai",
             "weekly": [{"weekday": d, "start": "13:00", "end": "14:00", "slot_minutes": 20}
                        for d in range(7)],
             "exceptions": []}
    status, body = await expert.put(f"/api/experts/{eid}/availability", rules)
    assert status == 200, body
    assert len(body["weekly"]) == 7
    status, after = await village.get(f"/api/experts/{eid}/slots",
                                      params={"from": taken["start"], "to": (
                                          datetime.fromisoformat(taken["start"])
                                          + timedelta(days=2)).isoformat()})
    assert status == 200
    by_id = {s["id"]: s for s in after}
    assert by_id[taken["id"]]["status"] == "booked"  # the booking survived
    free = [s for s in after if s["status"] == "free"]
    assert free and all(
        (datetime.fromisoformat(s["end"]) - datetime.fromisoformat(s["start"]))
        == timedelta(minutes=20) for s in free)


async def test_a_slot_booked_then_given_back_survives_an_availability_change(api) -> None:
    """The cancelled consultation still names its slot: the slot is kept, blocked (this was a
    foreign-key 500 that any doctor could cause)."""
    expert, village = await api.login("expert"), await api.login("village")
    eid = expert.user["id"]
    status, slots = await village.get(f"/api/experts/{eid}/slots", params={"status": "free"})
    taken = slots[0]
    status, pat = await village.post("/api/patients", {"name": "Test Patient", "sex": "female"})
    status, c = await village.post("/api/consultations", {
        "patient_id": pat["id"], "kind": "video", "question": "q", "expert_id": eid,
        "slot_id": taken["id"]})
    assert status == 201, c
    status, c = await village.post(f"/api/consultations/{c['id']}/cancel", {"reason": "moved"})
    assert status == 200 and c["status"] == "cancelled"
    status, body = await expert.put(f"/api/experts/{eid}/availability",
                                    {"timezone": "Asia/Shanghai", "weekly": [], "exceptions": []})
    assert status == 200, body
    status, after = await village.get(f"/api/experts/{eid}/slots")
    assert status == 200
    assert [s["status"] for s in after if s["id"] == taken["id"]] == ["blocked"]
    assert not [s for s in after if s["status"] == "free"]
    status, again = await village.get(f"/api/consultations/{c['id']}")
    assert status == 200 and again["slot"]["id"] == taken["id"]


async def test_only_the_expert_or_their_coordinator_may_edit_availability(api) -> None:
    eid = (await api.login("expert")).user["id"]
    body = {"weekly": [{"weekday": 0, "start": "09:00", "end": "10:00"}]}
    for username, expected in (("village", 403), ("county", 403), ("guilin_coordinator", 403),
                               ("coordinator", 200), ("admin", 200)):
        client = await api.login(username)
        status, _ = await client.put(f"/api/experts/{eid}/availability", body)
        assert status == expected, username


async def test_invalid_availability_is_refused(api) -> None:
    expert = await api.login("expert")
    eid = expert.user["id"]
    cases = [
        {"weekly": [{"weekday": 7, "start": "09:00", "end": "10:00"}]},
        {"weekly": [{"weekday": 1, "start": "10:00", "end": "09:00"}]},
        {"weekly": [], "timezone": "Mars/Olympus"},
        {"weekly": [], "exceptions": [{"kind": "extra", "start": "2026-12-01T09:00:00+08:00",
                                        "end": "2026-12-01T10:00:00+08:00"}]},
        {"weekly": [], "exceptions": [{"kind": "leave", "start": "2026-12-01T09:00:00",
                                        "end": "2026-12-02T10:00:00"}]},
    ]
    for case in cases:
        status, body = await expert.put(f"/api/experts/{eid}/availability", case)
        assert status == 422, (case, body)
        assert body["error"]["code"] == "validation_error"
