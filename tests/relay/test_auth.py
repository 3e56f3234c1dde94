"""Request authentication: signatures, keys, mailboxes, replays, clock skew, revocation."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.relay.conftest import Scene


async def test_no_signature_is_unauthenticated(scene: Scene) -> None:
    school = scene.agency("school")
    reply = await school.send("GET", f"/v1/agencies/{school.agency_id}/inbox", signed=False)
    assert reply.status == 401
    assert reply.problem_code == "unauthenticated"


async def test_signature_by_another_key_is_refused(scene: Scene) -> None:
    school = scene.agency("school")
    police = scene.partnership["police"].identity
    reply = await school.send("GET", f"/v1/agencies/{school.agency_id}/inbox", identity=police)
    assert reply.status == 401
    assert reply.problem_code == "bad-signature"


async def test_unknown_key_id_is_unknown_agency(scene: Scene) -> None:
    school = scene.agency("school")
    reply = await school.send("GET", f"/v1/agencies/{school.agency_id}/inbox", key_id="c" * 64)
    assert reply.status == 403
    assert reply.problem_code == "unknown-agency"


async def test_body_not_matching_its_digest_is_bad_signature(scene: Scene) -> None:
    school = scene.agency("school")
    signature = school.sign("POST", "/v1/envelopes", body=b'{"a":1}')
    reply = await school.replay("POST", "/v1/envelopes", signature, body=b'{"a":2}')
    assert reply.status == 401
    assert reply.problem_code == "bad-signature"


async def test_other_agencys_mailbox_is_forbidden(scene: Scene) -> None:
    school = scene.agency("school")
    mash_id = scene.agency("mash").agency_id
    reply = await school.get(f"/v1/agencies/{mash_id}/inbox")
    assert reply.status == 403
    assert reply.problem_code == "forbidden"
    stream = await school.get(f"/v1/agencies/{mash_id}/events")
    assert stream.status == 403


async def test_replayed_request_is_refused(scene: Scene) -> None:
    school = scene.agency("school")
    path = f"/v1/agencies/{school.agency_id}/inbox"
    first = await school.get(path)
    assert first.status == 200
    again = await school.replay("GET", path, school.sent[-1])
    assert again.status == 401
    assert again.problem_code == "replayed-request"


async def test_clock_skew_is_refused(scene: Scene) -> None:
    school = scene.agency("school")
    path = f"/v1/agencies/{school.agency_id}/inbox"
    for offset in (-400, 400):
        reply = await school.send("GET", path, created=scene.clock() + timedelta(seconds=offset))
        assert reply.status == 401
        assert reply.problem_code == "clock-skew"
    within = await school.send("GET", path, created=scene.clock() - timedelta(seconds=200))
    assert within.status == 200


async def test_revoked_certificate_refused_on_its_very_next_request(scene: Scene) -> None:
    school = scene.agency("school")
    path = f"/v1/agencies/{school.agency_id}/inbox"
    assert (await school.get(path)).status == 200
    rl = scene.partnership.revoke("school", at=scene.clock() - timedelta(seconds=1))
    published = await scene.publish_revocations(rl)
    assert published.status == 201, published.body
    reply = await school.get(path)
    assert reply.status == 403
    assert reply.problem_code == "certificate-revoked"
    # Nor can it submit: the envelope's certificate is revoked too.
    submit = await school.submit(scene.referral())
    assert submit.status == 403
    assert submit.problem_code == "certificate-revoked"


async def test_auditor_reads_headers_never_bodies(scene: Scene) -> None:
    school, auditor = scene.agency("school"), scene.agency("auditor")
    envelope = scene.referral()
    message_id = json.loads(envelope.header_bytes)["id"]
    assert (await school.submit(envelope)).status == 201

    header = await auditor.get(f"/v1/envelopes/{message_id}/header")
    assert header.status == 200
    assert header.json()["kind"] == "REFERRAL"
    assert header.json()["deliveries"][0]["state"] == "pending"

    body = await auditor.get(f"/v1/envelopes/{message_id}")
    assert body.status == 403
    assert body.problem_code == "forbidden"

    log = await auditor.get("/v1/audit/headers")
    assert log.status == 200
    assert [h["message_id"] for h in log.json()["items"]] == [message_id]
    events = await auditor.get("/v1/audit/events")
    assert "header_accepted" in [e["type"] for e in events.json()["items"]]
    thread = await auditor.get(f"/v1/threads/{message_id}")
    assert thread.status == 200

    assert (await school.get("/v1/audit/headers")).status == 403
    # The auditor has no inbox of anyone else's.
    mash_id = scene.agency("mash").agency_id
    assert (await auditor.get(f"/v1/agencies/{mash_id}/inbox")).status == 403


async def test_unrelated_agency_cannot_read_a_message(scene: Scene) -> None:
    school, stranger = scene.agency("school"), scene.agency("unrelated")
    envelope = scene.referral()
    message_id = json.loads(envelope.header_bytes)["id"]
    assert (await school.submit(envelope)).status == 201
    for path in (f"/v1/envelopes/{message_id}", f"/v1/envelopes/{message_id}/header"):
        reply = await stranger.get(path)
        assert reply.status == 403
        assert reply.problem_code == "not-recipient"
    status = await stranger.get(f"/v1/envelopes/{message_id}/status")
    assert status.status == 403
    thread = await stranger.get(f"/v1/threads/{message_id}")
    assert thread.status == 403
