"""``AgencyClient`` as a library, against a real relay: push, duplicates, refusals, trust."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession, web

import keys.sealing
from agency_client import AgencyClient, ClientSettings, ReceiveResult, protocol
from keys.certificates import issue_certificate
from keys.identity import AgencyIdentity, RootKey
from schemas.encoding import b64decode, b64encode
from schemas.envelope import SealedEnvelope
from schemas.problems import BadSignature, LawfulBasisRejected, UntrustedCertificate
from tests.client.conftest import Partnership
from tests.client.harness import PASSPHRASE, Agency
from tests.client.test_cli_scenario import REFERRAL


def _form() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    from agency_client.forms import split_form

    form = yaml.safe_load(Path(REFERRAL).read_text())
    form = json.loads(json.dumps(form, default=str))
    to, basis, fields = split_form(form)
    assert basis is not None
    return to, basis, fields


@contextlib.asynccontextmanager
async def _client(agency: Agency, url: str | None = None) -> AsyncIterator[AgencyClient]:
    settings = ClientSettings(
        home=agency.home,
        relay_url=url or agency.relay,
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.05,
        request_timeout=10,
    )
    client = await AgencyClient.open(settings, PASSPHRASE.encode())
    try:
        yield client
    finally:
        await client.close()


class StreamingProxy:
    """A pass-through proxy that can cut every open push stream (a network blip)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.streams: dict[int, web.Request] = {}
        self.connected = asyncio.Event()
        self.url = ""

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        assert self._session is not None
        upstream = await self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        )
        try:
            if upstream.content_type != "text/event-stream":
                payload = await upstream.read()
                return web.Response(
                    status=upstream.status,
                    body=payload,
                    headers={
                        "Content-Type": upstream.headers.get("Content-Type", "application/json")
                    },
                )
            response = web.StreamResponse(
                status=upstream.status, headers={"Content-Type": "text/event-stream"}
            )
            await response.prepare(request)
            self.streams[id(request)] = request
            self.connected.set()
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionResetError, ConnectionError):
                pass
            finally:
                self.streams.pop(id(request), None)
            return response
        finally:
            upstream.release()

    def cut(self) -> None:
        """Drop every open push stream."""
        self.connected.clear()
        for request in list(self.streams.values()):
            if request.transport is not None:
                request.transport.close()

    async def __aenter__(self) -> StreamingProxy:
        self._session = ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        await self._runner.cleanup()
        await self._session.close()


async def _next(queue: asyncio.Queue[ReceiveResult], timeout: float = 15) -> ReceiveResult:
    return await asyncio.wait_for(queue.get(), timeout)


async def test_push_delivers_and_resumes_after_a_dropped_stream(shared: Partnership) -> None:
    to, basis, fields = _form()
    async with (
        StreamingProxy(shared.relay.url) as proxy,
        _client(shared.mash, proxy.url) as mash,
        _client(shared.school) as school,
    ):
        await mash.receive()  # start from an empty inbox
        results: asyncio.Queue[ReceiveResult] = asyncio.Queue()
        stop = asyncio.Event()

        async def follow() -> None:
            async with contextlib.aclosing(mash.watch(stop=stop)) as stream:
                async for result in stream:
                    await results.put(result)

        task = asyncio.create_task(follow())
        try:
            await asyncio.wait_for(proxy.connected.wait(), 15)
            first = await school.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
            got = await _next(results)
            assert got.error is None
            assert got.message is not None
            assert got.message.message_id == first.message_id
            assert got.message.status == "receipted"

            proxy.cut()  # the network drops the push stream
            second = await school.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
            got = await _next(results)
            assert got.message is not None
            assert got.message.message_id == second.message_id
            await asyncio.wait_for(proxy.connected.wait(), 15)  # it reconnected by itself
            assert results.empty()
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        # Everything was receipted: nothing is listed again.
        assert await mash.receive() == []


async def test_resubmitting_the_same_bytes_is_not_a_second_message(shared: Partnership) -> None:
    to, basis, fields = _form()
    async with _client(shared.school) as school, _client(shared.mash) as mash:
        await mash.receive()
        sent = await school.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
        assert sent.receipt is not None
        assert not sent.receipt.duplicate
        (entry,) = [
            e
            for e in await school.store.outbox(pending_only=False)
            if e.message_id == sent.message_id
        ]
        again = await school.transport.call(
            protocol.submit_envelope(entry.envelope), protocol.parse_submit_receipt
        )
        assert again.duplicate is True
        assert again.sequence == sent.receipt.sequence
        assert again.header_digest == sent.receipt.header_digest
        received = await mash.receive()
        assert [r.item.message_id for r in received] == [sent.message_id]


