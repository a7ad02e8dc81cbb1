"""tenants.connector without a server default: whoever creates a tenant names its connector

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows keep the connector they hold; on SQLite the table is copied over.
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.alter_column(
            'connector',
            existing_type=sa.String(length=32),
            existing_nullable=False,
            server_default=None,
        )


def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.alter_column(
            'connector',
            existing_type=sa.String(length=32),
            existing_nullable=False,
            server_default='ledger',
        )
