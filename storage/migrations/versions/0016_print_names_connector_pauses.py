"""print_names (who owns a print-system username), connector_pauses (refused credentials) and
connector_checks (connection tests asked for from the console)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'print_names',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('connector', sa.String(length=32), nullable=False),
        sa.Column('name_ci', sa.Text(), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('user_name', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['tenants.id'], name=op.f('fk_print_names_tenant_id_tenants')
        ),
        sa.PrimaryKeyConstraint('tenant_id', 'connector', 'name_ci', name=op.f('pk_print_names')),
    )
    op.create_index(
        'ix_print_names_tenant_id_user_id', 'print_names', ['tenant_id', 'user_id'], unique=False
    )
    op.create_table(
        'connector_pauses',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('since', sa.String(length=32), nullable=False),
        sa.Column('checked_at', sa.String(length=32), nullable=False),
        sa.Column('retry_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['tenants.id'], name=op.f('fk_connector_pauses_tenant_id_tenants')
        ),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_connector_pauses')),
    )
    op.create_table(
        'connector_checks',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('requested_at', sa.String(length=32), nullable=False),
        sa.Column('checked_at', sa.String(length=32), nullable=True),
        sa.Column('ok', sa.Boolean(), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['tenants.id'], name=op.f('fk_connector_checks_tenant_id_tenants')
        ),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_connector_checks')),
    )


def downgrade() -> None:
    op.drop_table('connector_checks')
    op.drop_table('connector_pauses')
    op.drop_index('ix_print_names_tenant_id_user_id', table_name='print_names')
    op.drop_table('print_names')
