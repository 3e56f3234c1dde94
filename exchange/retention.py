"""Background maintenance, run as a cleanup context: retention, expiry, deadlines.

Every ``sweep_interval`` the relay deletes ciphertext whose retention has passed,
expires undelivered messages (NON_DELIVERY notice to the sender), escalates newly
overdue threads (OVERDUE notice to both sides, once per breach) and purges old
request nonces; every ``directory_refresh`` it picks up certificates and
revocations published through another process. Each step is one store
transaction and an event; a failed pass is logged and retried next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from exchange.appkeys import SERVICE, SETTINGS

__all__ = ["sweeper_context"]

logger = logging.getLogger("exchange.retention")


async def _every(seconds: float, name: str, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.error("background task failed", exc_info=True, extra={"fields": {"task": name}})


async def sweeper_context(app: web.Application) -> AsyncIterator[None]:
    """Start the sweeper and the directory refresher; cancel them on shutdown."""
    settings = app[SETTINGS]
    service = app[SERVICE]
    tasks: list[asyncio.Task[None]] = []
    if settings.run_sweeper:
        tasks.append(
            asyncio.create_task(
                _every(settings.sweep_interval.total_seconds(), "sweep", service.sweep),
                name="relay-sweeper",
            )
        )
        tasks.append(
            asyncio.create_task(
                _every(
                    settings.directory_refresh.total_seconds(),
                    "directory_refresh",
                    service.directory.refresh,
                ),
                name="relay-directory-refresh",
            )
        )
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
