"""Push: server-sent events deliver without polling and resume from a cursor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from yarl import URL

from tests.relay.conftest import AgencyHTTP, Scene


class EventStream:
    """Reads server-sent events from an open response."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event (comments and keep-alives skipped), parsed."""
        return await asyncio.wait_for(self._read_event(), timeout)

    async def _read_event(self) -> dict[str, Any]:
        fields: dict[str, str] = {}
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError("stream closed")
            line = raw.decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    return {
                        "id": int(fields["id"]),
                        "event": fields["event"],
                        "data": json.loads(fields["data"]),
                    }
                fields.clear()
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value


@asynccontextmanager
async def open_stream(
    agency: AgencyHTTP, *, since: int | None = None, last_event_id: int | None = None
) -> AsyncIterator[EventStream]:
    """Open the agency's push stream."""
    path = f"/v1/agencies/{agency.agency_id}/events"
    query = "" if since is None else f"since={since}"
    headers = agency.sign("GET", path, query)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    url = URL(agency.base_url + path + (f"?{query}" if query else ""), encoded=True)
    async with agency.session.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield EventStream(response)


async def test_push_delivers_without_polling_and_resumes(scene: Scene) -> None:
    school, mash = scene.agency("school"), scene.agency("mash")
    first, second, third = scene.referral(), scene.referral(), scene.referral()
    ids = [json.loads(e.header_bytes)["id"] for e in (first, second, third)]

    async with open_stream(mash) as stream:
        # The stream is open and idle; the submission wakes it.
        assert (await school.submit(first)).status == 201
        event = await stream.next_event()
        assert event["event"] == "envelope"
        assert event["data"]["message_id"] == ids[0]
        assert event["id"] == event["data"]["cursor"]
        seen = event["id"]

    # Disconnected: a message arrives meanwhile.
    assert (await school.submit(second)).status == 201

    async with open_stream(mash, last_event_id=seen) as stream:
        event = await stream.next_event()
        assert event["data"]["message_id"] == ids[1]  # resumes after the last seen cursor
        assert (await school.submit(third)).status == 201
        event = await stream.next_event()
        assert event["data"]["message_id"] == ids[2]

    # From the start, everything not yet receipted is delivered again.
    async with open_stream(mash, since=0) as stream:
        got = [(await stream.next_event())["data"]["message_id"] for _ in range(3)]
        assert got == ids


async def test_push_stream_limit(relay_factory: Any) -> None:
    async with relay_factory(max_streams_per_agency=1) as scene:
        mash = scene.agency("mash")
        async with open_stream(mash):
            path = f"/v1/agencies/{mash.agency_id}/events"
            reply = await mash.get(path)
            assert reply.status == 429
            assert reply.problem_code == "rate-limited"
            assert int(reply.headers["Retry-After"]) >= 1


async def test_open_streams_do_not_use_up_the_request_cap(relay_factory: Any) -> None:
    async with relay_factory(max_concurrent_requests=1) as scene:
        mash = scene.agency("mash")
        async with open_stream(mash):
            assert (await mash.get(f"/v1/agencies/{mash.agency_id}/inbox")).status == 200
