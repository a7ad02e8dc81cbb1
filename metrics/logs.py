"""structlog setup and secret redaction.

:func:`configure_logging` routes structlog and the standard library's ``logging`` (uvicorn,
SQLAlchemy, Dramatiq) through one handler, so every line has the same shape: JSON in production,
coloured key/value text in development. Both paths merge structlog's contextvars
(``request_id``, ``message_id``, ``actor_name``, …) and pass :func:`redact` just before rendering.

Redaction masks the value of any key that names a secret (``token``, ``authorization``, ``pin``,
``card_number``, ``cardNumber``, ``secondaryCardNumber``, ``password``, ``secret`` and their
variants such as ``access_token`` or ``card-pin``), in nested dicts, lists and header pairs too,
and masks ``Bearer <token>`` anywhere in a string. It is a safety net: code still must not log
tokens, PINs, card numbers or SCIM payloads.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Final, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED: Final = "***"
_MAX_DEPTH: Final = 8
_PAIR: Final = 2  # a (name, value) pair, e.g. one HTTP header

#: Key names (lower case, without ``_``, ``-``, ``.`` and spaces) whose values are secret.
SENSITIVE_KEYS: Final = frozenset(
    {
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "credentials",
        "password",
        "passwd",
        "secret",
        "token",
        "pin",
        "cardnumber",
        "secondarycardnumber",
        "primarycardnumber",
        "cardno",
        "card",
        "apikey",
    }
)
#: Normalised key endings that also mark a secret, e.g. ``access_token``, ``client_secret``,
#: ``card-pin``, ``newPassword``.
SENSITIVE_SUFFIXES: Final = ("token", "secret", "password", "passwd", "pin", "cardnumber", "apikey")

_BEARER: Final = re.compile(r"(?i)\b(bearer)\s+[^\s,;\"']+")
#: printsync Secret Tokens (``pst_`` + 43 characters) and long digit runs (card numbers, PINs).
_SECRET_TEXT: Final = re.compile(r"\bpst_[A-Za-z0-9_-]{16,}|\b\d{6,}\b")
_KEY_SEPARATORS: Final = str.maketrans("", "", "_-. ")


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True if a value stored under ``key`` must not be logged."""
    normalized = key.lower().translate(_KEY_SEPARATORS)
    return normalized in SENSITIVE_KEYS or normalized.endswith(SENSITIVE_SUFFIXES)


def _mask(value: object) -> object:
    return value if value is None or value == "" else REDACTED


def _names_secret(key: object) -> bool:
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    return isinstance(key, str) and is_sensitive_key(key)


def redact_value(value: object, depth: int = 0) -> object:
    """A copy of ``value`` with secrets masked (see the module docstring)."""
    if isinstance(value, str):
        if "earer" in value or "EARER" in value:
            value = _BEARER.sub(r"\1 " + REDACTED, value)
        value = _SECRET_TEXT.sub(REDACTED, value)
    elif depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            value = {
                key: _mask(item) if _names_secret(key) else redact_value(item, depth + 1)
                for key, item in value.items()
            }
        elif isinstance(value, tuple):
            if len(value) == _PAIR and _names_secret(value[0]):
                value = (value[0], _mask(value[1]))
            else:
                value = tuple(redact_value(item, depth + 1) for item in value)
        elif isinstance(value, list):
            value = [redact_value(item, depth + 1) for item in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in the event dict."""
    for key, value in event_dict.items():
        if is_sensitive_key(key):
            event_dict[key] = _mask(value)
        else:
            event_dict[key] = redact_value(value)
    return event_dict


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
