"""Push wake-ups for connected clients (server-sent event streams).

A notification carries no data: it only says "agency X has something new".
Each stream, once woken, reads its inbox from the database after its cursor, so
a lost or duplicated wake-up can delay an item but never lose or invent one.

:class:`LocalNotifier` fans out within one process. With several relay processes
on one PostgreSQL database, a notifier that sends ``NOTIFY relay_inbox, '<agency>'``
on :meth:`Notifier.publish` and calls :meth:`LocalNotifier.wake` from a ``LISTEN``
connection keeps the same interface (a later issue).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

__all__ = ["LocalNotifier", "Notifier", "Subscription"]


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
