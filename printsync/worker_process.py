"""The processes of ``printsync worker``: what Dramatiq's command line runs in each of them.

``printsync worker`` validates the settings, hands them to :func:`use` and starts Dramatiq's
command line, which forks the worker processes (each calls :func:`setup`, its broker hook) and the
sweeper (:func:`run_sweeper`, a fork function). A forked process inherits the validated settings;
a process started afresh validates the same environment again.
"""

from __future__ import annotations

import os

from printsync.settings import Settings
from printsync.terminal import start_process
from workers import broker, relay
from workers.actors import Actors

#: The hooks, as Dramatiq's command line names them.
SETUP = f"{__name__}:setup"
SWEEPER = f"{__name__}:run_sweeper"

_settings: Settings | None = None


def use(settings: Settings) -> None:
    """The settings of the processes this one is about to fork."""
    global _settings
    _settings = settings


def _current() -> Settings:
    return _settings if _settings is not None else start_process()


def setup() -> Actors:
    """Dramatiq's broker hook: build the broker, make it the global one, declare the actors."""
    settings = _current()
    return broker.setup(settings.worker(), settings.database(), os.environ)


def run_sweeper() -> int:
    """Dramatiq's fork function: the sweeping relay (and the notification job and the worker
    side's ``/metrics``) until the process is told to stop."""
    settings = _current()
    actors = broker.setup(settings.worker(), settings.database(), os.environ)
    return relay.run_sweeper(settings.worker(), settings.database(), actors)
