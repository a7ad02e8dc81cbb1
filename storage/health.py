"""Sync health: is a tenant's provisioning working? ``healthy``, ``degraded`` or ``failing``.

Modelled on how Entra ID itself judges a provisioning job (ENTRA.md §6): a job whose requests
mostly fail (Entra: more than 40 %) is quarantined, and one that keeps being called without ever
succeeding is as good as stopped. printsync applies the same idea over a recent window (an hour
by default) to both halves of the sync: the SCIM requests Entra sends us (from the provisioning
log) and the effects we apply downstream (from the outbox).

Rules, worst first (every threshold is a field of :class:`HealthPolicy`, set by a
``PRINTSYNC_HEALTH_*`` variable; defaults in brackets):

failing
    - the print system refuses printsync's credentials (a wrong auth token, an address not on
      its allow-list): the tenant's effects wait (``storage.downstream``);
    - more than ``failing_failure_ratio`` [40 %] of the window's SCIM requests failed (4xx and
      5xx), once there are at least ``min_requests`` [10]; a refusal that is the expected answer
      (404 for an id that is gone, 412, a client that went away: 499) is no failure;
    - more than ``failing_server_error_ratio`` [20 %] of them were server errors (5xx): those
      are ours, so they weigh more than client errors;
    - more than ``failing_failure_ratio`` of the window's effects failed (dead, or pending after
      a failed attempt), once there are at least ``min_effects`` [5];
    - the oldest pending effect has waited more than ``failing_lag_seconds`` [1 h];
    - Entra is still calling (requests in the window) but no request has succeeded for
      ``stall_seconds`` [2 h, three Entra cycles].
degraded
    - more than ``degraded_failure_ratio`` [5 %] of SCIM requests or effects failed;
    - more than ``degraded_server_error_ratio`` [1 %] of SCIM requests were server errors;
    - any effect gave up (went dead) in the window;
    - the oldest pending effect has waited more than ``degraded_lag_seconds`` [5 min].
healthy
    otherwise.

:func:`assess` is the pure decision (numbers in, state and reason out); :func:`read` and
:func:`read_all` gather the numbers from the database. :class:`HealthBoard` keeps the latest
results for the ``printsync_tenant_health`` scrape-time gauge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel

from metrics import catalog
from metrics.collectors import TenantHealth
from storage import clock, downstream, outbox, provisioning_log, tenants
from storage.database import Database
from storage.sql import compile_text
from storage.tenants import Tenant

State = Literal["healthy", "degraded", "failing"]
HEALTHY: Final = "healthy"
DEGRADED: Final = "degraded"
FAILING: Final = "failing"
#: From best to worst.
STATES: Final[tuple[State, ...]] = ("healthy", "degraded", "failing")


class HealthPolicy(BaseModel):
    """The window and thresholds of the health model (``PRINTSYNC_HEALTH_*``, whose ranges the
    composition root checks; the defaults here are the same)."""

    window_seconds: float = 3600
    min_requests: int = 10
    min_effects: int = 5
    degraded_failure_ratio: float = 0.05
    failing_failure_ratio: float = 0.40
    degraded_server_error_ratio: float = 0.01
    failing_server_error_ratio: float = 0.20
    degraded_lag_seconds: float = 300
    failing_lag_seconds: float = 3600
    stall_seconds: float = 7200


@dataclass(frozen=True, slots=True)
class Numbers:
    """What the verdict is based on: counts over the window ending at ``checked_at``."""

    window_seconds: float
    scim_requests: int = 0
    scim_succeeded: int = 0
    #: Refusals that were the expected answer (404 for a deleted id, 412, a client gone): no
    #: failure, as Entra does not count them as one either.
    scim_expected: int = 0
    scim_client_errors: int = 0
    scim_server_errors: int = 0
    effects_succeeded: int = 0
    effects_retrying: int = 0
    effects_dead: int = 0
    oldest_pending_age_seconds: float | None = None
    last_success_at: str | None = None
    first_seen_at: str | None = None
    #: Since when, and why, the print system refuses printsync's credentials (effects wait).
    paused_since: str | None = None
    paused_reason: str | None = None

    @property
    def scim_failed(self) -> int:
        return self.scim_client_errors + self.scim_server_errors

    @property
    def effects_total(self) -> int:
        return self.effects_succeeded + self.effects_retrying + self.effects_dead

    @property
    def effects_failed(self) -> int:
        return self.effects_retrying + self.effects_dead

    @property
    def scim_failure_ratio(self) -> float:
        return _ratio(self.scim_failed, self.scim_requests)

    @property
    def scim_server_error_ratio(self) -> float:
        return _ratio(self.scim_server_errors, self.scim_requests)

    @property
    def effect_failure_ratio(self) -> float:
        return _ratio(self.effects_failed, self.effects_total)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            scim_failure_ratio=round(self.scim_failure_ratio, 4),
            scim_server_error_ratio=round(self.scim_server_error_ratio, 4),
            effect_failure_ratio=round(self.effect_failure_ratio, 4),
        )
        return data


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired: the state it calls for and a sentence saying why."""

    state: State
    sentence: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`assess` decides: the state, the sentence saying why, the rules that fired."""

    state: State
    reason: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class Health(Verdict):
    """One tenant's verdict at ``checked_at``, with the numbers it rests on."""

    tenant: str
    numbers: Numbers
    checked_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "state": self.state,
            "reason": self.reason,
            "findings": [{"state": f.state, "reason": f.sentence} for f in self.findings],
            "numbers": self.numbers.as_dict(),
            "checked_at": self.checked_at,
        }


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value >= 0.01 or value == 0 else f"{value * 100:.1f}%"


