"""Applying one effect: load it, converge the print system to the current state, mark it.

Effects are level-triggered. A message carries only an effect's id; the effect names a user or
group; the worker reads that subject as it is *now* and brings the print system into line with it.
Running an effect twice, late or out of order therefore does no harm: the second run finds the
print system already in line, and an old effect applies the newest state.

A print account belongs to a username, so what an account should look like is decided per
username (:meth:`Effects.desired_account`):

- a user of the tenant has that userName and is active: the account exists with the user's
  current name, e-mail, department, office, card numbers and groups, and may print;
- that user is inactive (disabled, unassigned, out of scope): access is revoked (printing blocked,
  card numbers and PIN cleared, group memberships removed);
- nobody has that userName (deleted, or renamed away): access is revoked, and once the retention
  period after the deletion has passed the account is deleted with its personal data redacted. A
  user who comes back under the name before then finds the account kept.

A userName change moves the account (``Connector.rename_account``: PaperCut's balance, cards and
history stay) when nobody has the old userName now. The connector maps each userName to its own
username (``Connector.account_name``); the first user under a print name owns it, and an account
is never ensured, revoked or deleted for a user who does not own it (:mod:`workers.print_names`).

Concurrent effects for one subject may interleave their downstream calls. Each one therefore
re-reads the desired state after converging and converges again if it changed meanwhile: whoever
writes last has converged to the newest state.

Failures (see :mod:`workers.errors`): a transient error counts an attempt in the outbox, sets the
next attempt time with exponential backoff and raises Dramatiq's ``Retry`` with that delay; after
the last attempt the effect is ``dead``. An authentication error (the print system refuses the
credentials) pauses the tenant instead: its effects wait without counting attempts until one
succeeds (:mod:`workers.credentials`). A permanent error (a refusal, invalid data, a broken
configuration) makes it ``dead`` at once and is re-raised for the actor's ``throws``. Listeners in
:data:`on_dead` are told about every effect that goes dead.

Every attempt ends in one transaction that marks the outbox row (done, to be retried, or dead)
and adds the outcome's entry to the provisioning log (:func:`complete_and_log`,
:func:`retry_later_and_log`, :func:`give_up_and_log`): an error or a crash between the two leaves
neither, and the log never tells of a success the outbox does not hold.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from dramatiq import Retry
from dramatiq.common import compute_backoff

from metrics import catalog
from metrics.redaction import clean_error, one_line
from storage import accounts, clock, downstream, outbox, provisioning_log
from storage import reconcile as reconcile_records
from storage.blocking import BlockingDatabase
from storage.database import Connection
from storage.errors import DatabaseUnavailable, TenantNotFound
from storage.sql import Dialect
from workers import credentials, print_groups, print_names, reconcile
from workers.connectors import Connector, PrintAccount
from workers.connectors.interface import GroupPending, GroupUnavailable
from workers.connectors.registry import ConnectorRegistry
from workers.errors import AuthenticationError, DownstreamError, PermanentError, TransientError
from workers.settings import WorkerSettings

_log = structlog.get_logger(__name__)

DeadListener = Callable[[outbox.Effect], None]

#: Called with each effect that has just gone dead (notification digests subscribe here).
on_dead: list[DeadListener] = []

#: How often an effect converges again when its subject keeps changing under it.
MAX_ROUNDS = 5
_MAX_ERROR = 1000

Absent = Literal["revoke", "delete"]


@dataclass(frozen=True, slots=True)
class Converged:
    """What converging an effect did: the effect to schedule next, and for an account what the
    print account became (``ensured``, ``revoked``, or ``skipped`` when the user was deleted
    meanwhile) and the userName it is kept under, which the provisioning log records."""

    follow_up: outbox.Scheduled | None = None
    account: str | None = None
    subject: str | None = None
    #: More effects to record with the outcome (a reconcile's repairs).
    more: tuple[outbox.Scheduled, ...] = ()
    #: What the provisioning log keeps besides (a skipped group's reason, what drifted).
    details: dict[str, Any] | None = None
    #: The username the subject user's account now lives under, to remember with the outcome.
    print_username: str | None = None


@dataclass(frozen=True, slots=True)
class Desired:
    """What the print account under ``username`` should be."""

    username: str
    account: PrintAccount | None  # ensure this account
    revoke: bool = False  # the user exists but is inactive
    # neither: nobody has the username any more
    user_id: str | None = None  # the user who has the username, if anyone

    @property
    def present(self) -> bool:
        return self.account is not None or self.revoke


class Effects:
    """Applies effects against one database; safe to use from many threads."""

    def __init__(
        self, store: BlockingDatabase, connectors: ConnectorRegistry, settings: WorkerSettings
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.settings = settings
        #: Told how far a reconcile page's comparison got (``printsync reconcile`` on a
        #: terminal).
        self.reconcile_progress: reconcile.Progress | None = None
        # Effects an attempt of this process is applying now. A second message for one of them
        # (the broker redelivering a dead worker's message, the sweeper resending after a lease)
        # is skipped rather than run alongside: two attempts of one create would both find no
        # account and both add it.
        self._running: set[int] = set()
        self._running_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: WorkerSettings,
        database_url: str,
        *,
        busy_timeout_ms: int = 5000,
        environ: Mapping[str, str],
    ) -> Effects:
        """``environ`` holds the variables that tenants' connectors name (PaperCut tokens)."""
        store = BlockingDatabase(database_url, busy_timeout_ms=busy_timeout_ms)
        return cls(store, ConnectorRegistry(store, settings, environ), settings)

    def close(self) -> None:
        self.store.close()

    # -- One attempt ---------------------------------------------------------------------------

    def run(self, effect_id: int, *, kind: str | None = None) -> None:
        """One attempt at an effect; a duplicate, finished or already running effect is
        skipped. An effect that cannot be loaded is dead at once, with the reason as its error."""
        with self._running_lock:
            if effect_id in self._running:
                _log.debug("effect_already_running", effect_id=effect_id)
                return
            self._running.add(effect_id)
        try:
            self._run(effect_id, kind)
        finally:
            with self._running_lock:
                self._running.discard(effect_id)

    def _run(self, effect_id: int, kind: str | None) -> None:
        try:
            effect = self.store.run(
                outbox.begin,
                effect_id,
                lease_seconds=self.settings.lease_seconds,
                # The relay's claim usually still covers a whole attempt: then no lease write.
                covered_seconds=self.settings.effect_time_limit_ms / 1000,
            )
        except DatabaseUnavailable:
            raise  # cannot be recorded now; Dramatiq retries the message
        except Exception as error:
            self._unloadable(effect_id, error)
            return
        if effect is None:
            _log.debug("effect_skipped", effect_id=effect_id)
            return
        if kind is not None and effect.kind != kind:
            self._dead(
                effect,
                PermanentError(f"effect is a {effect.kind}, not a {kind}", operation="dispatch"),
                "unknown",
            )
            return
        with structlog.contextvars.bound_contextvars(effect_key=effect.effect_key):
            self._attempt(effect)

    def _attempt(self, effect: outbox.Effect) -> None:
        if effect.kind == outbox.CONNECTOR_TEST:
            credentials.test_connection(self.store, self._connector, effect)
            return
        started = time.perf_counter()
        connector_name = "unknown"
        try:
            connector, paused = self._connector_and_pause(effect.tenant_id)
            connector_name = connector.name
            if paused is not None and not credentials.may_probe(self.store, self.settings, effect):
                return
            converged = self.converge(effect, connector)
        except AuthenticationError as error:
            self._count_error(connector_name, error, "permanent")
            credentials.wait(self.store, self.settings, effect, _error_text(error))
        except PermanentError as error:
            self._count_error(connector_name, error, "permanent")
            self._dead(effect, error, connector_name)
            raise
        except TransientError as error:
            self._count_error(connector_name, error, "transient")
            self._transient(effect, error, connector_name)
        except DatabaseUnavailable:
            raise  # cannot be recorded now; Dramatiq retries the message
        except Exception as error:  # a fault of ours: retried like a transient one, and logged
            _log.exception("effect_crashed", effect_id=effect.id, kind=effect.kind)
            self._transient(
                effect,
                TransientError(f"internal error: {type(error).__name__}", operation="internal"),
                connector_name,
            )
        else:
            success = provisioning_log.effect_entry(
                effect,
                provisioning_log.SUCCESS,
                account=converged.account,
                subject=converged.subject,
                details=converged.details,
            )
            try:
                self.store.run_in_transaction(
                    complete_and_log,
                    effect,
                    converged.follow_up,
                    success,
                    converged.more,
                    print_username=converged.print_username,
                )
            except DatabaseUnavailable:
                raise
            except Exception as error:
                # The print system is in line, but the database refused the outcome (such as
                # the follow-up effect): a failed attempt with its reason, retried and in the
                # end dead, never an effect sent again and again with no error shown.
                _log.exception("effect_not_recorded", effect_id=effect.id, kind=effect.kind)
                self._transient(effect, _unrecorded(error), connector_name)
            else:
                catalog.EFFECTS.labels(effect.kind, connector_name, "succeeded").inc()
                if paused is not None and self.store.run(downstream.resume, effect.tenant_id):
                    _log.info("tenant_resumed", tenant_id=effect.tenant_id)
        finally:
            catalog.EFFECT_DURATION.labels(effect.kind, connector_name).observe(
                time.perf_counter() - started
            )

    def exhausted(self, effect_id: int, *, retries: int) -> None:
        """Dramatiq gave up on the effect's message: make it dead if it is still pending."""
        dead = self.store.run_in_transaction(
            outbox.give_up,
            effect_id,
            error=f"retries exhausted after {retries} retries",
            count_attempt=False,
        )
        if dead is not None:
            catalog.EFFECTS.labels(dead.kind, "unknown", "dead").inc()
            self._notify(dead)

    def _unloadable(self, effect_id: int, error: Exception) -> None:
        """An effect whose row cannot be read: dead, with the reason."""
        _log.exception("effect_unloadable", effect_id=effect_id)
        text = one_line(f"the effect could not be loaded: {_reason(error)}", _MAX_ERROR)
        if self.store.run_in_transaction(outbox.abandon, effect_id, error=text):
            catalog.EFFECTS.labels("unknown", "unknown", "dead").inc()

    def _connector(self, tenant_id: int) -> Connector:
        try:
            return self.connectors.connector_for(tenant_id)
        except TenantNotFound:
            raise PermanentError("the tenant no longer exists", operation="configure") from None

    def _connector_and_pause(self, tenant_id: int) -> tuple[Connector, downstream.Pause | None]:
        """The tenant's connector and its pause, if any, from one read."""
        try:
            tenant, paused = self.store.run(accounts.tenant_and_pause, tenant_id)
        except TenantNotFound:
            raise PermanentError("the tenant no longer exists", operation="configure") from None
        return self.connectors.connector_of(tenant), paused

    def _transient(
        self, effect: outbox.Effect, error: DownstreamError, connector_name: str
    ) -> None:
        text = _error_text(error)
        if effect.attempts + 1 > self.settings.max_retries:
            self._dead(effect, error, connector_name, outcome="dead")
            return
        _, delay_ms = compute_backoff(
            effect.attempts,
            factor=self.settings.min_backoff_ms,
            max_backoff=self.settings.max_backoff_ms,
        )
        retried = provisioning_log.effect_entry(effect, provisioning_log.RETRIED, error=text)
        self.store.run_in_transaction(
            retry_later_and_log,
            effect,
            retried,
            error=text,
            delay_seconds=delay_ms / 1000,
            lease_seconds=self.settings.lease_seconds,
        )
        catalog.EFFECTS.labels(effect.kind, connector_name, "retried").inc()
        _log.warning(
            "effect_retry",
            effect_id=effect.id,
            kind=effect.kind,
            attempt=effect.attempts + 1,
            delay_ms=delay_ms,
            error=text,
        )
        raise Retry(text, delay=delay_ms)

    def _dead(
        self,
        effect: outbox.Effect,
        error: DownstreamError,
        connector_name: str,
        outcome: Literal["failed", "dead"] = "failed",
    ) -> None:
        text = _error_text(error)
        logged = provisioning_log.effect_entry(effect, outcome, error=text)
        dead = self.store.run_in_transaction(give_up_and_log, effect, logged, error=text)
        catalog.EFFECTS.labels(effect.kind, connector_name, outcome).inc()
        _log.error(
            "effect_dead",
            effect_id=effect.id,
            kind=effect.kind,
            error=text,
            attempts=effect.attempts + 1,
        )
        if dead is not None:
            self._notify(dead)

    @staticmethod
    def _notify(dead: outbox.Effect) -> None:
        for listener in list(on_dead):
            try:
                listener(dead)
            except Exception:
                _log.exception("dead_listener_failed", effect_id=dead.id)

    @staticmethod
    def _count_error(
        connector_name: str, error: DownstreamError, error_class: Literal["transient", "permanent"]
    ) -> None:
        catalog.DOWNSTREAM_ERRORS.labels(
            connector_name, error.operation or "unknown", error_class
        ).inc()

    # -- Converging ----------------------------------------------------------------------------

    def converge(self, effect: outbox.Effect, connector: Connector) -> Converged:
        """Bring the print system in line for this effect; what it did, and the effect to
        schedule next."""
        if effect.kind == outbox.ACCOUNT_SYNC:
            return self._sync_account(effect, connector)
        if effect.kind == outbox.ACCOUNT_DELETE:
            username = _payload_name(effect, "userName")
            self.converge_accounts(effect.tenant_id, [username], connector, absent="revoke")
            return Converged(self._purge_later(effect, username))
        if effect.kind == outbox.ACCOUNT_PURGE:
            username = _payload_name(effect, "userName")
            self.converge_accounts(effect.tenant_id, [username], connector, absent="delete")
            return Converged()
        if effect.kind == outbox.GROUP_SYNC:
            return self._sync_group(effect, connector)
        if effect.kind == outbox.GROUP_DELETE:
            self._delete_group(effect, connector)
            return Converged()
        if effect.kind == outbox.TENANT_RECONCILE:
            # One page of the tenant; the next page is among ``more``, recorded with the outcome.
            more, details = reconcile.compare_page(self, effect, connector)
            tenant = self.store.run(accounts.tenant_connector, effect.tenant_id)
            return Converged(subject=tenant.name, more=more, details=details)
        if effect.kind == outbox.ACCOUNT_REPAIR:
            repaired = self._sync_account(effect, connector)
            return Converged(
                repaired.follow_up,
                repaired.account,
                repaired.subject,
                details={"drift": effect.payload.get("drift") or []},
                print_username=repaired.print_username,
            )
        raise PermanentError(f"unknown effect kind {effect.kind!r}", operation="dispatch")

    def _sync_account(self, effect: outbox.Effect, connector: Connector) -> Converged:
        user = self.store.run(accounts.user_by_id, effect.tenant_id, effect.subject_id)
        if user is None:
            # Deleted since: the deletion's own effect takes care of the account.
            return Converged(account="skipped")
        names = [user.user_name]
        previous = user.print_username
        renamed = previous is not None and previous.lower() != user.user_name.lower()
        if renamed:
            assert previous is not None
            names.append(previous)
            if not self.desired_account(effect.tenant_id, previous).present:
                # Nobody has the old userName now: the account moves with its balance.
                print_names.claim(self.store, effect.tenant_id, connector, user.user_name, user.id)
                connector.rename_account(previous, user.user_name)
        # The user just read is the one that has its userName (unique per tenant): its desired
        # account needs no second read for the first round.
        desired = self.converge_accounts(
            effect.tenant_id, names, connector, absent="revoke", known=self._desired_of(user)
        )
        remember = None
        if renamed:
            # At once: an attempt after this one must not move the account again.
            self.store.run(accounts.set_print_username, effect.tenant_id, user.id, user.user_name)
        elif previous != user.user_name:
            remember = user.user_name  # nothing moved: recorded with the outcome
        account = "ensured" if desired[0].account is not None else "revoked"
        follow_up = None
        if renamed and not desired[1].present:
            assert previous is not None
            follow_up = self._purge_later(effect, previous)
        return Converged(follow_up, account, user.user_name, print_username=remember)

    def _purge_later(self, effect: outbox.Effect, username: str) -> outbox.Scheduled:
        due = clock.later(self.settings.retention_seconds, clock.parse(effect.created_at))
        return outbox.Scheduled(
            kind=outbox.ACCOUNT_PURGE,
            subject_id=effect.subject_id,
            # One purge per effect that schedules it; the name is in the payload, not the key.
            key=f"{outbox.ACCOUNT_PURGE}:{effect.subject_id}:e{effect.id}",
            payload={"userName": username},
            due_at=due,
        )

    def desired_account(self, tenant_id: int, username: str) -> Desired:
        """What the print account named ``username`` should be, from the current records."""
        user = self.store.run(accounts.user_by_name, tenant_id, username)
        if user is None:
            return Desired(username, None)
        return self._desired_of(user)

    @staticmethod
    def _desired_of(user: accounts.UserState) -> Desired:
        """What the print account of ``user``, who has its userName now, should be."""
        if not user.active:
            return Desired(user.user_name, None, revoke=True, user_id=user.id)
        try:
            account = PrintAccount.of(user.user_name, user, enabled=True)
        except (ValueError, TypeError) as error:
            raise PermanentError(f"invalid user data: {error}", operation="build_account") from None
        return Desired(user.user_name, account, user_id=user.id)

    def converge_accounts(
        self,
        tenant_id: int,
        usernames: Sequence[str],
        connector: Connector,
        *,
        absent: Absent,
        known: Desired | None = None,
    ) -> list[Desired]:
        """Converge the accounts of ``usernames`` until their desired state holds still.
        ``known`` is the first name's desired account as the caller has just read it."""
        for _ in range(MAX_ROUNDS):
            desired = [
                known if index == 0 and known is not None else self.desired_account(tenant_id, name)
                for index, name in enumerate(usernames)
            ]
            known = None  # a later round reads again
            for wanted in desired:
                self._apply(tenant_id, connector, wanted, absent)
            if [self.desired_account(tenant_id, name) for name in usernames] == desired:
                return desired
        raise TransientError(
            "the user kept changing while the account was updated", operation="converge"
        )

    def _apply(self, tenant_id: int, connector: Connector, wanted: Desired, absent: Absent) -> None:
        """Converge one account, never touching one that another user's userName maps to."""
        if wanted.user_id is not None:
            print_names.claim(self.store, tenant_id, connector, wanted.username, wanted.user_id)
            if wanted.account is not None:
                connector.ensure_account(wanted.account)
            else:
                connector.revoke_access(wanted.username)
        elif not print_names.held_by_another(self.store, tenant_id, connector, wanted.username):
            if absent == "revoke":
                connector.revoke_access(wanted.username)
            else:
                connector.delete_account(wanted.username, redact=True)
                print_names.release(self.store, tenant_id, connector, wanted.username)

    def _sync_group(self, effect: outbox.Effect, connector: Connector) -> Converged:
        """Bring the group in line; one the print system is still adding is looked at again
        later, one it cannot hold is skipped with the reason (see :mod:`workers.print_groups`)."""
        tenant_id = effect.tenant_id
        try:
            try:
                group = self._converge_group(effect, connector)
            except GroupPending:
                return Converged(
                    print_groups.look_again(effect),
                    subject=self._group_name(effect),
                    details=print_groups.waiting(effect),
                )
        except GroupUnavailable as skipped:
            group = self.store.run(accounts.group_by_id, tenant_id, effect.subject_id)
            if group is not None:
                self.store.run(
                    reconcile_records.mark_skipped,
                    tenant_id,
                    group.id,
                    group.display_name,
                    skipped.reason,
                )
            name = None if group is None else group.display_name
            return Converged(subject=name, details={"skipped": skipped.reason})
        if group is None:
            return Converged()
        self.store.run(reconcile_records.forget_skipped, tenant_id, group.id)
        members = [
            wanted.account.username
            for name in self.store.run(reconcile_records.member_names, tenant_id, group.id)
            if (wanted := self.desired_account(tenant_id, name)).account is not None
        ]
        connector.add_group_members(group.display_name, members)
        return Converged(subject=group.display_name)

    def _group_name(self, effect: outbox.Effect) -> str | None:
        group = self.store.run(accounts.group_by_id, effect.tenant_id, effect.subject_id)
        return None if group is None else group.display_name

    def _converge_group(
        self, effect: outbox.Effect, connector: Connector
    ) -> accounts.GroupState | None:
        previous = effect.payload.get("previous")
        for _ in range(MAX_ROUNDS):
            group = self.store.run(accounts.group_by_id, effect.tenant_id, effect.subject_id)
            if group is None:
                return None  # deleted since: the deletion's effect removes it downstream
            taken = None
            if isinstance(previous, str) and previous.lower() != group.display_name.lower():
                taken = self.store.run(accounts.group_by_name, effect.tenant_id, previous)
            if (
                isinstance(previous, str)
                and previous
                and previous != group.display_name
                and taken is None
            ):
                connector.rename_group(previous, group.display_name)
            else:
                connector.ensure_group(group.display_name)
            again = self.store.run(accounts.group_by_id, effect.tenant_id, effect.subject_id)
            if again == group:
                return group
        raise TransientError("the group kept changing while it was updated", operation="converge")

    def _delete_group(self, effect: outbox.Effect, connector: Connector) -> None:
        name = _payload_name(effect, "displayName")
        self.store.run(reconcile_records.forget_skipped, effect.tenant_id, effect.subject_id)
        for _ in range(MAX_ROUNDS):
            current = self.store.run(accounts.group_by_name, effect.tenant_id, name)
            if current is None:
                connector.delete_group(name)
            else:  # a group of that name exists again: it stays, its own group.sync adds it
                with contextlib.suppress(GroupPending, GroupUnavailable):
                    connector.ensure_group(current.display_name)
            if self.store.run(accounts.group_by_name, effect.tenant_id, name) == current:
                return
        raise TransientError("the group kept changing while it was deleted", operation="converge")


