"""The provisioning log's settings: how the API buffers entries, how long they are kept."""

from __future__ import annotations

from pydantic import BaseModel


class LogSettings(BaseModel):
    """Buffering and retention of the provisioning log (``PRINTSYNC_PROVISIONING_LOG_*``, whose
    ranges the composition root checks; the defaults here are the same)."""

    #: Entries older than this many days are deleted.
    retention_days: float = 14
    #: At most this many entries are kept per tenant (the newest).
    max_rows_per_tenant: int = 1_000_000
    #: The API writes its buffer at least this often...
    flush_interval_seconds: float = 0.5
    #: ...and as soon as this many entries wait (also the rows of one transaction).
    flush_rows: int = 500
    #: Entries the API keeps in memory while the database is unreachable; older ones are dropped.
    buffer_rows: int = 100_000
    #: How often the flush task prunes the table.
    prune_interval_seconds: float = 3600
