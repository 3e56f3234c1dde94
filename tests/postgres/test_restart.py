"""PostgreSQL restarts under load: relays answer 503 while it is down and recover by themselves.

Two relay processes take a steady stream of submissions from four clients. The
test stops this machine's PostgreSQL server, checks that both relays refuse
cleanly (``503`` problem+json ``service-unavailable`` with ``Retry-After``, from
submissions and from ``/ready``) and that an open push stream survives, starts
the server again, and waits until both relays accept again without being
restarted. Clients retry refused envelopes as a real client does. Afterwards
every envelope that got a ``201`` is stored exactly once, every envelope a client
retried is stored at most once, and push works again across the processes.

The server is restored in a ``finally`` block whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from typing import Any

import aiohttp

from tests.postgres.cluster import Cluster, RelayProcess, eventually, message_id, seal_for
from tests.relay.conftest import Reply
from tests.relay.test_push import open_stream

PROMPT = 15.0
#: The longest the test keeps the server down, whatever happens meanwhile.
OUTAGE_LIMIT = 60.0
#: Client-side limit on one request (a hung request fails the test instead of stalling it).
REQUEST_LIMIT = 20.0


def _cluster_ctl(version: str, action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _server_up() -> bool:
    return (
        subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], check=False, timeout=30
        ).returncode
        == 0
    )


def _ensure_running(version: str) -> None:
    """Start the server if it is not accepting connections; wait until it is."""
    deadline = time.monotonic() + 120
    while not _server_up():
        with contextlib.suppress(subprocess.SubprocessError):
            _cluster_ctl(version, "start")
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not come back")
        time.sleep(0.5)


def _is_unavailable(reply: Reply) -> bool:
    if reply.status != 503:
        return False
    assert reply.headers["Content-Type"].startswith("application/problem+json"), reply.headers
    assert reply.json()["code"] == "service-unavailable", reply.body
    assert int(reply.headers["Retry-After"]) >= 1
    return True


async def test_relays_survive_a_postgresql_restart(
    cluster: Cluster, restartable_server: str
) -> None:
    version = restartable_server
    # Relay 2 re-reads its push streams every second, so one reads while the server is down.
    relay_1 = (await cluster.add(1))[0]
    relay_2 = (await cluster.add(1, {"EXCHANGE_PUSH_HEARTBEAT": "1"}))[0]
    relays = [relay_1, relay_2]
    p = cluster.partnership
    outcomes: dict[str, list[int]] = {}  # message id -> every status a client saw
    created: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    stop = asyncio.Event()

    async def submit_until_answered(number: int, wire: bytes, mid: str) -> None:
        """Submit until answered; like a client behind a load balancer, each retry may
        reach the other relay (so both see attempts, and an envelope whose commit was in
        doubt is retried through another process)."""
        attempt = 0
        while True:
            relay = relays[(number + attempt) % len(relays)]
            attempt += 1
            client = cluster.member("school", relay)
            try:
                reply = await asyncio.wait_for(client.submit(wire), REQUEST_LIMIT)
            except (TimeoutError, aiohttp.ClientError) as exc:
                cluster.note(f"submit {mid} to {relay.name}: {type(exc).__name__}")
                outcomes[mid].append(0)
                await asyncio.sleep(0.2)
                continue
            outcomes[mid].append(reply.status)
            if _is_unavailable(reply):
                refused[relay.url] += 1
                await asyncio.sleep(min(0.5, int(reply.headers["Retry-After"])))
                continue
            assert reply.status in (200, 201), reply.body
            if reply.status == 201:
                created[relay.url] += 1
            return

    async def submitter(number: int) -> None:
        while not stop.is_set():
            envelope = seal_for(p, "school", ["mash"])
            mid = message_id(envelope)
            outcomes[mid] = []
            await submit_until_answered(number, envelope.to_wire(), mid)

    try:
        async with (
            open_stream(cluster.member("mash", relay_1)) as stream_1,
            open_stream(cluster.member("police", relay_2)) as stream_2,
        ):
            tasks = [asyncio.create_task(submitter(n)) for n in range(4)]
            try:
                # Running normally on both relays.
                await eventually(
                    lambda: _at_least(created, [r.url for r in relays], 5),
                    timeout=60,
                    what="submissions to both relays",
                )
                # Down, for as long as it takes to see the relays refuse cleanly (bounded).
                before = dict(created)
                cluster.note("stopping PostgreSQL")
                await asyncio.to_thread(_cluster_ctl, version, "stop")
                cluster.note("PostgreSQL stopped")
                try:
                    await asyncio.wait_for(_observe_outage(cluster, relays, refused), OUTAGE_LIMIT)
                finally:
                    # Up again: both relays accept, without being restarted.
                    cluster.note("starting PostgreSQL")
                    await asyncio.to_thread(_cluster_ctl, version, "start")
                    cluster.note("PostgreSQL started")
                await eventually(
                    lambda: _more_than(created, before, [r.url for r in relays], 5),
                    timeout=60,
                    what="both relays accepting again",
                )
            finally:
                stop.set()
                await asyncio.gather(*tasks)

            # Push across processes works again, on streams opened before the restart:
            # relay 2's stream got through the outage, relay 1's LISTEN reconnected.
            for stream, recipient, relay in (
                (stream_1, "mash", relay_2),
                (stream_2, "police", relay_1),
            ):
                envelope = seal_for(p, "school", [recipient])
                reply = await cluster.member("school", relay).submit(envelope)
                assert reply.status == 201, reply.body
                event = await _next_for(stream, message_id(envelope))
                assert event["data"]["message_id"] == message_id(envelope)
    finally:
        await asyncio.to_thread(_ensure_running, version)

    # Every acknowledged envelope is stored exactly once; retried ones at most once.
    assert all(relay.process.poll() is None for relay in relays)
    rows = await cluster.query("SELECT message_id FROM messages")
    stored = Counter(row["message_id"] for row in rows)
    assert max(stored.values()) == 1
    accepted_events = Counter(
        row["message_id"]
        for row in await cluster.query(
            "SELECT message_id FROM events WHERE event_type = 'header_accepted'"
        )
    )
    assert accepted_events == stored
    answered = {
        mid for mid, statuses in outcomes.items() if statuses and statuses[-1] in (200, 201)
    }
    acknowledged = {mid for mid, statuses in outcomes.items() if 201 in statuses}
    assert acknowledged <= set(stored)
    assert answered <= set(stored)
    for mid, statuses in outcomes.items():
        assert statuses.count(201) <= 1, (mid, statuses)
        if 201 in statuses:  # nothing after a 201 (the client stopped)
            assert statuses[-1] == 201
    assert sum(refused.values()) >= 2
    sequences = sorted(
        row["sequence"] for row in await cluster.query("SELECT sequence FROM events")
    )
    assert sequences == list(range(1, len(sequences) + 1))


async def _observe_outage(
    cluster: Cluster, relays: list[RelayProcess], refused: Counter[str]
) -> None:
    """Both relays answer 503 (``/ready``, a read, submissions) and a stream reads meanwhile."""
    for relay in relays:
        auditor = cluster.member("auditor", relay)

        async def ready_refused(relay_url: str = relay.url) -> bool | None:
            async with cluster.session.get(
                relay_url + "/ready", timeout=aiohttp.ClientTimeout(total=REQUEST_LIMIT)
            ) as response:
                reply = Reply(response.status, dict(response.headers), await response.read())
            return True if _is_unavailable(reply) else None

        await eventually(ready_refused, timeout=30, what=f"{relay.name} /ready 503")
        cluster.note(f"{relay.name} /ready answered 503")
        reply = await asyncio.wait_for(auditor.get("/v1/audit/events"), REQUEST_LIMIT)
        assert _is_unavailable(reply), reply.status
    await eventually(
        lambda: _at_least(refused, [r.url for r in relays], 1),
        timeout=30,
        what="submissions refused with 503 by both relays",
    )
    cluster.note("submissions refused by both relays")
    # The stream on relay 2 reads (and fails) while the server is down.
    await eventually(
        lambda: _failed_inbox_read(relays[1]),
        timeout=30,
        what="relay 2's push stream to read during the outage",
    )
    cluster.note("relay 2's stream read during the outage")


async def _at_least(counter: Counter[str], keys: list[str], count: int) -> bool | None:
    return True if all(counter[key] >= count for key in keys) else None


async def _more_than(
    counter: Counter[str], before: dict[str, int], keys: list[str], count: int
) -> bool | None:
    return True if all(counter[key] >= before.get(key, 0) + count for key in keys) else None


async def _failed_inbox_read(relay: Any) -> bool | None:
    for record in relay.log_records():
        if (
            record.get("event") == "read transaction failed"
            and record.get("transaction") == "get_inbox"
        ):
            return True
    return None


async def _next_for(stream: Any, mid: str) -> dict[str, Any]:
    deadline = time.monotonic() + PROMPT
    while True:
        event: dict[str, Any] = await stream.next_event(max(0.1, deadline - time.monotonic()))
        if event["data"]["message_id"] == mid:
            return event
