"""Referrals, green-channel time points, follow-ups, on-call rosters and the notification inbox.

Revision ID: 0006_referrals_notifications
Revises: 0005_locale_and_signature
Create Date: 2026-11-30

``referrals`` with their state history (``referral_events``), clinical time points
(``referral_milestones``, append-only: a correction is a new row that names the old one and
why), what they share with the receiving team (``referral_studies``,
``referral_consultations``); ``follow_ups`` at the clinic a patient was referred down to;
``on_call_shifts`` per receiving department; ``departments.head_id`` (who an unanswered
green-channel alert escalates to); and ``notifications``, each user's kept inbox.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.server.core.db

revision = "0006_referrals_notifications"
down_revision = "0005_locale_and_signature"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=True),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('created_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    op.create_index('ix_notifications_user_unread', 'notifications', ['user_id', 'read_at', 'id'], unique=False)
    op.create_table('on_call_shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('start', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_on_call_shifts_created_by_id_users')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_on_call_shifts_department_id_departments')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_on_call_shifts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_on_call_shifts'))
    )
    op.create_index('ix_on_call_department_time', 'on_call_shifts', ['department_id', 'start', 'end'], unique=False)
    op.create_index(op.f('ix_on_call_shifts_user_id'), 'on_call_shifts', ['user_id'], unique=False)
    op.create_table('referrals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('from_institution_id', sa.Integer(), nullable=False),
    sa.Column('to_institution_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('green_channel', sa.String(length=16), nullable=True),
    sa.Column('onset_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('consultation_id', sa.Integer(), nullable=True),
    sa.Column('accepted_by_id', sa.Integer(), nullable=True),
    sa.Column('close_reason', sa.Text(), nullable=True),
    sa.Column('deadline', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('escalated_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('requested_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('departed_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('arrived_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['accepted_by_id'], ['users.id'], name=op.f('fk_referrals_accepted_by_id_users')),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'], name=op.f('fk_referrals_consultation_id_consultations')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_referrals_department_id_departments')),
    sa.ForeignKeyConstraint(['from_institution_id'], ['institutions.id'], name=op.f('fk_referrals_from_institution_id_institutions')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_referrals_patient_id_patients')),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name=op.f('fk_referrals_requester_id_users')),
    sa.ForeignKeyConstraint(['to_institution_id'], ['institutions.id'], name=op.f('fk_referrals_to_institution_id_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    op.create_index(op.f('ix_referrals_consultation_id'), 'referrals', ['consultation_id'], unique=False)
    op.create_index(op.f('ix_referrals_department_id'), 'referrals', ['department_id'], unique=False)
    op.create_index('ix_referrals_from_status', 'referrals', ['from_institution_id', 'status'], unique=False)
    op.create_index(op.f('ix_referrals_green_channel'), 'referrals', ['green_channel'], unique=False)
    op.create_index(op.f('ix_referrals_patient_id'), 'referrals', ['patient_id'], unique=False)
    op.create_index(op.f('ix_referrals_requester_id'), 'referrals', ['requester_id'], unique=False)
    op.create_index('ix_referrals_status_deadline', 'referrals', ['status', 'deadline'], unique=False)
    op.create_index('ix_referrals_to_status', 'referrals', ['to_institution_id', 'status'], unique=False)
    op.create_table('follow_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.Column('plan', sa.Text(), nullable=True),
    sa.Column('due_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('completed_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['users.id'], name=op.f('fk_follow_ups_assigned_to_id_users')),
    sa.ForeignKeyConstraint(['completed_by_id'], ['users.id'], name=op.f('fk_follow_ups_completed_by_id_users')),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_follow_ups_institution_id_institutions')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_follow_ups_patient_id_patients')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_follow_ups_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_ups'))
    )
    op.create_index(op.f('ix_follow_ups_assigned_to_id'), 'follow_ups', ['assigned_to_id'], unique=False)
    op.create_index('ix_follow_ups_institution_status_due', 'follow_ups', ['institution_id', 'status', 'due_at'], unique=False)
    op.create_index(op.f('ix_follow_ups_patient_id'), 'follow_ups', ['patient_id'], unique=False)
    op.create_index(op.f('ix_follow_ups_referral_id'), 'follow_ups', ['referral_id'], unique=False)
    op.create_table('referral_consultations',
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('consultation_id', sa.Integer(), nullable=False),
    sa.Column('shared_by_id', sa.Integer(), nullable=False),
    sa.Column('shared_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consultation_id'], ['consultations.id'], name=op.f('fk_referral_consultations_consultation_id_consultations')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_consultations_referral_id_referrals')),
    sa.ForeignKeyConstraint(['shared_by_id'], ['users.id'], name=op.f('fk_referral_consultations_shared_by_id_users')),
    sa.PrimaryKeyConstraint('referral_id', 'consultation_id', name=op.f('pk_referral_consultations'))
    )
    op.create_index(op.f('ix_referral_consultations_consultation_id'), 'referral_consultations', ['consultation_id'], unique=False)
    op.create_table('referral_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_referral_events_actor_id_users')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_events_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_events'))
    )
    op.create_index(op.f('ix_referral_events_referral_id'), 'referral_events', ['referral_id'], unique=False)
    op.create_table('referral_milestones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('milestone', sa.String(length=32), nullable=False),
    sa.Column('at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['corrects_id'], ['referral_milestones.id'], name=op.f('fk_referral_milestones_corrects_id_referral_milestones')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_referral_milestones_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_milestones_referral_id_referrals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_milestones'))
    )
    op.create_index(op.f('ix_referral_milestones_referral_id'), 'referral_milestones', ['referral_id'], unique=False)
    op.create_table('referral_studies',
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('shared_by_id', sa.Integer(), nullable=False),
    sa.Column('shared_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_studies_referral_id_referrals')),
    sa.ForeignKeyConstraint(['shared_by_id'], ['users.id'], name=op.f('fk_referral_studies_shared_by_id_users')),
    sa.PrimaryKeyConstraint('referral_id', 'study_instance_uid', name=op.f('pk_referral_studies'))
    )
    op.create_index(op.f('ix_referral_studies_study_instance_uid'), 'referral_studies', ['study_instance_uid'], unique=False)
    with op.batch_alter_table('departments') as batch:
        batch.add_column(sa.Column('head_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_departments_head_id_users'), 'users', ['head_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('departments') as batch:
        batch.drop_constraint(op.f('fk_departments_head_id_users'), type_='foreignkey')
        batch.drop_column('head_id')
    op.drop_index(op.f('ix_referral_studies_study_instance_uid'), table_name='referral_studies')
    op.drop_table('referral_studies')
    op.drop_index(op.f('ix_referral_milestones_referral_id'), table_name='referral_milestones')
    op.drop_table('referral_milestones')
    op.drop_index(op.f('ix_referral_events_referral_id'), table_name='referral_events')
    op.drop_table('referral_events')
    op.drop_index(op.f('ix_referral_consultations_consultation_id'), table_name='referral_consultations')
    op.drop_table('referral_consultations')
    op.drop_index(op.f('ix_follow_ups_referral_id'), table_name='follow_ups')
    op.drop_index(op.f('ix_follow_ups_patient_id'), table_name='follow_ups')
    op.drop_index('ix_follow_ups_institution_status_due', table_name='follow_ups')
    op.drop_index(op.f('ix_follow_ups_assigned_to_id'), table_name='follow_ups')
    op.drop_table('follow_ups')
    op.drop_index('ix_referrals_to_status', table_name='referrals')
    op.drop_index('ix_referrals_status_deadline', table_name='referrals')
    op.drop_index(op.f('ix_referrals_requester_id'), table_name='referrals')
    op.drop_index(op.f('ix_referrals_patient_id'), table_name='referrals')
    op.drop_index(op.f('ix_referrals_green_channel'), table_name='referrals')
    op.drop_index('ix_referrals_from_status', table_name='referrals')
    op.drop_index(op.f('ix_referrals_department_id'), table_name='referrals')
    op.drop_index(op.f('ix_referrals_consultation_id'), table_name='referrals')
    op.drop_table('referrals')
    op.drop_index(op.f('ix_on_call_shifts_user_id'), table_name='on_call_shifts')
    op.drop_index('ix_on_call_department_time', table_name='on_call_shifts')
    op.drop_table('on_call_shifts')
    op.drop_index('ix_notifications_user_unread', table_name='notifications')
    op.drop_table('notifications')
