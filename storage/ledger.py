"""The built-in print-account ledger: print accounts and groups kept in printsync's own database.

It is the system of record of the built-in ledger connector, for tenants without a print server
of their own, and it behaves like one: usernames and group names compare case-insensitively,
every write converges to the state it is given (so repeating it changes nothing), and operations
on an account or group that does not exist are no-ops where the print system would treat them as
done.

A deleted account is kept as a tombstone: with ``redact`` its personal data is erased and its
username replaced, so the name is free again; without it the row is removed. A user's groups are a
JSON list in the account row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa

from storage import clock
from storage.database import Connection, Database
from storage.records import ledger_groups, print_accounts
from storage.sql import Dialect, Statement, compile_core, compile_text, insert, row_reader

#: What :func:`_account` reads, in order: the columns named as the fields of :class:`Account`.
_ACCOUNT_COLUMNS = (
    print_accounts.c.id,
    print_accounts.c.username,
    print_accounts.c.full_name,
    print_accounts.c.email,
    print_accounts.c.department,
    print_accounts.c.office,
    print_accounts.c.card_number,
    print_accounts.c.secondary_card_number,
    print_accounts.c.pin,
    print_accounts.c.enabled,
    print_accounts.c.groups,
    print_accounts.c.updated_at,
)


@dataclass(frozen=True, slots=True)
class Account:
    """One live print account of the ledger."""

    id: int
    username: str
    full_name: str
    email: str
    department: str
    office: str
    card_number: str
    secondary_card_number: str
    pin: str
    enabled: bool
    groups: tuple[str, ...]
    updated_at: str

    def summary(self) -> dict[str, Any]:
        """The operator's view: card numbers are shown, the PIN only as set or not."""
        return {
            "userName": self.username,
            "enabled": self.enabled,
            "fullName": self.full_name,
            "email": self.email,
            "department": self.department,
            "office": self.office,
            "cardNumber": self.card_number,
            "secondaryCardNumber": self.secondary_card_number,
            "pinSet": bool(self.pin),
            "groups": list(self.groups),
            "updatedAt": self.updated_at,
        }


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    live = sa.and_(print_accounts.c.tenant_id == p("tenant"), print_accounts.c.deleted_at.is_(None))
    by_name = sa.and_(live, print_accounts.c.username_ci == p("username_ci"))
    group_by_name = sa.and_(
        ledger_groups.c.tenant_id == p("tenant"), ledger_groups.c.name_ci == p("name_ci")
    )
    personal: dict[str, Any] = {
        "full_name": p("full_name"),
        "email": p("email"),
        "department": p("department"),
        "office": p("office"),
        "card_number": p("card_number"),
        "secondary_card_number": p("secondary_card_number"),
    }
    return {
        "get": compile_core(sa.select(*_ACCOUNT_COLUMNS).where(by_name), dialect),
        "lock": compile_core(
            sa.select(*_ACCOUNT_COLUMNS).where(by_name).with_for_update(), dialect
        ),
        "list": compile_core(
            sa.select(*_ACCOUNT_COLUMNS).where(live).order_by(print_accounts.c.username_ci), dialect
        ),
        "with_groups": compile_core(
            sa.select(print_accounts.c.id, print_accounts.c.groups)
            .where(live, print_accounts.c.groups != "[]")
            .with_for_update(),
            dialect,
        ),
        "upsert": compile_core(_upsert(dialect, personal), dialect),
        "revoke": compile_core(
            sa.update(print_accounts)
            .where(by_name)
            .values(
                enabled=False,
                card_number="",
                secondary_card_number="",
                pin="",
                groups="[]",
                updated_at=p("now"),
            ),
            dialect,
        ),
        "rename": compile_core(
            sa.update(print_accounts)
            .where(by_name)
            .values(username=p("new"), username_ci=p("new_ci"), updated_at=p("now")),
            dialect,
        ),
        "count": compile_core(
            sa.select(sa.func.count()).select_from(print_accounts).where(live), dialect
        ),
        "set_pin": compile_core(
            sa.update(print_accounts).where(by_name).values(pin=p("pin"), updated_at=p("now")),
            dialect,
        ),
        "set_groups": compile_core(
            sa.update(print_accounts)
            .where(print_accounts.c.id == p("id"))
            .values(groups=p("groups"), updated_at=p("now")),
            dialect,
        ),
        "redact": compile_core(
            sa.update(print_accounts)
            .where(print_accounts.c.id == p("id"))
            .values(
                username=p("tombstone"),
                username_ci=p("tombstone"),
                full_name="",
                email="",
                department="",
                office="",
                card_number="",
                secondary_card_number="",
                pin="",
                enabled=False,
                groups="[]",
                redacted=True,
                deleted_at=p("now"),
                updated_at=p("now"),
            ),
            dialect,
        ),
        "remove": compile_core(
            sa.delete(print_accounts).where(print_accounts.c.id == p("id")), dialect
        ),
        "group": compile_core(
            sa.select(ledger_groups.c.id, ledger_groups.c.name).where(group_by_name), dialect
        ),
        "groups": compile_core(
            sa.select(ledger_groups.c.name)
            .where(ledger_groups.c.tenant_id == p("tenant"))
            .order_by(ledger_groups.c.name_ci),
            dialect,
        ),
        "add_group": compile_core(
            insert(ledger_groups, dialect)
            .values(
                tenant_id=p("tenant"), name=p("name"), name_ci=p("name_ci"), created_at=p("now")
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "name_ci"]),
            dialect,
        ),
        "drop_group": compile_core(sa.delete(ledger_groups).where(group_by_name), dialect),
        "rename_group": compile_core(
            sa.update(ledger_groups)
            .where(ledger_groups.c.id == p("id"))
            .values(name=p("name"), name_ci=p("name_ci")),
            dialect,
        ),
    }


