"""The outbox: effects recorded in the same transaction as the change that implies them.

``effects`` says what an effect is (kinds, states, row types); ``recording`` writes them inside
an API transaction; ``lifecycle`` is the relay's claims and the worker's attempts; ``operators``
lists, retries and prunes them; ``stats`` counts them for the metrics, the health model and the
failure digests. Callers use the names handed on here (``outbox.record``, ``outbox.begin``).
"""

from storage.outbox.effects import (
    ACCOUNT_DELETE,
    ACCOUNT_PURGE,
    ACCOUNT_SYNC,
    DEAD,
    DONE,
    GROUP_DELETE,
    GROUP_SYNC,
    KINDS,
    MAX_KEY_LENGTH,
    PENDING,
    STATES,
    Claimed,
    Effect,
    Scheduled,
    State,
    subject_label,
)
from storage.outbox.lifecycle import (
    abandon,
    begin,
    claim_due,
    complete,
    fail_transient,
    get,
    give_up,
    mark_dispatched,
    release,
)
from storage.outbox.operators import (
    count_dead,
    counts_by_tenant,
    list_effects,
    prune,
    retry,
    retry_dead,
    subject_names,
)
from storage.outbox.recording import record, schedule
from storage.outbox.stats import (
    FAILURE_COLUMNS,
    Failure,
    PendingStats,
    ScheduledWork,
    failure_of,
    failure_stats,
    pending_stats,
    recent_failures,
    scheduled,
)

__all__ = [
    "ACCOUNT_DELETE",
    "ACCOUNT_PURGE",
    "ACCOUNT_SYNC",
    "DEAD",
    "DONE",
    "FAILURE_COLUMNS",
    "GROUP_DELETE",
    "GROUP_SYNC",
    "KINDS",
    "MAX_KEY_LENGTH",
    "PENDING",
    "STATES",
    "Claimed",
    "Effect",
    "Failure",
    "PendingStats",
    "Scheduled",
    "ScheduledWork",
    "State",
    "abandon",
    "begin",
    "claim_due",
    "complete",
    "count_dead",
    "counts_by_tenant",
    "fail_transient",
    "failure_of",
    "failure_stats",
    "get",
    "give_up",
    "list_effects",
    "mark_dispatched",
    "pending_stats",
    "prune",
    "recent_failures",
    "record",
    "release",
    "retry",
    "retry_dead",
    "schedule",
    "scheduled",
    "subject_label",
    "subject_names",
]
