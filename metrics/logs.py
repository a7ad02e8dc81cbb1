"""structlog setup.

:func:`configure_logging` routes structlog and the standard library's ``logging`` (uvicorn,
SQLAlchemy, Dramatiq) through one handler, so every line has the same shape: JSON in production,
coloured key/value text in development. Both paths merge structlog's contextvars
(``request_id``, ``message_id``, ``actor_name``, …) and pass
:func:`metrics.redaction.redact` just before rendering.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from metrics.redaction import redact


def _json_default(value: object) -> str:
    return str(value)


def render_json(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    """structlog processor: one JSON object per line."""
    try:
        return orjson.dumps(
            event_dict, default=_json_default, option=orjson.OPT_NON_STR_KEYS
        ).decode()
    except orjson.JSONEncodeError:
        # Integers wider than 64 bits and similar corner cases.
        return orjson.dumps({key: str(value) for key, value in event_dict.items()}).decode()


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler installed by :func:`configure_logging`; replaced when it runs again."""


def configure_logging(
    *, json_output: bool, level: int | str = logging.INFO, stream: TextIO | None = None
) -> None:
    """Configure structlog and the root ``logging`` logger.

    ``json_output`` selects JSON lines (production) or the console renderer (development).
    ``stream`` defaults to standard output. Calling it again replaces the previous setup.
    """
    output = stream if stream is not None else sys.stdout
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_output:
        final += [structlog.processors.format_exc_info, redact, render_json]
    else:
        colors = bool(getattr(output, "isatty", lambda: False)())
        # Plain tracebacks: rich's would print local variables, secrets included.
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
        final += [redact, renderer]

    handler = _Handler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=final,
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(existing)
        existing.close()
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic announces its plugins and each step at INFO: nothing an operator needs when a
    # migration works (it raises when it does not).
    numeric = level if isinstance(level, int) else logging.getLevelNamesMapping()[level.upper()]
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
