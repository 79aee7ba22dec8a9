"""Audit entries carry a unique id, so a journal replayed after a crash writes none twice.

Revision ID: 0003_audit_uid
Revises: 0002_merge
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_audit_uid"
down_revision = "0002_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("uid", sa.String(length=32), nullable=True))
        batch.create_unique_constraint("uq_audit_log_uid", ["uid"])


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_uid", type_="unique")
        batch.drop_column("uid")
