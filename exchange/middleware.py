"""Request middlewares: RFC 9457 problems, metrics and logs; signature authentication.

``problem_middleware`` (outermost) turns every failure into a problem document:
an :class:`~schemas.problems.ExchangeError` as itself, aiohttp's own HTTP errors
as the matching problem, anything unexpected as a bare 500 whose cause is logged
(type and code location only) and never shown. ``auth_middleware`` reads the
body once, verifies the request signature, applies the agency's rate limit and
refuses replays before any handler runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from exchange.appkeys import (
    AUTHENTICATOR,
    BODY,
    CALLER,
    IN_FLIGHT,
    LIMITER,
    METRICS,
    PUBLIC_ROUTES,
    SETTINGS,
)
from exchange.limits import TokenBucketLimiter
from schemas.problems import (
    PROBLEM_CONTENT_TYPE,
    ExchangeError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
)

__all__ = ["auth_middleware", "problem_middleware", "problem_response"]

logger = logging.getLogger("exchange.http")

_STREAMING_ROUTES = frozenset({"get_events"})


def _respond(
    problem: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        problem, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers or {}
    )


def problem_response(exc: ExchangeError, request: web.Request) -> web.Response:
    """Render ``exc`` as ``application/problem+json`` (with Retry-After when it has one)."""
    headers: dict[str, str] = {}
    retry = exc.extensions.get("retry_after")
    if isinstance(retry, int | float) and exc.status in (429, 503):
        headers["Retry-After"] = str(TokenBucketLimiter.retry_after(float(retry)))
    return _respond(exc.to_problem(instance=request.rel_url.raw_path), exc.status, headers)


def _internal_error() -> web.Response:
    problem = InternalError().to_problem()
    del problem["detail"]  # nothing about an unexpected failure goes to the client
    return _respond(problem, 500)


def _from_http(exc: web.HTTPException, request: web.Request) -> web.Response:
    """Map aiohttp's own errors (unknown route, method, oversize body) to problems."""
    if exc.status == 404:
        return problem_response(NotFound("no such resource"), request)
    if exc.status == 413:
        return problem_response(PayloadTooLarge("the request body is too large"), request)
    if exc.status == 405:
        response = problem_response(
            MethodNotAllowed("this resource does not support the method"), request
        )
        allow = exc.headers.get("Allow")
        if allow:
            response.headers["Allow"] = allow
        return response
    return problem_response(InvalidRequest(exc.reason or "bad request"), request)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Problems for every error; request metrics and one log line per request."""
    app = request.app
    metrics = app[METRICS]
    in_flight = app[IN_FLIGHT]
    route = request.match_info.route.name or "unmatched"
    started = time.perf_counter()
    status = 500
    code: str | None = None
    # Push streams are long-lived and capped separately: they do not count here.
    streaming = route in _STREAMING_ROUTES
    counted = True if streaming else in_flight.enter()
    metrics.in_flight.inc()
    try:
        if not counted:
            raise ServiceUnavailable(
                "the relay is at its request limit", extensions={"retry_after": 1}
            )
        response = await handler(request)
        status = response.status
        return response
    except ExchangeError as exc:
        status, code = exc.status, exc.code
        return problem_response(exc, request)
    except web.HTTPException as exc:
        if exc.status < 400:
            status = exc.status
            raise
        response = _from_http(exc, request)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away or the server is stopping
        raise
    except Exception:
        logger.error("unhandled error", exc_info=True, extra={"fields": {"route": route}})
        return _internal_error()
    finally:
        if counted and not streaming:
            in_flight.leave()
        metrics.in_flight.dec()
        elapsed = time.perf_counter() - started
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.latency.labels(route).observe(elapsed)
        caller = request.get(CALLER)
        fields: dict[str, Any] = {
            "route": route,
            "method": request.method,
            "status": status,
            "ms": round(elapsed * 1000, 2),
        }
        if caller is not None:
            fields["agency"] = caller.agency_id
        if code is not None:
            fields["code"] = code
        logger.info("request", extra={"fields": fields})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verify the request signature (except on public routes), rate limit, refuse replays."""
    name = request.match_info.route.name
    app = request.app
    if name is None or name in app[PUBLIC_ROUTES]:
        return await handler(request)
    settings = app[SETTINGS]
    try:
        length = request.content_length
        if length is not None and length > settings.max_envelope_bytes:
            raise PayloadTooLarge(
                f"request bodies are limited to {settings.max_envelope_bytes} bytes"
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(
                f"request bodies are limited to {settings.max_envelope_bytes} bytes"
            ) from None
        authenticator = app[AUTHENTICATOR]
        caller, info = authenticator.verify(
            method=request.method,
            path=request.rel_url.raw_path,
            query=request.rel_url.raw_query_string,
            headers=request.headers,
            body=body,
        )
        wait = app[LIMITER].take(caller.agency_id)
        if wait is not None:
            raise RateLimited(
                "this agency is sending requests too fast",
                extensions={"retry_after": TokenBucketLimiter.retry_after(wait)},
            )
        await authenticator.check_replay(info)
    except ExchangeError as exc:
        app[METRICS].auth_failures.labels(exc.code).inc()
        raise
    request[CALLER] = caller
    request[BODY] = body
    return await handler(request)
