"""Tenants and their secret tokens.

A token is 256 random bits, shown once when it is created and stored only as its SHA-256 hash.
Lookups go by hash; the final comparison is constant-time. A rotation may keep the previous token
valid for an overlap period so a running Entra job is not cut off mid-cycle.

A tenant's connector is a name and a JSON configuration that storage keeps as given: which
connectors exist, which one is the default and what their configurations hold is the workers'
business (``workers.connectors``), checked by the caller before it gets here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from storage import clock
from storage.database import Database, Row
from storage.errors import TenantNotFound
from storage.records import tenants
from storage.scim.errors import InvalidValue, Uniqueness
from storage.sql import Dialect, Statement, compile_core

TOKEN_PREFIX = "pst_"  # noqa: S105 (a public prefix, not a secret)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CONNECTOR_MAX_LENGTH = 32


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    disabled: bool
    notify: tuple[str, ...]
    connector: str
    connector_config: dict[str, Any]
    created_at: str

    def summary(self) -> dict[str, Any]:
        """What may be shown to an operator (never the token or connector secrets)."""
        return {
            "name": self.name,
            "disabled": self.disabled,
            "notify": list(self.notify),
            "connector": self.connector,
            "created_at": self.created_at,
        }


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


#: The columns :func:`tenant_of` reads a :class:`Tenant` from.
COLUMNS = (
    tenants.c.id,
    tenants.c.name,
    tenants.c.disabled,
    tenants.c.notify,
    tenants.c.connector,
    tenants.c.connector_config,
    tenants.c.created_at,
)
#: A tenant with the hashes of its tokens (:func:`authenticate`).
_WITH_TOKENS = (
    *COLUMNS,
    tenants.c.token_hash,
    tenants.c.previous_token_hash,
    tenants.c.previous_token_expires_at,
)


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam

    def update_named(**values: Any) -> Statement:
        """Set ``values`` on the tenant named by the parameter ``name``."""
        return compile_core(
            sa.update(tenants).where(tenants.c.name == p("name")).values(**values), dialect
        )

    return {
        "by_hash": compile_core(
            sa.select(*_WITH_TOKENS).where(
                sa.or_(
                    tenants.c.token_hash == p("hash"), tenants.c.previous_token_hash == p("hash")
                )
            ),
            dialect,
        ),
        "by_name": compile_core(
            sa.select(*_WITH_TOKENS).where(tenants.c.name == p("name")), dialect
        ),
        "all": compile_core(sa.select(*COLUMNS).order_by(tenants.c.name), dialect),
        "insert": compile_core(
            sa.insert(tenants)
            .values(
                name=p("name"),
                token_hash=p("hash"),
                disabled=p("disabled"),
                notify=p("notify"),
                connector=p("connector"),
                connector_config=p("connector_config"),
                created_at=p("now"),
            )
            .returning(tenants.c.id),
            dialect,
        ),
        "rotate": update_named(
            token_hash=p("hash"),
            previous_token_hash=p("previous"),
            previous_token_expires_at=p("expires"),
        ),
        "set_disabled": update_named(disabled=p("disabled")),
        "set_notify": update_named(notify=p("notify")),
        "set_connector": update_named(
            connector=p("connector"), connector_config=p("connector_config")
        ),
    }


def tenant_of(row: Row) -> Tenant:
    """The tenant in a row that starts with :data:`COLUMNS`."""
    return Tenant(
        id=row[0],
        name=row[1],
        disabled=bool(row[2]),
        notify=tuple(orjson.loads(row[3])),
        connector=row[4],
        connector_config=orjson.loads(row[5]),
        created_at=row[6],
    )


def validate_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidValue(
            "tenant name must be 1-63 lower-case letters, digits or '-', starting with a letter "
            "or digit"
        )
    return name


def _validate_connector(connector: str) -> None:
    if not connector or len(connector) > CONNECTOR_MAX_LENGTH:
        raise InvalidValue(f"connector name must be 1-{CONNECTOR_MAX_LENGTH} characters")


async def create(
    db: Database,
    name: str,
    *,
    connector: str,
    connector_config: Mapping[str, Any] | None = None,
    notify: tuple[str, ...] = (),
) -> tuple[Tenant, str]:
    """Create a tenant and return it with its token (the only time the token is known).

    ``connector`` names the tenant's connector and ``connector_config`` is its configuration
    (a JSON object), both validated by the caller."""
    validate_name(name)
    _validate_connector(connector)
    token = generate_token()
    statements = _statements(db.dialect)
    try:
        async with db.transaction() as conn:
            await conn.fetchone(
                statements["insert"],
                {
                    "name": name,
                    "hash": hash_token(token),
                    "disabled": False,
                    "notify": orjson.dumps(list(notify)).decode(),
                    "connector": connector,
                    "connector_config": orjson.dumps(dict(connector_config or {})).decode(),
                    "now": clock.stamp(),
                },
            )
    except Uniqueness as error:
        raise Uniqueness(f"tenant {name} already exists") from error
    return await get(db, name), token


async def get(db: Database, name: str) -> Tenant:
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["by_name"], {"name": name})
    if row is None:
        raise TenantNotFound(name)
    return tenant_of(row)


async def list_all(db: Database) -> list[Tenant]:
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["all"], {})
    return [tenant_of(row) for row in rows]


async def authenticate(db: Database, token: str) -> Tenant | None:
    """The tenant this token opens, or None. Disabled tenants are returned (the caller
    answers 403 for them); an expired previous token opens nothing."""
    digest = hash_token(token)
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["by_hash"], {"hash": digest})
    if row is None:
        return None
    current, previous, expires = row[7], row[8], row[9]
    if hmac.compare_digest(current, digest):
        return tenant_of(row)
    if (
        previous is not None
        and hmac.compare_digest(previous, digest)
        and expires is not None
        and expires > clock.stamp()
    ):
        return tenant_of(row)
    return None


async def rotate_token(db: Database, name: str, *, overlap_seconds: float = 0) -> str:
    """Issue a new token; the old one keeps working for ``overlap_seconds`` (0: stops now)."""
    tenant_row = await _row(db, name)
    token = generate_token()
    previous = tenant_row[7] if overlap_seconds > 0 else None
    expires = clock.later(overlap_seconds) if overlap_seconds > 0 else None
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["rotate"],
            {
                "name": name,
                "hash": hash_token(token),
                "previous": previous,
                "expires": expires,
            },
        )
    return token


async def set_disabled(db: Database, name: str, disabled: bool) -> None:
    await _row(db, name)
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["set_disabled"], {"name": name, "disabled": disabled}
        )


async def set_notify(db: Database, name: str, notify: tuple[str, ...]) -> None:
    await _row(db, name)
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["set_notify"],
            {"name": name, "notify": orjson.dumps(list(notify)).decode()},
        )


async def set_connector(db: Database, name: str, connector: str, config: Mapping[str, Any]) -> None:
    """Give the tenant another connector or configuration, validated by the caller."""
    _validate_connector(connector)
    await _row(db, name)
    async with db.transaction() as conn:
        await conn.execute(
            _statements(db.dialect)["set_connector"],
            {
                "name": name,
                "connector": connector,
                "connector_config": orjson.dumps(dict(config)).decode(),
            },
        )


async def _row(db: Database, name: str) -> Row:
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["by_name"], {"name": name})
    if row is None:
        raise TenantNotFound(name)
    found: Row = row
    return found
