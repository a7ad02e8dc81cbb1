"""Sign-ins to the admin console: one row per session, found by the hash of its secret.

The browser holds the session's secret in a cookie; the table keeps only its SHA-256 hash, the
hash of the admin token it was opened with and when it expires. A session opens nothing once it
has expired, once it is ended (sign-out) or once the admin token is changed: every replica of
the API reads the same rows, so a sign-out or a new admin token takes effect everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa

from storage import clock
from storage.database import Database
from storage.records import console_sessions
from storage.sql import Dialect, Statement, compile_core


@dataclass(frozen=True, slots=True)
class Session:
    """A live console session: the secret its cookie holds and when it expires."""

    secret: str
    expires_at: str


def digest(value: str) -> str:
    """The SHA-256 hex digest the table keeps of a session secret or an admin token."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    table = console_sessions
    return {
        "insert": compile_core(
            sa.insert(table).values(
                id_hash=p("id_hash"),
                token_hash=p("token_hash"),
                created_at=p("now"),
                expires_at=p("expires"),
            ),
            dialect,
        ),
        "find": compile_core(
            sa.select(table.c.token_hash, table.c.expires_at).where(
                table.c.id_hash == p("id_hash")
            ),
            dialect,
        ),
        "end": compile_core(sa.delete(table).where(table.c.id_hash == p("id_hash")), dialect),
        "prune": compile_core(sa.delete(table).where(table.c.expires_at <= p("now")), dialect),
    }


async def start(db: Database, admin_token: str, *, seconds: float) -> Session:
    """Open a session for whoever presented ``admin_token`` (already checked), valid for
    ``seconds``; sessions that have expired are removed on the way."""
    secret = secrets.token_urlsafe(32)
    now = clock.stamp()
    expires = clock.later(seconds)
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        await conn.execute(statements["prune"], {"now": now})
        await conn.execute(
            statements["insert"],
            {
                "id_hash": digest(secret),
                "token_hash": digest(admin_token),
                "now": now,
                "expires": expires,
            },
        )
    return Session(secret, expires)


async def find(db: Database, secret: str, admin_token: str) -> Session | None:
    """The session of ``secret`` if it is live and was opened with ``admin_token``."""
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["find"], {"id_hash": digest(secret)})
    if row is None:
        return None
    token_hash, expires = row[0], row[1]
    if expires <= clock.stamp() or not hmac.compare_digest(token_hash, digest(admin_token)):
        return None
    return Session(secret, expires)


async def end(db: Database, secret: str) -> None:
    """End the session of ``secret`` (sign-out); nothing happens for an unknown one."""
    async with db.transaction() as conn:
        await conn.execute(_statements(db.dialect)["end"], {"id_hash": digest(secret)})


__all__ = ["Session", "digest", "end", "find", "start"]
