"""Table definitions: the records printsync keeps (private to ``storage``).

Each SCIM resource is stored twice over: its full SCIM document as JSON text (``doc``), which reads
answer byte for byte, and the handful of columns that uniqueness rules, Entra's lookups and the
indexes need. Those columns are derived from the document on every write, as the table of indexed
attributes says (``storage.indexed``), so the two never disagree.

Timestamps are ISO 8601 UTC strings of fixed width (``2026-01-02T03:04:05.123456Z``): they sort and
compare as text the same way on SQLite and PostgreSQL, which keeps filter SQL portable.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.String(32)


def _partial_index(name: str, *columns: str, where: str) -> sa.Index:
    """An index of the rows that match ``where`` only, on SQLite and PostgreSQL alike."""
    return sa.Index(name, *columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def _tenant_rows(name: str, *items: sa.schema.SchemaItem, keyed: bool = False) -> sa.Table:
    """A table whose rows each belong to one tenant. ``tenant_id`` comes first: with ``keyed`` it
    starts the primary key (the ``items`` marked ``primary_key`` complete it, if any); otherwise
    each row has its own ``id``, numbered by the database, before it."""
    if keyed:
        tenant = sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True)
        return sa.Table(name, metadata, tenant, *items)
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        *items,
    )


tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("previous_token_hash", sa.String(64), nullable=True, index=True),
    sa.Column("previous_token_expires_at", Timestamp, nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("notify", sa.Text, nullable=False, server_default="[]"),
    sa.Column("connector", sa.String(32), nullable=False),
    sa.Column("connector_config", sa.Text, nullable=False, server_default="{}"),
    sa.Column("created_at", Timestamp, nullable=False),
    # The deprovisioning guard's overrides of the PRINTSYNC_DEPROVISION_GUARD_* defaults
    # (storage.guard); NULL: the default.
    sa.Column("guard_min", sa.Integer, nullable=True),
    sa.Column("guard_percent", sa.Integer, nullable=True),
    sa.Column("guard_window_seconds", sa.Integer, nullable=True),
)


def _resource_table(
    name: str, named_by: str, *own: sa.schema.SchemaItem, after: tuple[sa.Column[Any], ...] = ()
) -> sa.Table:
    """The table of a SCIM resource type. Every resource has its key (``pk``), its tenant, its
    ``id``, the attribute that names it as sent (``named_by``) and folded to lower case (unique
    per tenant), its ``externalId`` (unique per tenant), its version, its times and its
    document; ``own`` are the type's own columns (before ``version``) and indexes, ``after`` the
    columns that follow the document."""
    return sa.Table(
        name,
        metadata,
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column(named_by, sa.Text, nullable=False),
        sa.Column(f"{named_by}_ci", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text, nullable=True),
        *own,
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_modified", Timestamp, nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        *after,
        sa.UniqueConstraint("tenant_id", f"{named_by}_ci"),
        sa.UniqueConstraint("tenant_id", "external_id"),
        sa.Index(f"ix_{name}_tenant_id_pk", "tenant_id", "pk"),
        sa.Index(f"ix_{name}_tenant_id_last_modified", "tenant_id", "last_modified"),
    )


users = _resource_table(
    "users",
    "user_name",
    sa.Column("display_name", sa.Text, nullable=True),
    sa.Column("work_email_ci", sa.Text, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Index("ix_users_tenant_id_work_email_ci", "tenant_id", "work_email_ci"),
    # The username the print account was last brought in line under (set by the workers), so
    # that a userName change can retire the account kept under the old name.
    after=(sa.Column("print_username", sa.Text, nullable=True),),
)

#: How many users and groups each tenant has, kept in the transaction of every create and delete,
#: so that a list's totalResults never counts the table. Each count is spread over a few slots
#: (picked from the resource id) so that concurrent creates on PostgreSQL do not all queue on one
#: row's lock; the count is the sum of the slots.
resource_counts = _tenant_rows(
    "resource_counts",
    sa.Column("resource", sa.String(8), primary_key=True),
    sa.Column("slot", sa.SmallInteger, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    keyed=True,
)

groups = _resource_table(
    "groups",
    "display_name",
    sa.Column("member_count", sa.Integer, nullable=False, server_default="0"),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("group_pk", sa.Integer, sa.ForeignKey("groups.pk"), primary_key=True),
    sa.Column("user_pk", sa.Integer, sa.ForeignKey("users.pk"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Index("ix_memberships_user_pk", "user_pk"),
)

outbox = _tenant_rows(
    "outbox",
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject_id", sa.String(36), nullable=False),
    sa.Column("effect_key", sa.String(200), nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("claimed_until", Timestamp, nullable=True),
    sa.Column("dispatched_at", Timestamp, nullable=True),
    sa.Column("completed_at", Timestamp, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    sa.Index("ix_outbox_tenant_id_state", "tenant_id", "state"),
    # The relay's two claims (storage.outbox "claim"): never claimed, and lease run out.
    _partial_index(
        "ix_outbox_unclaimed",
        "next_attempt_at",
        "id",
        where="state = 'pending' AND claimed_until IS NULL",
    ),
    _partial_index(
        "ix_outbox_claimed",
        "claimed_until",
        "id",
        where="state = 'pending' AND claimed_until IS NOT NULL",
    ),
)

#: Secrets of the deployment that every API process shares, made on first use: the key that
#: seals list cursors (``storage.cursors``), so a cursor one replica issued opens on another.
server_keys = sa.Table(
    "server_keys",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# The deprovisioning guard's window per tenant (storage.guard): when it started, how many
# revocations it lets through, how many it let through so far. Its row is what concurrent
# transactions lock to decide, one at a time, whether a revocation applies or is held.
deprovision_guards = _tenant_rows(
    "deprovision_guards",
    sa.Column("window_started_at", Timestamp, nullable=True),
    sa.Column("threshold", sa.Integer, nullable=False, server_default="0"),
    sa.Column("admitted", sa.Integer, nullable=False, server_default="0"),
    keyed=True,
)

# Entra's provisioning cycles as seen from here (storage.cycles): one row per burst of SCIM
# requests, merged from every API process's provisioning-log flushes.
sync_cycles = _tenant_rows(
    "sync_cycles",
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp, nullable=False),
    # No cycle of the tenant came before it.
    sa.Column("first", sa.Boolean, nullable=False),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("probes", sa.Integer, nullable=False),
    sa.Column("created", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("disabled", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Integer, nullable=False),
    sa.Column("group_changes", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Index("ix_sync_cycles_tenant_id_started_at", "tenant_id", "started_at"),
)

# Operations: the provisioning log and failure notifications -------------------------------------

provisioning_log = sa.Table(
    "provisioning_log",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("time", Timestamp, nullable=False),
    sa.Column("tenant_id", sa.Integer, nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("target_id", sa.Text, nullable=True),
    sa.Column("target_name", sa.Text, nullable=True),
    sa.Column("target_name_ci", sa.Text, nullable=True),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # What a write changed or an effect did: a small JSON object (storage.changes).
    sa.Column("changes", sa.Text, nullable=True),
    # (tenant, time) with source and result in the index: health counts are index-only scans.
    sa.Index(
        "ix_provisioning_log_tenant_id_time_source_result", "tenant_id", "time", "source", "result"
    ),
    sa.Index("ix_provisioning_log_tenant_id_target_id", "tenant_id", "target_id"),
    sa.Index("ix_provisioning_log_tenant_id_target_name_ci", "tenant_id", "target_name_ci"),
)

notifications = _tenant_rows(
    "notifications",
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("recipients", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_until", Timestamp, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=True),
    sa.Index("ix_notifications_state", "state"),
    sa.Index("ix_notifications_tenant_id_kind_created_at", "tenant_id", "kind", "created_at"),
)

# Which failures a digest reported: an effect that dies again after a retry (a later dead_at)
# is a new failure and is reported again; the same death never is.
notification_effects = sa.Table(
    "notification_effects",
    metadata,
    sa.Column(
        "effect_id", sa.Integer, sa.ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("dead_at", Timestamp, primary_key=True),
    sa.Column("notification_id", sa.Integer, sa.ForeignKey("notifications.id"), nullable=False),
    sa.Index("ix_notification_effects_notification_id", "notification_id"),
)

# Sign-ins to the admin console: one row per session, keyed by the hash of the cookie's secret.
# ``token_hash`` is the hash of the admin token that was presented, so a new admin token ends
# every session opened with the old one.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False, index=True),
)

# The built-in print-account ledger (one connector's system of record) -----------------------------

print_accounts = _tenant_rows(
    "print_accounts",
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("username_ci", sa.Text, nullable=False),
    sa.Column("full_name", sa.Text, nullable=False, server_default=""),
    sa.Column("email", sa.Text, nullable=False, server_default=""),
    sa.Column("department", sa.Text, nullable=False, server_default=""),
    sa.Column("office", sa.Text, nullable=False, server_default=""),
    sa.Column("card_number", sa.Text, nullable=False, server_default=""),
    sa.Column("secondary_card_number", sa.Text, nullable=False, server_default=""),
    sa.Column("pin", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("groups", sa.Text, nullable=False, server_default="[]"),
    sa.Column("redacted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("tenant_id", "username_ci"),
)

ledger_groups = _tenant_rows(
    "ledger_groups",
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_ci", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("tenant_id", "name_ci"),
)

# Groups the print system cannot hold (not in its user directory source), per tenant ----------

skipped_groups = _tenant_rows(
    "skipped_groups",
    sa.Column("group_id", sa.String(36), primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("skipped_at", Timestamp, nullable=False),
    keyed=True,
)

# What printsync knows about a tenant's print system ------------------------------------------

# Which user owns each print-system username: a connector may map several userNames to one print
# name (PaperCut's local part), and the first user to hold a name keeps it; another user mapping
# to it is refused, never merged.
print_names = _tenant_rows(
    "print_names",
    sa.Column("connector", sa.String(32), primary_key=True),
    sa.Column("name_ci", sa.Text, primary_key=True),
    sa.Column("user_id", sa.String(36), nullable=False),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_print_names_tenant_id_user_id", "tenant_id", "user_id"),
    keyed=True,
)

# A tenant whose print system refuses printsync's credentials (token or address): its effects
# wait, and one attempt at a time probes again once ``retry_at`` has passed.
connector_pauses = _tenant_rows(
    "connector_pauses",
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", Timestamp, nullable=False),
    sa.Column("checked_at", Timestamp, nullable=False),
    sa.Column("retry_at", Timestamp, nullable=False),
    keyed=True,
)

# The connection test an operator asked for from the console: the request, and what the worker
# that ran it found (``ok`` and ``message`` stay null until it has run).
connector_checks = _tenant_rows(
    "connector_checks",
    sa.Column("requested_at", Timestamp, nullable=False),
    sa.Column("checked_at", Timestamp, nullable=True),
    sa.Column("ok", sa.Boolean, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    keyed=True,
)