def describe_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 d 4 h``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _window(seconds: float) -> str:
    if seconds == 3600:
        return "the last hour"
    return f"the last {describe_duration(seconds)}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _graded(
    findings: list[Finding], value: float, degraded: float, failing: float, sentence: str
) -> None:
    """Add ``sentence`` as failing past the ``failing`` threshold, as degraded past ``degraded``."""
    if value > failing:
        findings.append(Finding(FAILING, sentence))
    elif value > degraded:
        findings.append(Finding(DEGRADED, sentence))


def assess(numbers: Numbers, policy: HealthPolicy, now: datetime, tenant: str = "") -> Verdict:
    """The state a tenant is in, and why (pure: no I/O, no clock); ``tenant`` names it in the
    command a reason suggests."""
    findings: list[Finding] = []
    window = _window(numbers.window_seconds)
    requests = numbers.scim_requests

    # The print system refuses our credentials: nothing downstream can succeed until fixed.
    if numbers.paused_since is not None:
        paused_for = max(0.0, (now - clock.parse(numbers.paused_since)).total_seconds())
        findings.append(
            Finding(
                FAILING,
                f"The print system has refused printsync's credentials for "
                f"{describe_duration(paused_for)}; the tenant's "
                f"effects wait until they are fixed ({numbers.paused_reason}).",
            )
        )

    # SCIM requests (what Entra sees of us).
    if requests >= policy.min_requests:
        ratio = numbers.scim_failure_ratio
        failed = (
            f"{_percent(ratio)} of SCIM requests in {window} failed "
            f"({numbers.scim_failed} of {requests}; "
            f"{_plural(numbers.scim_server_errors, 'server error')})"
        )
        _graded(
            findings,
            ratio,
            policy.degraded_failure_ratio,
            policy.failing_failure_ratio,
            failed + ".",
        )
        server = numbers.scim_server_error_ratio
        servers = (
            f"{_percent(server)} of SCIM requests in {window} ended in a server error "
            f"({numbers.scim_server_errors} of {requests})."
        )
        _graded(
            findings,
            server,
            policy.degraded_server_error_ratio,
            policy.failing_server_error_ratio,
            servers,
        )

    # Stalled: Entra keeps calling but nothing has succeeded for several cycles.
    if requests > 0 and numbers.scim_succeeded + numbers.scim_expected == 0:
        since = numbers.last_success_at or numbers.first_seen_at
        if since is not None:
            age = (now - clock.parse(since)).total_seconds()
            if age > policy.stall_seconds:
                what = (
                    "No SCIM request has succeeded for "
                    if numbers.last_success_at
                    else "No SCIM request has ever succeeded, for "
                )
                findings.append(
                    Finding(
                        FAILING,
                        (
                            f"{what}{describe_duration(age)} although Entra keeps calling "
                            f"({_plural(requests, 'request')} in {window})."
                        ),
                    )
                )

    # Effects (what we apply downstream).
    effects = numbers.effects_total
    if effects >= policy.min_effects:
        ratio = numbers.effect_failure_ratio
        failed = (
            f"{_percent(ratio)} of effects in {window} failed "
            f"({numbers.effects_failed} of {effects}; "
            f"{numbers.effects_dead} gave up, {numbers.effects_retrying} retrying)."
        )
        _graded(
            findings, ratio, policy.degraded_failure_ratio, policy.failing_failure_ratio, failed
        )
    if numbers.effects_dead:
        findings.append(
            Finding(
                DEGRADED,
                (
                    f"{_plural(numbers.effects_dead, 'effect')} gave up in {window}; "
                    "dead effects stay undone until sent again with "
                    f"`printsync effects retry --dead --tenant {tenant or 'NAME'}`."
                ),
            )
        )

    lag = numbers.oldest_pending_age_seconds
    if lag is not None:
        waited = f"The oldest pending effect has waited {describe_duration(lag)}."
        _graded(findings, lag, policy.degraded_lag_seconds, policy.failing_lag_seconds, waited)

    worst: State = HEALTHY
    for finding in findings:
        if STATES.index(finding.state) > STATES.index(worst):
            worst = finding.state
    if worst == HEALTHY:
        return Verdict(HEALTHY, _healthy_reason(numbers, window), tuple(findings))
    reason = " ".join(f.sentence for f in findings if f.state == worst)
    return Verdict(worst, reason, tuple(findings))


