"""The app factory: settings in, a ready :class:`aiohttp.web.Application` out.

Everything the app needs lives under typed keys (``exchange.appkeys``). The
database engine, the single writer, the store, the directory and the service
are created in one cleanup context and disposed of in reverse order; the
background sweeper runs in a second one. The push notifier (in-process, or
PostgreSQL ``LISTEN/NOTIFY`` when several relay processes share one database)
starts first and stops last.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web

from exchange.appkeys import (
    AUTHENTICATOR,
    CLOCK,
    DATABASE,
    IN_FLIGHT,
    LIMITER,
    METRICS,
    NOTIFIER,
    PUBLIC_ROUTES,
    SERVICE,
    SETTINGS,
    STORE,
    WRITER,
)
from exchange.auth import Authenticator, Clock
from exchange.database import PoolOptions, asyncpg_connect_kwargs, head_revision, open_database
from exchange.directory_cache import DirectoryCache
from exchange.limits import InFlight, TokenBucketLimiter
from exchange.log import TransparencyLog
from exchange.metrics import RelayMetrics
from exchange.middleware import auth_middleware, problem_middleware
from exchange.push import LocalNotifier, Notifier, PostgresNotifier
from exchange.retention import sweeper_context
from exchange.routes import public_route_names, setup_routes
from exchange.service import RelayService
from exchange.settings import Settings
from exchange.store import RelayStore, Writer
from exchange.threads import ThreadTracker
from schemas.problems import ConfigurationError

__all__ = ["create_app", "make_notifier", "pool_options", "utc_now"]

logger = logging.getLogger("exchange.app")


def utc_now() -> datetime:
    """The real clock: now, as an aware UTC datetime."""
    return datetime.now(UTC)


def pool_options(settings: Settings) -> PoolOptions:
    """The connection pool and timeouts ``settings`` ask for (PostgreSQL)."""
    return PoolOptions(
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout.total_seconds(),
        pool_recycle=settings.database_pool_recycle.total_seconds(),
        pre_ping=settings.database_pool_pre_ping,
        connect_timeout=settings.database_connect_timeout.total_seconds(),
        statement_timeout=settings.database_statement_timeout.total_seconds(),
        command_timeout=settings.database_command_timeout.total_seconds(),
        retry_after=settings.database_retry_after,
        application_name=f"exchange {settings.relay_id}",
    )


def make_notifier(settings: Settings) -> Notifier:
    """In-process wake-ups, or PostgreSQL ``LISTEN/NOTIFY`` across relay processes."""
    if not settings.uses_postgres_notifier:
        return LocalNotifier()
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - the postgres extra is missing
        raise ConfigurationError(
            "PostgreSQL needs the postgres extra: pip install 'safeguarding-exchange[postgres]'"
        ) from None
    options = replace(pool_options(settings), application_name=f"exchange {settings.relay_id} push")
    kwargs = asyncpg_connect_kwargs(settings.database_url, options)

    async def connect() -> object:
        return await asyncpg.connect(**kwargs)

    return PostgresNotifier(
        connect,
        reconnect_interval=settings.push_reconnect_interval.total_seconds(),
        check_interval=settings.push_heartbeat.total_seconds(),
        command_timeout=settings.database_command_timeout.total_seconds(),
    )


async def notifier_context(app: web.Application) -> AsyncIterator[None]:
    """Run the push notifier's background work for the app's lifetime."""
    notifier = app[NOTIFIER]
    await notifier.start()
    try:
        yield
    finally:
        await notifier.stop()


async def database_context(app: web.Application) -> AsyncIterator[None]:
    """Engine, migrations, writer, store, directory and service for the app's lifetime."""
    settings = app[SETTINGS]
    database = open_database(settings.database_url, pool_options(settings))
    writer: Writer | None = None
    log: TransparencyLog | None = None
    try:
        if settings.migrate_on_start:
            await database.migrate()
        elif await database.current_revision() != head_revision():
            raise ConfigurationError("the database schema is not current: run `exchange migrate`")
        writer = Writer(database, batch_max=settings.write_batch_max)
        writer.start()
        store = RelayStore(database, writer)
        directory = DirectoryCache(settings.root_public_key, store)
        await directory.load()
        log = TransparencyLog(settings=settings, store=store, directory=directory, clock=app[CLOCK])
        await log.load_key()
        log.start()
        service = RelayService(
            settings=settings,
            store=store,
            directory=directory,
            notifier=app[NOTIFIER],
            clock=app[CLOCK],
            metrics=app[METRICS],
            tracker=ThreadTracker(settings),
            log=log,
        )
        app[DATABASE] = database
        app[WRITER] = writer
        app[STORE] = store
        app[SERVICE] = service
        app[AUTHENTICATOR] = Authenticator(
            directory=directory, store=store, clock=app[CLOCK], clock_skew=settings.clock_skew
        )
        app[METRICS].track_queue(lambda: float(writer.depth) if writer else 0.0)
        notifier = app[NOTIFIER]
        app[METRICS].track_streams(lambda: float(notifier.count()))
        logger.info(
            "relay started",
            extra={"fields": {"relay": settings.relay_id, "sqlite": settings.is_sqlite}},
        )
        yield
    finally:
        if log is not None:
            await log.stop()
        if writer is not None:
            await writer.stop()
        await database.dispose()


async def _close_streams(app: web.Application) -> None:
    await app[NOTIFIER].close()


def create_app(
    settings: Settings, *, clock: Clock | None = None, notifier: Notifier | None = None
) -> web.Application:
    """Build the relay app. ``clock`` (default: real UTC time) is injectable for tests."""
    app = web.Application(
        middlewares=[problem_middleware, auth_middleware],
        client_max_size=settings.max_envelope_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or utc_now
    app[METRICS] = RelayMetrics()
    app[NOTIFIER] = notifier or make_notifier(settings)
    app[LIMITER] = TokenBucketLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app[IN_FLIGHT] = InFlight(
        settings.max_concurrent_requests, settings.max_concurrent_requests_per_agency
    )
    app[PUBLIC_ROUTES] = public_route_names()
    setup_routes(app)
    app.cleanup_ctx.append(notifier_context)
    app.cleanup_ctx.append(database_context)
    app.cleanup_ctx.append(sweeper_context)
    app.on_shutdown.append(_close_streams)
    return app
