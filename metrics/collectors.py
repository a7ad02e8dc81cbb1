"""Scrape-time gauges fed by callables.

Some values are facts about the database (pending effects, dead effects, tenant health) rather
than events a process observes, so they are read when Prometheus scrapes. Storage code supplies a
plain callable; this module turns its result into metric families, so ``metrics`` never imports
storage. Register the collectors with :func:`metrics.exposition.register_scrape_collector`::

    exposition.register_scrape_collector(
        collectors.OutboxCollector(outbox.snapshot, kinds=EFFECT_KINDS)
    )

A source that raises does not break the scrape: the error is logged, counted in
``printsync_metrics_source_errors_total{collector}``, and that collector's families are left
out of the scrape. Sources run on the scraping thread, so they should be one cheap query with a
statement timeout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from metrics import catalog
from metrics.catalog import MetricSpec, TenantState

T = TypeVar("T")

_log = structlog.get_logger(__name__)

#: One sample of a labelled gauge: label values in the order of the spec's labels, and the value.
Row = tuple[Sequence[str], float]


class ScrapeCollector(ABC, Generic[T]):
    """A prometheus_client collector that calls ``source`` on every scrape.

    Subclasses turn the source's value into metric families. ``name`` identifies the collector
    in logs and in ``printsync_metrics_source_errors_total``; it must be a fixed string.
    """

    def __init__(self, name: str, source: Callable[[], T], specs: Sequence[MetricSpec]) -> None:
        for metric in specs:
            if not metric.scrape_time:
                raise ValueError(f"{metric.name!r} is not a scrape-time metric")
        self.name = name
        self._source = source
        self._specs = tuple(specs)

    def describe(self) -> list[Metric]:
        """Families without samples, so registering never calls the source."""
        return [_family(metric) for metric in self._specs]

    def collect(self) -> list[Metric]:
        try:
            value = self._source()
            return list(self.families(value))
        except Exception:
            _log.exception("metrics_source_failed", collector=self.name)
            catalog.METRICS_SOURCE_ERRORS.labels(self.name).inc()
            return []

    @abstractmethod
    def families(self, value: T) -> Iterable[Metric]:
        """Metric families for one value returned by the source."""


class GaugeCollector(ScrapeCollector[Iterable[Row]]):
    """One scrape-time gauge whose source returns ``(label values, value)`` rows.

    For a gauge without labels, return ``[((), value)]``; a ``dict`` keyed by label-value tuples
    fits through ``.items()``. Label combinations listed in ``always`` are reported as 0 when the
    source omits them, so a series does not vanish when its count drops to zero.
    """

    def __init__(
        self,
        spec: MetricSpec,
        source: Callable[[], Iterable[Row]],
        *,
        always: Iterable[Sequence[str]] = (),
        name: str | None = None,
    ) -> None:
        super().__init__(name or spec.name, source, (spec,))
        self._spec = spec
        self._always = tuple(tuple(labels) for labels in always)
        for labels in self._always:
            _check_arity(spec, labels)

    def families(self, value: Iterable[Row]) -> Iterable[Metric]:
        family = _family(self._spec)
        seen: set[tuple[str, ...]] = set()
        for labels, sample in value:
            key = tuple(labels)
            _check_arity(self._spec, key)
            seen.add(key)
            family.add_metric(list(key), float(sample))
        for key in self._always:
            if key not in seen:
                family.add_metric(list(key), 0.0)
        return (family,)


@dataclass(frozen=True, slots=True)
class OutboxSnapshot:
    """Outbox figures read in one query.

    ``oldest_pending_age_seconds`` is 0 when nothing is pending. Kinds missing from the mappings
    count as 0.
    """

    pending_by_kind: Mapping[str, int] = field(default_factory=dict)
    dead_by_kind: Mapping[str, int] = field(default_factory=dict)
    oldest_pending_age_seconds: float = 0.0


class OutboxCollector(ScrapeCollector[OutboxSnapshot]):
    """``printsync_outbox_pending``, ``printsync_outbox_oldest_pending_age_seconds`` and
    ``printsync_effects_dead`` from one :class:`OutboxSnapshot` per scrape.

    ``kinds`` lists the effect kinds to report even at zero.
    """

    def __init__(
        self,
        source: Callable[[], OutboxSnapshot],
        *,
        kinds: Iterable[str] = (),
        name: str = "outbox",
    ) -> None:
        super().__init__(
            name,
            source,
            (catalog.OUTBOX_PENDING, catalog.OUTBOX_OLDEST_PENDING_AGE, catalog.EFFECTS_DEAD),
        )
        self._kinds = tuple(kinds)

    def families(self, value: OutboxSnapshot) -> Iterable[Metric]:
        pending = _family(catalog.OUTBOX_PENDING)
        for kind, count in _with_zeros(value.pending_by_kind, self._kinds):
            pending.add_metric([kind], float(count))
        dead = _family(catalog.EFFECTS_DEAD)
        for kind, count in _with_zeros(value.dead_by_kind, self._kinds):
            dead.add_metric([kind], float(count))
        age = _family(catalog.OUTBOX_OLDEST_PENDING_AGE)
        age.add_metric([], max(0.0, float(value.oldest_pending_age_seconds)))
        return (pending, age, dead)


@dataclass(frozen=True, slots=True)
class TenantHealth:
    """The current sync state of one configured tenant."""

    tenant: str
    state: TenantState


class TenantHealthCollector(ScrapeCollector[Iterable[TenantHealth]]):
    """``printsync_tenant_health{tenant,state}``: 1 for the current state, 0 for the others."""

    def __init__(
        self, source: Callable[[], Iterable[TenantHealth]], *, name: str = "tenant_health"
    ) -> None:
        super().__init__(name, source, (catalog.TENANT_HEALTH,))

    def families(self, value: Iterable[TenantHealth]) -> Iterable[Metric]:
        family = _family(catalog.TENANT_HEALTH)
        for row in value:
            if row.state not in catalog.TENANT_STATES:
                raise ValueError(f"unknown tenant state {row.state!r}")
            for state in catalog.TENANT_STATES:
                family.add_metric([row.tenant, state], 1.0 if state == row.state else 0.0)
        return (family,)


def _family(spec: MetricSpec) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))


def _check_arity(spec: MetricSpec, labels: Sequence[str]) -> None:
    if len(labels) != len(spec.labels):
        raise ValueError(f"{spec.name} takes labels {spec.labels}, got {tuple(labels)}")


def _with_zeros(counts: Mapping[str, int], kinds: Sequence[str]) -> Iterable[tuple[str, int]]:
    yield from counts.items()
    for kind in kinds:
        if kind not in counts:
            yield kind, 0
