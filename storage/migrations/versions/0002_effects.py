"""effects: the print-account ledger and the users' applied print username

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('print_accounts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.Text(), nullable=False),
    sa.Column('username_ci', sa.Text(), nullable=False),
    sa.Column('full_name', sa.Text(), server_default='', nullable=False),
    sa.Column('email', sa.Text(), server_default='', nullable=False),
    sa.Column('department', sa.Text(), server_default='', nullable=False),
    sa.Column('office', sa.Text(), server_default='', nullable=False),
    sa.Column('card_number', sa.Text(), server_default='', nullable=False),
    sa.Column('secondary_card_number', sa.Text(), server_default='', nullable=False),
    sa.Column('pin', sa.Text(), server_default='', nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('groups', sa.Text(), server_default='[]', nullable=False),
    sa.Column('redacted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('deleted_at', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_print_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_print_accounts')),
    sa.UniqueConstraint('tenant_id', 'username_ci',
                        name=op.f('uq_print_accounts_tenant_id_username_ci'))
    )
    op.create_table('ledger_groups',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_ci', sa.Text(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_ledger_groups_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_groups')),
    sa.UniqueConstraint('tenant_id', 'name_ci', name=op.f('uq_ledger_groups_tenant_id_name_ci'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('print_username', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('print_username')

    op.drop_table('ledger_groups')
    op.drop_table('print_accounts')
