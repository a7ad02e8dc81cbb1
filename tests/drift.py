"""Migration drift gate: upgrade a fresh SQLite and a fresh PostgreSQL database to head, then
check that the models and the migrations agree. Run as ``python -m tests.drift``."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid

import sqlalchemy as sa

from storage import migrate

POSTGRES = os.environ.get(
    "PRINTSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/drift.sqlite3"
        migrate.upgrade(url)
        migrate.check(url)
    admin = sa.create_engine(
        sa.make_url(POSTGRES).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    name = f"printsync_drift_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        migrate.check(url)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("migrations match the models on SQLite and PostgreSQL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
