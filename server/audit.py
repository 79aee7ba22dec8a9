"""Writing the audit log: one row per access to patient data, in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.models import AuditEntry, User


def record(
    session: AsyncSession,
    user: User | None,
    action: str,
    resource_type: str,
    resource_id: object = None,
    *,
    patient_id: int | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the session (committed with the caller's transaction)."""
    session.add(
        AuditEntry(
            user_id=user.id if user else None,
            institution_id=user.institution_id if user else None,
            action=action,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
            patient_id=patient_id,
            ip=ip,
            detail=detail,
        )
    )
