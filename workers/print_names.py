"""Who owns a print-system username: the guard against two users sharing one print account.

A connector maps each SCIM userName to a print-system username (``Connector.account_name``), and
two userNames may map to one (PaperCut's ``local-part``: ``adele@contoso.com`` and
``adele@fabrikam.com`` are both ``adele``). The first user whose account lives under a name owns
it (``storage.downstream``); another user whose userName maps to it gets a permanent error naming
both, and an account is never merged, overwritten, revoked or deleted on behalf of a user who
does not own it.
"""

from __future__ import annotations

from storage import downstream
from storage.blocking import BlockingDatabase
from workers.connectors import Connector
from workers.errors import PermanentError, TransientError

__all__ = ["claim", "held_by_another", "release"]


def claim(
    store: BlockingDatabase, tenant_id: int, connector: Connector, username: str, user_id: str
) -> None:
    """Make the user the owner of the print name ``username`` maps to; a
    :class:`~workers.errors.PermanentError` naming both users if another user's userName maps
    to it now."""
    name = connector.account_name(username)
    holder = store.run(downstream.owner, tenant_id, connector.name, name)
    if holder is not None and holder.user_id == user_id and holder.user_name == username:
        return
    take_from = None
    if holder is not None and holder.user_id != user_id:
        if _holds(connector, holder, name):
            raise PermanentError(
                f"userName {username} and userName {holder.current_user_name} both map to the"
                f" {connector.name} username {name}, which stays {holder.current_user_name}'s:"
                " the accounts are never merged; change one userName or the tenant's username"
                " mapping",
                operation="map_username",
            )
        take_from = holder.user_id  # a holder deleted or renamed away: the name is free
    claimed = store.run(
        downstream.claim,
        tenant_id,
        connector.name,
        name,
        user_id=user_id,
        user_name=username,
        take_from=take_from,
    )
    if not claimed:
        raise TransientError(
            f"another user took the {connector.name} username {name} meanwhile",
            operation="map_username",
        )


def held_by_another(
    store: BlockingDatabase, tenant_id: int, connector: Connector, username: str
) -> bool:
    """Whether the print name of ``username`` (which nobody has now) belongs to a user whose
    userName maps to it: then the account is that user's, and is left alone."""
    name = connector.account_name(username)
    holder = store.run(downstream.owner, tenant_id, connector.name, name)
    return holder is not None and _holds(connector, holder, name)


def release(store: BlockingDatabase, tenant_id: int, connector: Connector, username: str) -> None:
    """Forget the owner of the print name of ``username`` (its account was deleted)."""
    store.run(downstream.release, tenant_id, connector.name, connector.account_name(username))


def _holds(connector: Connector, holder: downstream.Owner, name: str) -> bool:
    current = holder.current_user_name
    return current is not None and connector.account_name(current).lower() == name.lower()
