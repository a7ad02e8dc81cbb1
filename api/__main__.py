"""Run the API alone under uvicorn: ``python -m api`` (``printsync serve`` adds the workers)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from api.settings import get_settings
from storage.settings import get_settings as get_database_settings


def main() -> None:
    settings = get_settings()
    app = create_app(settings, get_database_settings())
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
