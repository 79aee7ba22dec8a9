"""Small helpers shared by the server tests."""

from __future__ import annotations

from typing import Any


async def new_patient(client: Any, name: str = "Zhang San (张三)") -> dict[str, Any]:
    status, body = await client.post("/api/patients", {
        "name": name, "sex": "male", "birth_date": "1960-02-01",
        "national_id": "44090419600201003X", "phone": "13800000000"})
    assert status == 201, body
    return body


async def free_slot(client: Any, expert_id: int, index: int = 0) -> dict[str, Any]:
    status, slots = await client.get(f"/api/experts/{expert_id}/slots",
                                     params={"status": "free"})
    assert status == 200 and len(slots) > index, slots
    return slots[index]


async def book(client: Any, expert_id: int, *, kind: str = "video",
               slot_index: int = 0) -> dict[str, Any]:
    """Register a patient and book the expert's next free slot; returns the consultation."""
    patient = await new_patient(client)
    slot = await free_slot(client, expert_id, slot_index)
    status, body = await client.post("/api/consultations", {
        "patient_id": patient["id"], "kind": kind, "urgency": "routine",
        "question": "Chest pain on exertion, what next?", "expert_id": expert_id,
        "slot_id": slot["id"]})
    assert status == 201, body
    return body
