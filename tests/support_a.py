"""Outbox effects as the storage and worker tests set them up."""

from __future__ import annotations

from typing import Any

from storage import outbox
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

