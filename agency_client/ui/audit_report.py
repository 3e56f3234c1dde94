"""The verified-log part of the auditor's page: what ``agency audit`` checks of the relay's log.

When the agency client has the auditor's log verification (:mod:`agency_client.audit`
downloads a period of the relay's transparency log, :mod:`agency_client.audit_verify`
checks it), the page shows its report: tree heads and the rebuilt tree, every logged
header's signature and basis, receipts, and timeliness rebuilt from the log. When the
relay signs no tree heads, or the modules are not there, the page says why and keeps to
the per-header checks of :meth:`AgencyClient.audit`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from agency_client.client import AgencyClient
from schemas.problems import ExchangeError

__all__ = ["LogReport", "verified_log_report"]


@dataclass(frozen=True, slots=True)
class LogReport:
    """The log verification's outcome for the page."""

    available: bool
    ok: bool = False
    summary: dict[str, Any] | None = None
    failures: tuple[dict[str, Any], ...] = ()
    timeliness: dict[str, Any] | None = None
    leaves: int = 0
    reason: str | None = None


async def verified_log_report(client: AgencyClient) -> LogReport:
    """Download and verify the relay's log as the auditor (never raises)."""
    try:
        download = importlib.import_module("agency_client.audit").download
        verify = importlib.import_module("agency_client.audit_verify").verify_material
    except (ImportError, AttributeError):
        return LogReport(False, reason="this version of the agency client cannot verify the log")
    try:
        directory = await client.directory(refresh=True)
        material = await download(client.transport.call, directory)
        report = verify(material, identity=client.identity, now=client.now())
    except ExchangeError as exc:
        return LogReport(False, reason=f"the exchange's log could not be checked ({exc.code})")
    except Exception as exc:  # a report this page does not understand: say so, do not fail
        return LogReport(False, reason=f"the log check failed ({exc.__class__.__name__})")
    if not isinstance(report, dict):
        return LogReport(False, reason="the log check gave no report")
    log = report.get("log") if isinstance(report.get("log"), dict) else {}
    timeliness = report.get("timeliness")
    return LogReport(
        available=True,
        ok=bool(report.get("ok")),
        summary=dict(report.get("summary") or {}),
        failures=tuple(f for f in report.get("failures") or () if isinstance(f, dict)),
        timeliness={k: v for k, v in (timeliness or {}).items() if isinstance(v, int | float | str)}
        if isinstance(timeliness, dict)
        else None,
        leaves=int(log.get("leaves", 0)) if isinstance(log, dict) else 0,
    )
