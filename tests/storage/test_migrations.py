"""Migrations that move data: 0004 counts the users and groups a database already holds."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from storage import migrate


def test_0004_counts_existing_users_and_groups(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    migrate.upgrade(url, "0003")
    engine = sa.create_engine(url)
    now = "2026-01-01T00:00:00.000000Z"
    with engine.begin() as conn:
        for tenant in (1, 2):
            conn.execute(
                sa.text(
                    "INSERT INTO tenants (id, name, token_hash, created_at)"
                    " VALUES (:id, :name, :hash, :now)"
                ),
                {"id": tenant, "name": f"t{tenant}", "hash": f"{tenant:064d}", "now": now},
            )
        for n in range(5):
            tenant = 1 if n < 3 else 2
            conn.execute(
                sa.text(
                    "INSERT INTO users (tenant_id, id, user_name, user_name_ci, active, version,"
                    " created_at, last_modified, doc) VALUES (:tenant, :id, :name, :name, 1, 1,"
                    " :now, :now, '{}')"
                ),
                {"tenant": tenant, "id": f"u{n}", "name": f"user{n}", "now": now},
            )
        conn.execute(
            sa.text(
                "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, version,"
                " created_at, last_modified, doc) VALUES (2, 'g1', 'G', 'g', 1, :now, :now, '{}')"
            ),
            {"now": now},
        )
    migrate.upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT tenant_id, resource, sum(n) FROM resource_counts"
                " GROUP BY tenant_id, resource ORDER BY tenant_id, resource"
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "User", 3), (2, "Group", 1), (2, "User", 2)]
