"""The user's language, and who signed a report as it stood at signing.

Revision ID: 0005_locale_and_signature
Revises: 0004_dicom_network_policy
Create Date: 2026-11-30

``users.locale`` is the language the user chose (``zh-CN`` or ``en``; empty means the default,
Chinese). A signed report version keeps the signer's name, title and institution as they were
when it was signed (a later change of title does not rewrite a signed report), and whether the
signer re-entered their password to sign.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_locale_and_signature"
down_revision = "0004_dicom_network_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("locale", sa.String(8), nullable=True))
    with op.batch_alter_table("report_versions") as batch:
        batch.add_column(sa.Column("signer_name", sa.String(120), nullable=True))
        batch.add_column(sa.Column("signer_title", sa.String(64), nullable=True))
        batch.add_column(sa.Column("signer_institution", sa.String(200), nullable=True))
        batch.add_column(sa.Column("signed_with_password", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("report_versions") as batch:
        for column in ("signed_with_password", "signer_institution", "signer_title",
                       "signer_name"):
            batch.drop_column(column)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locale")
