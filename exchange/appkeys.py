"""Typed keys for what the app and each request carry (no module-level singletons)."""

from __future__ import annotations

from aiohttp import web

from exchange.auth import Authenticator, Caller, Clock
from exchange.database import Database
from exchange.limits import InFlight, TokenBucketLimiter
from exchange.metrics import RelayMetrics
from exchange.push import Notifier
from exchange.service import RelayService
from exchange.settings import Settings
from exchange.store import RelayStore, Writer

__all__ = [
    "AUTHENTICATOR",
    "BODY",
    "CALLER",
    "CLOCK",
    "DATABASE",
    "IN_FLIGHT",
    "LIMITER",
    "METRICS",
    "NOTIFIER",
    "PUBLIC_ROUTES",
    "SERVICE",
    "SETTINGS",
    "STORE",
    "WRITER",
]

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS = web.AppKey("metrics", RelayMetrics)
NOTIFIER = web.AppKey("notifier", Notifier)
LIMITER = web.AppKey("limiter", TokenBucketLimiter)
IN_FLIGHT = web.AppKey("in_flight", InFlight)
#: Names of routes served without a request signature.
PUBLIC_ROUTES: web.AppKey[frozenset[str]] = web.AppKey("public_routes")
# Set by the database cleanup context while the app runs.
DATABASE = web.AppKey("database", Database)
WRITER = web.AppKey("writer", Writer)
STORE = web.AppKey("store", RelayStore)
SERVICE = web.AppKey("service", RelayService)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)

#: The authenticated agency of a signed request.
CALLER = web.RequestKey("caller", Caller)
#: The request body, read once by the authentication middleware.
BODY = web.RequestKey("body", bytes)
