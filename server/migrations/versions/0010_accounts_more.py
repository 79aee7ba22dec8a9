"""Accounts: when the last wrong password was given, so the lockout counts failures in a window.

Revision ID: 0010_accounts_more
Revises: 0009_stats
Create Date: 2026-11-30

``users.last_failed_login_at``: a wrong password further than the lockout window
(``YILIAN_LOCKOUT_WINDOW_SECONDS``) from the previous one starts the count again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.server.core.db

revision = '0010_accounts_more'
down_revision = '0009_stats'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_failed_login_at',
                                      yilian.server.core.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('last_failed_login_at')
