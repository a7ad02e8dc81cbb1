"""sync_cycles (Entra's cycles as seen from here), deprovision_guards and the tenants' guard
overrides

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guard_min', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('guard_percent', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('guard_window_seconds', sa.Integer(), nullable=True))
    op.create_table(
        'deprovision_guards',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('window_started_at', sa.String(length=32), nullable=True),
        sa.Column('threshold', sa.Integer(), server_default='0', nullable=False),
        sa.Column('admitted', sa.Integer(), server_default='0', nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['tenants.id'], name=op.f('fk_deprovision_guards_tenant_id_tenants')
        ),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_deprovision_guards')),
    )
    op.create_table(
        'sync_cycles',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.String(length=32), nullable=False),
        sa.Column('ended_at', sa.String(length=32), nullable=False),
        sa.Column('first', sa.Boolean(), nullable=False),
        sa.Column('requests', sa.Integer(), nullable=False),
        sa.Column('probes', sa.Integer(), nullable=False),
        sa.Column('created', sa.Integer(), nullable=False),
        sa.Column('updated', sa.Integer(), nullable=False),
        sa.Column('disabled', sa.Integer(), nullable=False),
        sa.Column('deleted', sa.Integer(), nullable=False),
        sa.Column('group_changes', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['tenants.id'], name=op.f('fk_sync_cycles_tenant_id_tenants')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_cycles')),
    )
    op.create_index(
        'ix_sync_cycles_tenant_id_started_at',
        'sync_cycles',
        ['tenant_id', 'started_at'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_sync_cycles_tenant_id_started_at', table_name='sync_cycles')
    op.drop_table('sync_cycles')
    op.drop_table('deprovision_guards')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('guard_window_seconds')
        batch_op.drop_column('guard_percent')
        batch_op.drop_column('guard_min')
