"""Retention: ciphertext deleted after receipt + retention, undelivered messages expire."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from keys.testing import Partnership
from tests.relay.conftest import FakeClock

START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _id(envelope: Any) -> str:
    return str(json.loads(envelope.header_bytes)["id"])


async def test_ciphertext_deleted_after_retention_and_recorded(relay_factory: Any) -> None:
    clock = FakeClock(START)
    async with relay_factory(clock=clock, partnership=Partnership.create(at=START)) as scene:
        school, mash, auditor = (
            scene.agency("school"),
            scene.agency("mash"),
            scene.agency("auditor"),
        )
        referral = scene.referral()
        message_id = _id(referral)
        assert (await school.submit(referral)).status == 201
        assert (await mash.acknowledge(referral, message_id)).status == 201

        clock.advance(days=29)
        assert (await scene.relay.service.sweep())["deleted"] == 0
        assert (await mash.get(f"/v1/envelopes/{message_id}")).status == 200

        clock.advance(days=2)
        assert (await scene.relay.service.sweep())["deleted"] == 1
        gone = await mash.get(f"/v1/envelopes/{message_id}")
        assert gone.status == 410
        assert gone.problem_code == "expired"
        # The header stays for audit, and the deletion is an event in the log.
        header = await auditor.get(f"/v1/envelopes/{message_id}/header")
        assert header.status == 200
        assert header.json()["content_deleted_at"] == "2026-12-03T10:00:00Z"
        events = (await auditor.get("/v1/audit/events")).json()["items"]
        kinds = [(e["type"], e["message_id"]) for e in events if e["message_id"] == message_id]
        assert kinds == [
            ("header_accepted", message_id),
            ("receipt", message_id),
            ("content_deleted", message_id),
        ]
        deleted = next(e for e in events if e["type"] == "content_deleted")
        assert deleted["detail"] == {"reason": "retention"}
        sequences = [e["sequence"] for e in events]
        assert sequences == sorted(sequences)
        assert (await scene.relay.service.sweep())["deleted"] == 0


async def test_undelivered_message_expires_with_notice_to_sender(relay_factory: Any) -> None:
    clock = FakeClock(START)
    async with relay_factory(clock=clock, partnership=Partnership.create(at=START)) as scene:
        school, mash = scene.agency("school"), scene.agency("mash")
        referral = scene.referral()
        message_id = _id(referral)
        assert (await school.submit(referral)).status == 201

        clock.advance(days=4, hours=23)
        assert (await scene.relay.service.sweep())["expired"] == 0
        clock.advance(hours=2)
        summary = await scene.relay.service.sweep()
        assert summary["expired"] == 1
        assert summary["deleted"] == 1

        notices = [i for i in (await school.inbox())["items"] if i["type"] == "notice"]
        assert [(n["notice"], n["message_id"]) for n in notices] == [("NON_DELIVERY", message_id)]
        assert notices[0]["detail"]["recipient"] == mash.agency_id
        assert (await mash.inbox())["items"] == []
        fetch = await mash.get(f"/v1/envelopes/{message_id}")
        assert fetch.status == 410
        late = await mash.acknowledge(referral, message_id)
        assert late.status == 410
        status = (await school.get(f"/v1/envelopes/{message_id}/status")).json()
        assert status["deliveries"][0]["state"] == "expired"
        thread = (await school.get(f"/v1/threads/{message_id}")).json()
        assert thread["state"] == "EXPIRED"
        assert (await scene.relay.service.sweep())["expired"] == 0


async def test_background_sweeper_expires_and_pushes_the_notice(relay_factory: Any) -> None:
    from datetime import timedelta

    from tests.relay.test_push import open_stream

    async with relay_factory(
        run_sweeper=True,
        sweep_interval=timedelta(milliseconds=50),
        undelivered_expiry=timedelta(0),
    ) as scene:
        school = scene.agency("school")
        referral = scene.referral()
        async with open_stream(school) as stream:
            assert (await school.submit(referral)).status == 201
            event = await stream.next_event(timeout=10)
        assert event["event"] == "notice"
        assert event["data"]["notice"] == "NON_DELIVERY"
        assert event["data"]["message_id"] == _id(referral)
