"""Every problem type the relay answers with, produced by a request that triggers it.

``TRIGGERS`` maps each problem code to a scenario; a guard test checks that every
remote problem type in ``schemas.problems`` is either triggered here or listed in
``NOT_FROM_THE_RELAY`` with the reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from exchange.appkeys import SERVICE, STORE
from exchange.database import open_database
from keys.certificates import issue_certificate
from keys.identity import AgencyIdentity, RootKey
from keys.testing import Partnership
from schemas import problems
from schemas.policy import DeploymentPolicy
from tests.relay.conftest import BASIS, Reply, Scene

Trigger = Callable[[Any], Awaitable[Reply]]
TRIGGERS: dict[str, Trigger] = {}

#: Problem types the relay never sends, and why.
NOT_FROM_THE_RELAY = {
    "decryption-failed": "the relay never decrypts",
    "log-inconsistent": "raised by clients checking the relay's log (a later issue)",
    "exchange-error": "the abstract base type",
    "internal-error": "no request should cause it; test_unexpected_error_is_a_bare_500 forces one",
}


def trigger(code: str) -> Callable[[Trigger], Trigger]:
    """Register the scenario that makes the relay answer with ``code``."""

    def register(fn: Trigger) -> Trigger:
        TRIGGERS[code] = fn
        return fn

    return register


def _id(envelope: Any) -> str:
    return str(json.loads(envelope.header_bytes)["id"])


def _certificate(scene: Scene, *, days_from: int, days_to: int, root: RootKey | None = None) -> Any:
    now = scene.clock()
    return issue_certificate(
        root or scene.partnership.root,
        agency_id="temporary-agency",
        name="Temporary Agency",
        org_type="charity_vcs",
        public_authority=False,
        apd_in_place=True,
        mailboxes=("office",),
        role="agency",
        public_keys=AgencyIdentity.generate().public_keys,
        not_before=now + timedelta(days=days_from),
        not_after=now + timedelta(days=days_to),
    )


@trigger("invalid-envelope")
async def _invalid_envelope(factory: Any) -> Reply:
    async with factory() as scene:
        return await scene.agency("school").submit(b'{"v": 1, "header": "not base64!"}')


@trigger("bad-signature")
async def _bad_signature(factory: Any) -> Reply:
    async with factory() as scene:
        envelope = scene.referral()
        wire = envelope.to_wire_dict()
        body = bytearray(envelope.body)
        body[-1] ^= 1  # flip one bit of the ciphertext: the header no longer commits to it
        import base64

        wire["body"] = base64.b64encode(bytes(body)).decode()
        return await scene.agency("school").submit(json.dumps(wire).encode())


@trigger("not-recipient")
async def _not_recipient(factory: Any) -> Reply:
    async with factory() as scene:
        envelope = scene.referral()
        await scene.agency("school").submit(envelope)
        return await scene.agency("police").get(f"/v1/envelopes/{_id(envelope)}")


@trigger("invalid-receipt")
async def _invalid_receipt(factory: Any) -> Reply:
    async with factory() as scene:
        mash = scene.agency("mash")
        first, second = scene.referral(), scene.referral()
        await scene.agency("school").submit(first)
        await scene.agency("school").submit(second)
        # A receipt for the second message posted against the first.
        return await mash.post_json(
            f"/v1/envelopes/{_id(first)}/receipts", mash.receipt_for(second, _id(second))
        )


@trigger("unknown-agency")
async def _unknown_agency(factory: Any) -> Reply:
    async with factory(publish=["mash", "auditor"]) as scene:
        school = scene.agency("school")  # its certificate was never published
        return await school.get(f"/v1/agencies/{school.agency_id}/inbox")


@trigger("unknown-recipient")
async def _unknown_recipient(factory: Any) -> Reply:
    async with factory(publish=["school", "auditor"]) as scene:
        return await scene.agency("school").submit(scene.referral())  # the MASH is unknown


@trigger("untrusted-certificate")
async def _untrusted_certificate(factory: Any) -> Reply:
    async with factory() as scene:
        other_root = RootKey.generate()
        return await scene.publish(_certificate(scene, days_from=-1, days_to=30, root=other_root))


async def _request_with(scene: Scene, certificate: Any) -> Reply:
    assert (await scene.publish(certificate)).status == 201
    identity = AgencyIdentity.generate()  # the signature is never reached: the cert fails first
    school = scene.agency("school")
    return await school.send(
        "GET",
        f"/v1/agencies/{certificate.body.agency_id}/inbox",
        identity=identity,
        key_id=certificate.id,
    )


@trigger("certificate-expired")
async def _certificate_expired(factory: Any) -> Reply:
    async with factory() as scene:
        return await _request_with(scene, _certificate(scene, days_from=-30, days_to=-1))


@trigger("certificate-not-yet-valid")
async def _certificate_not_yet_valid(factory: Any) -> Reply:
    async with factory() as scene:
        return await _request_with(scene, _certificate(scene, days_from=1, days_to=30))


@trigger("certificate-revoked")
async def _certificate_revoked(factory: Any) -> Reply:
    async with factory() as scene:
        rl = scene.partnership.revoke("school", at=scene.clock() - timedelta(seconds=5))
        await scene.publish_revocations(rl)
        school = scene.agency("school")
        return await school.get(f"/v1/agencies/{school.agency_id}/inbox")


@trigger("stale-revocation-list")
async def _stale_revocation_list(factory: Any) -> Reply:
    async with factory() as scene:
        first = scene.partnership.revoke("unrelated", at=scene.clock())
        second = scene.partnership.revoke("police", at=scene.clock())
        assert (await scene.publish_revocations(second)).status == 201
        return await scene.publish_revocations(first)


@trigger("lawful-basis-rejected")
async def _lawful_basis_rejected(factory: Any) -> Reply:
    async with factory() as scene:
        basis = {k: v for k, v in BASIS.items() if k != "retention_class"}
        # The sender's own check is relaxed to a warning; the relay's is not.
        envelope = scene.seal(
            "school",
            ["mash"],
            basis=basis,
            deployment=DeploymentPolicy(reject_policy_as_warn=True),
        )
        reply = await scene.agency("school").submit(envelope)
        assert "P011" in [f["rule"] for f in reply.json()["findings"]]
        assert reply.json()["policy_version"]
        return reply


@trigger("invalid-request")
async def _invalid_request(factory: Any) -> Reply:
    async with factory() as scene:
        school = scene.agency("school")
        return await school.get(f"/v1/agencies/{school.agency_id}/inbox", "limit=many")


@trigger("unauthenticated")
async def _unauthenticated(factory: Any) -> Reply:
    async with factory() as scene:
        return await scene.agency("school").send("POST", "/v1/envelopes", signed=False)


@trigger("replayed-request")
async def _replayed(factory: Any) -> Reply:
    async with factory() as scene:
        school = scene.agency("school")
        path = f"/v1/agencies/{school.agency_id}/inbox"
        await school.get(path)
        return await school.replay("GET", path, school.sent[-1])


@trigger("clock-skew")
async def _clock_skew(factory: Any) -> Reply:
    async with factory() as scene:
        school = scene.agency("school")
        created = scene.clock() - timedelta(hours=1)
        return await school.send("GET", f"/v1/agencies/{school.agency_id}/inbox", created=created)


@trigger("forbidden")
async def _forbidden(factory: Any) -> Reply:
    async with factory() as scene:
        envelope = scene.referral()
        await scene.agency("school").submit(envelope)
        return await scene.agency("auditor").get(f"/v1/envelopes/{_id(envelope)}")


@trigger("not-found")
async def _not_found(factory: Any) -> Reply:
    async with factory() as scene:
        return await scene.agency("school").get("/v1/envelopes/" + "0" * 32)


@trigger("method-not-allowed")
async def _method_not_allowed(factory: Any) -> Reply:
    async with factory() as scene:
        return await scene.agency("school").send("DELETE", "/v1/directory")


@trigger("duplicate-message-id")
async def _duplicate(factory: Any) -> Reply:
    async with factory() as scene:
        first = scene.referral()
        other = scene.seal("school", ["mash"], message_id=_id(first))
        await scene.agency("school").submit(first)
        return await scene.agency("school").submit(other)


@trigger("invalid-transition")
async def _invalid_transition(factory: Any) -> Reply:
    async with factory() as scene:
        return await scene.agency("mash").submit(
            scene.seal("mash", ["school"], kind="DECISION_FEEDBACK")
        )


@trigger("expired")
async def _expired(factory: Any) -> Reply:
    async with factory(undelivered_expiry=timedelta(seconds=0)) as scene:
        envelope = scene.referral()
        await scene.agency("school").submit(envelope)
        await scene.relay.service.sweep()
        return await scene.agency("mash").get(f"/v1/envelopes/{_id(envelope)}")


@trigger("payload-too-large")
async def _too_large(factory: Any) -> Reply:
    async with factory(max_envelope_bytes=1024) as scene:
        return await scene.agency("school").submit(scene.referral())


@trigger("request-timeout")
async def _request_timeout(factory: Any) -> Reply:
    import asyncio

    from yarl import URL

    async with factory(request_body_timeout=timedelta(seconds=0.3)) as scene:
        school = scene.agency("school")
        body = scene.referral().to_wire()
        url = URL(scene.url)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        head = "".join(
            f"{k}: {v}\r\n" for k, v in school.sign("POST", "/v1/envelopes", body=body).items()
        )
        writer.write(
            f"POST /v1/envelopes HTTP/1.1\r\nHost: {url.host}\r\n{head}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:100]  # and the rest never comes
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 30)  # the relay closes after answering
        writer.close()
        head_bytes, _, payload = raw.partition(b"\r\n\r\n")
        lines = head_bytes.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return Reply(int(lines[0].split()[1]), headers, payload)


@trigger("rate-limited")
async def _rate_limited(factory: Any) -> Reply:
    async with factory(rate_limit_burst=3, rate_limit_per_second=0.01) as scene:
        school = scene.agency("school")
        path = f"/v1/agencies/{school.agency_id}/inbox"
        for _ in range(3):
            assert (await school.get(path)).status == 200
        reply = await school.get(path)
        assert int(reply.headers["Retry-After"]) >= 1
        return reply


@trigger("service-unavailable")
async def _unavailable(factory: Any) -> Reply:
    async with factory() as scene:
        store = scene.relay.app[STORE]
        store.database = open_database("sqlite+aiosqlite:////nonexistent-directory/relay.db")
        ready = await scene.session.get(scene.url + "/ready")
        assert ready.status == 503
        school = scene.agency("school")
        return await school.get(f"/v1/agencies/{school.agency_id}/inbox")


@pytest.mark.parametrize("code", sorted(TRIGGERS))
async def test_problem_type(code: str, relay_factory: Any) -> None:
    reply = await TRIGGERS[code](relay_factory)
    assert reply.headers["Content-Type"].startswith("application/problem+json"), reply.body
    problem = reply.json()
    cls = problems.from_problem(problem)
    assert problem["code"] == code, problem
    assert problem["type"] == problems.PROBLEM_BASE + code
    assert reply.status == problem["status"]
    assert type(cls).code == code
    assert "Traceback" not in reply.body.decode()


def test_every_problem_type_is_triggered() -> None:
    relay_side: set[str] = set()
    stack: list[type[problems.ExchangeError]] = [problems.ExchangeError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__ != problems.__name__:
            continue  # a client-side type defined elsewhere
        if not issubclass(cls, problems.LocalError | problems.AuditVerificationFailed):
            relay_side.add(cls.code)
    missing = relay_side - set(TRIGGERS) - set(NOT_FROM_THE_RELAY)
    assert not missing, f"no test triggers {sorted(missing)}"


async def test_unexpected_error_is_a_bare_500(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "secret content that must not leak"

    def boom() -> Any:
        raise RuntimeError(secret)

    monkeypatch.setattr(scene.relay.app[SERVICE], "directory_view", boom)
    caplog.set_level(logging.INFO)
    async with scene.session.get(scene.url + "/v1/directory") as resp:
        assert resp.status == 500
        body = await resp.json(content_type=None)
    assert body == {
        "type": problems.PROBLEM_BASE + "internal-error",
        "title": "Internal server error",
        "status": 500,
        "code": "internal-error",
    }
    from exchange.logs import JsonFormatter

    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "RuntimeError" in logged
    assert secret not in logged


async def test_unknown_route_and_method_are_problems(scene: Scene) -> None:
    async with scene.session.get(scene.url + "/v1/nothing-here") as resp:
        assert resp.status == 404
        assert (await resp.json(content_type=None))["code"] == "not-found"
    async with scene.session.delete(scene.url + "/v1/directory") as resp:
        assert resp.status == 405
        assert (await resp.json(content_type=None))["code"] == "method-not-allowed"


async def test_malformed_json_bodies_are_400(scene: Scene) -> None:
    mash = scene.agency("mash")
    envelope = scene.referral()
    await scene.agency("school").submit(envelope)
    reply = await mash.send("POST", f"/v1/envelopes/{_id(envelope)}/receipts", body=b"{not json")
    assert reply.status == 400
    reply = await mash.post_json(f"/v1/envelopes/{_id(envelope)}/receipts", {"body": 1})
    assert reply.status == 400
    assert reply.problem_code == "invalid-receipt"
    async with scene.session.post(scene.url + "/v1/directory/certificates", data=b"[1]") as resp:
        assert resp.status == 400


def test_partnership_fixture_has_required_members() -> None:
    from datetime import UTC, datetime

    p = Partnership.create(at=datetime(2026, 1, 1, tzinfo=UTC))
    assert p["school"].certificate.body.org_type == "maintained_school"
    assert p["mash"].certificate.body.org_type == "local_authority_childrens_services"
    assert "front-door" in p["mash"].certificate.body.mailboxes
    assert p["auditor"].certificate.body.role == "auditor"
    assert p["auditor"].certificate.body.org_type == "partnership_oversight"
    assert p["police"].certificate.body.org_type == "police"
    assert "unrelated" in p.members
