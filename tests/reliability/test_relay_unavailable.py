"""The relay unavailable: the agency client keeps what it composed and delivers it once, in order.

A real relay process sits behind a switchable gate (``tests/reliability/gate.py``). The
school's ``AgencyClient`` composes referrals while the relay is refused, overloaded
(503), losing answers after committing, and SIGKILLed; the front door follows its
push stream throughout. At the end every referral is at the relay exactly once, was
accepted in the order it was composed, and reached the front door exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from agency_client import AgencyClient, ClientSettings
from agency_client.forms import split_form
from keys.identity import RootKey
from tests.client.harness import PASSPHRASE, Agency, setup_agency
from tests.client.test_cli_scenario import REFERRAL
from tests.reliability.gate import Gate
from tests.reliability.relayproc import RelayProcess

MAX_ATTEMPTS = 3


def _form() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    form = json.loads(json.dumps(yaml.safe_load(Path(REFERRAL).read_text()), default=str))
    to, basis, fields = split_form(form)
    assert basis is not None
    return to, basis, fields


@contextlib.asynccontextmanager
async def _client(agency: Agency, url: str, delays: list[float]) -> AsyncIterator[AgencyClient]:
    settings = ClientSettings(
        home=agency.home,
        relay_url=url,
        max_attempts=MAX_ATTEMPTS,
        backoff_base=0.05,
        backoff_max=0.4,
        request_timeout=20,
    )
    client = await AgencyClient.open(settings, PASSPHRASE.encode())

    async def recording_sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(min(delay, 0.02))  # real backoff, shortened: the test waits on state

    client.transport._sleep = recording_sleep
    try:
        yield client
    finally:
        await client.close()


async def _refer(client: AgencyClient) -> Any:
    to, basis, fields = _form()
    return await client.send(kind="REFERRAL", to=to, fields=fields, basis=basis)


async def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_outbox_survives_outages_and_delivers_once_in_order(tmp_path: Path) -> None:
    root = RootKey.generate()
    (tmp_path / "relay").mkdir()
    relay = RelayProcess(root.public_key, tmp_path / "relay")
    await relay.start()
    async with Gate(lambda: relay.port) as school_gate, Gate(lambda: relay.port) as mash_gate:
        try:
            school_agency = await asyncio.to_thread(
                setup_agency, tmp_path, "school", root, school_gate.url
            )
            mash_agency = await asyncio.to_thread(
                setup_agency, tmp_path, "mash", root, mash_gate.url
            )
            await asyncio.to_thread(setup_agency, tmp_path, "auditor", root, mash_gate.url)
            delays: list[float] = []
            async with (
                _client(school_agency, school_gate.url, delays) as school,
                _client(mash_agency, mash_gate.url, []) as mash,
            ):
                await school.refresh_directory()
                await _scenario(relay, school_gate, school, mash, delays)
        finally:
            relay.terminate()


async def _scenario(
    relay: RelayProcess, gate: Gate, school: AgencyClient, mash: AgencyClient, delays: list[float]
) -> None:
    # The front door follows its push stream for the whole test, across every outage.
    stop = asyncio.Event()
    received: list[str] = []

    async def follow() -> None:
        async for result in mash.watch(stop=stop):
            if result.message is not None:
                received.append(result.message.message_id)

    watcher = asyncio.create_task(follow())
    composed: list[str] = []
    wire: dict[str, str] = {}

    async def compose() -> Any:
        result = await _refer(school)
        composed.append(result.message_id)
        entry = next(
            e
            for e in await school.store.outbox(pending_only=False)
            if e.message_id == result.message_id
        )
        wire[result.message_id] = hashlib.sha256(entry.envelope).hexdigest()
        return result

    try:
        first = await compose()
        assert not first.queued
        assert first.receipt is not None

        # 1. The relay is gone (connection refused): composing still works, sealed in order.
        await gate.down()
        retries_before = school.transport.retries
        for _ in range(3):
            result = await compose()
            assert result.queued
            assert result.receipt is None
        outbox = await school.store.outbox()
        assert [e.message_id for e in outbox] == composed[1:4]
        # Each flush retried with backoff before giving up (attempts - 1 waits per flush;
        # every flush stops at the oldest message, so only it is retried).
        waits = school.transport.retries - retries_before
        assert waits == 3 * (MAX_ATTEMPTS - 1)
        assert all(0 <= d <= 0.4 for d in delays[-waits:])
        assert [e.attempts for e in outbox] == [3, 0, 0]

        # 2. The relay answers 503: the flush stops at the oldest message; nothing overtakes it.
        await gate.unavailable()
        results = await school.flush_outbox()
        assert [r.message_id for r in results] == composed[1:4]
        assert all(r.still_queued and r.error is not None for r in results)
        assert results[0].error is not None
        assert results[0].error.code == "service-unavailable"
        assert len(gate.submissions(wire[composed[1]])) == MAX_ATTEMPTS
        assert gate.submissions(wire[composed[2]]) == []
        assert gate.submissions(wire[composed[3]]) == []
        # Retry-After: 1 is honoured as a floor (capped at backoff_max).
        assert all(d >= 0.4 for d in delays[-(MAX_ATTEMPTS - 1) :])

        # 3. The relay commits the oldest but its answer is lost: the retry gets the same
        #    receipt (duplicate), the rest follow in order.
        await gate.lose_answers(1)
        results = await school.flush_outbox()
        assert [r.message_id for r in results] == composed[1:4]
        assert all(r.error is None and r.receipt is not None for r in results)
        assert [r.receipt.duplicate for r in results if r.receipt] == [True, False, False]
        outcomes = [s.outcome for s in gate.submissions(wire[composed[1]])]
        assert outcomes[-2:] == ["answer-lost", "forwarded"]
        assert await school.store.outbox() == []

        # 4. The relay process is SIGKILLed: the message waits; after the restart it goes.
        relay.kill()
        killed = await compose()
        assert killed.queued
        await relay.start()
        results = await school.flush_outbox()
        assert [(r.message_id, r.error) for r in results] == [(killed.message_id, None)]

        # 5. Two sends and three flushes at once: each message is submitted exactly once.
        await gate.down()
        both = await asyncio.gather(compose(), compose())
        assert all(r.queued for r in both)
        await gate.up()
        flushes = await asyncio.gather(*(school.flush_outbox() for _ in range(3)))
        sent = [r for batch in flushes for r in batch]
        assert sorted(r.message_id for r in sent) == sorted(composed[-2:])
        assert all(r.error is None and r.receipt and not r.receipt.duplicate for r in sent)
        for message_id in composed[-2:]:
            forwarded = [s for s in gate.submissions(wire[message_id]) if s.outcome == "forwarded"]
            assert len(forwarded) == 1, message_id

        # Every message reached the front door exactly once, in the order it was composed.
        await _wait_for(lambda: len(received) >= len(composed), "the front door's push stream")
        assert received == composed
        assert [r.message.message_id for r in await mash.receive() if r.message] == []
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 30)

    # The relay accepted each once, in composition order (sequences increase).
    records = await school.store.outbox(pending_only=False)
    sequences = {e.message_id: e.receipt["sequence"] for e in records if e.receipt}
    assert [sequences[m] for m in composed] == sorted(sequences[m] for m in composed)
    assert len(set(sequences.values())) == len(composed)
