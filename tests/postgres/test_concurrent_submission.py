"""Eight submitters race the same message ids through three relay processes on one database.

Each id must be stored once: one ``201`` in all, every other copy of the same bytes
a ``200`` with the same receipt, and a *different* envelope reusing a taken id a
``409``, whichever process each request reached and however they interleaved.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from typing import Any

from tests.postgres.cluster import Cluster, message_id, seal_for

SUBMITTERS = 8
PLAIN_IDS = 24
CONTESTED_IDS = 8


async def test_eight_submitters_racing_the_same_ids(cluster: Cluster) -> None:
    relays = await cluster.add(3)
    p = cluster.partnership
    # Ids every submitter sends with the same bytes...
    plain = [seal_for(p, "school", ["mash", "police"]) for _ in range(PLAIN_IDS)]
    # ...and ids sealed twice: two different envelopes claiming one id.
    contested = []
    for _ in range(CONTESTED_IDS):
        first = seal_for(p, "school", ["mash"])
        second = seal_for(p, "school", ["mash"], message_id=message_id(first))
        assert first.to_wire() != second.to_wire()
        contested.append((first, second))

    results: dict[str, list[tuple[int, bytes, dict[str, Any]]]] = defaultdict(list)
    start = asyncio.Event()

    async def submitter(number: int) -> None:
        rng = random.Random(number)
        work = [(e, e.to_wire()) for e in plain]
        work += [(pair[number % 2], pair[number % 2].to_wire()) for pair in contested]
        rng.shuffle(work)
        await start.wait()
        for index, (envelope, wire) in enumerate(work):
            client = cluster.member("school", relays[(number + index) % len(relays)])
            reply = await client.submit(wire)
            body = reply.json()
            results[message_id(envelope)].append((reply.status, wire, body))

    tasks = [asyncio.create_task(submitter(n)) for n in range(SUBMITTERS)]
    start.set()
    await asyncio.gather(*tasks)

    receipts: dict[str, dict[str, Any]] = {}
    for mid, replies in results.items():
        assert len(replies) == SUBMITTERS
        statuses = Counter(status for status, _, _ in replies)
        assert statuses[201] == 1, (mid, statuses)
        assert set(statuses) <= {200, 201, 409}, (mid, statuses)
        [(_, winner_wire, winner)] = [r for r in replies if r[0] == 201]
        assert winner["duplicate"] is False
        receipts[mid] = winner
        for status, wire, body in replies:
            if status == 409:
                assert body["code"] == "duplicate-message-id"
                assert wire != winner_wire
            elif status == 200:
                assert wire == winner_wire
                assert body["duplicate"] is True
                for key in ("message_id", "header_digest", "stored_at", "sequence"):
                    assert body[key] == winner[key], (mid, key)
    for first, _ in contested:
        statuses = Counter(status for status, _, _ in results[message_id(first)])
        assert statuses[409] == SUBMITTERS // 2, statuses  # the half that sent the loser

    # The database agrees: every id once, one accepted header each, gapless order.
    all_ids = sorted(receipts)
    rows = await cluster.query("SELECT message_id, sequence FROM messages ORDER BY sequence")
    assert sorted(r["message_id"] for r in rows) == all_ids
    assert {r["message_id"]: r["sequence"] for r in rows} == {
        mid: receipt["sequence"] for mid, receipt in receipts.items()
    }
    events = await cluster.query("SELECT sequence, event_type, message_id FROM events")
    sequences = sorted(e["sequence"] for e in events)
    assert sequences == list(range(1, len(sequences) + 1))
    accepted = Counter(e["message_id"] for e in events if e["event_type"] == "header_accepted")
    assert accepted == Counter(all_ids)
    items = await cluster.query("SELECT cursor, agency, message_id FROM inbox_items")
    assert len({i["cursor"] for i in items}) == len(items)
    expected_items = PLAIN_IDS * 2 + CONTESTED_IDS
    assert len(items) == expected_items
    assert Counter((i["agency"], i["message_id"]) for i in items).most_common(1)[0][1] == 1
