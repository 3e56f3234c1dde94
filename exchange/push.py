"""Push wake-ups for connected clients (server-sent event streams).

Theory of operation
-------------------
A notification carries no data: it only says "agency X has something new". Each
stream, once woken, reads its inbox from the database after its cursor, so a lost
or duplicated wake-up can delay an item but never lose or invent one; a stream
also re-reads on every heartbeat, which bounds the delay of a lost wake-up.

:class:`LocalNotifier` fans out within one process (SQLite, or a single relay).

:class:`PostgresNotifier` fans out across every relay process sharing one
PostgreSQL database. It keeps **one dedicated connection** outside the pool (a
pooled connection cannot hold ``LISTEN``) and:

* on :meth:`~Notifier.publish` wakes local streams at once and queues the agency
  ids; a background task sends them as ``NOTIFY exchange_inbox, '<agency>'`` (one
  round trip per flush, however many agencies are queued). A queued id stays
  queued until a ``NOTIFY`` carrying it has been sent, across a reconnect;
* on a notification from another process, wakes that agency's local streams
  (its own notifications, recognised by the sending backend's pid, are skipped);
* when the connection drops (database restart, network) it reconnects every
  ``reconnect_interval`` and, once ``LISTEN`` is in place again, **wakes every
  local stream**, so each re-reads from its cursor whatever was committed while
  nobody was listening. A silent connection is noticed by a ``SELECT 1`` every
  ``check_interval``.

Publishing never waits for the database and never raises: a submission that has
committed is answered whatever the notifier's connection is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

__all__ = ["CHANNEL", "LocalNotifier", "Notifier", "PostgresNotifier", "Subscription"]

logger = logging.getLogger("exchange.push")

#: The PostgreSQL notification channel (per database, so one per partnership relay).
CHANNEL = "exchange_inbox"


class Subscription:
    """One stream's wake-up signal. Subscribe *before* the first read so nothing slips by."""

    def __init__(self, owner: LocalNotifier, agency: str) -> None:
        self.agency = agency
        self._owner = owner
        self._event = asyncio.Event()
        self.closed = False

    def wake(self) -> None:
        """Mark that the inbox may have changed."""
        self._event.set()

    @property
    def pending(self) -> bool:
        """Whether a wake-up has arrived that :meth:`wait` has not consumed yet."""
        return self._event.is_set()

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up; True if woken, False after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def close(self) -> None:
        """Stop receiving wake-ups and release any waiter."""
        if not self.closed:
            self.closed = True
            self._owner.discard(self)
            self._event.set()


class Notifier(Protocol):
    """What the service needs from a push fan-out."""

    async def start(self) -> None:
        """Begin any background work (the app calls this on start-up)."""
        ...

    async def stop(self) -> None:
        """End background work and release connections (after :meth:`close`)."""
        ...

    def subscribe(self, agency: str) -> Subscription:
        """Start receiving wake-ups for ``agency``."""
        ...

    async def publish(self, agencies: Iterable[str]) -> None:
        """Wake every stream of these agencies (after the commit that changed them)."""
        ...

    async def close(self) -> None:
        """Close every subscription (shutdown)."""
        ...

    def count(self, agency: str | None = None) -> int:
        """Open subscriptions, for one agency or in total."""
        ...