async def test_the_relay_refuses_a_basis_the_sender_forced_through(
    shared: Partnership, monkeypatch: pytest.MonkeyPatch
) -> None:
    to, basis, fields = _form()
    basis = {**basis, "art6": ["A6_1_f"], "lia_reference": "LIA-1"}
    async with _client(shared.school) as school, _client(shared.mash) as mash:
        await mash.receive()
        with pytest.raises(LawfulBasisRejected) as caught:
            await school.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
        assert caught.value.status == 422
        local_rules = {f["rule"] for f in caught.value.findings}
        assert "L002" in local_rules
        assert await school.store.outbox() == []  # refused before sealing: nothing queued

        # A sender that skips its own check (here: the check patched out) is refused by the
        # relay, which re-runs the same rules over the header codes.
        monkeypatch.setattr(keys.sealing, "raise_for_verdict", lambda verdict: None)
        with pytest.raises(LawfulBasisRejected) as relayed:
            await school.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
        assert "L002" in {f["rule"] for f in relayed.value.findings}
        assert await school.store.outbox() == []
        refused = [m for m in await school.store.messages(direction="out") if m.status == "refused"]
        assert len(refused) == 1
        assert await mash.receive() == []


async def test_tampered_envelope_raises_a_typed_error(shared: Partnership) -> None:
    to, basis, fields = _form()

    async def tamper(request: web.Request) -> web.Response:
        async with (
            ClientSession() as session,
            session.get(shared.relay.url + request.path_qs, headers=dict(request.headers)) as resp,
        ):
            wire = json.loads(await resp.read())
        header = bytearray(b64decode(wire["header"]))
        header[header.index(b"REFERRAL")] = ord("X")  # re-label the kind
        wire["header"] = b64encode(bytes(header))
        return web.json_response(wire)

    app = web.Application()
    app.router.add_get("/v1/envelopes/{id}", tamper)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        async with (
            _client(shared.school) as school,
            _client(shared.mash, f"http://{host}:{port}") as mash,
        ):
            sent = await school.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
            with pytest.raises(BadSignature):
                await mash.open_message(sent.message_id)
            assert await mash.store.message(sent.message_id) is None
    finally:
        await runner.cleanup()
    async with _client(shared.mash) as mash:
        results = await mash.receive()
        assert [r.item.message_id for r in results] == [sent.message_id]


async def test_the_relay_cannot_substitute_keys(shared: Partnership) -> None:
    now = datetime.now(UTC)
    impostor_root = RootKey.generate()
    impostor = issue_certificate(
        impostor_root,
        agency_id="northshire-mash",
        name="Northshire MASH",
        org_type="police",
        public_authority=True,
        apd_in_place=True,
        mailboxes=("front-door",),
        role="agency",
        public_keys=AgencyIdentity.generate().public_keys,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )

    async def directory(request: web.Request) -> web.Response:
        async with (
            ClientSession() as session,
            session.get(shared.relay.url + "/v1/directory") as resp,
        ):
            data = json.loads(await resp.read())
        data["certificates"].append(impostor.to_json())
        return web.json_response(data)

    app = web.Application()
    app.router.add_get("/v1/directory", directory)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        async with _client(shared.school, f"http://{host}:{port}") as school:
            before = school.cached_directory()
            with pytest.raises(UntrustedCertificate):
                await school.refresh_directory()
            assert school.cached_directory() is before  # the verified copy is kept
    finally:
        await runner.cleanup()


async def test_settings_from_env_and_secret_repr(tmp_path: Path) -> None:
    settings = ClientSettings.from_env(
        {
            "AGENCY_HOME": str(tmp_path),
            "AGENCY_RELAY_URL": "http://relay.example/",
            "AGENCY_PASSPHRASE_ENV": "PW",
            "PW": "hunter2",
            "AGENCY_MAX_ATTEMPTS": "3",
        }
    )
    assert settings.home == tmp_path
    assert settings.relay_url == "http://relay.example"
    assert settings.max_attempts == 3
    assert settings.passphrase is not None
    assert settings.passphrase.reveal() == b"hunter2"
    assert "hunter2" not in repr(settings)
    assert "<SECRET>" in repr(settings)
    assert replace(settings, max_attempts=1).max_attempts == 1


async def test_auditor_reads_the_sealed_justification_never_the_body(shared: Partnership) -> None:
    """The auditor's check of one header, given what the relay may show it (no body)."""
    to, basis, fields = _form()
    async with _client(shared.school) as school, _client(shared.auditor) as auditor:
        sent = await school.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
        (entry,) = [
            e
            for e in await school.store.outbox(pending_only=False)
            if e.message_id == sent.message_id
        ]
        envelope = SealedEnvelope.from_wire(entry.envelope)
        record = protocol.HeaderRecord(
            message_id=sent.message_id,
            header_bytes=envelope.header_bytes,
            signature=envelope.signature,
            seals_bytes=envelope.seals_bytes,
            state=None,
            raw={},
        )
        directory = await auditor.directory(refresh=True)
        checked = auditor._audit_one(7, record, directory)
        assert checked.signature_ok
        assert checked.codes_verdict in {"accept", "warn"}
        assert checked.full_verdict in {"accept", "warn"}
        assert checked.justification is not None
        assert checked.justification.statutory_function_citation == "Education Act 2002 s.175(2)"
        assert checked.basis_codes["art6"] == ["A6_1_e"]

        forged = protocol.HeaderRecord(
            message_id=sent.message_id,
            header_bytes=envelope.header_bytes,
            signature=bytes(64),
            seals_bytes=envelope.seals_bytes,
            state=None,
            raw={},
        )
        refused = auditor._audit_one(8, forged, directory)
        assert refused.signature_ok is False
        assert refused.problem == "bad-signature"
        assert refused.justification is None
