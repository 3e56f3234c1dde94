"""Delivery under trouble: the relay down and back, a tampering relay, and what is on disk."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import ClientSession, web

from schemas.encoding import b64decode, b64encode
from tests.client.conftest import Partnership
from tests.client.test_cli_scenario import REFERRAL


def test_relay_down_then_back_delivers_once(partnership: Partnership) -> None:
    school, mash = partnership.school, partnership.mash
    assert school.cli("directory").code == 0  # cache the verified directory
    partnership.relay.stop()

    queued = school.cli("--json", "refer", REFERRAL)
    assert queued.code == 0, queued.err
    data = queued.json()
    assert data["queued"] is True
    assert data["receipt"] is None
    assert "outbox flush" in school.cli("refer", REFERRAL).out  # a second, also queued
    listing = school.cli("--json", "outbox", "list").json()["queued"]
    assert next(e["message_id"] for e in listing) == data["message_id"]
    assert len(listing) == 2
    # Oldest first: the flush stops at the first message the relay cannot take.
    assert listing[0]["last_error"] == "relay-unreachable"
    assert listing[0]["attempts"] == 2
    still_down = school.cli("outbox", "flush")
    assert still_down.code == 1

    url = partnership.relay.start()  # same database, new port
    flushed = school.cli("--json", "outbox", "flush", relay=url)
    assert flushed.code == 0, flushed.out + flushed.err
    results = flushed.json()["results"]
    assert [r["message_id"] for r in results] == [e["message_id"] for e in listing]
    assert all(r["sent"] and not r["duplicate"] for r in results)
    again = school.cli("--json", "outbox", "flush", relay=url)
    assert again.json() == {"results": []}

    inbox = mash.cli("--json", "inbox", relay=url).json()["items"]
    assert sorted(i["message_id"] for i in inbox) == sorted(e["message_id"] for e in listing)
    assert mash.cli("--json", "inbox", relay=url).json()["items"] == []
    receipts = school.cli("--json", "receipts", "verify", relay=url).json()["messages"]
    assert all(r["submit_receipt_ok"] for r in receipts)
    assert all(r["delivered_to"] == ["northshire-mash"] for r in receipts)


async def _tampering_proxy(upstream: str) -> tuple[web.AppRunner, str]:
    """A relay in the middle that flips one byte of every envelope body it serves."""
    session = ClientSession()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host"}}
        async with session.request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as resp:
            payload = await resp.read()
            if (
                request.method == "GET"
                and request.path.startswith("/v1/envelopes/")
                and request.path.count("/") == 3
                and resp.status == 200
            ):
                wire = json.loads(payload)
                ciphertext = bytearray(b64decode(wire["body"]))
                ciphertext[-1] ^= 0x01
                wire["body"] = b64encode(bytes(ciphertext))
                payload = json.dumps(wire).encode()
            return web.Response(status=resp.status, body=payload, content_type=resp.content_type)

    async def close(_: web.Application) -> AsyncIterator[None]:
        yield
        await session.close()

    app = web.Application()
    app.cleanup_ctx.append(close)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def test_tampered_message_is_refused_and_stays_listed(partnership: Partnership) -> None:
    school, mash = partnership.school, partnership.mash
    message_id = school.cli("--json", "refer", REFERRAL).json()["message_id"]
    runner, proxy = partnership.relay.call(_tampering_proxy(partnership.relay.url))
    try:
        tampered = mash.cli("--json", "inbox", relay=proxy)
    finally:
        partnership.relay.call(runner.cleanup())
    assert tampered.code == 1
    (item,) = tampered.json()["items"]
    assert item["message_id"] == message_id
    assert item["error"]["code"] == "bad-signature"
    text = [line for line in tampered.err.splitlines() if not line.startswith("...")]
    assert text == []  # the refusal is reported on stdout, per item; no traceback
    # Nothing was recorded or receipted: straight from the relay, it opens fine.
    honest = mash.cli("--json", "inbox")
    assert honest.code == 0
    assert [i["message_id"] for i in honest.json()["items"]] == [message_id]
    assert honest.json()["items"][0]["receipted"] is True


def _grep(root: Path, marker: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and marker in path.read_bytes():
            hits.append(str(path))
    return hits


def test_no_plaintext_on_disk_or_in_logs(
    partnership: Partnership, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    school, mash, auditor = partnership.school, partnership.mash, partnership.auditor
    content_marker = f"CONTENT-MARKER-{uuid.uuid4().hex}"
    reason_marker = f"REASON-MARKER-{uuid.uuid4().hex}"
    form = yaml.safe_load(Path(REFERRAL).read_text())
    form["concern_summary"] = f"{form['concern_summary']} {content_marker}"
    form["basis"]["justification"]["necessity"] += f" {reason_marker}"
    path = tmp_path / "marked.json"
    path.write_text(json.dumps(form, default=str))
    sent = school.cli("--json", "refer", str(path))
    assert sent.code == 0, sent.err
    assert mash.cli("inbox").code == 0
    shown = mash.cli("show", sent.json()["message_id"])
    assert content_marker in shown.out  # the recipient can read it...
    mine = school.cli("show", sent.json()["message_id"])
    assert content_marker in mine.out  # ...and so can the sender, from its own record
    assert auditor.cli("audit").code == 0

    for marker in (content_marker, reason_marker, "Bennett"):
        needle = marker.encode()
        assert _grep(school.home, needle) == []
        assert _grep(mash.home, needle) == []
        assert _grep(auditor.home, needle) == []
        assert needle.decode() not in caplog.text
    # The relay's database holds only ciphertext too.
    relay_files = [p for p in partnership.tmp.iterdir() if p.name.startswith("relay.db")]
    assert relay_files
    for file in relay_files:
        assert content_marker.encode() not in file.read_bytes()
        assert reason_marker.encode() not in file.read_bytes()
    # The stores exist and hold the messages (so the grep looked at real data).
    assert (school.home / "store.sqlite").stat().st_size > 0
    assert (mash.home / "store.sqlite").stat().st_size > 0


def test_watch_collects_and_stops(shared: Partnership) -> None:
    sent = shared.school.cli("--json", "refer", REFERRAL).json()
    result = shared.mash.cli("--json", "watch", "--count", "1", "--timeout", "20")
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines() if line.strip()]
    assert [e["message_id"] for e in events] == [sent["message_id"]]
    timed_out = shared.mash.cli("watch", "--count", "1", "--timeout", "0.5")
    assert timed_out.code == 1
    assert "Stopped after 0 of 1" in timed_out.out
