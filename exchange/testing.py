"""An in-process relay on an ephemeral port, for this project's and partner agencies' tests.

    async with running_relay(settings) as base_url:
        ...  # talk to base_url ("http://127.0.0.1:<port>") with a real client

Use a fresh SQLite file per test (``sqlite+aiosqlite:///{tmp_path}/relay.db``) and
pin your test partnership's root in ``settings.root_public_key``. ``started_relay``
also yields the app, for tests that inject a clock or drive the sweeper by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from exchange.app import create_app
from exchange.appkeys import SERVICE
from exchange.auth import Clock
from exchange.service import RelayService
from exchange.settings import Settings

__all__ = ["RunningRelay", "running_relay", "started_relay"]


@dataclass(frozen=True)
class RunningRelay:
    """A relay serving on 127.0.0.1: its base URL and its app."""

    url: str
    app: web.Application

    @property
    def service(self) -> RelayService:
        """The relay's service (to run a sweep in a test, for example)."""
        return self.app[SERVICE]


@contextlib.asynccontextmanager
async def started_relay(
    settings: Settings, *, clock: Clock | None = None
) -> AsyncIterator[RunningRelay]:
    """Serve a relay on an ephemeral port of 127.0.0.1 until the block ends."""
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        sockets = runner.addresses
        host, port = sockets[0][:2]
        yield RunningRelay(url=f"http://{host}:{port}", app=app)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_relay(settings: Settings, *, clock: Clock | None = None) -> AsyncIterator[str]:
    """Serve a relay on an ephemeral port of 127.0.0.1; yield its base URL."""
    async with started_relay(settings, clock=clock) as relay:
        yield relay.url
