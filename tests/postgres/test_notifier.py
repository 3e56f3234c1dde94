"""The PostgreSQL push notifier on its own: fan-out, reconnection, no lost wake-ups.

Two notifiers on one database stand for two relay processes. Their connections are
cut from the server side (``pg_terminate_backend``, what a restart does to them),
and one is kept from reconnecting for a while, without touching the server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from exchange.database import PoolOptions, asyncpg_connect_kwargs, is_unavailable
from exchange.push import PostgresNotifier
from tests.postgres.cluster import admin_dsn, eventually

WAIT = 10.0


class Gate:
    """A connect function that can be made to fail, like a server that is down."""

    def __init__(self, database_url: str, name: str) -> None:
        options = PoolOptions(application_name=name, connect_timeout=3)
        self.kwargs = asyncpg_connect_kwargs(database_url, options)
        self.open = True
        self.attempts = 0

    async def __call__(self) -> Any:
        self.attempts += 1
        if not self.open:
            raise ConnectionRefusedError("the gate is closed")
        return await asyncpg.connect(**self.kwargs)


@contextlib.asynccontextmanager
async def _notifier(gate: Gate) -> AsyncIterator[PostgresNotifier]:
    notifier = PostgresNotifier(gate, reconnect_interval=0.05, check_interval=30)
    await notifier.start()
    try:
        await asyncio.wait_for(notifier.listening.wait(), WAIT)
        yield notifier
    finally:
        await notifier.close()
        await notifier.stop()


async def _terminate(database_url: str, application_name: str) -> int:
    admin = await asyncpg.connect(admin_dsn(database_url))
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
        return len(rows)
    finally:
        await admin.close()


async def test_wake_ups_cross_notifiers_and_survive_reconnects(database_url: str) -> None:
    gate_a, gate_b = Gate(database_url, "notifier-a"), Gate(database_url, "notifier-b")
    async with _notifier(gate_a) as a, _notifier(gate_b) as b:
        on_a, on_b = a.subscribe("oakfield-primary"), b.subscribe("oakfield-primary")
        other_on_b = b.subscribe("northshire-mash")

        # A publish wakes the publisher's own streams at once and the other's via NOTIFY.
        await a.publish(["oakfield-primary"])
        assert await on_a.wait(WAIT)
        assert await on_b.wait(WAIT)
        assert not other_on_b.pending

        # B's connection is cut and B cannot reconnect (the server is "down" for B).
        gate_b.open = False
        assert await _terminate(database_url, "notifier-b") == 1
        await eventually(
            lambda: _true_if(not b.listening.is_set()), timeout=WAIT, what="B to notice"
        )
        # Meanwhile A publishes: B is not listening, so this NOTIFY is lost to B...
        await a.publish(["northshire-mash"])
        # ...and B publishes: it cannot send, so the wake-up waits in B's queue.
        await b.publish(["oakfield-primary"])
        assert await on_b.wait(WAIT)  # B's own stream, woken locally
        await eventually(lambda: _true_if(gate_b.attempts >= 3), timeout=WAIT, what="B to retry")
        assert not on_a.pending

        # B reconnects: every stream on B is woken to re-read (the lost NOTIFY is
        # covered), and B's queued wake-up reaches A.
        gate_b.open = True
        assert await other_on_b.wait(WAIT)
        assert await on_a.wait(WAIT)
        assert b.connections == 2

        # A's connection is cut too; it reconnects by itself and fan-out works again.
        assert await _terminate(database_url, "notifier-a") == 1
        await eventually(lambda: _true_if(a.connections == 2), timeout=WAIT, what="A back")
        assert await on_a.wait(WAIT)  # woken by A's own reconnect
        await b.publish(["oakfield-primary"])
        assert await on_a.wait(WAIT)


async def _true_if(condition: bool) -> bool | None:
    return True if condition else None


def test_unavailable_errors_are_told_from_bugs() -> None:
    """Connection failures and timeouts are 503s; a bad statement is not."""

    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    assert is_unavailable(ConnectionRefusedError())
    assert is_unavailable(TimeoutError())
    assert is_unavailable(PgError("57P01"))  # admin shutdown
    assert is_unavailable(PgError("57P03"))  # cannot connect now (starting up)
    assert is_unavailable(PgError("57014"))  # statement timeout
    assert is_unavailable(PgError("08006"))  # connection failure
    assert is_unavailable(PgError("53300"))  # too many connections
    assert is_unavailable(PgError("40P01"))  # deadlock
    assert not is_unavailable(PgError("42P01"))  # undefined table: a bug
    assert not is_unavailable(PgError("23505"))  # unique violation: handled elsewhere
    assert not is_unavailable(ValueError("bug"))
