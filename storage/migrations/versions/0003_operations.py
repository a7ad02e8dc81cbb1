"""operations: provisioning log and failure notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provisioning_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('time', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('operation', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.Text(), nullable=True),
    sa.Column('target_name', sa.Text(), nullable=True),
    sa.Column('target_name_ci', sa.Text(), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioning_log'))
    )
    with op.batch_alter_table('provisioning_log', schema=None) as batch_op:
        batch_op.create_index('ix_provisioning_log_tenant_id_time_source_result', ['tenant_id', 'time', 'source', 'result'], unique=False)
        batch_op.create_index('ix_provisioning_log_tenant_id_target_id', ['tenant_id', 'target_id'], unique=False)
        batch_op.create_index('ix_provisioning_log_tenant_id_target_name_ci', ['tenant_id', 'target_name_ci'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('claimed_until', sa.String(length=32), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.Column('sent_at', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_notifications_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('key', name=op.f('uq_notifications_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_state', ['state'], unique=False)
        batch_op.create_index('ix_notifications_tenant_id_kind_created_at', ['tenant_id', 'kind', 'created_at'], unique=False)

    op.create_table('notification_effects',
    sa.Column('effect_id', sa.Integer(), nullable=False),
    sa.Column('dead_at', sa.String(length=32), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['effect_id'], ['outbox.id'], name=op.f('fk_notification_effects_effect_id_outbox'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_notification_effects_notification_id_notifications')),
    sa.PrimaryKeyConstraint('effect_id', 'dead_at', name=op.f('pk_notification_effects'))
    )
    with op.batch_alter_table('notification_effects', schema=None) as batch_op:
        batch_op.create_index('ix_notification_effects_notification_id', ['notification_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notification_effects', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_effects_notification_id')

    op.drop_table('notification_effects')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_tenant_id_kind_created_at')
        batch_op.drop_index('ix_notifications_state')

    op.drop_table('notifications')
    with op.batch_alter_table('provisioning_log', schema=None) as batch_op:
        batch_op.drop_index('ix_provisioning_log_tenant_id_target_name_ci')
        batch_op.drop_index('ix_provisioning_log_tenant_id_target_id')
        batch_op.drop_index('ix_provisioning_log_tenant_id_time_source_result')

    op.drop_table('provisioning_log')
