"""Migrations that move data: 0004 counts the users and groups a database already holds; 0005
drops the connector default and keeps the tenants."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import migrate
from tests.conftest import scratch_postgres

NOW = "2026-01-01T00:00:00.000000Z"
# Rows as the schema before the migration under test holds them (``:now`` stamps both times).
INSERT_TENANT = sa.text(
    "INSERT INTO tenants (id, name, token_hash, created_at) VALUES (:id, :name, :hash, :now)"
)
INSERT_USER = sa.text(
    "INSERT INTO users (tenant_id, id, user_name, user_name_ci, active, version, created_at,"
    " last_modified, doc) VALUES (:tenant, :id, :name, :name, true, 1, :now, :now, '{}')"
)


def test_0004_counts_existing_users_and_groups(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    migrate.upgrade(url, "0003")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for tenant in (1, 2):
            conn.execute(
                INSERT_TENANT,
                {"id": tenant, "name": f"t{tenant}", "hash": f"{tenant:064d}", "now": NOW},
            )
        for n in range(5):
            tenant = 1 if n < 3 else 2
            conn.execute(
                INSERT_USER, {"tenant": tenant, "id": f"u{n}", "name": f"user{n}", "now": NOW}
            )
        conn.execute(
            sa.text(
                "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, version,"
                " created_at, last_modified, doc) VALUES (2, 'g1', 'G', 'g', 1, :now, :now, '{}')"
            ),
            {"now": NOW},
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


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a database without any table, on SQLite or on the real PostgreSQL server."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    with scratch_postgres(f"printsync_migration_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_0005_drops_connector_default_and_keeps_tenants(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        migrate.upgrade(url, "0004")
        engine = sa.create_engine(
            url if kind == "sqlite" else sa.make_url(url).set(drivername="postgresql+psycopg")
        )
        with engine.begin() as conn:
            conn.execute(INSERT_TENANT, {"id": 1, "name": "old", "hash": "1" * 64, "now": NOW})
            conn.execute(
                sa.text(
                    "INSERT INTO tenants (id, name, token_hash, connector, connector_config,"
                    " created_at) VALUES (2, 'pc', :hash, 'papercut', :config, :now)"
                ),
                {"hash": "2" * 64, "config": '{"url": "http://pc:9191"}', "now": NOW},
            )
            conn.execute(INSERT_USER, {"tenant": 1, "id": "u1", "name": "a", "now": NOW})
        migrate.upgrade(url)
        with engine.connect() as conn:
            kept = conn.execute(
                sa.text("SELECT id, name, connector, connector_config FROM tenants ORDER BY id")
            ).all()
            users = conn.execute(sa.text("SELECT tenant_id, id FROM users")).all()
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(INSERT_TENANT, {"id": 3, "name": "new", "hash": "3" * 64, "now": NOW})
        engine.dispose()
    assert [tuple(row) for row in kept] == [
        (1, "old", "ledger", "{}"),
        (2, "pc", "papercut", '{"url": "http://pc:9191"}'),
    ]
    assert [tuple(row) for row in users] == [(1, "u1")]
