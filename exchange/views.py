"""Thin HTTP handlers: parse the request, call the service, render the answer.

No SQL, no crypto, no rules here. Errors are raised as
:class:`~schemas.problems.ExchangeError` and rendered by the problem middleware.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from exchange.appkeys import BODY, CALLER, METRICS, SERVICE
from exchange.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from exchange.openapi import build_openapi
from schemas.envelope import ENVELOPE_MEDIA_TYPE
from schemas.problems import InvalidEnvelope, InvalidRequest
from schemas.timefmt import parse_time

__all__ = [
    "audit_events",
    "audit_headers",
    "directory",
    "envelope",
    "envelope_header",
    "envelope_status",
    "events",
    "health",
    "inbox",
    "log_consistency",
    "log_frontier",
    "log_head",
    "log_heads",
    "log_inclusion",
    "log_leaves",
    "message_log",
    "metrics",
    "openapi",
    "overdue",
    "post_receipt",
    "publish_certificate",
    "publish_revocations",
    "ready",
    "submit",
    "thread",
    "threads",
    "well_known",
]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, sort_keys=True))


def _body_json(request: web.Request, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("the request body is not JSON") from None


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidRequest(f"{name} must be a non-negative integer")
    return int(text)


def _required_int(request: web.Request, name: str) -> int:
    value = _int(request, name, None)
    if value is None:
        raise InvalidRequest(f"{name} is required")
    return value


def _time_param(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        return parse_time(text, field=name)
    except InvalidEnvelope:
        raise InvalidRequest(f"{name} must look like 2026-11-24T09:30:00Z") from None


def _bool(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name)
    if text is None:
        return None
    if text in {"true", "1"}:
        return True
    if text in {"false", "0"}:
        return False
    raise InvalidRequest(f"{name} must be true or false")


# -- public ----------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return _json({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: the database answers."""
    return _json(await request.app[SERVICE].ready())


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics in the text format."""
    await request.app[SERVICE].refresh_gauges()
    return web.Response(
        body=request.app[METRICS].render(), headers={"Content-Type": METRICS_CONTENT_TYPE}
    )


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    return _json(build_openapi(request.app))


async def well_known(request: web.Request) -> web.Response:
    """Discovery: relay id, API version, root fingerprint, limits."""
    service = request.app[SERVICE]
    settings = service.settings
    return _json(
        {
            "relay": settings.relay_id,
            "api": "v1",
            "root": service.directory_view()["root"],
            "envelope_media_type": ENVELOPE_MEDIA_TYPE,
            "max_envelope_bytes": settings.max_envelope_bytes,
            "clock_skew_seconds": int(settings.clock_skew.total_seconds()),
            "signature": {"label": "sig1", "alg": "ed25519"},
        }
    )


async def directory(request: web.Request) -> web.Response:
    """The directory: root fingerprint, certificates and revocation list."""
    return _json(request.app[SERVICE].directory_view())


async def publish_certificate(request: web.Request) -> web.Response:
    """Publish a root-signed certificate (201 when new, 200 when already known)."""
    data = _body_json(request, await request.read())
    result, created = await request.app[SERVICE].publish_certificate(data)
    return _json(result, status=201 if created else 200)


async def publish_revocations(request: web.Request) -> web.Response:
    """Publish a root-signed revocation list (201 when new, 200 when already current)."""
    data = _body_json(request, await request.read())
    result, created = await request.app[SERVICE].publish_revocations(data)
    return _json(result, status=201 if created else 200)


# -- envelopes -------------------------------------------------------------------------------


async def submit(request: web.Request) -> web.Response:
    """Submit an envelope: 201 with the receipt once durably stored; 200 for a resubmission."""
    result = await request.app[SERVICE].submit(request[CALLER], request[BODY])
    response = _json(result.receipt, status=201 if result.created else 200)
    response.headers["Location"] = f"/v1/envelopes/{result.receipt['message_id']}"
    return response


async def envelope(request: web.Request) -> web.Response:
    """The envelope exactly as submitted."""
    wire = await request.app[SERVICE].get_envelope(request[CALLER], request.match_info["id"])
    return web.Response(body=wire, headers={"Content-Type": ENVELOPE_MEDIA_TYPE})


async def envelope_header(request: web.Request) -> web.Response:
    """Header, signature and delivery state (no body)."""
    return _json(await request.app[SERVICE].get_header(request[CALLER], request.match_info["id"]))


async def envelope_status(request: web.Request) -> web.Response:
    """Delivery state per recipient, with signed receipts."""
    return _json(await request.app[SERVICE].status(request[CALLER], request.match_info["id"]))


async def post_receipt(request: web.Request) -> web.Response:
    """A recipient's signed delivery receipt."""
    data = _body_json(request, request[BODY])
    result = await request.app[SERVICE].post_receipt(
        request[CALLER], request.match_info["id"], data
    )
    return _json(result, status=200 if result["duplicate"] else 201)


