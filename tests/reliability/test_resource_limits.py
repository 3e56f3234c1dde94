"""Resource limits on a real relay process: oversized bodies, slow clients, too many
requests, floods from one agency.

In each case the relay answers with a clear problem (413, 408, 429 or 503 as
``application/problem+json``, with ``Retry-After`` where it helps), another agency's
request made *during* the abuse succeeds, and the relay's resident memory stays within
a bound. Waits are on real state (the relay's ``exchange_requests_in_flight`` gauge),
each with a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from keys.testing import Partnership
from tests.relay.conftest import AgencyHTTP, Reply
from tests.reliability.relayproc import RelayProcess
from tests.reliability.traffic import client_for, seal_envelope

MIB = 1024 * 1024
#: How much the relay's resident memory may grow under each abuse (it is ~95 MiB idle).
RSS_BOUND_KIB = 48 * 1024


@contextlib.asynccontextmanager
async def _relay(tmp_path: Path, **env: str) -> AsyncIterator[tuple[RelayProcess, Partnership]]:
    p = Partnership.create(at=datetime.now(UTC))
    relay = RelayProcess(p.root.public_key, tmp_path, env=env)
    try:
        await relay.start()
        await relay.publish(p.certificates)
        yield relay, p
    finally:
        relay.terminate()


async def _in_flight(session: aiohttp.ClientSession, relay: RelayProcess) -> float:
    """The relay's in-flight gauge, not counting the metrics request itself."""
    async with session.get(relay.url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("exchange_requests_in_flight "):
            return float(line.split()[1]) - 1
    raise AssertionError("no exchange_requests_in_flight in /metrics")


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


def _assert_problem(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    problem: dict[str, Any] = json.loads(reply.body)
    assert problem["code"] == code
    assert problem["status"] == status
    if status in (429, 503):
        assert int(reply.headers["Retry-After"]) >= 1
    return problem


async def _inbox_ok(agency: AgencyHTTP) -> float:
    """Another agency's ordinary request: it must succeed; returns its latency."""
    started = time.monotonic()
    reply = await agency.get(f"/v1/agencies/{agency.agency_id}/inbox")
    assert reply.status == 200, (reply.status, reply.body[:300])
    return time.monotonic() - started


class RawRequest:
    """An HTTP request written by hand on its own connection (to be slow, or partial)."""

    def __init__(self, relay: RelayProcess) -> None:
        self.relay = relay
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> RawRequest:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.relay.port)
        return self

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, timeout: float = 60) -> Reply:
        """Read the relay's answer (it closes the connection or says how long it is)."""
        assert self.reader is not None
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if line)
        length = int(headers.get("Content-Length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return Reply(int(lines[0].split()[1]), headers, body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()


def _head(method: str, path: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _slow_submission(
    relay: RelayProcess, agency: AgencyHTTP | None, body: bytes
) -> RawRequest:
    """A submission whose headers arrive but whose body stops after 100 bytes."""
    headers = {"Content-Type": "application/vnd.safeguard.envelope.v1+json"}
    if agency is not None:
        headers.update(agency.sign("POST", "/v1/envelopes", body=body))
    raw = await RawRequest(relay).open()
    await raw.send(_head("POST", "/v1/envelopes", headers, len(body)) + body[:100])
    return raw


async def test_oversized_bodies_are_refused_without_holding_memory(tmp_path: Path) -> None:
    limit = 256 * 1024
    async with (
        _relay(tmp_path, EXCHANGE_MAX_ENVELOPE_BYTES=str(limit)) as (relay, p),
        aiohttp.ClientSession() as session,
    ):
        school = client_for(session, relay.url, p, "school")
        mash = client_for(session, relay.url, p, "mash")
        big = b'{"v": 1, "pad": "' + b"x" * (4 * MIB) + b'"}'
        # Declared too large: refused from the headers, signed or not, before any check.
        _assert_problem(await school.submit(big), 413, "payload-too-large")
        _assert_problem(
            await school.send("POST", "/v1/envelopes", body=big, signed=False),
            413,
            "payload-too-large",
        )
        async with session.post(relay.url + "/v1/directory/certificates", data=big) as resp:
            reply = Reply(resp.status, dict(resp.headers), await resp.read())
        _assert_problem(reply, 413, "payload-too-large")

        # Not declared (chunked): read only up to the limit, then refused.
        async def chunks() -> AsyncIterator[bytes]:
            for offset in range(0, len(big), 64 * 1024):
                yield big[offset : offset + 64 * 1024]

        signature = school.sign("POST", "/v1/envelopes", body=big)
        async with session.post(relay.url + "/v1/envelopes", data=chunks(), headers=signature) as r:
            reply = Reply(r.status, dict(r.headers), await r.read())
        _assert_problem(reply, 413, "payload-too-large")

        # Without a valid signature it is not read at all.
        async with session.post(relay.url + "/v1/envelopes", data=chunks()) as resp:
            reply = Reply(resp.status, dict(resp.headers), await resp.read())
        _assert_problem(reply, 401, "unauthenticated")

        # Many at once: memory does not grow by what was sent (40 x 4 MiB = 160 MiB).
        before = relay.rss_kib()

        async def one() -> int:
            headers = school.sign("POST", "/v1/envelopes", body=big)
            async with session.post(
                relay.url + "/v1/envelopes", data=chunks(), headers=headers
            ) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(one() for _ in range(40)), return_exceptions=True)
        assert {s for s in statuses if not isinstance(s, BaseException)} <= {413}
        assert sum(1 for s in statuses if s == 413) >= 30  # a few may see the connection cut
        await _inbox_ok(mash)
        growth = relay.rss_kib() - before
        print(f"RSS growth after 40 oversized uploads: {growth} KiB")
        assert growth < RSS_BOUND_KIB
        # A real envelope under the limit still goes through.
        reply = await school.submit(seal_envelope(p, "school", ["mash"]))
        assert reply.status == 201, reply.body


async def test_slow_clients_do_not_hold_the_relay(tmp_path: Path) -> None:
    env = {
        "EXCHANGE_MAX_CONCURRENT_REQUESTS": "8",
        "EXCHANGE_MAX_CONCURRENT_REQUESTS_PER_AGENCY": "4",
        "EXCHANGE_REQUEST_BODY_TIMEOUT": "60",
    }
    async with _relay(tmp_path, **env) as (relay, p), aiohttp.ClientSession() as session:
        school = client_for(session, relay.url, p, "school")
        gp = client_for(session, relay.url, p, "gp")
        mash = client_for(session, relay.url, p, "mash")
        body = seal_envelope(p, "school", ["mash"]).to_wire()
        before = relay.rss_kib()

        # Slowloris: 300 connections sending their headers a byte at a time, never done.
        stop = asyncio.Event()

        async def trickle() -> None:
            raw = await RawRequest(relay).open()
            try:
                for byte in _head("GET", "/v1/directory", {"X-Slow": "1" * 4000}, None):
                    if stop.is_set():
                        return
                    await raw.send(bytes([byte]))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.25)
            except ConnectionError:
                return  # the relay may close a connection that is this slow
            finally:
                raw.close()

        trickling = [asyncio.create_task(trickle()) for _ in range(300)]
        try:
            latencies = [await _inbox_ok(mash) for _ in range(10)]
            assert not [t for t in trickling if t.done() and t.exception()]
        finally:
            stop.set()
            await asyncio.gather(*trickling, return_exceptions=True)
        print(f"other agency during slowloris: max {max(latencies) * 1000:.0f} ms")

        # Slow bodies without a valid signature are refused at once: never waited for.
        unsigned = [await _slow_submission(relay, None, body) for _ in range(40)]
        for raw in unsigned:
            _assert_problem(await raw.answer(), 401, "unauthenticated")
            raw.close()

        # A signed slow body holds one slot of its agency; beyond the agency's share: 429.
        held = [await _slow_submission(relay, school, body) for _ in range(4)]

        async def four_held() -> bool:
            return await _in_flight(session, relay) >= 4

        await _until(four_held, "the relay holds the four slow bodies")
        extra = await _slow_submission(relay, school, body)
        problem = _assert_problem(await extra.answer(), 429, "rate-limited")
        assert "in progress" in problem["detail"]
        extra.close()
        await _inbox_ok(mash)  # the others are still served

        # Slow bodies from a second agency fill the relay's cap: 503 for everyone, clearly.
        held += [await _slow_submission(relay, gp, body) for _ in range(4)]

        async def eight_held() -> bool:
            return await _in_flight(session, relay) >= 8

        await _until(eight_held, "the relay holds eight slow bodies")
        full = await mash.get(f"/v1/agencies/{mash.agency_id}/inbox")
        _assert_problem(full, 503, "service-unavailable")
        for raw in held:
            raw.close()  # the senders give up: their slots come back

        async def drained() -> bool:
            return await _in_flight(session, relay) <= 0

        await _until(drained, "the slow requests are released")
        await _inbox_ok(mash)
        growth = relay.rss_kib() - before
        print(f"RSS growth after slow clients: {growth} KiB")
        assert growth < RSS_BOUND_KIB


async def test_a_body_that_never_arrives_times_out_with_408(tmp_path: Path) -> None:
    async with (
        _relay(tmp_path, EXCHANGE_REQUEST_BODY_TIMEOUT="1") as (relay, p),
        aiohttp.ClientSession() as session,
    ):
        school = client_for(session, relay.url, p, "school")
        body = seal_envelope(p, "school", ["mash"]).to_wire()
        raw = await _slow_submission(relay, school, body)
        started = time.monotonic()
        _assert_problem(await raw.answer(timeout=60), 408, "request-timeout")
        assert time.monotonic() - started >= 0.9  # the relay waited, as configured
        raw.close()
        await _inbox_ok(client_for(session, relay.url, p, "mash"))


@pytest.mark.parametrize("signed", [True, False], ids=["agency-flood", "unauthenticated-flood"])
async def test_a_flood_leaves_other_agencies_served(tmp_path: Path, signed: bool) -> None:
    rate, burst = 2, 20
    env = {"EXCHANGE_RATE_LIMIT_PER_SECOND": str(rate), "EXCHANGE_RATE_LIMIT_BURST": str(burst)}
    async with _relay(tmp_path, **env) as (relay, p):
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            school = client_for(session, relay.url, p, "school")
            mash = client_for(session, relay.url, p, "mash")
            before = relay.rss_kib()
            path = f"/v1/agencies/{school.agency_id}/inbox"
            done = asyncio.Event()
            answers: list[Reply] = []

            async def flood() -> None:
                # Until the other agency is done, bounded: at most 200 requests per worker.
                for _ in range(200):
                    if done.is_set():
                        return
                    answers.append(await school.send("GET", path, signed=signed))

            started = time.monotonic()
            flooding = asyncio.gather(*(flood() for _ in range(24)))
            latencies: list[float] = []
            try:

                async def flood_under_way() -> bool:
                    return len(answers) >= 100

                await _until(flood_under_way, "the flood is under way")
                for _ in range(burst - 5):  # within the other agency's own bucket
                    latencies.append(await _inbox_ok(mash))
                assert not flooding.done(), "the flood ended before the other agency finished"
            finally:
                done.set()
                await flooding
            elapsed = time.monotonic() - started
            statuses = {a.status for a in answers}
            if signed:
                assert statuses <= {200, 429}
                served = sum(1 for a in answers if a.status == 200)
                # The bucket never lets through more than its burst plus its rate.
                assert served <= burst + rate * elapsed + 1
                refused = [a for a in answers if a.status == 429]
                assert len(refused) >= len(answers) - served > 0
                for reply in refused[:20]:
                    _assert_problem(reply, 429, "rate-limited")
            else:
                assert statuses == {401}
                _assert_problem(answers[0], 401, "unauthenticated")
            print(
                f"{'signed' if signed else 'unauthenticated'} flood: {len(answers)} requests in "
                f"{elapsed:.1f}s; the other agency: {len(latencies)} requests all 200, "
                f"max {max(latencies) * 1000:.0f} ms"
            )
            growth = relay.rss_kib() - before
            print(f"RSS growth after the flood: {growth} KiB")
            assert growth < RSS_BOUND_KIB
