"""Managing the table of modalities allowed to send by C-STORE (``yilian modality``)."""

from __future__ import annotations

import re

from sqlalchemy import delete, select

from yilian.dicom.models import DicomModality
from yilian.server.core.db import Database
from yilian.server.core.models import Institution

AE_RE = re.compile(r"^[\x21-\x5b\x5d-\x7e](?:[\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$")


async def manage_modalities(db: Database, action: str, ae_title: str | None,
                            institution_id: int | None, description: str = "") -> list[str]:
    """Run one ``list``/``add``/``remove`` action on a migrated database; returns lines to
    print."""
    if action != "list" and not ae_title:
        raise ValueError(f"{action} needs an AE title")
    if ae_title is not None and not AE_RE.match(ae_title):
        raise ValueError(f"{ae_title!r} is not a valid AE title (1-16 characters, no backslash)")
    async with db.write() as session:
        if action == "add":
            if institution_id is None or await session.get(Institution,
                                                           institution_id) is None:
                raise ValueError("add needs --institution-id of an existing institution")
            row = await session.scalar(select(DicomModality).where(
                DicomModality.ae_title == ae_title))
            if row is None:
                session.add(DicomModality(ae_title=ae_title, institution_id=institution_id,
                                          description=description))
            else:
                row.institution_id, row.description = institution_id, description
        elif action == "remove":
            await session.execute(delete(DicomModality).where(
                DicomModality.ae_title == ae_title))
        rows = (await session.execute(
            select(DicomModality.ae_title, DicomModality.institution_id, Institution.name,
                   DicomModality.description)
            .join(Institution, Institution.id == DicomModality.institution_id)
            .order_by(DicomModality.ae_title))).all()
    return [f"{ae:<16} {iid:>4}  {name}  {desc}".rstrip() for ae, iid, name, desc in rows]
