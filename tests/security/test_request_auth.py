"""Request authentication under attack: replays on every route, skewed clocks, revocation.

* A signed request replayed verbatim is refused (``401 replayed-request``) on every
  authenticated route, whatever the handler would have said, and once the nonce has
  been purged the same signature is refused as stale (``401 clock-skew``): there is no
  window in which a replay works.
* ``created`` further than the allowed skew either way, or a past ``expires``, is
  ``401 clock-skew``; just inside the skew is accepted.
* A certificate revoked through the relay is refused on the agency's very next request;
  a second relay process sharing the database refuses it within ``directory_refresh``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from keys.http_signatures import new_nonce
from keys.testing import Partnership
from tests.relay.conftest import FakeClock, Reply
from tests.reliability.relayproc import RelayProcess
from tests.reliability.traffic import client_for
from tests.security.test_authorization_matrix import ROWS, Call, World

SKEW = timedelta(seconds=300)


async def _send(scene: Any, headers: dict[str, str], call: Call) -> Reply:
    url = URL(scene.url + call.path + (f"?{call.query}" if call.query else ""), encoded=True)
    all_headers = {"Content-Type": call.content_type, **headers}
    async with scene.session.request(call.method, url, data=call.body, headers=all_headers) as r:
        if r.headers.get("Content-Type", "").startswith("text/event-stream"):
            return Reply(r.status, dict(r.headers), b"")
        return Reply(r.status, dict(r.headers), await r.read())


async def test_replayed_requests_are_refused_on_every_authenticated_route(
    relay_factory: Any,
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    async with relay_factory(clock=clock, rate_limit_burst=10**6) as scene:
        world = World(scene)
        world.message = await world.fresh_message()
        school = scene.agency("school")
        routes: set[str] = set()
        for row in ROWS:
            if row.expect["anonymous"] != (401, "unauthenticated") or row.route in routes:
                continue  # public routes take no signature
            routes.add(row.route)
            role = "recipient" if row.route == "post_receipt" else "sender"
            call = row.build(world, role)
            if hasattr(call, "__await__"):
                call = await call
            member = scene.agency("mash" if role == "recipient" else "school")
            signature = member.sign(call.method, call.path, call.query, call.body)
            first = await _send(scene, signature, call)
            assert first.problem_code != "replayed-request", row.route
            again = await _send(scene, signature, call)
            assert (again.status, again.problem_code) == (401, "replayed-request"), row.route
        assert "submit_envelope" in routes
        assert "get_events" in routes
        # Once the nonce is purged the signature has gone stale: still refused.
        call = Call("GET", f"/v1/agencies/{school.agency_id}/inbox")
        signature = school.sign(call.method, call.path)
        assert (await _send(scene, signature, call)).status == 200
        clock.advance(seconds=SKEW.total_seconds() + 2)
        await scene.relay.service.sweep()
        late = await _send(scene, signature, call)
        assert (late.status, late.problem_code) == (401, "clock-skew")
        print(f"replays refused on {len(routes)} authenticated routes")


async def test_skewed_clocks(relay_factory: Any) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    async with relay_factory(clock=clock) as scene:
        school = scene.agency("school")
        path = f"/v1/agencies/{school.agency_id}/inbox"
        for offset, status in (
            (-SKEW - timedelta(seconds=5), 401),
            (SKEW + timedelta(seconds=5), 401),
            (-SKEW + timedelta(seconds=5), 200),
            (SKEW - timedelta(seconds=5), 200),
            (timedelta(days=-365), 401),
        ):
            reply = await school.send("GET", path, created=clock() + offset)
            assert reply.status == status, (offset, reply.body)
            if status == 401:
                assert reply.problem_code == "clock-skew"


async def test_expired_signature_parameter_is_refused(relay_factory: Any) -> None:
    """``expires`` signed by the agency and already past: ``clock-skew``."""
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    async with relay_factory(clock=clock) as scene:
        member = scene.partnership["school"]
        path = f"/v1/agencies/{member.agency_id}/inbox"
        headers = _sign_with_expires(member, path, clock(), expires=clock() - timedelta(seconds=1))
        reply = await _send(scene, headers, Call("GET", path))
        assert (reply.status, reply.problem_code) == (401, "clock-skew")


def _sign_with_expires(member: Any, path: str, created: datetime, *, expires: datetime) -> Any:
    """A signature whose parameters include ``expires`` (the library never sets it)."""
    from http_sfv.dictionary import Dictionary

    from keys import http_signatures as hs

    digest = hs.content_digest(b"")
    params = hs._params_text(
        created=int(created.timestamp()),
        key_id=member.certificate.id,
        nonce=new_nonce(),
        extra={"expires": int(expires.timestamp())},
    )
    base = hs.signature_base(
        method="GET", path=path, query="", content_digest_value=digest, params=params
    )
    field = Dictionary()
    field[hs.SIGNATURE_LABEL] = member.identity.sign(base)
    return {
        "Signature-Input": f"{hs.SIGNATURE_LABEL}={params}",
        "Signature": str(field),
        "Content-Digest": digest,
    }


async def test_revoked_certificate_refused_on_its_very_next_request(relay_factory: Any) -> None:
    async with relay_factory() as scene:
        school = scene.agency("school")
        path = f"/v1/agencies/{school.agency_id}/inbox"
        envelope = scene.referral()
        assert (await school.get(path)).status == 200
        revocations = scene.partnership.revoke("school", at=scene.clock())
        assert (await scene.publish_revocations(revocations)).status == 201
        # The very next request, whatever it is: refused.
        for reply in (
            await school.get(path),
            await school.submit(envelope),
            await school.get("/v1/threads"),
        ):
            assert (reply.status, reply.problem_code) == (403, "certificate-revoked")
        # A conflicting list with the same sequence (leaving the school out) cannot
        # un-revoke it, even though the root signed it.
        conflicting = Partnership.create(at=scene.clock()).revoke("police", at=scene.clock())
        assert conflicting.body.sequence == revocations.body.sequence
        reply = await scene.publish_revocations(conflicting)
        assert (reply.status, reply.problem_code) == (409, "stale-revocation-list")
        assert (await school.get(path)).problem_code == "certificate-revoked"


async def test_revocation_reaches_another_relay_process_within_directory_refresh(
    tmp_path: Path,
) -> None:
    """Two relay processes on one database: the second refuses within its refresh period."""
    p = Partnership.create(at=datetime.now(UTC))
    env = {"EXCHANGE_DIRECTORY_REFRESH": "1", "EXCHANGE_SWEEP_INTERVAL": "1"}
    first = RelayProcess(p.root.public_key, tmp_path, env=env)
    second = RelayProcess(p.root.public_key, tmp_path, env=env)
    second.log_path = tmp_path / "relay-2-stderr.log"
    async with first, second, aiohttp.ClientSession() as session:
        await first.publish(p.certificates)
        school_a = client_for(session, first.url, p, "school")
        school_b = client_for(session, second.url, p, "school")
        path = f"/v1/agencies/{school_a.agency_id}/inbox"

        async def ok_at_b() -> bool:
            return (await school_b.get(path)).status == 200

        await _until(ok_at_b, "the second relay knows the certificates", 30)
        revocations = p.revoke("school", at=datetime.now(UTC))
        async with session.post(
            first.url + "/v1/directory/revocations", json=revocations.to_json()
        ) as resp:
            assert resp.status == 201
        assert (await school_a.get(path)).problem_code == "certificate-revoked"
        started = time.monotonic()

        async def refused_at_b() -> bool:
            return (await school_b.get(path)).problem_code == "certificate-revoked"

        await _until(refused_at_b, "the second relay refuses the revoked certificate", 30)
        print(f"second relay process refused it after {time.monotonic() - started:.1f}s")


async def _until(check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.1)
