"""Join the signalling and DICOM branches back into one line of history.

Revision ID: 0002_merge
Revises: rtc_0001_chat, dicom_0001_index
Create Date: 2026-11-23

The chat table (signalling) and the DICOM index were written side by side on top of
0001_core. Later revisions go on from here, so ``alembic upgrade head`` has a single target.
"""

from __future__ import annotations

revision = "0002_merge"
down_revision = ("rtc_0001_chat", "dicom_0001_index")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
