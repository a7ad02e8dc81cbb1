"""resource counts per tenant, and an index for the relay's claim

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('resource_counts',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('resource', sa.String(length=8), nullable=False),
    sa.Column('slot', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_resource_counts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'resource', 'slot', name=op.f('pk_resource_counts'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_unclaimed', ['next_attempt_at', 'id'], unique=False, sqlite_where=sa.text("state = 'pending' AND claimed_until IS NULL"), postgresql_where=sa.text("state = 'pending' AND claimed_until IS NULL"))
        batch_op.create_index('ix_outbox_claimed', ['claimed_until', 'id'], unique=False, sqlite_where=sa.text("state = 'pending' AND claimed_until IS NOT NULL"), postgresql_where=sa.text("state = 'pending' AND claimed_until IS NOT NULL"))
    # Existing resources are counted in slot 0.
    op.execute(
        "INSERT INTO resource_counts (tenant_id, resource, slot, n) "
        "SELECT tenant_id, 'User', 0, count(*) FROM users GROUP BY tenant_id"
    )
    op.execute(
        "INSERT INTO resource_counts (tenant_id, resource, slot, n) "
        "SELECT tenant_id, 'Group', 0, count(*) FROM groups GROUP BY tenant_id"
    )


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_claimed')
        batch_op.drop_index('ix_outbox_unclaimed')
    op.drop_table('resource_counts')
