"""The OpenAPI 3.1 document, generated from the routes table."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from schemas.problems import PROBLEM_BASE, PROBLEM_CONTENT_TYPE, ExchangeError

__all__ = ["build_openapi"]

_PARAM = re.compile(r"{(\w+)}")

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable, `type` is its URI.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "findings": {"type": "array", "items": {"type": "object"}},
        "policy_version": {"type": "string"},
        "retry_after": {"type": "integer"},
    },
}


def _problem_codes() -> list[str]:
    codes: set[str] = set()
    stack: list[type[ExchangeError]] = [ExchangeError]
    while stack:
        cls = stack.pop()
        codes.add(cls.code)
        stack.extend(cls.__subclasses__())
    return sorted(codes)


def _query_schema(query: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": query.type}
    if query.minimum is not None:
        schema["minimum"] = query.minimum
    if query.maximum is not None:
        schema["maximum"] = query.maximum
    if query.enum is not None:
        schema["enum"] = list(query.enum)
    return schema


#: Routes the in-flight cap does not apply to (middleware._UNCAPPED_ROUTES): never 503.
_UNCAPPED = frozenset({"health", "metrics", "get_events"})


def _generic_responses(route: Any) -> dict[int, str]:
    """What an operation of its kind can answer besides its own list (its own list wins)."""
    generic: dict[int, str] = {}
    if route.name not in _UNCAPPED:
        generic[503] = "The relay is at its request limit, or its database is unavailable."
    if route.query or route.request_type is not None:
        generic[400] = "A malformed parameter or body."
    if route.request_type is not None:
        generic[408] = "The body did not arrive in time."
        generic[413] = "The body is too large."
    if not route.public:
        generic[401] = "No, bad, replayed or stale request signature."
        generic[403] = "The signer's certificate is unknown, expired or revoked, or not allowed."
        generic[429] = "Rate limited, or too many requests in progress; see Retry-After."
    return generic


def build_openapi(app: web.Application | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the relay API, one operation per route."""
    from exchange.routes import ROUTES

    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(route.path)
        ]
        parameters += [
            {
                "name": q.name,
                "in": "query",
                "required": q.required,
                "schema": _query_schema(q),
                "description": q.description,
            }
            for q in route.query
        ]
        responses: dict[str, Any] = {}
        for status, description in sorted({**_generic_responses(route), **route.responses}.items()):
            if status < 400:
                responses[str(status)] = {
                    "description": description,
                    "content": {route.response_type: {"schema": {}}},
                }
            else:
                responses[str(status)] = {
                    "description": description,
                    "content": {
                        PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
        responses["default"] = {
            "description": "A problem.",
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": responses,
        }
        if parameters:
            operation["parameters"] = parameters
        if route.request_type is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {route.request_type: {"schema": {}}},
            }
        operation["security"] = [] if route.public else [{"httpMessageSignature": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Safeguarding exchange relay",
            "version": "1",
            "description": (
                "Content-blind store-and-forward relay for sealed safeguarding envelopes. "
                "See docs/api.md."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": _PROBLEM_SCHEMA},
            "securitySchemes": {
                "httpMessageSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Signature",
                    "description": (
                        'RFC 9421 signature "sig1", alg ed25519, covering "@method" "@path" '
                        '"@query" "content-digest" with created, nonce and keyid '
                        "(the agency's certificate id); also send Signature-Input and "
                        "Content-Digest."
                    ),
                }
            },
        },
        "x-problem-types": {code: PROBLEM_BASE + code for code in _problem_codes()},
    }
