"""A switchable HTTP/1.1 front for a relay on loopback: up, down, unavailable, losing answers.

Clients talk to the gate's fixed port; the gate forwards to wherever the relay serves
now (the relay may be killed and restarted behind it). The test switches its mode:

* ``up``: forward every request and answer (a push stream is piped as it comes);
* ``down``: the port refuses connections (the relay host is gone);
* ``unavailable``: answer every request ``503 service-unavailable`` (problem+json,
  ``Retry-After: 1``) without forwarding it;
* ``lose_answers(n)``: forward the next ``n`` envelope submissions, wait until the
  relay has answered (so the message is committed), then cut the connection without
  passing the answer on: the client cannot know its message was stored.

Every request the gate sees is recorded (method, path, SHA-256 of the body, what the
gate did with it), so a test can count how often each envelope was submitted.
Only ``Content-Length`` bodies are understood, which is all the agency client sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Gate", "Seen"]

_PROBLEM = json.dumps(
    {
        "type": "https://safeguarding-exchange.example/problems/service-unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "the relay is overloaded",
        "code": "service-unavailable",
    }
).encode()
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Seen:
    """One request that reached the gate."""

    method: str
    path: str
    body_sha256: str
    outcome: str  # forwarded | unavailable | answer-lost | upstream-down


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


class Gate:
    """The switchable front; ``upstream_port`` is asked on every new upstream connection."""

    def __init__(self, upstream_port: Callable[[], int]) -> None:
        self._upstream_port = upstream_port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.mode = "up"
        self.lose = 0
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        """The URL clients use."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Listen (on the same port as before, after :meth:`down`)."""
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def close(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _cut(self) -> None:
        for writer in list(self._clients):
            writer.transport.abort()
        self._clients.clear()

    async def up(self) -> None:
        """Forward everything."""
        self.mode = "up"
        if self._server is None:
            await self.start()

    async def down(self) -> None:
        """Refuse connections; open ones are cut."""
        self.mode = "down"
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._cut()

    async def unavailable(self) -> None:
        """Answer 503 to everything; open connections are cut so none bypasses the mode."""
        await self.up()
        self.mode = "unavailable"
        self._cut()

    async def lose_answers(self, count: int) -> None:
        """Forward the next ``count`` submissions but never pass their answers on."""
        await self.up()
        self.lose = count
        self._cut()

    def submissions(self, body_sha256: str) -> list[Seen]:
        """Every submission of the envelope whose bytes hash to ``body_sha256``."""
        return [
            s
            for s in self.seen
            if s.method == "POST" and s.path == "/v1/envelopes" and s.body_sha256 == body_sha256
        ]

    # -- the proxy ------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._clients.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await self._read_message(reader)
                if request is None:
                    return
                head, body = request
                method, path = head.split(b" ", 2)[:2]
                seen = (method.decode(), path.decode().split("?")[0])
                digest = hashlib.sha256(body).hexdigest()
                if self.mode == "unavailable":
                    self.seen.append(Seen(*seen, digest, "unavailable"))
                    writer.write(
                        b"HTTP/1.1 503 Service Unavailable\r\n"
                        b"Content-Type: application/problem+json\r\nRetry-After: 1\r\n"
                        b"Connection: close\r\n"
                        + f"Content-Length: {len(_PROBLEM)}\r\n\r\n".encode()
                        + _PROBLEM
                    )
                    await writer.drain()
                    return
                if upstream is None:
                    try:
                        upstream = await asyncio.open_connection("127.0.0.1", self._upstream_port())
                    except OSError:
                        self.seen.append(Seen(*seen, digest, "upstream-down"))
                        return  # the relay is down behind the gate: cut the client
                up_reader, up_writer = upstream
                up_writer.write(head + body)
                await up_writer.drain()
                losing = self.lose > 0 and seen == ("POST", "/v1/envelopes")
                response = await self._read_message(up_reader, stream_ok=True)
                if response is None:
                    self.seen.append(Seen(*seen, digest, "upstream-down"))
                    return
                if losing:
                    self.lose -= 1
                    self.seen.append(Seen(*seen, digest, "answer-lost"))
                    writer.transport.abort()
                    return
                self.seen.append(Seen(*seen, digest, "forwarded"))
                answer_head, answer_body = response
                writer.write(answer_head + answer_body)
                await writer.drain()
                if _content_length(answer_head) is None:
                    await self._pipe(up_reader, writer)  # a push stream: until it ends
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._clients.discard(writer)
            writer.transport.abort()
            if upstream is not None:
                upstream[1].transport.abort()
            self._tasks.discard(task)

    @staticmethod
    async def _read_message(
        reader: asyncio.StreamReader, *, stream_ok: bool = False
    ) -> tuple[bytes, bytes] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        if len(head) > _MAX_HEAD:
            raise ValueError("head too large")
        length = _content_length(head)
        if length is None:
            if stream_ok:
                return head, b""
            length = 0
        body = await reader.readexactly(length)
        return head, body

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            writer.write(chunk)
            await writer.drain()

    async def __aenter__(self) -> Gate:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.close()
