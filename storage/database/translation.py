"""Driver errors turned into storage's: a unique index or a reference violated, the database
away.

Storage does not import asyncpg: its errors are recognised by class name along their MRO.
"""

from __future__ import annotations

import sqlite3

from storage.errors import DatabaseUnavailable
from storage.indexed import uniqueness_detail
from storage.scim.errors import InvalidValue, Uniqueness

#: The detail of a write that refers to a row deleted meanwhile: the only reference a client can
#: break is a member (a user) deleted by a concurrent request while a group's PATCH adds it.
GONE_DETAIL = "a resource this request refers to (a member) was deleted meanwhile"

#: Driver errors that mean the server is away, starting, stopping or out of connections: the
#: request may succeed later (503). Matched by class name along the MRO, so that storage does not
#: import asyncpg. ``PostgresConnectionError`` is SQLSTATE class 08 and also a connection lost in
#: the middle of an operation; ``InternalClientError`` is what asyncpg raises when it reuses a
#: pooled connection that the server terminated while it was idle (a restart), and an
#: ``InterfaceError`` about a closed connection is what ending a transaction on it raises.
UNAVAILABLE = frozenset(
    {
        "PostgresConnectionError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "InternalClientError",
    }
)


#: Conflicts between concurrent transactions that PostgreSQL resolves by rolling one back: the
#: request may succeed when sent again (503 with Retry-After, never a 500).
CONFLICTS = frozenset({"DeadlockDetectedError", "SerializationError"})


def is_unique_violation(error: BaseException) -> bool:
    if isinstance(error, sqlite3.IntegrityError):
        return "UNIQUE" in str(error)
    return type(error).__name__ == "UniqueViolationError"


def is_foreign_key_violation(error: BaseException) -> bool:
    if isinstance(error, sqlite3.IntegrityError):
        return "FOREIGN KEY" in str(error)
    return type(error).__name__ == "ForeignKeyViolationError"


def raise_translated(error: BaseException) -> None:
    """Turn driver errors that carry meaning into ours; leave the rest alone."""
    if is_unique_violation(error):
        raise Uniqueness(uniqueness_detail(str(error))) from error
    if is_foreign_key_violation(error):
        raise InvalidValue(GONE_DETAIL) from error
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
        raise DatabaseUnavailable(str(error)) from error
    names = {cls.__name__ for cls in type(error).__mro__}
    closed = "InterfaceError" in names and "connection is closed" in str(error)
    if names & UNAVAILABLE or names & CONFLICTS or closed or isinstance(error, OSError):
        raise DatabaseUnavailable(type(error).__name__) from error
