"""Shared steps of the referral tests: the demo's institutions by name, and a referral raised
by the Shalang township doctor to Dianbai District (up) or by Dianbai down to Shangtang."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.conftest import Api
from tests.server.helpers import new_patient
from yilian.server.core import keys
from yilian.server.core.models import Notification

DIANBAI = "Dianbai District People's Hospital"
SHALANG = "Shalang Town Central Health Centre"
SHANGTANG = "Shangtang Village Clinic"
GDPH = "Guangdong Provincial People's Hospital"


async def institutions(client: Api) -> dict[str, dict[str, Any]]:
    status, rows = await client.get("/api/institutions")
    assert status == 200, rows
    return {i["name"]: i for i in rows}


def department(inst: dict[str, Any], specialty: str) -> int:
    return next(d["id"] for d in inst["departments"] if d["specialty"] == specialty)


async def refer_up(township: Api, **extra: Any) -> dict[str, Any]:
    """A referral from Shalang to Dianbai's internal medicine department."""
    inst = await institutions(township)
    patient = await new_patient(township)
    body = {"patient_id": patient["id"], "direction": "up",
            "to_institution_id": inst[DIANBAI]["id"],
            "department": department(inst[DIANBAI], "internal_medicine"),
            "reason": "Suspected stroke, needs CT", "summary": "72 y, left weakness"} | extra
    status, r = await township.post("/api/referrals", body)
    assert status == 201, r
    return r


async def refer_down(county: Api, **extra: Any) -> dict[str, Any]:
    """A referral from Dianbai down to the Shangtang village clinic."""
    inst = await institutions(county)
    patient = await new_patient(county, "Zhao Si (赵四)")
    body = {"patient_id": patient["id"], "direction": "down",
            "to_institution_id": inst[SHANGTANG]["id"],
            "reason": "Recovering after pneumonia; continue at home",
            "follow_up_plan": "Check temperature and SpO2"} | extra
    status, r = await county.post("/api/referrals", body)
    assert status == 201, r
    return r


async def notifications(api: Api, user_id: int, kind: str | None = None
                        ) -> list[Notification]:
    """The inbox rows of one user (the table, read directly)."""
    db = api.server.app[keys.DATABASE]
    async with db.read() as session:
        stmt = select(Notification).where(Notification.user_id == user_id)
        if kind:
            stmt = stmt.where(Notification.kind == kind)
        return list((await session.execute(stmt.order_by(Notification.id))).scalars())
