"""skipped_groups: groups the print system cannot hold, with the reason

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'skipped_groups',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.String(length=36), nullable=False),
        sa.Column('display_name', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('skipped_at', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ['tenant_id'], ['tenants.id'], name=op.f('fk_skipped_groups_tenant_id_tenants')
        ),
        sa.PrimaryKeyConstraint('tenant_id', 'group_id', name=op.f('pk_skipped_groups')),
    )


def downgrade() -> None:
    op.drop_table('skipped_groups')