def _upsert(dialect: Dialect, personal: dict[str, Any]) -> Any:
    """Insert an account or update the live one of that name; the PIN stays as it is."""
    p = sa.bindparam
    statement = insert(print_accounts, dialect).values(
        tenant_id=p("tenant"),
        username=p("username"),
        username_ci=p("username_ci"),
        enabled=p("enabled"),
        groups=p("groups"),
        pin="",
        redacted=False,
        created_at=p("now"),
        updated_at=p("now"),
        **personal,
    )
    changed = ("username", "enabled", "groups", "updated_at", *personal)
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "username_ci"],
        set_={name: statement.excluded[name] for name in changed},
    )


def _key(name: str) -> str:
    return name.lower()


_account = row_reader(
    Account,
    [column.name for column in _ACCOUNT_COLUMNS],
    enabled=bool,
    groups=lambda groups: tuple(orjson.loads(groups)),
)


def _unique(names: Sequence[str]) -> list[str]:
    """Group names without case-insensitive repeats, first spelling kept."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(_key(name), name)
    return list(seen.values())


def _dump(names: Sequence[str]) -> str:
    return orjson.dumps(list(names)).decode()


async def ensure_account(
    db: Database,
    tenant_id: int,
    *,
    username: str,
    full_name: str,
    email: str,
    department: str,
    office: str,
    card_number: str,
    secondary_card_number: str,
    enabled: bool,
    groups: Sequence[str],
) -> None:
    """Create the account or bring it in line with the values given; its groups become exactly
    ``groups`` (each created if missing). The PIN is left as it is."""
    statements = _statements(db.dialect)
    now = clock.stamp()
    names = _unique(groups)
    async with db.transaction() as conn:
        spelled = [await _add_group(conn, statements, tenant_id, name, now) for name in names]
        await conn.execute(
            statements["upsert"],
            {
                "tenant": tenant_id,
                "username": username,
                "username_ci": _key(username),
                "full_name": full_name,
                "email": email,
                "department": department,
                "office": office,
                "card_number": card_number,
                "secondary_card_number": secondary_card_number,
                "enabled": enabled,
                "groups": _dump(spelled),
                "now": now,
            },
        )


async def rename(db: Database, tenant_id: int, old: str, new: str) -> bool:
    """Give the account ``old`` the username ``new``, keeping the account (its row, PIN,
    history). Nothing happens when there is no account ``old``, or one named ``new`` exists
    already (that one is kept). Returns whether the account was renamed."""
    statements = _statements(db.dialect)
    async with db.transaction() as conn:
        if _key(old) != _key(new):
            taken = await conn.fetchone(
                statements["get"], {"tenant": tenant_id, "username_ci": _key(new)}
            )
            if taken is not None:
                return False
        changed = await conn.execute(
            statements["rename"],
            {
                "tenant": tenant_id,
                "username_ci": _key(old),
                "new": new,
                "new_ci": _key(new),
                "now": clock.stamp(),
            },
        )
    return bool(changed)


async def count(db: Database, tenant_id: int) -> int:
    """How many live accounts the tenant's ledger holds."""
    async with db.reader() as conn:
        row = await conn.fetchone(_statements(db.dialect)["count"], {"tenant": tenant_id})
    return int(row[0]) if row is not None else 0


