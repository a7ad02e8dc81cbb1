"""provisioning_log.changes (what a write changed, what an effect did) and console_sessions

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('provisioning_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('changes', sa.Text(), nullable=True))
    op.create_table(
        'console_sessions',
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.String(length=32), nullable=False),
        sa.Column('expires_at', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_console_sessions')),
    )
    op.create_index(
        op.f('ix_console_sessions_expires_at'), 'console_sessions', ['expires_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_console_sessions_expires_at'), table_name='console_sessions')
    op.drop_table('console_sessions')
    with op.batch_alter_table('provisioning_log', schema=None) as batch_op:
        batch_op.drop_column('changes')
