"""Cursors of cursor-paged lists (RFC 9865): opaque, tamper-evident and bound to their query.

A cursor names a place in a list's order: the sort key of the row a page ends at (``next``) or
starts at (``previous``), so the page it opens is the rows strictly after (or before) that key.
A row deleted or added meanwhile moves no other row, so a walk returns every resource that
existed throughout exactly once.

A cursor is sealed with the deployment's cursor key, 32 random bytes kept in ``server_keys`` and
made by whichever process needs it first, so a cursor issued by one API replica opens on any
other. The sealed text is base64url (RFC 3986 unreserved characters only) of::

    version (1) | nonce (12) | ciphertext | tag (16)

The plaintext (direction, issue time in seconds, the key as JSON) is encrypted with a keystream
of HMAC-SHA256 blocks over the nonce and a counter, so a client cannot read the sort values in
it; the tag is HMAC-SHA256 over the version, nonce, ciphertext and the query's binding (the
tenant, the resource types, the filter, ``sortBy`` and ``sortOrder``), with a second key derived
from the same secret. A cursor altered in any bit, or presented with another tenant, endpoint,
filter or sort, fails the tag: 400 ``invalidCursor``. One older than ``TIMEOUT_SECONDS``: 400
``expiredCursor``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import struct
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final, Literal
from weakref import WeakKeyDictionary

import orjson
import sqlalchemy as sa

from storage import clock
from storage.database import Database
from storage.records import server_keys
from storage.scim.errors import ExpiredCursor, InvalidCursor
from storage.sql import Dialect, Statement, compile_core, insert

#: How long a cursor stays valid after its page was answered (``cursorTimeout``, RFC 9865 §4).
TIMEOUT_SECONDS: Final = 3600
#: How far in the future an issue time may lie (clocks of replicas differ a little).
_SKEW_SECONDS: Final = 300
_VERSION: Final = 1
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_KEY_NAME: Final = "cursor"
_HEAD: Final = struct.Struct(">BI")  # direction, issue time
_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]{1,4096}")

Direction = Literal["next", "previous"]
_DIRECTIONS: Final[tuple[Direction, Direction]] = ("next", "previous")

INVALID_DETAIL: Final = (
    "the cursor is not valid for this query; send an empty cursor for the first page, then the "
    "nextCursor or previousCursor of a page, with the same filter and sort"
)


@dataclass(frozen=True, slots=True)
class Position:
    """A row's place in a list's order: its sort value (when the list is sorted; None is no
    value), the rank of its resource type in the list, and its primary key."""

    rank: int
    pk: int
    value: Any = None
    sorted: bool = False


@dataclass(frozen=True, slots=True)
class Cursor:
    direction: Direction
    position: Position
    issued: int


@dataclass(frozen=True, slots=True)
class Keys:
    """The two keys derived from the deployment's cursor secret."""

    encrypt: bytes
    authenticate: bytes

    @classmethod
    def derive(cls, secret: bytes) -> Keys:
        return cls(
            hmac.digest(secret, b"printsync cursor encryption", "sha256"),
            hmac.digest(secret, b"printsync cursor authentication", "sha256"),
        )


def binding(tenant_id: int, scope: str, filter_text: str | None, sort: str | None) -> bytes:
    """What a cursor is bound to: the tenant, the resource types listed, the filter, the sort."""
    parts = (str(tenant_id), scope, filter_text or "", sort or "")
    return "\x00".join(parts).encode("utf-8", "surrogatepass")


def seal(keys: Keys, bound: bytes, cursor: Cursor) -> str:
    position = cursor.position
    key: list[Any] = [position.rank, position.pk]
    if position.sorted:
        key.append(_encode_value(position.value))
    plain = _HEAD.pack(_DIRECTIONS.index(cursor.direction), cursor.issued) + orjson.dumps(key)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    head = bytes([_VERSION]) + nonce
    cipher = _xor(plain, _keystream(keys.encrypt, nonce, len(plain)))
    tag = hmac.digest(keys.authenticate, head + cipher + bound, "sha256")[:_TAG_BYTES]
    return base64.urlsafe_b64encode(head + cipher + tag).rstrip(b"=").decode("ascii")


