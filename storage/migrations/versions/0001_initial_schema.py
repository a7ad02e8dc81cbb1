"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 07:02:04.366113
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tenants',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('previous_token_hash', sa.String(length=64), nullable=True),
    sa.Column('previous_token_expires_at', sa.String(length=32), nullable=True),
    sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('notify', sa.Text(), server_default='[]', nullable=False),
    sa.Column('connector', sa.String(length=32), server_default='ledger', nullable=False),
    sa.Column('connector_config', sa.Text(), server_default='{}', nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('name', name=op.f('uq_tenants_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_tenants_token_hash'))
    )
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tenants_previous_token_hash'), ['previous_token_hash'], unique=False)

    op.create_table('groups',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('display_name_ci', sa.Text(), nullable=False),
    sa.Column('external_id', sa.Text(), nullable=True),
    sa.Column('member_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('last_modified', sa.String(length=32), nullable=False),
    sa.Column('doc', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_groups_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_groups')),
    sa.UniqueConstraint('id', name=op.f('uq_groups_id')),
    sa.UniqueConstraint('tenant_id', 'display_name_ci', name=op.f('uq_groups_tenant_id_display_name_ci')),
    sa.UniqueConstraint('tenant_id', 'external_id', name=op.f('uq_groups_tenant_id_external_id'))
    )
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.create_index('ix_groups_tenant_id_last_modified', ['tenant_id', 'last_modified'], unique=False)
        batch_op.create_index('ix_groups_tenant_id_pk', ['tenant_id', 'pk'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('effect_key', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), server_default='{}', nullable=False),
    sa.Column('state', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.String(length=32), nullable=False),
    sa.Column('claimed_until', sa.String(length=32), nullable=True),
    sa.Column('dispatched_at', sa.String(length=32), nullable=True),
    sa.Column('completed_at', sa.String(length=32), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_outbox_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('effect_key', name=op.f('uq_outbox_effect_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_state_next_attempt_at', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_outbox_tenant_id_state', ['tenant_id', 'state'], unique=False)

    op.create_table('users',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_name', sa.Text(), nullable=False),
    sa.Column('user_name_ci', sa.Text(), nullable=False),
    sa.Column('external_id', sa.Text(), nullable=True),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('work_email_ci', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('last_modified', sa.String(length=32), nullable=False),
    sa.Column('doc', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_users_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_users')),
    sa.UniqueConstraint('id', name=op.f('uq_users_id')),
    sa.UniqueConstraint('tenant_id', 'external_id', name=op.f('uq_users_tenant_id_external_id')),
    sa.UniqueConstraint('tenant_id', 'user_name_ci', name=op.f('uq_users_tenant_id_user_name_ci'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('ix_users_tenant_id_last_modified', ['tenant_id', 'last_modified'], unique=False)
        batch_op.create_index('ix_users_tenant_id_pk', ['tenant_id', 'pk'], unique=False)
        batch_op.create_index('ix_users_tenant_id_work_email_ci', ['tenant_id', 'work_email_ci'], unique=False)

    op.create_table('memberships',
    sa.Column('group_pk', sa.Integer(), nullable=False),
    sa.Column('user_pk', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_pk'], ['groups.pk'], name=op.f('fk_memberships_group_pk_groups')),
    sa.ForeignKeyConstraint(['user_pk'], ['users.pk'], name=op.f('fk_memberships_user_pk_users')),
    sa.PrimaryKeyConstraint('group_pk', 'user_pk', name=op.f('pk_memberships'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_user_pk', ['user_pk'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_user_pk')

    op.drop_table('memberships')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_tenant_id_work_email_ci')
        batch_op.drop_index('ix_users_tenant_id_pk')
        batch_op.drop_index('ix_users_tenant_id_last_modified')

    op.drop_table('users')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_tenant_id_state')
        batch_op.drop_index('ix_outbox_state_next_attempt_at')

    op.drop_table('outbox')
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.drop_index('ix_groups_tenant_id_pk')
        batch_op.drop_index('ix_groups_tenant_id_last_modified')

    op.drop_table('groups')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tenants_previous_token_hash'))

    op.drop_table('tenants')
