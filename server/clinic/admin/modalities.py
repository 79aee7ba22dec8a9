"""The modalities of the C-STORE SCP (their calling AE titles, the institution each sends for,
the addresses each may call from) as administrators and coordinators keep them.

The table and its validation belong to the DICOM package; the clinic reaches it through the
``ModalityTable`` protocol, given by the app factory (``dicom.registry``). The SCP reads the
table at every association request, so a change here applies to the next association without
a restart. Every change is audited with what it was before and after.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.admin.permissions import managed_institutions, require_keeper
from yilian.server.clinic.admin.schemas import ModalityIn, ModalityOut, ModalityPatch
from yilian.server.core import audit
from yilian.server.core.errors import Forbidden, NotFound, ValidationFailed
from yilian.server.core.models import Institution, User


class ModalityTable(Protocol):
    """The SCP's table of modalities. Rows are dicts with ``id``, ``ae_title``,
    ``institution_id``, ``description``, ``networks`` (CIDR strings), ``anywhere``."""

    async def rows(self, session: AsyncSession) -> list[dict[str, Any]]:
        """Every modality, by AE title."""
        ...

    async def row(self, session: AsyncSession, modality_id: int) -> dict[str, Any] | None:
        """One modality, or None."""
        ...

    async def add(self, session: AsyncSession, ae_title: str, institution_id: int,
                  description: str, addresses: list[str]) -> dict[str, Any]:
        """Register a modality; 422 for a bad AE title or address, 409 for a title in use."""
        ...

    async def change(self, session: AsyncSession, modality_id: int, *,
                     institution_id: int | None, description: str | None,
                     addresses: list[str] | None) -> dict[str, Any]:
        """Change what is given (None: unchanged); 422 for a bad address."""
        ...

    async def remove(self, session: AsyncSession, modality_id: int) -> None:
        """Take a modality off the table."""
        ...


MODALITY_TABLE: web.AppKey[ModalityTable] = web.AppKey("clinic_modality_table")


def _out(row: dict[str, Any], can_edit: bool = True) -> ModalityOut:
    return ModalityOut(**row, can_edit=can_edit)


async def _institution(session: AsyncSession, institution_id: int) -> None:
    if await session.get(Institution, institution_id) is None:
        raise ValidationFailed(f"no institution {institution_id}", code="unknown_institution",
                               details={"field": "institution_id"})


def _require_manager(user: User) -> None:
    if user.role not in ("admin", "coordinator"):
        raise Forbidden("only an administrator or a coordinator may manage modalities",
                        details={"role": user.role})


async def list_modalities(session: AsyncSession, table: ModalityTable, user: User
                          ) -> list[ModalityOut]:
    """The modalities of the institutions the caller keeps (all, for an administrator)."""
    _require_manager(user)
    scope = await managed_institutions(session, user)
    return [_out(r) for r in await table.rows(session)
            if scope is None or r["institution_id"] in scope]


async def add_modality(session: AsyncSession, table: ModalityTable, user: User,
                       body: ModalityIn, ip: str | None) -> ModalityOut:
    """Register a modality for an institution the caller keeps."""
    _require_manager(user)
    await _institution(session, body.institution_id)
    await require_keeper(session, user, body.institution_id,
                         "register modalities for this institution")
    row = await table.add(session, body.ae_title, body.institution_id, body.description,
                          list(body.addresses))
    audit.record(session, user, "create", "dicom_modality", row["id"], ip=ip,
                 detail={"after": row})
    return _out(row)


async def _existing(session: AsyncSession, table: ModalityTable, user: User,
                    modality_id: int) -> dict[str, Any]:
    _require_manager(user)
    row = await table.row(session, modality_id)
    scope = await managed_institutions(session, user)
    # A modality of an institution the caller does not keep is not theirs to see.
    if row is None or (scope is not None and row["institution_id"] not in scope):
        raise NotFound(f"no modality {modality_id}")
    return row


async def change_modality(session: AsyncSession, table: ModalityTable, user: User,
                          modality_id: int, body: ModalityPatch, ip: str | None) -> ModalityOut:
    """Change a modality's institution, description or addresses."""
    before = await _existing(session, table, user, modality_id)
    given = body.model_fields_set
    for field in ("institution_id", "description", "addresses"):
        if field in given and getattr(body, field) is None:
            raise ValidationFailed(f"give a value for {field}", details={"field": field})
    if body.institution_id is not None:
        await _institution(session, body.institution_id)
        await require_keeper(session, user, body.institution_id,
                             "move modalities to this institution")
    after = await table.change(
        session, modality_id, institution_id=body.institution_id,
        description=body.description,
        addresses=list(body.addresses) if body.addresses is not None else None)
    if after != before:
        audit.record(session, user, "update", "dicom_modality", modality_id, ip=ip,
                     detail={"before": before, "after": after})
    return _out(after)


async def remove_modality(session: AsyncSession, table: ModalityTable, user: User,
                          modality_id: int, ip: str | None) -> None:
    """Take a modality off the table: its next association is refused."""
    before = await _existing(session, table, user, modality_id)
    await table.remove(session, modality_id)
    audit.record(session, user, "delete", "dicom_modality", modality_id, ip=ip,
                 detail={"before": before})
