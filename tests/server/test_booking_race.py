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