# -- inbox -----------------------------------------------------------------------------------


async def inbox(request: web.Request) -> web.Response:
    """Inbox items after cursor ``since``."""
    result = await request.app[SERVICE].inbox(
        request[CALLER],
        request.match_info["agency"],
        since=_int(request, "since", 0) or 0,
        limit=_int(request, "limit", None),
        mailbox=request.query.get("mailbox") or None,
    )
    return _json(result)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each inbox item as it arrives; resume with Last-Event-ID or since."""
    service = request.app[SERVICE]
    caller = request[CALLER]
    agency = request.match_info["agency"]
    last = request.headers.get("Last-Event-ID")
    if last is not None and last.strip().isascii() and last.strip().isdigit():
        since = int(last.strip())
    else:
        since = _int(request, "since", 0) or 0
    service.open_stream(caller, agency)  # refuse before the 200 is sent
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b": connected\n\n")
    try:
        async for batch in service.stream(caller, agency, since=since):
            if not batch:
                await response.write(b": keepalive\n\n")
                continue
            chunks = []
            for item in batch:
                data = json.dumps(item, sort_keys=True, separators=(",", ":"))
                chunks.append(f"id: {item['cursor']}\nevent: {item['type']}\ndata: {data}\n\n")
            await response.write("".join(chunks).encode())
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away; its cursor is wherever it got to
    return response


# -- threads ---------------------------------------------------------------------------------


async def threads(request: web.Request) -> web.Response:
    """Threads the caller takes part in, with state and deadlines."""
    result = await request.app[SERVICE].threads(
        request[CALLER],
        role=request.query.get("role"),
        open_only=_bool(request, "open"),
        overdue=_bool(request, "overdue"),
    )
    return _json(result)


async def thread(request: web.Request) -> web.Response:
    """One thread's state, deadlines and chronology (headers only)."""
    return _json(await request.app[SERVICE].thread(request[CALLER], request.match_info["thread"]))


async def overdue(request: web.Request) -> web.Response:
    """Overdue threads of this agency."""
    return _json(await request.app[SERVICE].overdue(request[CALLER], request.match_info["agency"]))


# -- audit -----------------------------------------------------------------------------------


async def audit_headers(request: web.Request) -> web.Response:
    """Every accepted header in order (auditor)."""
    result = await request.app[SERVICE].audit_headers(
        request[CALLER], since=_int(request, "since", 0) or 0, limit=_int(request, "limit", None)
    )
    return _json(result)


async def audit_events(request: web.Request) -> web.Response:
    """The relay's event log in order (auditor)."""
    result = await request.app[SERVICE].audit_events(
        request[CALLER], since=_int(request, "since", 0) or 0, limit=_int(request, "limit", None)
    )
    return _json(result)


# -- transparency log ------------------------------------------------------------------------


async def log_head(request: web.Request) -> web.Response:
    """The newest signed tree head (signed on demand when the log has grown)."""
    return _json(await request.app[SERVICE].log.head(request[CALLER]))


async def log_heads(request: web.Request) -> web.Response:
    """Signed tree heads larger than ``since``, oldest first (optionally within a period)."""
    result = await request.app[SERVICE].log.heads(
        request[CALLER],
        since=_int(request, "since", 0) or 0,
        limit=_int(request, "limit", None),
        not_before=_time_param(request, "from"),
        not_after=_time_param(request, "to"),
    )
    return _json(result)


async def log_leaves(request: web.Request) -> web.Response:
    """Log leaves from ``start`` (an agency sees the entries that concern it)."""
    result = await request.app[SERVICE].log.leaves(
        request[CALLER], start=_int(request, "start", 0) or 0, limit=_int(request, "limit", None)
    )
    return _json(result)


async def log_inclusion(request: web.Request) -> web.Response:
    """An inclusion proof for leaf ``index`` in the tree of ``size`` leaves."""
    result = await request.app[SERVICE].log.inclusion(
        request[CALLER], index=_required_int(request, "index"), size=_required_int(request, "size")
    )
    return _json(result)


async def log_consistency(request: web.Request) -> web.Response:
    """A consistency proof between tree sizes ``first`` and ``second``."""
    result = await request.app[SERVICE].log.consistency(
        request[CALLER],
        first=_required_int(request, "first"),
        second=_required_int(request, "second"),
    )
    return _json(result)


async def log_frontier(request: web.Request) -> web.Response:
    """The perfect subtrees that decompose the first ``size`` leaves."""
    result = await request.app[SERVICE].log.frontier(
        request[CALLER], size=_required_int(request, "size")
    )
    return _json(result)


async def message_log(request: web.Request) -> web.Response:
    """One message's log entries with inclusion proofs against the newest tree head."""
    return _json(await request.app[SERVICE].message_log(request[CALLER], request.match_info["id"]))
