"""The modality table as the administration API changes it (``clinic.admin.modalities``
reaches it through its ``ModalityTable`` protocol): the same validation as
``yilian modality`` (``dicom.modalities``). The SCP reads the table at every association
request, so changes apply without a restart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.dicom.modalities import AE_RE, parse_networks
from yilian.dicom.models import DicomModality
from yilian.server.core.db import one_at_a_time
from yilian.server.core.errors import Conflict, ValidationFailed


def _row(m: DicomModality) -> dict[str, Any]:
    networks = list(m.allowed_networks or [])
    return {"id": m.id, "ae_title": m.ae_title, "institution_id": m.institution_id,
            "description": m.description or "", "networks": networks,
            "anywhere": {"0.0.0.0/0", "::/0"} <= set(networks)}


def _networks(addresses: list[str]) -> list[str]:
    try:
        return parse_networks(addresses)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_address",
                               details={"field": "addresses"}) from None


class ModalityRegistry:
    """The ``dicom_modalities`` table, for ``clinic.admin.modalities.ModalityTable``."""

    async def rows(self, session: AsyncSession) -> list[dict[str, Any]]:
        """Every modality, by AE title."""
        found = await session.scalars(select(DicomModality).order_by(DicomModality.ae_title))
        return [_row(m) for m in found]

    async def row(self, session: AsyncSession, modality_id: int) -> dict[str, Any] | None:
        """One modality, or None."""
        m = await session.get(DicomModality, modality_id)
        return _row(m) if m is not None else None

    async def add(self, session: AsyncSession, ae_title: str, institution_id: int,
                  description: str, addresses: list[str]) -> dict[str, Any]:
        """Register a modality (422 ``invalid_ae_title``/``invalid_address``, 409
        ``ae_title_taken``)."""
        if not AE_RE.match(ae_title):
            raise ValidationFailed(f"{ae_title!r} is not a valid AE title (1-16 characters, "
                                   "no backslash, no leading or trailing space)",
                                   code="invalid_ae_title", details={"field": "ae_title"})
        networks = _networks(addresses)
        await one_at_a_time(session, "ae-title")
        if await session.scalar(select(DicomModality.id).where(
                DicomModality.ae_title == ae_title)) is not None:
            raise Conflict(f"the AE title {ae_title!r} is already registered",
                           code="ae_title_taken", details={"field": "ae_title"})
        m = DicomModality(ae_title=ae_title, institution_id=institution_id,
                          description=description, allowed_networks=networks)
        session.add(m)
        await session.flush()
        return _row(m)

    async def change(self, session: AsyncSession, modality_id: int, *,
                     institution_id: int | None, description: str | None,
                     addresses: list[str] | None) -> dict[str, Any]:
        """Change what is given (None: unchanged)."""
        m = await session.get(DicomModality, modality_id)
        assert m is not None  # the caller found it in this transaction
        if addresses is not None:
            m.allowed_networks = _networks(addresses)
        if institution_id is not None:
            m.institution_id = institution_id
        if description is not None:
            m.description = description
        await session.flush()
        return _row(m)

    async def remove(self, session: AsyncSession, modality_id: int) -> None:
        """Take a modality off the table."""
        m = await session.get(DicomModality, modality_id)
        if m is not None:
            await session.delete(m)
            await session.flush()
