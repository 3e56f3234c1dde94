"""Submit, deliver, receipt: the main path through a real relay."""

from __future__ import annotations

import base64

from keys.sealing import header_digest, open_envelope, parse_envelope
from tests.relay.conftest import PLAINTEXT_MARKER, Scene


async def test_submit_deliver_receipt(scene: Scene) -> None:
    school, mash = scene.agency("school"), scene.agency("mash")
    envelope = scene.referral()
    message_id = _id(envelope)

    reply = await school.submit(envelope)
    assert reply.status == 201, reply.body
    receipt = reply.json()
    assert receipt["message_id"] == message_id
    assert receipt["relay"] == "test-relay"
    assert receipt["duplicate"] is False
    assert base64.b64decode(receipt["header_digest"]) == header_digest(envelope.header_bytes)
    assert receipt["sequence"] > 0
    assert reply.headers["Location"] == f"/v1/envelopes/{message_id}"

    inbox = await mash.inbox()
    assert [item["message_id"] for item in inbox["items"]] == [message_id]
    item = inbox["items"][0]
    assert item["type"] == "envelope"
    assert item["kind"] == "REFERRAL"
    assert item["sender"] == {"agency": school.agency_id, "mailbox": "dsl"}
    assert base64.b64decode(item["header"]) == envelope.header_bytes
    assert inbox["next_since"] == item["cursor"]

    fetched = await mash.get(f"/v1/envelopes/{message_id}")
    assert fetched.status == 200
    assert fetched.body == envelope.to_wire()
    opened = open_envelope(
        parse_envelope(fetched.body),
        scene.partnership["mash"].identity,
        scene.partnership.directory(),
        agency_id=mash.agency_id,
        at=scene.clock(),
    )
    assert PLAINTEXT_MARKER in str(opened.body_dict)
    assert opened.header.id == message_id

    # Still deliverable until the receipt: listed again from an earlier cursor.
    assert len((await mash.inbox())["items"]) == 1
    ack = await mash.acknowledge(envelope, message_id)
    assert ack.status == 201, ack.body
    assert ack.json()["state"] == "delivered"
    assert (await mash.inbox())["items"] == []
    again = await mash.acknowledge(envelope, message_id)
    assert again.status == 200
    assert again.json()["duplicate"] is True

    status = await school.get(f"/v1/envelopes/{message_id}/status")
    assert status.status == 200
    [delivery] = status.json()["deliveries"]
    assert delivery["agency"] == mash.agency_id
    assert delivery["state"] == "delivered"
    assert delivery["receipt"]["signature"]


async def test_idempotent_resubmission(scene: Scene) -> None:
    school = scene.agency("school")
    envelope = scene.seal("school", ["mash"])
    first = await school.submit(envelope)
    second = await school.submit(envelope)
    assert first.status == 201
    assert second.status == 200
    a, b = first.json(), second.json()
    assert b.pop("duplicate") is True
    assert a.pop("duplicate") is False
    assert a == b
    # Stored once: one inbox item, one accepted header in the log.
    assert len((await scene.agency("mash").inbox())["items"]) == 1
    audit = await scene.agency("auditor").get("/v1/audit/headers")
    assert [h["message_id"] for h in audit.json()["items"]] == [_id(envelope)]


async def test_reusing_an_id_for_another_envelope_is_refused(scene: Scene) -> None:
    school = scene.agency("school")
    first = scene.seal("school", ["mash"])
    other = scene.seal("school", ["mash"], message_id=_id(first))
    assert (await school.submit(first)).status == 201
    reply = await school.submit(other)
    assert reply.status == 409
    assert reply.problem_code == "duplicate-message-id"


def _id(envelope: object) -> str:
    import json

    header = json.loads(envelope.header_bytes)  # type: ignore[attr-defined]
    return str(header["id"])
