"""Thread transitions, deadline escalations, expiries and receipts happen once across relays.

Three relays share one PostgreSQL database and one injected clock. They run in this
test's process (so the clock can jump working days ahead), but each has its own
connection pool, writer, sweeper and notifier, so the database sees three
independent relays. Every relay's sweeper runs at the same moment, repeatedly, and
competing replies race through different relays: each effect must land exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp

from exchange.settings import Settings
from exchange.testing import RunningRelay, started_relay
from keys.testing import Partnership
from tests.postgres.cluster import message_id, seal_for
from tests.relay.conftest import AgencyHTTP, FakeClock

FRIDAY_3PM = datetime(2026, 5, 22, 14, 0, tzinfo=UTC)  # 15:00 BST, before a bank holiday


@contextlib.asynccontextmanager
async def _relays(
    count: int, database_url: str, partnership: Partnership, clock: FakeClock
) -> AsyncIterator[list[RunningRelay]]:
    settings = Settings(
        root_public_key=partnership.root.public_key,
        database_url=database_url,
        run_sweeper=False,
        database_pool_size=3,
        database_max_overflow=2,
        log_level="WARNING",
    )
    async with contextlib.AsyncExitStack() as stack:
        relays = [
            await stack.enter_async_context(started_relay(settings, clock=clock))
            for _ in range(count)
        ]
        yield relays


def _client(
    session: aiohttp.ClientSession, relay: RunningRelay, p: Partnership, key: str, clock: Any
) -> AgencyHTTP:
    member = p[key]
    return AgencyHTTP(session, relay.url, member.identity, member.certificate, clock=clock)


async def test_sweepers_in_every_relay_escalate_and_expire_once(database_url: str) -> None:
    clock = FakeClock(FRIDAY_3PM)
    p = Partnership.create(at=clock())
    async with (
        _relays(3, database_url, p, clock) as relays,
        aiohttp.ClientSession() as session,
    ):
        for relay in relays:
            for member in p.members.values():
                async with session.post(
                    relay.url + "/v1/directory/certificates", json=member.certificate.to_json()
                ) as response:
                    assert response.status in (200, 201)

        def on(key: str, index: int) -> AgencyHTTP:
            return _client(session, relays[index], p, key, clock)

        # A referral the front door collects (its clocks start) and one it never does.
        referral = seal_for(p, "school", ["mash"], created_at=clock())
        ignored = seal_for(p, "school", ["police"], created_at=clock())
        thread = message_id(referral)
        assert (await on("school", 0).submit(referral)).status == 201
        assert (await on("school", 1).submit(ignored)).status == 201
        clock.advance(minutes=5)

        # The same receipt posted through all three relays at once: recorded once.
        replies = await asyncio.gather(
            *(on("mash", i).acknowledge(referral, thread) for i in range(3))
        )
        assert sorted(r.status for r in replies) == [200, 200, 201]

        # Competing acknowledgements (different messages) through different relays:
        # the thread moves DELIVERED -> ACKNOWLEDGED once; the others are refused.
        acks = [
            seal_for(
                p,
                "mash",
                ["school"],
                kind="ACKNOWLEDGEMENT",
                thread_id=thread,
                in_reply_to=thread,
                created_at=clock(),
            )
            for _ in range(6)
        ]
        replies = await asyncio.gather(
            *(on("mash", i % 3).submit(ack) for i, ack in enumerate(acks))
        )
        assert sorted(r.status for r in replies) == [201] + [409] * 5
        assert {r.problem_code for r in replies if r.status == 409} == {"invalid-transition"}
        [winner] = [ack for ack, r in zip(acks, replies, strict=True) if r.status == 201]
        assert (await on("school", 2).acknowledge(winner, message_id(winner))).status == 201

        # Wednesday: the decision is overdue. Every relay sweeps, three times, at once.
        clock.set(datetime(2026, 5, 27, 8, 0, tzinfo=UTC))
        for _ in range(3):
            await asyncio.gather(*(relay.service.sweep() for relay in relays))
        for key in ("school", "mash"):
            notices = [i for i in (await on(key, 2).inbox())["items"] if i["notice"] == "OVERDUE"]
            assert [n["detail"]["deadline"] for n in notices] == ["T_DECISION"], key

        # A week on, the ignored delivery expires: once, whoever sweeps.
        clock.set(datetime(2026, 6, 3, 8, 0, tzinfo=UTC))
        summaries = []
        for _ in range(3):
            summaries += await asyncio.gather(*(relay.service.sweep() for relay in relays))
        assert sum(s["expired"] for s in summaries) == 1
        notices = [
            i for i in (await on("school", 0).inbox())["items"] if i["notice"] == "NON_DELIVERY"
        ]
        assert [n["message_id"] for n in notices] == [message_id(ignored)]
        expired_thread = (await on("school", 1).get(f"/v1/threads/{message_id(ignored)}")).json()
        assert expired_thread["state"] == "EXPIRED"

        # The event log holds each effect exactly once, in one gapless sequence.
        auditor = on("auditor", 0)
        events = (await auditor.get("/v1/audit/events", "limit=500")).json()["items"]
        sequences = [e["sequence"] for e in events]
        assert sequences == list(range(1, len(sequences) + 1))
        counted = Counter((e["type"], e["message_id"] or e["thread"]) for e in events)
        assert counted[("receipt", thread)] == 1
        assert counted[("receipt", message_id(winner))] == 1
        assert counted[("deadline_breached", thread)] == 1
        assert counted[("delivery_expired", message_id(ignored))] == 1
        assert counted[("content_deleted", message_id(ignored))] == 1
        accepted = [e for e in events if e["type"] == "header_accepted"]
        assert len(accepted) == 3  # two referrals and the one acknowledgement
        state = (await on("school", 2).get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "ACKNOWLEDGED"
