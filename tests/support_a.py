"""Outbox effects and ledger accounts as the storage and worker tests set them up and check them."""

from __future__ import annotations

from typing import Any

from storage import ledger, outbox
from storage.database import Database


async def record_effects(
    db: Database,
    tenant_id: int,
    kind: str,
    *subject_ids: str,
    version: int = 1,
    payload: dict[str, Any] | None = None,
    now: str | None = None,
) -> None:
    """Record one ``kind`` effect per subject in one transaction, each under the key the API
    gives it (``kind:subject:vN``)."""
    async with db.transaction() as conn:
        for subject_id in subject_ids:
            await outbox.record(
                conn,
                db.dialect,
                tenant_id=tenant_id,
                kind=kind,
                subject_id=subject_id,
                key=f"{kind}:{subject_id}:v{version}",
                payload=payload,
                now=now,
            )


def assert_access_revoked(account: ledger.Account) -> None:
    """A revoked ledger account: printing disabled, cards, PIN and group memberships cleared."""
    assert (
        account.enabled,
        account.card_number,
        account.secondary_card_number,
        account.pin,
        account.groups,
    ) == (False, "", "", "", ())
