"""The DICOM network policy: the addresses each modality may call from.

Revision ID: 0004_dicom_network_policy
Revises: 0003_audit_uid
Create Date: 2026-12-01

Existing modalities get no address, which the SCP reads as "this host only": after the
upgrade a remote modality is refused until its address is registered
(``yilian modality add AE --institution-id N --address 10.1.2.3``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_dicom_network_policy"
down_revision = "0003_audit_uid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dicom_modalities") as batch:
        batch.add_column(sa.Column("allowed_networks", sa.JSON(), nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("dicom_modalities") as batch:
        batch.drop_column("allowed_networks")
