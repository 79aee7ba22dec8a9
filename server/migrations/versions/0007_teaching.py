"""Teaching broadcasts: sessions, invitations, attendance, recordings; questions in the chat.

Revision ID: 0007_teaching
Revises: 0006_referrals_notifications
Create Date: 2026-11-30

``teaching_sessions`` (one presenter, a window, ``scheduled``/``live``/``ended``) with the
institutions invited (``teaching_invitations``), each viewer's stays in the room
(``teaching_attendance``) and the recordings the relay writes (``teaching_recordings``);
``rtc_chat_messages`` gains the session a question was asked in and when and by whom it was
marked answered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.server.core.db

revision = '0007_teaching'
down_revision = '0006_referrals_notifications'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('teaching_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('start', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('presenter_id', sa.Integer(), nullable=False),
    sa.Column('organiser_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('record', sa.Boolean(), nullable=False),
    sa.Column('started_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_teaching_sessions_institution_id_institutions')),
    sa.ForeignKeyConstraint(['organiser_id'], ['users.id'], name=op.f('fk_teaching_sessions_organiser_id_users')),
    sa.ForeignKeyConstraint(['presenter_id'], ['users.id'], name=op.f('fk_teaching_sessions_presenter_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teaching_sessions'))
    )
    with op.batch_alter_table('teaching_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teaching_sessions_institution_id'), ['institution_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_teaching_sessions_organiser_id'), ['organiser_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_teaching_sessions_presenter_id'), ['presenter_id'], unique=False)
        batch_op.create_index('ix_teaching_sessions_status_end', ['status', 'end'], unique=False)
        batch_op.create_index('ix_teaching_sessions_status_start', ['status', 'start'], unique=False)

    op.create_table('teaching_attendance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('joined_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_teaching_attendance_institution_id_institutions')),
    sa.ForeignKeyConstraint(['session_id'], ['teaching_sessions.id'], name=op.f('fk_teaching_attendance_session_id_teaching_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_teaching_attendance_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teaching_attendance'))
    )
    with op.batch_alter_table('teaching_attendance', schema=None) as batch_op:
        batch_op.create_index('ix_teaching_attendance_session_user', ['session_id', 'user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_teaching_attendance_user_id'), ['user_id'], unique=False)

    op.create_table('teaching_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_teaching_invitations_institution_id_institutions')),
    sa.ForeignKeyConstraint(['session_id'], ['teaching_sessions.id'], name=op.f('fk_teaching_invitations_session_id_teaching_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teaching_invitations')),
    sa.UniqueConstraint('session_id', 'institution_id', name=op.f('uq_teaching_invitations_session_id'))
    )
    with op.batch_alter_table('teaching_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teaching_invitations_institution_id'), ['institution_id'], unique=False)

    op.create_table('teaching_recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('container', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=400), nullable=False),
    sa.Column('started_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_s', sa.Double(), nullable=True),
    sa.Column('bytes', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['teaching_sessions.id'], name=op.f('fk_teaching_recordings_session_id_teaching_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teaching_recordings'))
    )
    with op.batch_alter_table('teaching_recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teaching_recordings_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_teaching_recordings_status'), ['status'], unique=False)

    with op.batch_alter_table('rtc_chat_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('teaching_session_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', yilian.server.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('answered_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_rtc_chat_messages_teaching_session_id'), ['teaching_session_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_rtc_chat_messages_teaching_session_id_teaching_sessions'), 'teaching_sessions', ['teaching_session_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_rtc_chat_messages_answered_by_id_users'), 'users', ['answered_by_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('rtc_chat_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_rtc_chat_messages_answered_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_rtc_chat_messages_teaching_session_id_teaching_sessions'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_rtc_chat_messages_teaching_session_id'))
        batch_op.drop_column('answered_by_id')
        batch_op.drop_column('answered_at')
        batch_op.drop_column('teaching_session_id')

    with op.batch_alter_table('teaching_recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teaching_recordings_status'))
        batch_op.drop_index(batch_op.f('ix_teaching_recordings_session_id'))

    op.drop_table('teaching_recordings')
    with op.batch_alter_table('teaching_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teaching_invitations_institution_id'))

    op.drop_table('teaching_invitations')
    with op.batch_alter_table('teaching_attendance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teaching_attendance_user_id'))
        batch_op.drop_index('ix_teaching_attendance_session_user')

    op.drop_table('teaching_attendance')
    with op.batch_alter_table('teaching_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_teaching_sessions_status_start')
        batch_op.drop_index('ix_teaching_sessions_status_end')
        batch_op.drop_index(batch_op.f('ix_teaching_sessions_presenter_id'))
        batch_op.drop_index(batch_op.f('ix_teaching_sessions_organiser_id'))
        batch_op.drop_index(batch_op.f('ix_teaching_sessions_institution_id'))

    op.drop_table('teaching_sessions')
