"""Timestamps as fixed-width ISO 8601 UTC text, the form every table stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime | None = None) -> str:
    """``2026-01-02T03:04:05.123456Z``: sorts as text in time order."""
    moment = now() if moment is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def later(seconds: float, moment: datetime | None = None) -> str:
    return stamp((now() if moment is None else moment) + timedelta(seconds=seconds))


def parse(text: str) -> datetime:
    """Read a stored stamp back."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
