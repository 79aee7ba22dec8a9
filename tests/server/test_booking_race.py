"""Concurrent bookings of one slot: exactly one wins, the rest get 409 slot_taken."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.server.helpers import free_slot, new_patient


async def test_fifty_concurrent_bookings_of_one_slot(api) -> None:
    village, township = await api.login("village"), await api.login("township")
    eid = (await api.login("expert")).user["id"]
    slot = await free_slot(village, eid)
    p1, p2 = await new_patient(village), await new_patient(township)

    async def attempt(i: int) -> tuple[int, str | None]:
        client, patient = (village, p1) if i % 2 else (township, p2)
        status, body = await client.post("/api/consultations", {
            "patient_id": patient["id"], "kind": "video", "question": f"attempt {i}",
            "expert_id": eid, "slot_id": slot["id"]})
        return status, body["error"]["code"] if status != 201 else None

    results = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert Counter(results) == {(201, None): 1, (409, "slot_taken"): 49}
    status, consultations = await village.get("/api/consultations")
    status2, theirs = await township.get("/api/consultations")
    holders = [c for c in consultations + theirs if c["slot"] and c["slot"]["id"] == slot["id"]]
    assert len(holders) == 1


async def test_an_accept_and_a_cancel_at_the_same_moment(api) -> None:
    """The expert accepts while the requester cancels, for ten requests at once. Whichever
    comes first, nothing is lost: either the cancel came first (the accept then gets 409
    invalid_transition) or the accept did and the cancel followed it; the history holds
    exactly the steps that succeeded, and the slot is free again once cancelled, booked if
    accepted. (On PostgreSQL these race for real: each change is one guarded statement, and
    the one that finds the request changed runs again on what is there now.)"""
    village = await api.login("village")
    expert = await api.login("expert")
    eid = expert.user["id"]
    patient = await new_patient(village)
    status, slots = await village.get(f"/api/experts/{eid}/slots", params={"status": "free"})
    assert status == 200 and len(slots) >= 10
    requests = []
    for slot in slots[:10]:
        status, c = await village.post("/api/consultations", {
            "patient_id": patient["id"], "kind": "video", "question": "race",
            "expert_id": eid, "slot_id": slot["id"]})
        assert status == 201, c
        requests.append(c)

    async def answer(client, c, action: str) -> tuple[str, int, str | None]:
        body = {"reason": "the patient was sent to the county hospital"} \
            if action == "cancel" else {}
        status, out = await client.post(f"/api/consultations/{c['id']}/{action}", body)
        return action, status, out["error"]["code"] if status != 200 else None

    results = await asyncio.gather(*(answer(client, c, action) for c in requests
                                     for client, action in ((expert, "accept"),
                                                            (village, "cancel"))))
    for i, c in enumerate(requests):
        accept, cancel = results[2 * i: 2 * i + 2]
        status, now = await village.get(f"/api/consultations/{c['id']}")
        assert status == 200
        steps = [h["to_status"] for h in now["history"]]
        assert cancel[1] == 200 and now["status"] == "cancelled", (accept, cancel)
        assert now["slot"]["status"] == "free"
        if accept[1] == 200:
            assert steps == ["requested", "accepted", "cancelled"]
        else:
            assert accept[1:] == (409, "invalid_transition")
            assert steps == ["requested", "cancelled"]