def open_(keys: Keys, bound: bytes, text: str) -> Cursor:
    """The cursor sealed in ``text`` for this query; InvalidCursor or ExpiredCursor."""
    if not _ALPHABET.fullmatch(text):
        raise InvalidCursor(INVALID_DETAIL)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor(INVALID_DETAIL) from None
    if len(raw) < 1 + _NONCE_BYTES + _HEAD.size + _TAG_BYTES or raw[0] != _VERSION:
        raise InvalidCursor(INVALID_DETAIL)
    head, cipher, tag = (
        raw[: 1 + _NONCE_BYTES],
        raw[1 + _NONCE_BYTES : -_TAG_BYTES],
        raw[-_TAG_BYTES:],
    )
    expected = hmac.digest(keys.authenticate, head + cipher + bound, "sha256")[:_TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        raise InvalidCursor(INVALID_DETAIL)
    plain = _xor(cipher, _keystream(keys.encrypt, head[1:], len(cipher)))
    direction, issued = _HEAD.unpack_from(plain)
    try:
        key = orjson.loads(plain[_HEAD.size :])
        position = Position(int(key[0]), int(key[1]))
        if len(key) == 3:
            position = Position(position.rank, position.pk, _decode_value(key[2]), sorted=True)
        cursor = Cursor(_DIRECTIONS[direction], position, issued)
    except (orjson.JSONDecodeError, IndexError, TypeError, ValueError, InvalidOperation):
        raise InvalidCursor(INVALID_DETAIL) from None  # sealed by us: only a changed key
    age = time.time() - issued
    if age > TIMEOUT_SECONDS:
        raise ExpiredCursor(
            f"the cursor has expired (cursors are valid for {TIMEOUT_SECONDS} seconds); "
            "start again with an empty cursor"
        )
    if age < -_SKEW_SECONDS:
        raise InvalidCursor(INVALID_DETAIL)
    return cursor


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = [
        hmac.digest(key, nonce + counter.to_bytes(4, "big"), "sha256")
        for counter in range((length + 31) // 32)
    ]
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def _encode_value(value: Any) -> list[Any]:
    """A sort value with its type, so PostgreSQL gets it back as it gave it."""
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, int | float | str):
        return ["v", value]
    return ["v", str(value)]


def _decode_value(item: list[Any]) -> Any:
    kind = item[0]
    if kind == "n":
        return None
    if kind == "d":
        return Decimal(item[1])
    if kind == "b":
        return bool(item[1])
    if kind == "v" and isinstance(item[1], int | float | str):
        return item[1]
    raise ValueError("unknown sort value")


# The deployment's key ----------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _statements(dialect: Dialect) -> dict[str, Statement]:
    p = sa.bindparam
    return {
        "make": compile_core(
            insert(server_keys, dialect)
            .values(name=p("name"), value=p("value"), created_at=p("now"))
            .on_conflict_do_nothing(index_elements=["name"]),
            dialect,
        ),
        "read": compile_core(
            sa.select(server_keys.c.value).where(server_keys.c.name == p("name")), dialect
        ),
    }


_keys: WeakKeyDictionary[object, Keys] = WeakKeyDictionary()


async def keys(db: Database) -> Keys:
    """The deployment's cursor keys: read once per process, made by the first process that
    needs them (concurrent makers agree: the first insert wins, everyone reads it back)."""
    found = _keys.get(db)
    if found is not None:
        return found
    statements = _statements(db.dialect)
    params = {"name": _KEY_NAME}
    async with db.reader() as conn:
        row = await conn.fetchone(statements["read"], params)
    if row is None:
        fresh = {**params, "value": secrets.token_hex(32), "now": clock.stamp()}
        async with db.transaction() as conn:
            await conn.execute(statements["make"], fresh)
            row = await conn.fetchone(statements["read"], params)
        assert row is not None
    found = _keys[db] = Keys.derive(bytes.fromhex(row[0]))
    return found
