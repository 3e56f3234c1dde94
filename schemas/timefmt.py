"""One wire form for instants: RFC 3339 UTC with a ``Z`` and whole seconds.

Signed structures must encode the same instant the same way on every side,
so this is the only place that formats or parses times.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from schemas.problems import InvalidEnvelope

__all__ = ["format_time", "parse_time", "utc"]

_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime; naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Format as ``YYYY-MM-DDTHH:MM:SSZ`` (microseconds are dropped)."""
    return utc(moment).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, *, field: str = "time") -> datetime:
    """Parse an RFC 3339 UTC instant ending in ``Z``; raise :class:`InvalidEnvelope` otherwise."""
    if not isinstance(text, str) or not _PATTERN.fullmatch(text):
        raise InvalidEnvelope(f"{field} must be an RFC 3339 UTC time like 2026-11-24T09:30:00Z")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise InvalidEnvelope(f"{field} is not a valid time") from None
