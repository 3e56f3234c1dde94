"""Structured logs: one JSON object per line, ids and codes only.

Log records never carry message content, justifications or child identifiers.
Call sites pass ids, codes and agency names in ``extra={"fields": {...}}``; a
failure is logged with its exception type and code locations only, never its
message (an exception message can quote input).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "exception_fields"]


def exception_fields(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | None,
) -> dict[str, Any]:
    """The exception type and the code locations of its traceback, without its message."""
    if not exc_info or exc_info[0] is None:
        return {}
    kind, _, tb = exc_info
    frames = [
        f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in traceback.extract_tb(tb)
    ]
    return {"error": kind.__name__, "where": frames[-8:]}


class JsonFormatter(logging.Formatter):
    """Format a record as a JSON line with its ``fields`` merged in."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``; exception text is replaced by :func:`exception_fields`."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry.update(exception_fields(record.exc_info))  # type: ignore[arg-type]
        return json.dumps(entry, default=str, separators=(",", ":"))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        extra = " ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        text = f"{record.levelname.lower():7} {record.name}: {record.getMessage()} {extra}".rstrip()
        if record.exc_info:
            info = exception_fields(record.exc_info)  # type: ignore[arg-type]
            text += f" error={info.get('error')} where={'|'.join(info.get('where', []))}"
        return text


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send the relay's logs to standard error in ``fmt`` (``json`` or ``text``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log carries client addresses: the relay logs requests itself.
    logging.getLogger("aiohttp.access").disabled = True
