"""A load-generator process, driven by the orchestrator over JSON lines on stdin/stdout.

    python -m bench.loadgen '<config json>'

Runs in its own process, never in the server's: the orchestrator (``bench.relay``)
starts one or more of these and sends commands; each answers one JSON line. Client
crypto that is not per request (sealing envelopes, signing delivery receipts) is done
by ``prepare`` before any timed window; every request is signed inside the window with
a fresh RFC 9421 nonce, as a real client does.

Targets: ``relay`` and ``ceiling`` speak the relay API (the ceiling ignores the request
signature); ``mesh`` speaks the MESH API of NHS Digital's ``mesh-sandbox``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import os
import sys
import time
import uuid
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from bench._http import Connection, HTTPError, Response
from bench._pool import Prepared, bench_partnership, derive, signed_headers, template
from keys.testing import Member, Partnership
from schemas.envelope import ENVELOPE_MEDIA_TYPE

MESH_SHARED_KEY = "BackBone"
MESH_PASSWORD = "password"
MESH_SENDER = "X26ABC1"
MESH_RECIPIENT = "X26ABC2"
MESH_WORKFLOW = "TEST_WORKFLOW"
MESH_ACCEPT = "application/vnd.mesh.v2+json"


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "p999": None, "max": None, "n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": ordered[-1],
        "n": len(ordered),
    }


def mesh_auth(mailbox: str) -> str:
    """The ``NHSMESH`` Authorization header value (HMAC-SHA256 with the shared key)."""
    nonce = str(uuid.uuid4())
    count = "1"
    timestamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
    text = f"{mailbox}:{nonce}:{count}:{MESH_PASSWORD}:{timestamp}"
    digest = hmac.new(MESH_SHARED_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"NHSMESH {mailbox}:{nonce}:{count}:{timestamp}:{digest}"


class Worker:
    """State shared by the commands of one load-generator process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.kind: str = config["kind"]  # relay | ceiling | mesh
        self.host: str = config.get("host", "127.0.0.1")
        self.port: int = config["port"]
        self.at = datetime.fromisoformat(config["at"])
        self.partnership: Partnership = bench_partnership(self.at)
        self.directory = self.partnership.directory()
        self.templates: dict[tuple[str, str], Any] = {}
        self.ready: deque[Prepared] = deque()
        self.submitted: dict[str, Prepared] = {}
        self.listeners: list[asyncio.Task[None]] = []
        self.arrivals: dict[str, float] = {}
        self.listen_counts: Counter[str] = Counter()
        self.listen_connected = 0
        self.listen_refused: Counter[int] = Counter()
        #: Last cursor seen per agency key: a new stream resumes there, as a client would.
        self.cursors: dict[str, int] = {}

    def member(self, key: str) -> Member:
        return self.partnership[key]

    def connection(self) -> Connection:
        return Connection(self.host, self.port)

    # -- preparation (untimed) ---------------------------------------------------------------

    def prepare(self, sender: str, recipients: list[str], count: int) -> dict[str, Any]:
        """Derive ``count`` envelopes, round robin over ``recipients``, and their receipts."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        source = self.member(sender)
        per = [count // len(recipients) + (1 if i < count % len(recipients) else 0)
               for i in range(len(recipients))]
        batches = []
        for recipient, n in zip(recipients, per, strict=True):
            if n == 0:
                continue
            key = (sender, recipient)
            if key not in self.templates:
                self.templates[key] = template(self.partnership, sender, recipient, self.at)
            batches.append(
                derive(self.directory, self.templates[key], source, self.member(recipient), n,
                       received_at=now)
            )
        # Interleave so consecutive submissions go to different recipients.
        longest = max((len(b) for b in batches), default=0)
        for i in range(longest):
            for batch in batches:
                if i < len(batch):
                    self.ready.append(batch[i])
        return {"prepared": count, "ready": len(self.ready),
                "seconds": time.perf_counter() - started,
                "wire_bytes": len(self.ready[0].wire) if self.ready else 0}

    # -- requests ----------------------------------------------------------------------------

    async def submit_one(self, conn: Connection, item: Prepared, sender: Member) -> int:
        if self.kind == "mesh":
            response = await conn.request(
                "POST",
                f"/messageexchange/{MESH_SENDER}/outbox",
                [
                    ("Authorization", mesh_auth(MESH_SENDER)),
                    ("mex-To", MESH_RECIPIENT),
                    ("mex-WorkflowID", MESH_WORKFLOW),
                    ("mex-Subject", "benchmark"),
                    ("Content-Type", "application/octet-stream"),
                    ("Accept", MESH_ACCEPT),
                ],
                item.wire,
            )
            return response.status
        headers = signed_headers(sender, "POST", "/v1/envelopes", "", item.wire)
        headers.append(("Content-Type", ENVELOPE_MEDIA_TYPE))
        response = await conn.request("POST", "/v1/envelopes", headers, item.wire)
        if response.status >= 400 and not self._reported:
            self._reported = True
            print(f"submit refused: {response.status} {response.body[:300]!r}", file=sys.stderr)
        return response.status

    _reported = False

    async def signed(
        self, conn: Connection, member: Member, method: str, path: str, query: str = "",
        body: bytes = b"", content_type: str | None = None,
    ) -> Response:
        headers = signed_headers(member, method, path, query, body)
        if content_type:
            headers.append(("Content-Type", content_type))
        target = path + (f"?{query}" if query else "")
        return await conn.request(method, target, headers, body)

    # -- closed-loop submit ------------------------------------------------------------------

    async def submit_closed(self, duration: float, concurrency: int, sender: str,
                            max_count: int | None = None) -> dict[str, Any]:
        """``concurrency`` connections each submitting back to back until time or items run out."""
        member = self.member(sender)
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        budget = [max_count if max_count is not None else len(self.ready)]
        ok_codes = {202} if self.kind == "mesh" else {201}
        conns = [self.connection() for _ in range(concurrency)]
        for conn in conns:
            await conn.open()
        cpu0 = _cpu()
        start = time.perf_counter()
        deadline = start + duration
        last_done = [start]

        async def loop(conn: Connection) -> None:
            while time.perf_counter() < deadline and self.ready and budget[0] > 0:
                budget[0] -= 1
                item = self.ready.popleft()
                t0 = time.perf_counter()
                try:
                    status = await self.submit_one(conn, item, member)
                except HTTPError:
                    status = 599
                    await asyncio.sleep(0.01)
                t1 = time.perf_counter()
                statuses[status] += 1
                if status in ok_codes:
                    latencies.append(t1 - t0)
                    self.submitted[item.message_id] = item
                last_done[0] = t1

        await asyncio.gather(*(loop(c) for c in conns))
        elapsed = last_done[0] - start
        cpu = _cpu() - cpu0
        for conn in conns:
            conn.close()
        ok = sum(n for s, n in statuses.items() if s in ok_codes)
        return {
            "ok": ok,
            "elapsed": elapsed,
            "rate": ok / elapsed if elapsed > 0 else 0.0,
            "statuses": {str(k): v for k, v in statuses.items()},
            "latency": _percentiles(latencies),
            "client_cpu": cpu,
            "exhausted": not self.ready,
        }

    # -- closed-loop receive and acknowledge -------------------------------------------------

    async def receive_closed(self, duration: float, concurrency: int, agency: str,
                             since: int = 0, page: int = 100) -> dict[str, Any]:
        """Page the inbox and, for each item, download the envelope and post its receipt."""
        if self.kind == "mesh":
            return await self._mesh_receive(duration, concurrency)
        member = self.member(agency)
        agency_id = member.agency_id
        statuses: Counter[str] = Counter()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=page * 2)
        cursor = [since]
        cpu0 = _cpu()
        start = time.perf_counter()
        deadline = start + duration
        last_done = [start]
        done_count = [0]
        stop = asyncio.Event()

        async def producer() -> None:
            conn = self.connection()
            try:
                while time.perf_counter() < deadline and not stop.is_set():
                    response = await self.signed(
                        conn, member, "GET", f"/v1/agencies/{agency_id}/inbox",
                        f"since={cursor[0]}&limit={page}",
                    )
                    statuses[f"inbox {response.status}"] += 1
                    if response.status != 200:
                        await asyncio.sleep(0.05)
                        continue
                    items = json.loads(response.body)["items"]
                    items = [i for i in items if i.get("type") == "envelope"]
                    if not items:
                        break  # drained
                    cursor[0] = items[-1]["cursor"]
                    for item in items:
                        await queue.put(item)
            finally:
                conn.close()
                for _ in range(concurrency):
                    await queue.put(None)

        async def consumer() -> None:
            conn = self.connection()
            try:
                while True:
                    item = await queue.get()
                    if item is None:
                        return
                    if time.perf_counter() >= deadline:
                        stop.set()
                        continue
                    message_id = item["message_id"]
                    try:
                        got = await self.signed(conn, member, "GET", f"/v1/envelopes/{message_id}")
                        statuses[f"get {got.status}"] += 1
                        receipt = self._receipt_for(message_id, item, member)
                        posted = await self.signed(
                            conn, member, "POST", f"/v1/envelopes/{message_id}/receipts",
                            body=receipt, content_type="application/json",
                        )
                        statuses[f"receipt {posted.status}"] += 1
                        if posted.status == 201:
                            done_count[0] += 1
                            last_done[0] = time.perf_counter()
                    except HTTPError:
                        statuses["broken"] += 1
            finally:
                conn.close()

        await asyncio.gather(producer(), *(consumer() for _ in range(concurrency)))
        elapsed = last_done[0] - start
        return {
            "ok": done_count[0],
            "elapsed": elapsed,
            "rate": done_count[0] / elapsed if elapsed > 0 else 0.0,
            "statuses": dict(statuses),
            "client_cpu": _cpu() - cpu0,
            "cursor": cursor[0],
        }

    def _receipt_for(self, message_id: str, item: dict[str, Any], member: Member) -> bytes:
        prepared = self.submitted.get(message_id)
        if prepared is not None:
            return prepared.receipt
        # Not one of ours (submitted by another load generator): sign one now.
        from keys.receipts import sign_receipt
        from keys.sealing import header_digest

        receipt = sign_receipt(
            member.identity, member.certificate, message_id=message_id,
            header_digest=header_digest(base64.b64decode(item["header"])),
            received_at=datetime.now(UTC),
        )
        return json.dumps(receipt.to_json()).encode()

    async def _mesh_receive(self, duration: float, concurrency: int) -> dict[str, Any]:
        statuses: Counter[str] = Counter()
        cpu0 = _cpu()
        start = time.perf_counter()
        deadline = start + duration
        last_done = [start]
        done_count = [0]
        lister = self.connection()
        conns = [self.connection() for _ in range(concurrency)]
        try:
            while time.perf_counter() < deadline:
                listed = await lister.request(
                    "GET", f"/messageexchange/{MESH_RECIPIENT}/inbox?max_results=500",
                    [("Authorization", mesh_auth(MESH_RECIPIENT)), ("Accept", MESH_ACCEPT)],
                )
                statuses[f"inbox {listed.status}"] += 1
                if listed.status != 200:
                    break
                ids = json.loads(listed.body)["messages"]
                if not ids:
                    break
                pending = deque(ids)

                async def consume(conn: Connection, pending: deque[str] = pending) -> None:
                    while pending and time.perf_counter() < deadline:
                        message_id = pending.popleft()
                        try:
                            got = await conn.request(
                                "GET", f"/messageexchange/{MESH_RECIPIENT}/inbox/{message_id}",
                                [("Authorization", mesh_auth(MESH_RECIPIENT)),
                                 ("Accept", MESH_ACCEPT)],
                            )
                            statuses[f"get {got.status}"] += 1
                            acked = await conn.request(
                                "PUT",
                                f"/messageexchange/{MESH_RECIPIENT}/inbox/{message_id}"
                                "/status/acknowledged",
                                [("Authorization", mesh_auth(MESH_RECIPIENT)),
                                 ("Accept", MESH_ACCEPT)],
                            )
                            statuses[f"ack {acked.status}"] += 1
                            if acked.status == 200:
                                done_count[0] += 1
                                last_done[0] = time.perf_counter()
                        except HTTPError:
                            statuses["broken"] += 1

                await asyncio.gather(*(consume(c) for c in conns))
        finally:
            lister.close()
            for conn in conns:
                conn.close()
        elapsed = last_done[0] - start
        return {
            "ok": done_count[0],
            "elapsed": elapsed,
            "rate": done_count[0] / elapsed if elapsed > 0 else 0.0,
            "statuses": dict(statuses),
            "client_cpu": _cpu() - cpu0,
        }

    async def probe_inbox(self, agency: str, since: int, count: int = 10,
                          limit: int = 100) -> dict[str, Any]:
        """Time ``count`` sequential inbox requests after cursor ``since`` (median, max)."""
        member = self.member(agency)
        conn = self.connection()
        times: list[float] = []
        items = 0
        try:
            for _ in range(count):
                t0 = time.perf_counter()
                response = await self.signed(
                    conn, member, "GET", f"/v1/agencies/{member.agency_id}/inbox",
                    f"since={since}&limit={limit}",
                )
                times.append(time.perf_counter() - t0)
                if response.status == 200:
                    items = len(json.loads(response.body)["items"])
        finally:
            conn.close()
        ordered = sorted(times)
        return {"median": ordered[len(ordered) // 2], "max": ordered[-1], "items": items}

    # -- open-loop submit (latency) ----------------------------------------------------------

    async def latency_open(self, rate: float, duration: float, sender: str,
                           max_conns: int = 256, drain_timeout: float = 60.0) -> dict[str, Any]:
        """Submit at a fixed rate whatever the answers; latency from the scheduled instant."""
        member = self.member(sender)
        total = min(int(rate * duration), len(self.ready))
        items = [self.ready.popleft() for _ in range(total)]
        idle: list[Connection] = []
        opened = [0]
        available = asyncio.Condition()
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        sent_at: dict[str, float] = {}
        late = [0]
        tasks: list[asyncio.Task[None]] = []

        for _ in range(min(32, max_conns)):
            conn = self.connection()
            await conn.open()
            idle.append(conn)
            opened[0] += 1

        async def acquire() -> Connection:
            async with available:
                while not idle and opened[0] >= max_conns:
                    await available.wait()
                if idle:
                    return idle.pop()
                opened[0] += 1
            conn = self.connection()
            await conn.open()
            return conn

        async def release(conn: Connection) -> None:
            async with available:
                idle.append(conn)
                available.notify()

        async def send(item: Prepared, scheduled: float) -> None:
            conn = await acquire()
            try:
                status = await self.submit_one(conn, item, member)
            except HTTPError:
                status = 599
            except asyncio.CancelledError:
                conn.close()
                raise
            done = time.monotonic()
            await release(conn)
            statuses[status] += 1
            if status == 201:
                latencies.append(done - scheduled)
                self.submitted[item.message_id] = item

        cpu0 = _cpu()
        t0 = time.monotonic() + 0.1
        interval = 1.0 / rate
        i = 0
        while i < total:
            now = time.monotonic()
            due = t0 + i * interval
            if due > now:
                await asyncio.sleep(due - now)
                continue
            if now - due > 0.005:
                late[0] += 1
            # Launch every send that is due (the loop may wake late under load).
            while i < total and t0 + i * interval <= now:
                scheduled = t0 + i * interval
                sent_at[items[i].message_id] = scheduled
                tasks.append(asyncio.create_task(send(items[i], scheduled)))
                i += 1
        send_end = time.monotonic()
        # Bounded wait for the answers still outstanding; what is left counts as a timeout.
        _, unfinished = await asyncio.wait(tasks, timeout=drain_timeout)
        for task in unfinished:
            task.cancel()
        if unfinished:
            statuses[0] += len(unfinished)  # status 0: no answer within the drain timeout
            await asyncio.gather(*unfinished, return_exceptions=True)
            # Unanswered submissions count as infinitely late, so percentiles stay honest.
            latencies.extend([math.inf] * len(unfinished))
        async with available:
            for conn in idle:
                conn.close()
        ok = statuses.get(201, 0)
        return {
            "ok": ok,
            "sent": total,
            "offered_rate": total / max(send_end - t0, 1e-9),
            "statuses": {str(k): v for k, v in statuses.items()},
            "latency": _percentiles(latencies),
            "late_wakeups": late[0],
            "connections": opened[0],
            "client_cpu": _cpu() - cpu0,
            "sent_at": sent_at,
        }

    # -- push listeners ----------------------------------------------------------------------

    async def listen_start(self, agencies: list[str], per_agency: int = 1,
                           timeout: float = 60.0) -> dict[str, Any]:
        """Open server-sent event streams (``per_agency`` for each agency); return when open."""
        opened = asyncio.Event()
        target = len(agencies) * per_agency
        settled = [0]

        async def listen(key: str) -> None:
            member = self.member(key)
            path = f"/v1/agencies/{member.agency_id}/events"
            conn = self.connection()
            counted = False
            try:
                query = f"since={self.cursors.get(key, 0)}"
                headers = signed_headers(member, "GET", path, query, b"")
                async for event in conn.events(path + "?" + query, headers):
                    if isinstance(event, Response):
                        if event.status != 200:
                            self.listen_refused[event.status] += 1
                            return
                        counted = True
                        self.listen_connected += 1
                        settled[0] += 1
                        if settled[0] >= target:
                            opened.set()
                        continue
                    now = time.monotonic()
                    self.listen_counts[event.event or "message"] += 1
                    if event.id and event.id.isdigit():
                        self.cursors[key] = max(self.cursors.get(key, 0), int(event.id))
                    try:
                        message_id = json.loads(event.data).get("message_id")
                    except ValueError:
                        continue
                    if message_id and message_id not in self.arrivals:
                        self.arrivals[message_id] = now
            except (HTTPError, OSError, asyncio.IncompleteReadError) as exc:
                self.listen_refused[0] += 1
                print(f"listener {key}: {exc!r}", file=sys.stderr)
            finally:
                conn.close()
                if not counted:
                    settled[0] += 1
                    if settled[0] >= target:
                        opened.set()

        for key in agencies:
            for _ in range(per_agency):
                self.listeners.append(asyncio.create_task(listen(key)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opened.wait(), timeout)
        return {"connected": self.listen_connected,
                "refused": {str(k): v for k, v in self.listen_refused.items()}}

    async def listen_stop(self) -> dict[str, Any]:
        """Close every stream; return the arrival instants of the events seen."""
        for task in self.listeners:
            task.cancel()
        for task in self.listeners:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.listeners.clear()
        arrivals, self.arrivals = self.arrivals, {}
        counts = dict(self.listen_counts)
        self.listen_counts.clear()
        connected, self.listen_connected = self.listen_connected, 0
        return {"arrivals": arrivals, "events": counts, "connected": connected}


async def serve(worker: Worker, out: Any) -> None:
    """Read commands from stdin until EOF or ``quit``; answer each with one JSON line."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        name = command.pop("cmd")
        try:
            if name == "quit":
                out.write(json.dumps({"_status": "ok"}) + "\n")
                out.flush()
                return
            if name == "ping":
                result: dict[str, Any] = {"pid": os.getpid()}
            elif name == "prepare":
                result = worker.prepare(**command)
            elif name == "submit_closed":
                result = await worker.submit_closed(**command)
            elif name == "receive_closed":
                result = await worker.receive_closed(**command)
            elif name == "latency_open":
                result = await worker.latency_open(**command)
            elif name == "listen_start":
                result = await worker.listen_start(**command)
            elif name == "probe_inbox":
                result = await worker.probe_inbox(**command)
            elif name == "listen_stop":
                result = await worker.listen_stop()
            elif name == "clear":
                worker.ready.clear()
                result = {}
            else:
                raise ValueError(f"unknown command {name}")
            out.write(json.dumps({**result, "_status": "ok"}) + "\n")
        except Exception as exc:  # report, keep serving
            import traceback

            traceback.print_exc(file=sys.stderr)
            out.write(json.dumps({"_status": "error", "error": f"{type(exc).__name__}: {exc}"})
                      + "\n")
        out.flush()


def main() -> None:
    """Entry point: the config is the first argument (JSON)."""
    config = json.loads(sys.argv[1])
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # nothing else may write to the protocol stream
    worker = Worker(config)
    asyncio.run(serve(worker, out))


if __name__ == "__main__":
    main()