async def revoke(db: Database, tenant_id: int, username: str) -> bool:
    """Disable printing, clear both card numbers and the PIN, drop every group membership.

    Returns False when there is no such account (which counts as revoked)."""
    async with db.transaction() as conn:
        changed = await conn.execute(
            _statements(db.dialect)["revoke"],
            {"tenant": tenant_id, "username_ci": _key(username), "now": clock.stamp()},
        )
    return bool(changed)


async def delete(db: Database, tenant_id: int, username: str, *, redact: bool = True) -> bool:
    """Delete the account; with ``redact`` keep a tombstone without personal data.

    Returns False when there is no such account (which counts as deleted)."""
    statements = _statements(db.dialect)
    now = clock.stamp()
    async with db.transaction() as conn:
        row = await conn.fetchone(
            statements["lock"], {"tenant": tenant_id, "username_ci": _key(username)}
        )
        if row is None:
            return False
        if redact:
            await conn.execute(
                statements["redact"],
                {"id": row[0], "tombstone": f"deleted:{uuid.uuid4().hex}", "now": now},
            )
        else:
            await conn.execute(statements["remove"], {"id": row[0]})
    return True


async def set_pin(db: Database, tenant_id: int, username: str, pin: str) -> bool:
    """Set the PIN used to release jobs at a printer (an operator's or a test's action)."""
    async with db.transaction() as conn:
        changed = await conn.execute(
            _statements(db.dialect)["set_pin"],
            {"tenant": tenant_id, "username_ci": _key(username), "pin": pin, "now": clock.stamp()},
        )
    return bool(changed)


async def get_account(db: Database, tenant_id: int, username: str) -> Account | None:
    async with db.reader() as conn:
        row = await conn.fetchone(
            _statements(db.dialect)["get"], {"tenant": tenant_id, "username_ci": _key(username)}
        )
    return None if row is None else _account(row)


async def list_accounts(db: Database, tenant_id: int) -> list[Account]:
    """The tenant's live accounts, by username."""
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["list"], {"tenant": tenant_id})
    return [_account(row) for row in rows]


async def accounts_named(db: Database, tenant_id: int, usernames: Sequence[str]) -> list[Account]:
    """The tenant's live accounts among ``usernames`` (compared case-insensitively), by
    username, in one statement."""
    if not usernames:
        return []
    names = sorted({_key(name) for name in usernames})
    param: Any = names if db.dialect == "postgresql" else orjson.dumps(names).decode()
    async with db.reader() as conn:
        rows = await conn.fetchall(_named(db.dialect), {"tenant": tenant_id, "names": param})
    return [_account(row) for row in rows]


