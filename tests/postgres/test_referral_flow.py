"""A referral's whole life on PostgreSQL, with the two sides on different relay processes.

The school talks to relay 1 and the MASH front door to relay 2; both relays share
one PostgreSQL database and know nothing else about each other. Each side holds a
push stream open on its own relay, with a heartbeat far longer than the test, so
every prompt delivery below is a ``NOTIFY`` crossing from one process to the other.
"""

from __future__ import annotations

import asyncio
import contextlib

from keys.sealing import open_envelope, parse_envelope
from tests.postgres.cluster import Cluster, message_id, now, seal_for
from tests.relay.conftest import PLAINTEXT_MARKER
from tests.relay.test_push import open_stream

#: Seconds a push may take to cross processes on a busy 2-core machine (heartbeat: 300).
PROMPT = 10.0


async def test_referral_flow_across_two_relay_processes(cluster: Cluster) -> None:
    relay_1, relay_2 = await cluster.add(2)
    p = cluster.partnership
    school = cluster.member("school", relay_1)
    mash = cluster.member("mash", relay_2)
    auditor = cluster.member("auditor", relay_1)
    mash_on_1 = cluster.member("mash", relay_1)

    async with (
        open_stream(mash) as mash_stream,
        open_stream(school) as school_stream,
    ):
        # The school refers to the front door through relay 1...
        referral = seal_for(p, "school", ["mash"])
        thread = message_id(referral)
        submitted = await school.submit(referral)
        assert submitted.status == 201, submitted.body
        assert submitted.json()["relay"] == relay_1.name

        # ...and the front door's stream on relay 2 has it at once.
        event = await mash_stream.next_event(PROMPT)
        assert event["event"] == "envelope"
        assert event["data"]["message_id"] == thread
        assert event["data"]["kind"] == "REFERRAL"

        # The envelope, fetched through relay 2, is the exact bytes submitted to relay 1.
        fetched = await mash.get(f"/v1/envelopes/{thread}")
        assert fetched.status == 200, fetched.body
        assert fetched.body == referral.to_wire()
        opened = open_envelope(
            parse_envelope(fetched.body),
            p["mash"].identity,
            p.directory(),
            agency_id=mash.agency_id,
            at=now(),
        )
        assert PLAINTEXT_MARKER in str(opened.body_dict)

        # Receipt on relay 2; relay 1 sees the thread move and the delivery recorded.
        receipted = await mash.acknowledge(referral, thread)
        assert receipted.status == 201, receipted.body
        again = await mash_on_1.acknowledge(referral, thread)  # the same receipt, other process
        assert again.status == 200
        assert again.json()["duplicate"] is True
        state = (await school.get(f"/v1/threads/{thread}")).json()
        assert state["state"] == "DELIVERED"
        status = (await school.get(f"/v1/envelopes/{thread}/status")).json()
        assert [d["state"] for d in status["deliveries"]] == ["delivered"]

        # Acknowledgement back through relay 2, pushed to the school on relay 1.
        ack = seal_for(
            p, "mash", ["school"], kind="ACKNOWLEDGEMENT", thread_id=thread, in_reply_to=thread
        )
        assert (await mash.submit(ack)).status == 201
        event = await school_stream.next_event(PROMPT)
        assert event["data"]["message_id"] == message_id(ack)
        assert (await school.acknowledge(ack, message_id(ack))).status == 201

        # The decision, submitted to the *other* relay this time.
        decision = seal_for(
            p, "mash", ["school"], kind="DECISION_FEEDBACK", thread_id=thread, in_reply_to=thread
        )
        assert (await mash_on_1.submit(decision)).status == 201
        event = await school_stream.next_event(PROMPT)
        assert event["data"]["message_id"] == message_id(decision)
        assert (await school.acknowledge(decision, message_id(decision))).status == 201

    # Both relays tell the same story.
    views = [
        (await cluster.member("school", relay).get(f"/v1/threads/{thread}")).json()
        for relay in (relay_1, relay_2)
    ]
    assert views[0] == views[1]
    assert views[0]["state"] == "DECISION_GIVEN"
    assert [m["kind"] for m in views[0]["messages"]] == [
        "REFERRAL",
        "ACKNOWLEDGEMENT",
        "DECISION_FEEDBACK",
    ]
    clocks = {d["code"]: d for d in views[0]["deadlines"]}
    assert clocks["T_ACK_REFERRAL"]["met_at"] is not None
    assert clocks["T_DECISION"]["met_at"] is not None

    # One event log, in order, whichever relay wrote each entry.
    events = (await auditor.get("/v1/audit/events", "limit=500")).json()["items"]
    sequences = [e["sequence"] for e in events]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    kinds = [(e["type"], e["message_id"]) for e in events if e["message_id"]]
    assert kinds == [
        ("header_accepted", thread),
        ("receipt", thread),
        ("header_accepted", message_id(ack)),
        ("receipt", message_id(ack)),
        ("header_accepted", message_id(decision)),
        ("receipt", message_id(decision)),
    ]
    # Nobody's inbox holds anything still to collect.
    for key in ("school", "mash"):
        for relay in (relay_1, relay_2):
            inbox = await cluster.member(key, relay).inbox()
            assert [i for i in inbox["items"] if i["type"] == "envelope"] == []


async def test_push_crosses_processes_in_both_directions(cluster: Cluster) -> None:
    """Streams on each of two relays receive what is submitted to the other, promptly."""
    relays = await cluster.add(2)
    p = cluster.partnership
    async with contextlib.AsyncExitStack() as stack:
        streams = {
            (key, relay.name): await stack.enter_async_context(
                open_stream(cluster.member(key, relay))
            )
            for key in ("mash", "police")
            for relay in relays
        }
        for round_number in range(3):
            for sender_relay in relays:
                envelope = seal_for(p, "school", ["mash", "police"])
                reply = await cluster.member("school", sender_relay).submit(envelope)
                assert reply.status == 201, reply.body
                # Every stream of both recipients, on both relays, gets it.
                events = await asyncio.gather(
                    *(stream.next_event(PROMPT) for stream in streams.values())
                )
                for event in events:
                    assert event["data"]["message_id"] == message_id(envelope), round_number
