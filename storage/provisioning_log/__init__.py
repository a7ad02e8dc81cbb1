"""The provisioning log: what happened to each user and group of a tenant, and when.

``entries`` holds the entry type and writes entries given a connection (the workers log an
effect's outcome in the transaction that marks it); ``buffer`` is the API's batched writer;
``retention`` prunes; ``query`` searches (``printsync log``, ``GET /admin/log``, the console);
``story`` puts an entry in plain words; ``activity``
counts a tenant's recent SCIM results for the health model; ``settings`` is their settings.
"""

from storage.provisioning_log.activity import ScimActivity, scim_activity
from storage.provisioning_log.buffer import LogBuffer
from storage.provisioning_log.entries import (
    CLIENT_ERROR,
    DEAD,
    EFFECT,
    FAILED,
    GROUP,
    RESULTS,
    RETRIED,
    SCIM,
    SERVER_ERROR,
    SOURCES,
    SUCCESS,
    Entry,
    effect_changes,
    effect_entry,
    entry,
    insert,
    result_of,
    write,
)
from storage.provisioning_log.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    LogQuery,
    named,
    names_of,
    page_mark,
    parse_time,
    search,
)
from storage.provisioning_log.retention import PRUNE_BATCH, prune
from storage.provisioning_log.settings import LogSettings
from storage.provisioning_log.story import Event, describe

__all__ = [
    "CLIENT_ERROR",
    "DEAD",
    "DEFAULT_LIMIT",
    "EFFECT",
    "FAILED",
    "GROUP",
    "MAX_LIMIT",
    "PRUNE_BATCH",
    "RESULTS",
    "RETRIED",
    "SCIM",
    "SERVER_ERROR",
    "SOURCES",
    "SUCCESS",
    "Entry",
    "Event",
    "LogBuffer",
    "LogQuery",
    "LogSettings",
    "ScimActivity",
    "describe",
    "effect_changes",
    "effect_entry",
    "entry",
    "insert",
    "named",
    "names_of",
    "page_mark",
    "parse_time",
    "prune",
    "result_of",
    "scim_activity",
    "search",
    "write",
]
