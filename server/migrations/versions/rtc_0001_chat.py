"""Signalling: chat lines kept with consultations and teaching sessions.

Revision ID: rtc_0001_chat
Revises: 0001_core
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.server.core.db

revision = "rtc_0001_chat"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rtc_chat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room", sa.String(length=80), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_rtc_chat_messages_consultation_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_rtc_chat_messages_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rtc_chat_messages")),
    )
    with op.batch_alter_table("rtc_chat_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rtc_chat_messages_consultation_id"), ["consultation_id"], unique=False
        )
        batch_op.create_index("ix_rtc_chat_messages_room_at", ["room", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rtc_chat_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_rtc_chat_messages_room_at")
        batch_op.drop_index(batch_op.f("ix_rtc_chat_messages_consultation_id"))
    op.drop_table("rtc_chat_messages")
