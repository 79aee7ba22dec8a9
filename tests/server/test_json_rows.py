"""JsonRows (the busiest lists as plain rows, encoded by orjson) write the same bytes as the
declared response models would: the contract does not depend on which path a route takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from yilian.server.clinic.schemas import ExpertOut, SlotOut
from yilian.server.core.api import JsonRows, _encode

START = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)


def _slots() -> list[dict[str, object]]:
    return [{"id": i, "start": START + timedelta(minutes=30 * i, microseconds=7 * (i % 2)),
             "end": START + timedelta(minutes=30 * i + 30), "status": status}
            for i, status in enumerate(["free", "booked", "blocked", "free"])]


def test_slot_rows_encode_exactly_as_the_slot_model() -> None:
    rows = _slots()
    assert _encode(JsonRows(rows)) == _encode([SlotOut.model_validate(r) for r in rows])
    assert b'"start":"2026-12-01T01:30:00Z"' in _encode(JsonRows(rows))


def test_expert_rows_encode_exactly_as_the_expert_model() -> None:
    rows = [{"id": 7, "display_name": "\u5f20\u533b\u751f", "institution_id": 2,
             "institution_name": "Hospital", "department": None, "specialties": ["cardiology"],
             "title": None, "in_my_alliance": True, "next_free_slots": _slots()[:2]},
            {"id": 8, "display_name": "Dr B", "institution_id": 3, "institution_name": "H2",
             "department": "Cardiology", "specialties": [], "title": "Professor",
             "in_my_alliance": False, "next_free_slots": []}]
    assert _encode(JsonRows(rows)) == _encode([ExpertOut.model_validate(r) for r in rows])


def test_an_empty_list_is_an_empty_array() -> None:
    assert _encode(JsonRows()) == b"[]" == _encode([])
