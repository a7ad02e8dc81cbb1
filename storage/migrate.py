"""Schema migrations, run through Alembic against ``PRINTSYNC_DATABASE_URL``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from storage.database import parse_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", parse_url(database_url).sync_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (creating the SQLite file if needed)."""
    url = parse_url(database_url)
    if url.dialect == "sqlite" and url.path not in (None, ":memory:"):
        Path(url.path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Fail when the models and the migrations disagree (the drift gate)."""
    command.check(alembic_config(database_url))


def revision(database_url: str, message: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