class LocalNotifier:
    """In-process fan-out of wake-ups."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}

    async def start(self) -> None:
        """Nothing to start in one process."""

    async def stop(self) -> None:
        """Nothing to stop in one process."""

    def subscribe(self, agency: str) -> Subscription:
        """Start receiving wake-ups for ``agency``."""
        subscription = Subscription(self, agency)
        self._subscriptions.setdefault(agency, set()).add(subscription)
        return subscription

    def discard(self, subscription: Subscription) -> None:
        """Forget a subscription (called by :meth:`Subscription.close`)."""
        group = self._subscriptions.get(subscription.agency)
        if group is not None:
            group.discard(subscription)
            if not group:
                del self._subscriptions[subscription.agency]

    def wake(self, agency: str) -> None:
        """Wake every local stream of ``agency``."""
        for subscription in list(self._subscriptions.get(agency, ())):
            subscription.wake()

    def wake_all(self) -> None:
        """Wake every local stream (each re-reads its inbox from its cursor)."""
        for group in list(self._subscriptions.values()):
            for subscription in list(group):
                subscription.wake()

    async def publish(self, agencies: Iterable[str]) -> None:
        """Wake every stream of these agencies."""
        for agency in set(agencies):
            self.wake(agency)

    async def close(self) -> None:
        """Close every subscription."""
        for group in list(self._subscriptions.values()):
            for subscription in list(group):
                subscription.close()

    def count(self, agency: str | None = None) -> int:
        """Open subscriptions, for one agency or in total."""
        if agency is not None:
            return len(self._subscriptions.get(agency, ()))
        return sum(len(group) for group in self._subscriptions.values())


class PostgresNotifier(LocalNotifier):
    """Wake-ups across relay processes through PostgreSQL ``LISTEN``/``NOTIFY``.

    ``connect`` opens the dedicated connection (``asyncpg.connect(**kwargs)``, see
    :func:`exchange.database.asyncpg_connect_kwargs`). See the module docstring.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        *,
        channel: str = CHANNEL,
        reconnect_interval: float = 1.0,
        check_interval: float = 15.0,
        command_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self._connect = connect
        self._channel = channel
        self._reconnect_interval = reconnect_interval
        self._check_interval = check_interval
        self._command_timeout = command_timeout
        self._pending: set[str] = set()
        self._flush = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pid: int | None = None
        #: Set while ``LISTEN`` is in place (tests and readiness may wait on it).
        self.listening = asyncio.Event()
        #: How many times ``LISTEN`` has been (re-)established.
        self.connections = 0

    async def start(self) -> None:
        """Open the ``LISTEN`` connection in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="relay-push-listener"
            )

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.listening.clear()

    async def publish(self, agencies: Iterable[str]) -> None:
        """Wake local streams now; send a ``NOTIFY`` for other processes (never blocks)."""
        wanted = set(agencies)
        if not wanted:
            return
        for agency in wanted:
            self.wake(agency)
        self._pending |= wanted
        self._flush.set()

    def _on_notification(self, _connection: Any, pid: int, _channel: str, payload: str) -> None:
        if pid != self._pid:
            self.wake(payload)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                connection = await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1:
                    logger.warning(
                        "push listener cannot connect; retrying",
                        extra={"fields": {"error": type(exc).__name__}},
                    )
                await asyncio.sleep(self._reconnect_interval)
                continue
            failures = 0
            try:
                await self._listen(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "push listener connection lost; reconnecting",
                    extra={"fields": {"error": type(exc).__name__}},
                )
            finally:
                self.listening.clear()
                self._pid = None
                with contextlib.suppress(Exception):
                    connection.terminate()
            await asyncio.sleep(self._reconnect_interval)

    async def _listen(self, connection: Any) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(self._channel, self._on_notification)
        self._pid = connection.get_server_pid()
        self.connections += 1
        self.listening.set()
        if self.connections > 1:
            logger.info("push listener reconnected", extra={"fields": {"channel": self._channel}})
        # Whatever was committed while nobody listened: every stream re-reads its inbox.
        self.wake_all()
        if self._pending:  # wake-ups that could not be sent before the connection dropped
            self._flush.set()
        while not lost.is_set():
            if not self._flush.is_set():
                await _first_of(self._flush, lost, timeout=self._check_interval)
            if lost.is_set() or connection.is_closed():
                raise ConnectionError("the LISTEN connection closed")
            if self._flush.is_set():
                self._flush.clear()
                batch = sorted(self._pending)
                if batch:
                    await connection.execute(
                        "SELECT pg_notify($1, agency) FROM unnest($2::text[]) AS agency",
                        self._channel,
                        batch,
                        timeout=self._command_timeout,
                    )
                    self._pending.difference_update(batch)
            else:  # idle: make sure the connection is still there
                await connection.fetchval("SELECT 1", timeout=self._command_timeout)


async def _first_of(first: asyncio.Event, second: asyncio.Event, *, timeout: float) -> None:
    """Wait until either event is set, or ``timeout`` seconds pass."""
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
