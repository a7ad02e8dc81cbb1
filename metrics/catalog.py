"""Every Prometheus metric printsync exports, defined once.

Each metric has one :class:`MetricSpec` (name, help, kind, labels) in :data:`CATALOG`. Metrics that
code updates as things happen ("live" metrics) also get a ``prometheus_client`` object here, created
at import in prometheus_client's usual style. Metrics read from the database when Prometheus scrapes
("scrape-time" metrics) only have a spec; :mod:`metrics.collectors` turns a callable into their
samples, so this package never imports storage.

Multiprocess mode: ``prometheus_client`` decides at import whether values live in memory or in
``PROMETHEUS_MULTIPROC_DIR``, so the start script sets that variable before Python starts. Every
live gauge names its ``multiprocess_mode`` explicitly, and counters and histograms sum across
processes.

Label rules:

- Labels never hold user ids, userNames, e-mail addresses, card numbers or other per-person values;
  :class:`MetricSpec` refuses such label names outright.
- Every label value comes from a small set fixed by code (SCIM resource, HTTP method, status code,
  effect kind, connector, outcome) with one exception: ``tenant``. Its values are the tenant keys of
  the service configuration, so its cardinality is the number of configured tenants (a handful) and
  never grows with traffic. Never put a value taken from a request (a header, a path segment that
  was not matched against the configuration) into ``tenant``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

MetricKind = Literal["counter", "gauge", "histogram"]
GaugeMode = Literal[
    "all",
    "liveall",
    "min",
    "livemin",
    "max",
    "livemax",
    "sum",
    "livesum",
    "mostrecent",
    "livemostrecent",
]

ScimResource = Literal[
    "Users", "Groups", "Bulk", "Schemas", "ResourceTypes", "ServiceProviderConfig", "other"
]
EffectOutcome = Literal["succeeded", "retried", "failed", "dead"]
DownstreamError = Literal["transient", "permanent"]
TenantState = Literal["healthy", "degraded", "failing"]
NotificationOutcome = Literal["sent", "retried", "failed"]

#: Values of the ``resource`` label of the SCIM request metrics.
SCIM_RESOURCES: Final[tuple[ScimResource, ...]] = get_args(ScimResource)
#: Values of the ``outcome`` label of :data:`EFFECTS`: ``succeeded`` (converged), ``retried`` (a
#: transient failure, another attempt follows), ``failed`` (a permanent failure, marked failed),
#: ``dead`` (retries exhausted).
EFFECT_OUTCOMES: Final[tuple[EffectOutcome, ...]] = get_args(EffectOutcome)
#: Values of the ``error`` label of :data:`DOWNSTREAM_ERRORS`.
DOWNSTREAM_ERROR_CLASSES: Final[tuple[DownstreamError, ...]] = get_args(DownstreamError)
#: Values of the ``state`` label of ``printsync_tenant_health``, from best to worst.
TENANT_STATES: Final[tuple[TenantState, ...]] = get_args(TenantState)
#: Values of the ``outcome`` label of :data:`NOTIFICATIONS`.
NOTIFICATION_OUTCOMES: Final[tuple[NotificationOutcome, ...]] = get_args(NotificationOutcome)

#: 0.5 ms to 5 s: a SCIM request does one short transaction and no network I/O.
SCIM_LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: 5 ms to 2 min: one effect is a few downstream calls, each bounded by a ~10 s socket timeout
#: and up to three quick in-attempt retries.
EFFECT_LATENCY_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip

PREFIX: Final = "printsync_"

#: Label names that would carry per-person values; no metric may use them.
FORBIDDEN_LABELS: Final = frozenset(
    {
        "user",
        "user_id",
        "userid",
        "username",
        "user_name",
        "email",
        "mail",
        "external_id",
        "externalid",
        "display_name",
        "card",
        "card_number",
        "pin",
        "id",
    }
)

_SUFFIXES: Final[dict[MetricKind, tuple[str, ...]]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """Name, help text, kind and labels of one metric.

    ``name`` is the name as exposed and as written in PromQL, so a counter's name ends in
    ``_total`` and a histogram's name is its base name. ``scrape_time`` marks metrics whose value
    is read when Prometheus scrapes, through :mod:`metrics.collectors`.
    """

    name: str
    help: str
    kind: MetricKind
    labels: tuple[str, ...] = ()
    scrape_time: bool = False
    multiprocess_mode: GaugeMode | None = None
    buckets: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"metric {self.name!r} must start with {PREFIX!r}")
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end with '_total'")
        if self.kind != "counter" and self.name.endswith("_total"):
            raise ValueError(f"only counters may end with '_total': {self.name!r}")
        forbidden = FORBIDDEN_LABELS.intersection(label.lower() for label in self.labels)
        if forbidden:
            raise ValueError(f"metric {self.name!r} uses per-person labels {sorted(forbidden)}")
        if self.scrape_time and self.kind != "gauge":
            raise ValueError(f"scrape-time metric {self.name!r} must be a gauge")
        if self.kind == "gauge" and not self.scrape_time and self.multiprocess_mode is None:
            raise ValueError(f"live gauge {self.name!r} needs an explicit multiprocess_mode")
        if self.kind == "histogram" and not self.buckets:
            raise ValueError(f"histogram {self.name!r} needs buckets")

    @property
    def base_name(self) -> str:
        """The family name: a counter's name without ``_total``."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def sample_names(self) -> frozenset[str]:
        """Every sample name this metric can expose, e.g. ``_bucket``/``_sum``/``_count``."""
        return frozenset(self.base_name + suffix for suffix in _SUFFIXES[self.kind])