@lru_cache(maxsize=2)
def _named(dialect: Dialect) -> Statement:
    columns = ", ".join(column.name for column in _ACCOUNT_COLUMNS)
    names = (
        "username_ci = ANY(CAST(:names AS text[]))"
        if dialect == "postgresql"
        else "username_ci IN (SELECT value FROM json_each(:names))"
    )
    return compile_text(
        f"SELECT {columns} FROM print_accounts WHERE tenant_id = :tenant"
        f" AND deleted_at IS NULL AND {names} ORDER BY username_ci",
        dialect,
    )


async def list_groups(db: Database, tenant_id: int) -> list[str]:
    async with db.reader() as conn:
        rows = await conn.fetchall(_statements(db.dialect)["groups"], {"tenant": tenant_id})
    return [row[0] for row in rows]


async def ensure_group(db: Database, tenant_id: int, name: str) -> None:
    async with db.transaction() as conn:
        await _add_group(conn, _statements(db.dialect), tenant_id, name, clock.stamp())


async def delete_group(db: Database, tenant_id: int, name: str) -> bool:
    """Remove the group and every membership in it. False when there was no such group."""
    statements = _statements(db.dialect)
    now = clock.stamp()
    async with db.transaction() as conn:
        removed = await conn.execute(
            statements["drop_group"], {"tenant": tenant_id, "name_ci": _key(name)}
        )
        await _rewrite_memberships(conn, statements, tenant_id, name, None, now)
    return bool(removed)


async def rename_group(db: Database, tenant_id: int, old: str, new: str) -> None:
    """Give group ``old`` the name ``new``, keeping its members.

    If ``old`` no longer exists, ``new`` is made to exist; if both exist, ``old``'s members join
    ``new`` and ``old`` goes away.
    """
    statements = _statements(db.dialect)
    now = clock.stamp()
    async with db.transaction() as conn:
        source = await conn.fetchone(
            statements["group"], {"tenant": tenant_id, "name_ci": _key(old)}
        )
        target = await conn.fetchone(
            statements["group"], {"tenant": tenant_id, "name_ci": _key(new)}
        )
        if source is None or _key(old) == _key(new):
            if source is not None:
                await conn.execute(
                    statements["rename_group"], {"id": source[0], "name": new, "name_ci": _key(new)}
                )
            elif target is None:
                await _add_group(conn, statements, tenant_id, new, now)
            await _rewrite_memberships(conn, statements, tenant_id, old, new, now)
            return
        if target is None:
            await conn.execute(
                statements["rename_group"], {"id": source[0], "name": new, "name_ci": _key(new)}
            )
        else:
            await conn.execute(
                statements["drop_group"], {"tenant": tenant_id, "name_ci": _key(old)}
            )
        await _rewrite_memberships(conn, statements, tenant_id, old, new, now)


async def _add_group(
    conn: Connection, statements: dict[str, Statement], tenant_id: int, name: str, now: str
) -> str:
    """Make the group exist; returns its stored spelling."""
    await conn.execute(
        statements["add_group"],
        {"tenant": tenant_id, "name": name, "name_ci": _key(name), "now": now},
    )
    row = await conn.fetchone(statements["group"], {"tenant": tenant_id, "name_ci": _key(name)})
    assert row is not None
    return str(row[1])


async def _rewrite_memberships(
    conn: Connection,
    statements: dict[str, Statement],
    tenant_id: int,
    old: str,
    new: str | None,
    now: str,
) -> None:
    """Replace group ``old`` by ``new`` (or drop it, for None) in every account's groups."""
    rows = await conn.fetchall(statements["with_groups"], {"tenant": tenant_id})
    for account_id, text in rows:
        names: list[str] = orjson.loads(text)
        if not any(_key(name) == _key(old) for name in names):
            continue
        kept = [name for name in names if _key(name) != _key(old)]
        if new is not None:
            kept.append(new)
        await conn.execute(
            statements["set_groups"], {"id": account_id, "groups": _dump(_unique(kept)), "now": now}
        )
