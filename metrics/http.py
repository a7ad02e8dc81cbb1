"""SCIM request metrics: the labels of a request and the recording of one.

The API's middleware (``api.middleware``) calls :meth:`RequestMetrics.record` once per request.
It counts the request in ``printsync_scim_requests_total{resource,method,status,tenant}`` and
times it in ``printsync_scim_request_duration_seconds{resource,method,tenant}``. ``tenant`` is
the authenticated tenant's name (a configured tenant, so bounded by what an operator creates),
empty for a request no tenant's token was verified for (a 401, the probes, the console).

``resource`` is the SCIM endpoint named by the path: the segment after the tenant's SCIM base
(``…/Users``, ``…/Users/{id}``, ``…/Schemas/{urn}``) when it is one of the SCIM endpoints, else
``other``. Only the last two path segments are looked at, so any tenant base works. Methods
outside the usual HTTP set count as ``other``, which keeps every label bounded whatever clients
send.

It runs on every request, so the work is a split, a few set and dict look-ups and the metric
updates; labelled metric children are created on first use and cached.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

from metrics import catalog

_ENDPOINTS: Final = frozenset(r for r in catalog.SCIM_RESOURCES if r != "other")
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def resource_of(path: str) -> str:
    """The ``resource`` label for a request path."""
    # ".../Users/{id}" names the endpoint second to last, ".../Users" last.
    head, _, last = path.rstrip("/").rpartition("/")
    parent = head.rpartition("/")[2]
    if parent in _ENDPOINTS:
        return parent
    if last in _ENDPOINTS:
        return last
    return "other"


def method_of(method: str) -> str:
    """The ``method`` label: the HTTP method, or ``other`` for unusual ones."""
    return method if method in _METHODS else "other"


class RequestMetrics:
    """Counts and times requests; ``requests`` and ``duration`` default to the catalogue's."""

    __slots__ = ("_children", "_duration", "_requests")

    def __init__(
        self,
        requests: Counter = catalog.SCIM_REQUESTS,
        duration: Histogram = catalog.SCIM_REQUEST_DURATION,
    ) -> None:
        self._requests = requests
        self._duration = duration
        self._children: dict[tuple[str, str, int, str], tuple[Counter, Histogram]] = {}

    def record(self, path: str, method: str, status: int, elapsed: float, tenant: str = "") -> None:
        """One request of ``tenant`` (a configured tenant's name, or empty) to ``path``,
        answered with ``status`` after ``elapsed`` seconds."""
        resource = resource_of(path)
        method_label = method_of(method)
        key = (resource, method_label, status, tenant)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(resource, method_label, str(status), tenant),
                self._duration.labels(resource, method_label, tenant),
            )
            self._children[key] = children
        counter, histogram = children
        counter.inc()
        histogram.observe(elapsed)
