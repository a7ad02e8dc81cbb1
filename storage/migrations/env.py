"""Alembic environment: the only way printsync's schema is created or changed."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from storage.records import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        assert url is not None
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: object) -> None:
    if getattr(getattr(connection, "dialect", None), "name", "") == "postgresql":
        connection.exec_driver_sql("SET lock_timeout = '10s'")  # type: ignore[attr-defined]
        connection.exec_driver_sql("SET statement_timeout = '10min'")  # type: ignore[attr-defined]
        connection.commit()  # type: ignore[attr-defined]
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
