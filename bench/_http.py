"""A minimal HTTP/1.1 keep-alive client for the load generators (loopback only).

Why not aiohttp's client: on this 2-core machine the load generator shares the CPU
with the server being measured, and aiohttp's client costs several times more per
request than this. Every server (ceiling, relay, mesh-sandbox) is driven by the same
client, so its cost is the same on every side of a comparison.

Handles what the three servers send: ``Content-Length`` bodies and chunked bodies
(server-sent event streams). No redirects, no TLS, no proxies, no pipelining: one
request at a time per connection; concurrency comes from many connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

__all__ = ["Connection", "HTTPError", "Response", "SSEEvent"]

#: Only loopback addresses are ever connected to.
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class HTTPError(Exception):
    """The connection broke or the server sent something this client cannot read."""


class _NoResponse(Exception):
    """The server closed the connection before sending any byte of a response."""


class _ClosedBeforeResponse(Exception):
    """A request got no response at all because the connection was closed."""


class Response:
    """Status, lower-cased headers and the body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class SSEEvent:
    """One server-sent event."""

    __slots__ = ("data", "event", "id")

    def __init__(self, id: str | None, event: str | None, data: str) -> None:
        self.id = id
        self.event = event
        self.data = data


class Connection:
    """One keep-alive connection to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        if host not in _LOOPBACK and not host.startswith("127."):
            raise ValueError("the benchmark only talks to loopback addresses")
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host_header = f"{host}:{port}".encode()
        self._requests = 0

    async def open(self) -> None:
        """Connect (idempotent)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=1 << 22
            )

    def close(self) -> None:
        """Close the socket."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        self._requests = 0

    def _head(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: " + self._host_header]
        for name, value in headers:
            lines.append(f"{name}: {value}".encode("latin-1"))
        lines.append(b"Content-Length: " + str(len(body)).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        assert self._reader is not None
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _NoResponse from None
            raise HTTPError(f"connection closed inside the response head: {exc!r}") from None
        except ConnectionError:
            raise _NoResponse from None
        except asyncio.LimitOverrunError as exc:
            raise HTTPError(f"response head too long: {exc!r}") from None
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HTTPError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    async def _read_chunk(self) -> bytes:
        """One chunk of a chunked body (b"" for the last)."""
        assert self._reader is not None
        size_line = await self._reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            await self._reader.readuntil(b"\r\n")  # no trailers expected
            return b""
        data = await self._reader.readexactly(size + 2)
        return data[:-2]

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """Send one request and read the whole response.

        A kept-alive connection the server has meanwhile closed (uvicorn closes idle ones
        after 5 s) fails before any response byte; that request is sent once more on a new
        connection, as HTTP clients do. Nothing else is retried.
        """
        headers = list(headers)
        reused = self._writer is not None and self._requests > 0
        try:
            return await self._request(method, target, headers, body)
        except _ClosedBeforeResponse:
            if not reused:
                raise HTTPError(
                    f"{method} {target}: connection closed before a response"
                ) from None
            self.close()
            try:
                return await self._request(method, target, headers, body)
            except _ClosedBeforeResponse:
                raise HTTPError(
                    f"{method} {target}: connection closed before a response"
                ) from None

    async def _request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Response:
        if self._writer is None:
            await self.open()
        self._requests += 1
        assert self._writer is not None
        assert self._reader is not None
        try:
            self._writer.write(self._head(method, target, headers, body))
            if body:
                self._writer.write(body)
            status, response_headers = await self._read_head()
        except (_NoResponse, ConnectionError):
            self.close()  # nothing of a response arrived: the caller may send it again
            raise _ClosedBeforeResponse from None
        except (HTTPError, OSError) as exc:
            self.close()
            raise HTTPError(f"{method} {target}: {exc!r}") from None
        try:
            if response_headers.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while chunk := await self._read_chunk():
                    parts.append(chunk)
                data = b"".join(parts)
            else:
                length = int(response_headers.get("content-length", "0"))
                data = await self._reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self.close()
            raise HTTPError(f"{method} {target}: response cut short: {exc!r}") from None
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, response_headers, data)

    async def events(
        self, target: str, headers: Iterable[tuple[str, str]] = ()
    ) -> AsyncIterator[SSEEvent | Response]:
        """GET a server-sent event stream; yield each event.

        First yields the :class:`Response` head (empty body) once the server answers; if
        it refused (status other than 200) that response carries the body and nothing follows.
        """
        if self._writer is None:
            await self.open()
        assert self._writer is not None
        assert self._reader is not None
        self._writer.write(self._head("GET", target, [("Accept", "text/event-stream"),
                                                      *headers], b""))
        try:
            status, response_headers = await self._read_head()
        except _NoResponse:
            raise HTTPError(f"GET {target}: connection closed before a response") from None
        chunked = response_headers.get("transfer-encoding", "").lower() == "chunked"
        if status != 200:
            if chunked:
                parts = []
                while chunk := await self._read_chunk():
                    parts.append(chunk)
                body = b"".join(parts)
            else:
                length = int(response_headers.get("content-length", "0"))
                body = await self._reader.readexactly(length) if length else b""
            yield Response(status, response_headers, body)
            return
        yield Response(status, response_headers, b"")
        buffer = b""
        while True:
            try:
                if chunked:
                    chunk = await self._read_chunk()
                else:
                    chunk = await self._reader.read(65536)
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                event_id = event = None
                data: list[str] = []
                for line in block.decode("utf-8").split("\n"):
                    if not line or line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "id":
                        event_id = value
                    elif name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                if data or event_id is not None:
                    yield SSEEvent(event_id, event, "\n".join(data))