def _healthy_reason(numbers: Numbers, window: str) -> str:
    requests, effects = numbers.scim_requests, numbers.effects_total
    if not requests and not effects:
        return f"No SCIM requests or effects in {window}."
    if not numbers.scim_failed and not numbers.effects_failed:
        return (
            f"All {_plural(requests, 'SCIM request')} and {_plural(effects, 'effect')} "
            f"in {window} succeeded."
        )
    return (
        f"{numbers.scim_failed} of {_plural(requests, 'SCIM request')} and "
        f"{numbers.effects_failed} of {_plural(effects, 'effect')} in {window} failed, "
        "within the thresholds."
    )


# Reading the numbers ------------------------------------------------------------------------------

_OLDEST_PENDING = (
    "SELECT min(created_at) FROM outbox"
    " WHERE tenant_id = :tenant AND state = 'pending' AND created_at <= :now"
)


async def gather(db: Database, tenant_id: int, policy: HealthPolicy, now: datetime) -> Numbers:
    """The numbers of one tenant over the window ending at ``now``."""
    since = clock.stamp(now - timedelta(seconds=policy.window_seconds))
    activity = await provisioning_log.scim_activity(db, tenant_id, since)
    succeeded, retrying, dead = await outbox.failure_stats(db, tenant_id, since)
    async with db.reader() as conn:
        row = await conn.fetchone(
            compile_text(_OLDEST_PENDING, db.dialect),
            {"tenant": tenant_id, "now": clock.stamp(now)},
        )
    oldest = row[0] if row is not None else None
    age = max(0.0, (now - clock.parse(oldest)).total_seconds()) if oldest else None
    paused = await downstream.pause_of(db, tenant_id)
    return Numbers(
        window_seconds=policy.window_seconds,
        scim_requests=activity.total,
        scim_succeeded=activity.success,
        scim_expected=activity.expected,
        scim_client_errors=activity.client_errors,
        scim_server_errors=activity.server_errors,
        effects_succeeded=succeeded,
        effects_retrying=retrying,
        effects_dead=dead,
        oldest_pending_age_seconds=age,
        last_success_at=activity.last_success_at,
        first_seen_at=activity.first_seen_at,
        paused_since=paused.since if paused is not None else None,
        paused_reason=paused.reason if paused is not None else None,
    )


async def read(
    db: Database, tenant: Tenant, policy: HealthPolicy | None = None, now: datetime | None = None
) -> Health:
    """The health of one tenant now (or at ``now``)."""
    policy = policy or HealthPolicy()
    moment = now or clock.now()
    numbers = await gather(db, tenant.id, policy, moment)
    verdict = assess(numbers, policy, moment, tenant.name)
    return Health(
        tenant=tenant.name,
        state=verdict.state,
        reason=verdict.reason,
        findings=verdict.findings,
        numbers=numbers,
        checked_at=clock.stamp(moment),
    )


async def read_all(
    db: Database, policy: HealthPolicy | None = None, now: datetime | None = None
) -> list[Health]:
    """The health of every tenant, by name."""
    moment = now or clock.now()
    return [await read(db, tenant, policy, moment) for tenant in await tenants.list_all(db)]


class HealthBoard:
    """The latest health of every tenant, for the scrape-time ``printsync_tenant_health`` gauge.

    Whoever computes health (the notification loop does every run) calls :meth:`update`;
    :meth:`rows` is the collector's source and never touches the database::

        board = HealthBoard()
        exposition.register_scrape_collector(collectors.TenantHealthCollector(board.rows))

    :meth:`update` also sets ``printsync_tenant_last_success_timestamp_seconds`` from each
    tenant's last successful SCIM request.
    """

    def __init__(self) -> None:
        self._latest: tuple[Health, ...] = ()

    def update(self, healths: Iterable[Health]) -> None:
        self._latest = tuple(healths)
        for health in self._latest:
            last = health.numbers.last_success_at
            if last is not None:
                catalog.TENANT_LAST_SUCCESS.labels(health.tenant).set(clock.parse(last).timestamp())

    async def refresh(self, db: Database, policy: HealthPolicy | None = None) -> list[Health]:
        healths = await read_all(db, policy)
        self.update(healths)
        return healths

    @property
    def latest(self) -> Sequence[Health]:
        return self._latest

    def rows(self) -> list[TenantHealth]:
        return [TenantHealth(tenant=health.tenant, state=health.state) for health in self._latest]


__all__ = [
    "DEGRADED",
    "FAILING",
    "HEALTHY",
    "STATES",
    "Finding",
    "Health",
    "HealthBoard",
    "HealthPolicy",
    "Numbers",
    "State",
    "Verdict",
    "assess",
    "describe_duration",
    "gather",
    "read",
    "read_all",
]
