"""Statistics: the monthly outpatient visit totals and the indexes the figures are read by.

Revision ID: 0009_stats
Revises: 0008_accounts
Create Date: 2026-12-01

``outpatient_visit_totals`` holds each institution's outpatient visits per month (``YYYY-MM``,
Beijing time), entered or imported by coordinators: the grassroots share is computed from
them. The indexes let every figure read one institution's rows of a period as a range scan
(consultations by requesting, target and expert's institution; referrals by sending and
receiving institution; teaching sessions by organiser and attendance by institution).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.server.core.db

revision = '0009_stats'
down_revision = '0008_accounts'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_consultations_stats_requester', 'consultations',
     ['requester_institution_id', 'created_at', 'kind', 'status']),
    ('ix_consultations_stats_target', 'consultations',
     ['target_institution_id', 'created_at', 'kind', 'status']),
    ('ix_consultations_stats_expert', 'consultations',
     ['expert_id', 'created_at', 'kind', 'status', 'target_institution_id']),
    ('ix_referrals_stats_from', 'referrals',
     ['from_institution_id', 'requested_at', 'direction', 'status']),
    ('ix_referrals_stats_to', 'referrals',
     ['to_institution_id', 'requested_at', 'direction', 'status']),
    ('ix_teaching_sessions_stats', 'teaching_sessions', ['institution_id', 'started_at']),
    ('ix_teaching_attendance_stats', 'teaching_attendance', ['institution_id', 'session_id']),
)


def upgrade() -> None:
    op.create_table(
        'outpatient_visit_totals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('visits', sa.Integer(), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', yilian.server.core.db.UTCDateTime(timezone=True),
                  nullable=False),
        sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'],
                                name=op.f('fk_outpatient_visit_totals_institution_id_institutions')),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'],
                                name=op.f('fk_outpatient_visit_totals_updated_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outpatient_visit_totals')),
        sa.UniqueConstraint('institution_id', 'month',
                            name=op.f('uq_outpatient_visit_totals_institution_id')),
    )
    op.create_index(op.f('ix_outpatient_visit_totals_month'), 'outpatient_visit_totals',
                    ['month'], unique=False)
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index(op.f('ix_outpatient_visit_totals_month'), table_name='outpatient_visit_totals')
    op.drop_table('outpatient_visit_totals')
