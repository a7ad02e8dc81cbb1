"""Multiprocess-aware ``/metrics`` output.

Two modes, chosen by the directory the composition root passes to :func:`configure` (the value
of ``PROMETHEUS_MULTIPROC_DIR``, which ``prometheus_client`` reads itself):

- **Multiprocess** (a directory): every process writes its live metrics to files in that
  directory, and each scrape builds a fresh ``CollectorRegistry`` with a ``MultiProcessCollector``
  that sums them, plus the registered scrape-time collectors.
- **Single process** (None, the default): the default registry, plus the registered scrape-time
  collectors.

The start script sets the variable before Python starts, because ``prometheus_client`` picks its
value storage when it is first imported, and wipes the directory with
:func:`prepare_multiproc_dir` before any worker forks. API and workers use separate directories.
A supervisor that restarts child processes calls :func:`mark_dead` with the dead child's pid so
its ``live*`` gauges disappear (counters of dead processes keep counting in the totals).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

#: The variable ``prometheus_client`` reads for its multiprocess directory.
ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"

_multiproc_dir: str | None = None
_scrape_collectors: list[Collector] = []
_scrape_lock = threading.Lock()


def configure(multiproc_dir: str | None) -> None:
    """Set this process's multiprocess directory (None: single-process mode)."""
    global _multiproc_dir
    _multiproc_dir = multiproc_dir or None


def multiproc_dir() -> str | None:
    """The multiprocess directory, or None in single-process mode."""
    return _multiproc_dir


def check_multiprocess_setup() -> None:
    """Raise RuntimeError if multiprocess mode is configured but cannot work.

    Call it once at process start, after :func:`configure`. It catches the two silent failures:
    the directory is missing, or ``prometheus_client`` was imported before ``ENV_VAR`` was set, in
    which case this process's metrics stay in memory and never reach a scrape.
    """
    path = multiproc_dir()
    if path is None:
        return
    if not Path(path).is_dir():
        raise RuntimeError(f"{ENV_VAR} names a missing directory: {path}")
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(
            f"prometheus_client was imported before {ENV_VAR} was set; "
            "set it before the Python process starts"
        )


def register_scrape_collector(collector: Collector) -> None:
    """Add a scrape-time collector to every scrape of this process."""
    with _scrape_lock:
        if any(known is collector for known in _scrape_collectors):
            raise ValueError("collector is already registered")
        _scrape_collectors.append(collector)


def unregister_scrape_collector(collector: Collector) -> None:
    """Remove a collector added with :func:`register_scrape_collector`."""
    with _scrape_lock:
        for index, known in enumerate(_scrape_collectors):
            if known is collector:
                del _scrape_collectors[index]
                return
    raise ValueError("collector is not registered")


def scrape_collectors() -> tuple[Collector, ...]:
    """The registered scrape-time collectors, in registration order."""
    with _scrape_lock:
        return tuple(_scrape_collectors)


def build_registry() -> CollectorRegistry:
    """A fresh registry holding everything one scrape of this process should show."""
    registry = CollectorRegistry()
    path = multiproc_dir()
    if path is not None:
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    for collector in scrape_collectors():
        registry.register(collector)
    return registry


def render(registry: Collector | None = None, *, accept: str | None = None) -> tuple[bytes, str]:
    """Render metrics in the Prometheus text format; return ``(body, content_type)``.

    With ``registry=None``, renders :func:`build_registry` for the current mode. ``accept`` is the
    request's Accept header; OpenMetrics is used when it asks for it.
    """
    source: Collector = build_registry() if registry is None else registry
    if accept:
        encoder, content_type = choose_encoder(accept)
        return encoder(source), content_type
    return generate_latest(source), CONTENT_TYPE_PLAIN_0_0_4


def mark_dead(pid: int, path: str | None = None) -> None:
    """Drop the ``live*`` gauges of a process that has exited.

    Does nothing in single-process mode.
    """
    directory = path or multiproc_dir()
    if directory is None:
        return
    mark_process_dead(pid, path=directory)  # type: ignore[no-untyped-call]


def prepare_multiproc_dir(path: str | os.PathLike[str]) -> Path:
    """Create the multiprocess directory and delete the metric files left in it.

    Only ``prometheus_client``'s ``*.db`` files are removed, so a mistaken path such as a shared
    temporary directory loses nothing else; the calling process's own files stay (it may have
    written to them already). Call it before any process that writes metrics
    starts: a file removed under a running process would lose that process's values.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"  # this process's files, opened when its metrics were declared
    for entry in directory.iterdir():
        if entry.suffix == ".db" and entry.is_file() and not entry.name.endswith(own):
            entry.unlink(missing_ok=True)
    return directory


class _PerScrapeRegistry(CollectorRegistry):
    """A registry whose every collect() reads a fresh :func:`build_registry`."""

    def collect(self) -> Iterable[Metric]:
        return build_registry().collect()


def serve_metrics(host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` from a daemon thread; for processes without an HTTP app.

    Returns the server (call ``shutdown()`` and ``server_close()`` to stop it) and its thread.
    Port 0 picks a free port, readable from ``server.server_port``. Bind to a private address.
    """
    server, thread = start_http_server(port, addr=host, registry=_PerScrapeRegistry())
    return server, thread