# -- Ending an attempt: the outbox row and the provisioning log in one transaction ---------------


async def complete_and_log(
    conn: Connection,
    dialect: Dialect,
    effect: outbox.Effect,
    follow_up: outbox.Scheduled | None,
    success: provisioning_log.Entry,
    more: Sequence[outbox.Scheduled] = (),
    *,
    print_username: str | None = None,
) -> bool:
    """Mark the effect done, record its follow-up (and ``more`` effects) and log ``success``.
    Nothing is logged or recorded when the effect was no longer pending: the attempt that
    finished it did that. ``print_username`` is remembered for the effect's user either way
    (:func:`storage.accounts.set_print_username`)."""
    if print_username is not None:
        await accounts.record_print_username(
            conn, dialect, effect.tenant_id, effect.subject_id, print_username
        )
    done = await outbox.complete(
        conn, dialect, effect.id, tenant_id=effect.tenant_id, follow_up=follow_up
    )
    if done:
        for scheduled in more:
            await outbox.schedule(conn, dialect, tenant_id=effect.tenant_id, effect=scheduled)
        await provisioning_log.insert(conn, dialect, [success])
    return done


async def retry_later_and_log(
    conn: Connection,
    dialect: Dialect,
    effect: outbox.Effect,
    retried: provisioning_log.Entry,
    *,
    error: str,
    delay_seconds: float,
    lease_seconds: float,
) -> None:
    """Count the failed attempt (the retry is due after ``delay_seconds``) and log it."""
    await outbox.fail_transient(
        conn,
        dialect,
        effect.id,
        error=error,
        delay_seconds=delay_seconds,
        lease_seconds=lease_seconds,
    )
    await provisioning_log.insert(conn, dialect, [retried])


async def give_up_and_log(
    conn: Connection,
    dialect: Dialect,
    effect: outbox.Effect,
    logged: provisioning_log.Entry,
    *,
    error: str,
) -> outbox.Effect | None:
    """Make the effect dead with ``error`` and log its end; returns the dead effect, or None
    if it was no longer pending."""
    dead = await outbox.give_up(conn, dialect, effect.id, error=error)
    await provisioning_log.insert(conn, dialect, [logged])
    return dead


def _payload_name(effect: outbox.Effect, key: str) -> str:
    value = effect.payload.get(key)
    if not isinstance(value, str) or not value:
        raise PermanentError(f"the effect's payload has no {key}", operation="dispatch")
    return value


def _error_text(error: DownstreamError) -> str:
    return one_line(str(error), _MAX_ERROR)


def _reason(error: Exception) -> str:
    """An unexpected error as ``Type: message``, secrets masked."""
    message = clean_error(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _unrecorded(error: Exception) -> TransientError:
    return TransientError(
        f"the outcome could not be recorded: {_reason(error)}", operation="record"
    )
