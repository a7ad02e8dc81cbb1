"""``PRINTSYNC_DATABASE_URL``: which driver, and the URLs each consumer needs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url

from storage.sql import Dialect


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed ``PRINTSYNC_DATABASE_URL``."""

    dialect: Dialect
    raw: str
    path: str | None = None  # SQLite file path (":memory:" allowed)

    @property
    def sync_url(self) -> str:
        """The URL for SQLAlchemy's synchronous engines (Alembic, admin commands)."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.path}"
        url = make_url(self.raw).set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @property
    def masked(self) -> str:
        """The URL as logs and messages show it: the password replaced by ``***``."""
        return make_url(self.raw).render_as_string(hide_password=True)

    @property
    def asyncpg_dsn(self) -> str:
        url = make_url(self.raw).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)


def parse_url(raw: str) -> DatabaseURL:
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ":memory:"
        return DatabaseURL("sqlite", raw, path)
    if backend in ("postgresql", "postgres"):
        return DatabaseURL("postgresql", raw)
    raise ValueError(f"unsupported database URL scheme {url.drivername!r}")