_specs: list[MetricSpec] = []


def _register(spec: MetricSpec) -> MetricSpec:
    if any(known.name == spec.name for known in _specs):
        raise ValueError(f"metric {spec.name!r} is defined twice")
    _specs.append(spec)
    return spec


def _counter(name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
    spec = _register(MetricSpec(name, help_text, "counter", labels))
    return Counter(spec.name, spec.help, spec.labels)


def _histogram(
    name: str, help_text: str, labels: tuple[str, ...], buckets: tuple[float, ...]
) -> Histogram:
    spec = _register(MetricSpec(name, help_text, "histogram", labels, buckets=buckets))
    return Histogram(spec.name, spec.help, spec.labels, buckets=spec.buckets)


def _gauge(name: str, help_text: str, labels: tuple[str, ...], mode: GaugeMode) -> Gauge:
    spec = _register(MetricSpec(name, help_text, "gauge", labels, multiprocess_mode=mode))
    return Gauge(spec.name, spec.help, spec.labels, multiprocess_mode=mode)


def _scrape_gauge(name: str, help_text: str, labels: tuple[str, ...] = ()) -> MetricSpec:
    return _register(MetricSpec(name, help_text, "gauge", labels, scrape_time=True))


# SCIM edge ---------------------------------------------------------------------------------------

SCIM_REQUESTS: Final = _counter(
    "printsync_scim_requests_total",
    "SCIM HTTP requests by resource (Users, Groups, Schemas, ResourceTypes, "
    "ServiceProviderConfig or other), method, numeric status code (499: the client went away "
    "before its request arrived whole) and tenant (a configured tenant key; empty when no "
    "tenant's token was verified).",
    ("resource", "method", "status", "tenant"),
)
SCIM_REQUEST_DURATION: Final = _histogram(
    "printsync_scim_request_duration_seconds",
    "Time to answer a SCIM HTTP request, by resource, method and tenant.",
    ("resource", "method", "tenant"),
    SCIM_LATENCY_BUCKETS,
)
SCIM_RATE_LIMITED: Final = _counter(
    "printsync_scim_rate_limited_total",
    "SCIM requests refused with 429 by the per-tenant rate limit. "
    "tenant is a configured tenant key.",
    ("tenant",),
)
SCIM_RATE_LIMIT_UNCHECKED: Final = _counter(
    "printsync_scim_rate_limit_unchecked_total",
    "SCIM requests admitted without the shared rate limit because its Redis could not be "
    "reached (the limit fails open).",
)

# Effects and downstream connectors ---------------------------------------------------------------

EFFECTS: Final = _counter(
    "printsync_effects_total",
    "Effect attempts by effect kind, connector and outcome "
    "(succeeded, retried, failed = permanent, dead = retries exhausted).",
    ("kind", "connector", "outcome"),
)
EFFECT_DURATION: Final = _histogram(
    "printsync_effect_duration_seconds",
    "Time spent on one effect attempt, downstream calls included.",
    ("kind", "connector"),
    EFFECT_LATENCY_BUCKETS,
)
DOWNSTREAM_ERRORS: Final = _counter(
    "printsync_downstream_errors_total",
    "Failed calls to a downstream system by connector, operation and error class "
    "(transient or permanent).",
    ("connector", "operation", "error"),
)
NOTIFICATIONS: Final = _counter(
    "printsync_notifications_total",
    "Notification e-mails by kind and outcome (sent, retried, failed).",
    ("kind", "outcome"),
)

# Sync health --------------------------------------------------------------------------------------

TENANT_LAST_SUCCESS: Final = _gauge(
    "printsync_tenant_last_success_timestamp_seconds",
    "Unix time of the last successful SCIM request from the tenant's provisioning job. "
    "tenant is a configured tenant key.",
    ("tenant",),
    "max",
)

# Process information -----------------------------------------------------------------------------

BUILD_INFO: Final = _gauge(
    "printsync_build_info",
    "Always 1; the version label names the running printsync release.",
    ("version",),
    "livemax",
)
METRICS_SOURCE_ERRORS: Final = _counter(
    "printsync_metrics_source_errors_total",
    "Scrape-time metric sources that raised instead of returning values, by collector; "
    "their metrics are missing from that scrape.",
    ("collector",),
)

# Scrape-time gauges (values come from metrics.collectors) ---------------------------------------

OUTBOX_PENDING: Final = _scrape_gauge(
    "printsync_outbox_pending",
    "Effects in the outbox that are neither completed nor failed, by effect kind.",
    ("kind",),
)
OUTBOX_OLDEST_PENDING_AGE: Final = _scrape_gauge(
    "printsync_outbox_oldest_pending_age_seconds",
    "Age of the oldest pending effect in the outbox; 0 when nothing is pending.",
)
EFFECTS_DEAD: Final = _scrape_gauge(
    "printsync_effects_dead",
    "Effects currently marked failed (permanent error or retries exhausted), by effect kind.",
    ("kind",),
)
TENANT_HEALTH: Final = _scrape_gauge(
    "printsync_tenant_health",
    "1 for the tenant's current sync state (healthy, degraded, failing), 0 for the others. "
    "tenant is a configured tenant key.",
    ("tenant", "state"),
)
CYCLE_DURATION: Final = _scrape_gauge(
    "printsync_cycle_duration_seconds",
    "Duration of the tenant's running or last provisioning cycle from Entra ID, from its first "
    "to its last SCIM request. tenant is a configured tenant key.",
    ("tenant",),
)
CYCLE_REQUESTS: Final = _scrape_gauge(
    "printsync_cycle_requests",
    "SCIM requests of the tenant's running or last provisioning cycle (its size). "
    "tenant is a configured tenant key.",
    ("tenant",),
)
CYCLE_LAST_REQUEST: Final = _scrape_gauge(
    "printsync_cycle_last_request_timestamp_seconds",
    "Unix time of the last SCIM request of the tenant's latest provisioning cycle; Entra runs "
    "one about every 40 minutes. tenant is a configured tenant key.",
    ("tenant",),
)
EFFECTS_HELD: Final = _scrape_gauge(
    "printsync_effects_held",
    "Revocations and deletions of print access held by the deprovisioning guard, waiting for "
    "an operator's approval. tenant is a configured tenant key.",
    ("tenant",),
)

#: Every metric printsync exports.
CATALOG: Final[tuple[MetricSpec, ...]] = tuple(_specs)
_BY_NAME: Final[dict[str, MetricSpec]] = {spec.name: spec for spec in CATALOG}


def spec(name: str) -> MetricSpec:
    """Return the spec of the metric exposed as ``name`` (a counter's name includes ``_total``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no metric named {name!r} in the catalogue") from None


def sample_names() -> frozenset[str]:
    """Every sample name printsync can expose, with histogram and counter suffixes."""
    names: set[str] = set()
    for metric in CATALOG:
        names |= metric.sample_names
    return frozenset(names)


def set_build_info(version: str) -> None:
    """Publish the running version as ``printsync_build_info{version=...} 1``."""
    BUILD_INFO.labels(version).set(1)
