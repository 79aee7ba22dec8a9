"""Helpers of the directory tests: the demo's institutions by name, audit entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.conftest import Api
from yilian.server.core import keys
from yilian.server.core.db import Database
from yilian.server.core.models import AuditEntry

GDPH = "Guangdong Provincial People's Hospital"
DIANBAI = "Dianbai District People's Hospital"
SHALANG = "Shalang Town Central Health Centre"
GUILIN = "Guilin People's Hospital"
YANGSHUO = "Yangshuo County People's Hospital"
FIVE_LEVEL = "Guangdong Five-Level Medical Alliance (省—市—区—镇—村)"


async def by_name(client: Api) -> dict[str, dict[str, Any]]:
    status, rows = await client.get("/api/institutions")
    assert status == 200, rows
    return {i["name"]: i for i in rows}


async def alliances(client: Api) -> dict[str, dict[str, Any]]:
    status, rows = await client.get("/api/alliances")
    assert status == 200, rows
    return {a["name"]: a for a in rows}


async def audit_entries(api: Api, resource_type: str) -> list[AuditEntry]:
    """The audit entries about one kind of resource, oldest first."""
    await api.flush_audit()
    database: Database = api.server.app[keys.DATABASE]
    async with database.read() as session:
        return list(await session.scalars(select(AuditEntry).where(
            AuditEntry.resource_type == resource_type).order_by(AuditEntry.id)))
