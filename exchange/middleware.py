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
from keys.http_signatures import check_content_digest
from schemas.problems import (
    PROBLEM_CONTENT_TYPE,
    ExchangeError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServiceUnavailable,
)

__all__ = ["auth_middleware", "problem_middleware", "problem_response"]

logger = logging.getLogger("exchange.http")

_STREAMING_ROUTES = frozenset({"get_events"})
#: Not counted against the in-flight cap: push streams (capped separately) and the cheap
#: liveness and metrics probes, which must answer even when the relay is at its cap.
_UNCAPPED_ROUTES = _STREAMING_ROUTES | {"health", "metrics"}


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
    response = _respond(exc.to_problem(instance=request.rel_url.raw_path), exc.status, headers)
    if exc.status == 408:
        response.force_close()  # the rest of a slow body is not waited for
    return response


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
    # Push streams (capped separately) and the probes do not count here.
    streaming = route in _UNCAPPED_ROUTES
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


async def _read_body(request: web.Request) -> bytes:
    """The request body, refused when too large (413) or too slow to arrive (408)."""
    settings = request.app[SETTINGS]
    too_large = PayloadTooLarge(
        f"request bodies are limited to {settings.max_envelope_bytes} bytes"
    )
    length = request.content_length
    if length is not None and length > settings.max_envelope_bytes:
        raise too_large
    try:
        async with asyncio.timeout(settings.request_body_timeout.total_seconds()):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout("the request body did not arrive in time") from None
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate from the headers (except on public routes), rate limit, refuse replays.

    Only then is the body read (bounded in size and time) and checked against its
    signed ``Content-Digest``: a client without a valid signature never gets the relay
    to wait for, or hold, its body.
    """
    name = request.match_info.route.name
    app = request.app
    if len(request.query) != len(set(request.query.keys())):
        raise InvalidRequest("a query parameter is given more than once")
    if name is None or name in app[PUBLIC_ROUTES]:
        if name is not None and request.can_read_body:
            await _read_body(request)  # kept by aiohttp for the view's request.read()
        return await handler(request)
    settings = app[SETTINGS]
    in_flight = app[IN_FLIGHT]
    counted: str | None = None  # the agency whose in-flight count this request holds
    try:
        try:
            length = request.content_length
            if length is not None and length > settings.max_envelope_bytes:
                raise PayloadTooLarge(
                    f"request bodies are limited to {settings.max_envelope_bytes} bytes"
                )
            authenticator = app[AUTHENTICATOR]
            caller, info, digest_field = authenticator.verify_headers(
                method=request.method,
                path=request.rel_url.raw_path,
                query=request.rel_url.raw_query_string,
                headers=request.headers,
            )
            wait = app[LIMITER].take(caller.agency_id)
            if wait is not None:
                raise RateLimited(
                    "this agency is sending requests too fast",
                    extensions={"retry_after": TokenBucketLimiter.retry_after(wait)},
                )
            if name not in _STREAMING_ROUTES:  # push streams have their own caps
                if not in_flight.enter_key(caller.agency_id):
                    raise RateLimited(
                        "this agency has too many requests in progress",
                        extensions={"retry_after": 1},
                    )
                counted = caller.agency_id
            await authenticator.check_replay(info)
            body = await _read_body(request)
            check_content_digest(digest_field, body)
        except ExchangeError as exc:
            app[METRICS].auth_failures.labels(exc.code).inc()
            raise
        request[CALLER] = caller
        request[BODY] = body
        return await handler(request)
    finally:
        if counted is not None:
            in_flight.leave_key(counted)
