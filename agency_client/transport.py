"""The only module that talks HTTP: an aiohttp session that signs and retries.

Every request to a ``/v1/`` route that needs authentication is signed afresh on each
attempt (RFC 9421, :func:`keys.http_signatures.sign_request`: new ``created`` and
``nonce``, so a retry is never refused as a replay). Connection errors, timeouts and
HTTP 429/502/503/504 are retried with exponential backoff and full jitter, honouring
``Retry-After``; every request the client makes is repeatable (an envelope is always
resubmitted as the same bytes, and the relay answers a duplicate with the original
receipt). When the attempts run out on a connection failure the caller gets
:class:`~agency_client.errors.RelayUnreachable`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp
from yarl import URL

from agency_client import protocol
from agency_client.errors import RelayUnreachable
from agency_client.protocol import Request, Response, SSEDecoder, SSEEvent
from keys.http_signatures import RequestSigner, new_nonce, sign_request
from schemas.problems import ConfigurationError

__all__ = ["Transport"]

T = TypeVar("T")
log = logging.getLogger("agency_client.transport")

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Transport:
    """Signed, retrying HTTP access to one relay.

    :param base_url: the relay's base URL, e.g. ``http://127.0.0.1:8080``.
    :param signer: the agency identity (anything with ``sign``); ``None`` for public calls only.
    :param key_id: the id of the agency's current certificate (the signature ``keyid``).
    :param timeout: seconds for one attempt.
    :param max_attempts: attempts per request before giving up.
    :param backoff_base: first retry delay (doubles each time, full jitter).
    :param backoff_max: longest single delay.
    :param clock: the time source for signatures.
    :param sleep: how to wait between attempts (tests may pass a recording fake).
    """

    def __init__(
        self,
        base_url: str,
        *,
        signer: RequestSigner | None = None,
        key_id: str | None = None,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        clock: Clock = _utcnow,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("the relay URL must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self._signer = signer
        self._key_id = key_id
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._session: aiohttp.ClientSession | None = None
        #: Number of retries made so far (for progress display and tests).
        self.retries = 0

    def set_signer(self, signer: RequestSigner, key_id: str) -> None:
        """Sign from now on with ``signer`` under certificate ``key_id``."""
        self._signer = signer
        self._key_id = key_id

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {"Accept": request.accept}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        if request.signed:
            if self._signer is None or self._key_id is None:
                raise ConfigurationError("this request must be signed, but no identity is loaded")
            headers.update(
                sign_request(
                    identity=self._signer,
                    key_id=self._key_id,
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    body=request.body,
                    created=self._clock(),
                    nonce=new_nonce(),
                )
            )
        return headers

    def _url(self, request: Request) -> URL:
        return URL(self.base_url + request.target, encoded=True)

    async def send_once(self, request: Request) -> Response:
        """One attempt, no retries: the raw response (errors included)."""
        session = self._get_session()
        async with session.request(
            request.method,
            self._url(request),
            data=request.body if request.body or request.method != "GET" else None,
            headers=self._headers(request),
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            return Response(
                status=resp.status,
                headers={k.lower(): v for k, v in resp.headers.items()},
                body=body,
            )

    async def send(self, request: Request) -> Response:
        """Send with retries; return the final response (which may be an error status).

        :raises RelayUnreachable: when every attempt failed to connect or timed out.
        """
        last_error: str = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self.send_once(request)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                last_error = exc.__class__.__name__
                retry_after = None
            else:
                if not protocol.is_retryable(response.status) or attempt == self._max_attempts:
                    return response
                last_error = f"HTTP {response.status}"
                retry_after = response.retry_after
            if attempt == self._max_attempts:
                break
            delay = protocol.backoff_delay(
                attempt,
                base=self._backoff_base,
                cap=self._backoff_max,
                retry_after=retry_after,
                rng=self._rng,
            )
            self.retries += 1
            log.info(
                "retrying %s %s in %.2fs (attempt %d: %s)",
                request.method,
                request.path,
                delay,
                attempt,
                last_error,
            )
            await self._sleep(delay)
        raise RelayUnreachable(
            f"the relay at {self.base_url} did not answer after "
            f"{self._max_attempts} attempts ({last_error})"
        )

    async def call(self, request: Request, parser: Callable[[Response], T]) -> T:
        """Send with retries and parse the answer (raising the mapped problem on error)."""
        response = await self.send(request)
        return protocol.parse(response, parser)

    async def stream(
        self, request: Request, *, last_event_id: str | None = None
    ) -> AsyncIterator[SSEEvent]:
        """Open one server-sent-events stream and yield its events until it ends.

        No reconnection here (the client resumes from its cursor); connection failures
        propagate as :class:`RelayUnreachable`, HTTP errors as their mapped problem.
        """
        session = self._get_session()
        headers = self._headers(request)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        try:
            async with session.get(
                self._url(request),
                headers=headers,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._timeout, sock_read=max(60.0, self._timeout)
                ),
            ) as resp:
                if resp.status >= 400:
                    body = await resp.read()
                    protocol.raise_for_problem(
                        Response(
                            status=resp.status,
                            headers={k.lower(): v for k, v in resp.headers.items()},
                            body=body,
                        )
                    )
                decoder = SSEDecoder()
                async for chunk in resp.content.iter_any():
                    for event in decoder.feed(chunk):
                        yield event
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise RelayUnreachable(
                f"the push stream from {self.base_url} failed ({exc.__class__.__name__})"
            ) from None
