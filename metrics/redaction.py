"""Secrets masked before anything is written down: log records and stored error texts.

Two uses, one set of rules:

- :func:`redact` (a structlog processor) and :func:`redact_value` mask the value of any key that
  names a secret (``token``, ``authorization``, ``pin``, ``card_number``, ``cardNumber``,
  ``secondaryCardNumber``, ``password``, ``secret`` and their variants such as ``access_token``
  or ``card-pin``), in nested dicts, lists and header pairs too, and mask ``Bearer <token>``,
  printsync Secret Tokens and long digit runs anywhere in a string.
- :func:`clean_error` makes an error text fit to be stored (the provisioning log, a failure
  digest) or logged: the above, plus ``pin=…``/``card…=…``/``password=…`` pairs and card-like
  digit groups masked, on one line, at most ``MAX_ERROR_CHARS`` characters.

Both are safety nets: code still must not log or store tokens, PINs, card numbers or SCIM
payloads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final

from structlog.typing import EventDict, WrappedLogger

REDACTED: Final = "***"
MAX_ERROR_CHARS: Final = 500
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

#: ``pin=…``, ``card-number: …``, ``password="…"`` and the like, in free text.
_SECRET_PAIR: Final = re.compile(
    r"(?i)\b((?:[\w-]*(?:pin|password|passwd|secret|token|card[\w-]*))\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_PRINTSYNC_TOKEN: Final = re.compile(r"\bpst_[A-Za-z0-9_-]{8,}")
_LONG_NUMBER: Final = re.compile(r"(?<![\w.])\d[\d -]{6,}\d(?![\w.])")


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


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace runs made single spaces, cut to ``limit`` characters (the
    last three then ``...``)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def clean_error(text: str | None) -> str | None:
    """An error text fit to be stored: secrets masked, one line, at most 500 characters."""
    if text is None:
        return None
    masked = redact_value(text)
    assert isinstance(masked, str)
    masked = _SECRET_PAIR.sub(r"\1***", masked)
    masked = _PRINTSYNC_TOKEN.sub("pst_***", masked)
    masked = _LONG_NUMBER.sub(_mask_digits, masked)
    return one_line(masked, MAX_ERROR_CHARS) or None


def _mask_digits(match: re.Match[str]) -> str:
    # Eight or more digits (possibly grouped) look like a card number; shorter runs stay.
    digits = sum(char.isdigit() for char in match.group(0))
    return REDACTED if digits >= 8 else match.group(0)
