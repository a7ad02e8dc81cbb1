"""The API alone, without the effects pipeline (``printsync serve`` runs both).

``python -m printsync.asgi`` serves it on ``PRINTSYNC_HOST:PRINTSYNC_PORT``; an ASGI server that
builds its own app calls :func:`create_app` (``uvicorn --factory printsync.asgi:create_app``), and
then sets its own connection limits (``--limit-concurrency``, ``--timeout-keep-alive``).
Either way the settings are validated first: a bad value stops the process with one line naming
the variable and its rule, exit status 2.
"""

from __future__ import annotations

from fastapi import FastAPI

from api import app
from printsync import http_server
from printsync.terminal import start_process
from workers.connectors.registry import DEFAULT_CONNECTOR


def create_app() -> FastAPI:
    """The ASGI app of this process's settings."""
    settings = start_process()
    return app.create_app(settings.api(), settings.database(), default_connector=DEFAULT_CONNECTOR)


def main() -> None:
    settings = start_process()
    http_server.serve(
        app.create_app(settings.api(), settings.database(), default_connector=DEFAULT_CONNECTOR),
        settings,
        host=settings.host,
        port=settings.port,
    )


if __name__ == "__main__":
    main()
