"""Live updates: follow the relay's push stream and tell open pages something changed.

One background task runs :meth:`AgencyClient.watch` for the whole server: each pushed
message is fetched, verified, opened, recorded and receipted exactly as ``agency
watch`` does. Every time something arrives the feed's *revision* goes up and every
open page's event stream (``/events``) is told the new revision, with the thread it
concerns; the page then fetches itself again and swaps in the part that changed.
Nothing about the content crosses the event stream: a revision number and a thread id.

A page is rendered with the revision it shows, and an event stream begins by sending
the current revision, so a message that arrives between the two is not missed. When
the push connection is (re)established, queued messages in the outbox are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from agency_client.client import AgencyClient
from schemas.problems import ExchangeError

__all__ = ["LiveFeed", "Update"]

log = logging.getLogger("agency_client.ui")


@dataclass(frozen=True, slots=True)
class Update:
    """Something changed: the new revision and, for a message, its thread."""

    revision: int
    thread: str | None


class LiveFeed:
    """The server's one follower of the relay's push stream, and its listeners."""

    def __init__(self, client: AgencyClient) -> None:
        self._client = client
        self.revision = 0
        self.connected = False
        self.failed: str | None = None
        """The error code that stopped the feed for good, if one did."""
        self._listeners: set[asyncio.Queue[Update]] = set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_wanted = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def bump(self, thread: str | None = None) -> None:
        """Record a change (also called after this server sends something)."""
        self.revision += 1
        update = Update(self.revision, thread)
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(update)

    def listen(self) -> asyncio.Queue[Update]:
        """A queue that receives every later update (call :meth:`unlisten` when done)."""
        queue: asyncio.Queue[Update] = asyncio.Queue(maxsize=100)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[Update]) -> None:
        """Stop sending updates to ``queue``."""
        self._listeners.discard(queue)

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the server shuts down (event streams end then)."""
        return self._stop

    def start(self) -> None:
        """Start following the relay."""
        self._task = asyncio.create_task(self._run(), name="ui-live-feed")
        self._flusher = asyncio.create_task(self._flush_loop(), name="ui-outbox-flush")

    async def stop(self) -> None:
        """Stop following and wake every event stream so it ends (revision ``-1``).

        The watch is asked to stop (it closes its stream cleanly) and only cancelled if it
        has not finished within a few seconds.
        """
        self._stop.set()
        self._flush_wanted.set()
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(Update(-1, None))
        tasks = [t for t in (self._task, self._flusher) if t is not None]
        self._task = self._flusher = None
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=5)

    def _on_connect(self) -> None:
        self.connected = True
        self._flush_wanted.set()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                async with contextlib.aclosing(
                    self._client.watch(stop=self._stop, on_connect=self._on_connect)
                ) as stream:
                    async for result in stream:
                        thread = None
                        if result.message is not None:
                            thread = result.message.thread_id
                        elif result.error is not None:
                            log.warning(
                                "a pushed message could not be opened: %s", result.error.code
                            )
                        self.bump(thread)
            except ExchangeError as exc:
                # watch() retries by itself; what reaches here will not get better soon.
                self.connected = False
                self.failed = exc.code
                log.warning("live updates stopped: %s; retrying in a minute", exc.code)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=60)

    async def _flush_loop(self) -> None:
        while not self._stop.is_set():
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            if self._stop.is_set():
                return
            try:
                results = await self._client.flush_outbox()
            except ExchangeError as exc:
                log.info("outbox flush failed: %s", exc.code)
                continue
            if any(r.receipt is not None for r in results):
                self.bump()
