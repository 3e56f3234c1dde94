"""The ceiling: a deliberately minimal server doing the relay's submit and inbox/ack work.

    python -m bench.ceiling_server --port 8090 --db /tmp/ceiling.db --keys keys.json

aiohttp + raw ``sqlite3`` (WAL, ``synchronous=FULL``) + PyNaCl, and nothing else:
no policy engine, no request authentication (RFC 9421 headers are ignored), no
nonce store, no thread tracking, no event log, no logging, no metrics. It is the
figure the relay is measured against (``docs/performance.md``), built the way
``shared/design/PERFORMANCE.md`` describes the fastest prototype:

* **submit**: parse the wire JSON, base64-decode, verify the sender's Ed25519
  signature over the header (PyNaCl), check the body and seals digests
  (``hashlib``), then hand the row to the **single writer**: one task that takes
  every submission waiting (up to ``--batch-max``), writes them in one transaction
  on its own thread and commits once (*group commit*, ``synchronous=FULL``), before
  any ``201`` is sent;
* **inbox**: one indexed query on ``(agency, cursor)`` for pending items, on the event
  loop with a read connection of its own (WAL readers do not block the writer);
* **envelope**: the stored wire bytes by primary key;
* **receipt**: verify the recipient's Ed25519 receipt signature, compare the header
  digest, then mark the item delivered through the same group-commit writer;
* **events**: server-sent events woken per agency after each commit.

Same paths, same JSON shapes for the fields the load generator reads, same bytes
stored (the whole envelope), so the load generator drives it and the relay alike.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from keys.sealing import DOMAIN_BODY, DOMAIN_HEADER
from schemas.encoding import (
    DOMAIN_ENVELOPE,
    DOMAIN_RECEIPT,
    DOMAIN_SEALS,
    pae,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    sender TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    header BLOB NOT NULL,
    signature BLOB NOT NULL,
    header_digest BLOB NOT NULL,
    envelope_digest BLOB NOT NULL,
    wire BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    cursor INTEGER PRIMARY KEY,
    agency TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    receipt BLOB
);
CREATE INDEX IF NOT EXISTS ix_inbox_agency_cursor ON inbox (agency, cursor);
CREATE INDEX IF NOT EXISTS ix_inbox_message ON inbox (message_id);
"""


def connect(path: str) -> sqlite3.Connection:
    """A connection in WAL mode with ``synchronous=FULL``; transactions are explicit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def init_db(path: str) -> None:
    """Create the tables (idempotent)."""
    conn = connect(path)
    conn.executescript(SCHEMA)
    conn.close()


class Problem(Exception):
    """A refusal: status and code."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


def _b64(text: object) -> bytes:
    if not isinstance(text, str):
        raise Problem(400, "invalid-envelope")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "invalid-envelope") from None


WriteJob = Callable[[sqlite3.Connection], Any]


class GroupCommitWriter:
    """One task, one thread, one connection: batches of jobs, one commit per batch."""

    def __init__(self, path: str, batch_max: int) -> None:
        self._conn = connect(path)
        self._batch_max = batch_max
        self._queue: asyncio.Queue[tuple[WriteJob, asyncio.Future[Any]]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ceiling-writer")
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=True)
        self._conn.close()

    async def run(self, job: WriteJob) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    def _commit(self, jobs: list[WriteJob]) -> list[tuple[bool, Any]]:
        conn = self._conn
        results: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((True, job(conn)))
                    conn.execute("RELEASE job")
                except (Problem, sqlite3.IntegrityError) as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await loop.run_in_executor(
                    self._executor, self._commit, [job for job, _ in batch]
                )
            except Exception as exc:  # the whole transaction failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.jobs += len(batch)
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)


class Ceiling:
    """The handlers and their state."""

    def __init__(self, db: str, keys: dict[str, bytes], batch_max: int) -> None:
        self.db = db
        self.keys = {cert: VerifyKey(key) for cert, key in keys.items()}
        self.batch_max = batch_max
        self.writer: GroupCommitWriter | None = None
        self.reader: sqlite3.Connection | None = None
        self.events: dict[str, set[asyncio.Event]] = {}
        self._lock = threading.Lock()
        self.sequence = 0
        self.cursor = 0

    async def startup(self, app: web.Application) -> None:
        init_db(self.db)
        self.reader = connect(self.db)
        row = self.reader.execute("SELECT coalesce(max(sequence), 0) FROM messages").fetchone()
        self.sequence = int(row[0])
        row = self.reader.execute("SELECT coalesce(max(cursor), 0) FROM inbox").fetchone()
        self.cursor = int(row[0])
        self.writer = GroupCommitWriter(self.db, self.batch_max)
        self.writer.start()

    async def cleanup(self, app: web.Application) -> None:
        for group in self.events.values():
            for event in group:
                event.set()
        if self.writer is not None:
            await self.writer.stop()
        if self.reader is not None:
            self.reader.close()

    def _wake(self, agencies: list[str]) -> None:
        for agency in agencies:
            for event in self.events.get(agency, ()):
                event.set()

    # -- handlers ----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def submit(self, request: web.Request) -> web.Response:
        wire = await request.read()
        try:
            envelope = json.loads(wire)
            header_bytes = _b64(envelope["header"])
            signature = _b64(envelope["signature"])
            seals = _b64(envelope["seals"])
            body = _b64(envelope["body"])
            header = json.loads(header_bytes)
            message_id = header["id"]
            cert = header["sender"]["cert"]
            recipients = [(r["agency"], r["mailbox"]) for r in header["recipients"]]
            digests = header["digests"]
        except (ValueError, KeyError, TypeError):
            return _problem(400, "invalid-envelope")
        except Problem as exc:
            return _problem(exc.status, exc.code)
        key = self.keys.get(cert)
        if key is None:
            return _problem(403, "unknown-agency")
        try:
            key.verify(pae(DOMAIN_ENVELOPE, header_bytes), signature)
        except BadSignatureError:
            return _problem(400, "bad-signature")
        body_digest = base64.b64encode(hashlib.sha256(pae(DOMAIN_BODY, body)).digest()).decode()
        seals_digest = base64.b64encode(hashlib.sha256(pae(DOMAIN_SEALS, seals)).digest()).decode()
        if body_digest != digests.get("body") or seals_digest != digests.get("seals"):
            return _problem(400, "bad-signature")
        header_digest = hashlib.sha256(pae(DOMAIN_HEADER, header_bytes)).digest()
        envelope_digest = hashlib.sha256(wire).digest()
        stored_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        sender = header["sender"]["agency"]

        def job(conn: sqlite3.Connection) -> tuple[int, bool]:
            found = conn.execute(
                "SELECT sequence, envelope_digest FROM messages WHERE message_id = ?",
                (message_id,),
            ).fetchone()
            if found is not None:
                if found[1] != envelope_digest:
                    raise Problem(409, "duplicate-message-id")
                return int(found[0]), True
            self.sequence += 1  # only the writer thread touches the counters
            sequence = self.sequence
            conn.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, sequence, sender, stored_at, header_bytes, signature,
                 header_digest, envelope_digest, wire),
            )
            rows = []
            for agency, mailbox in recipients:
                self.cursor += 1
                rows.append((self.cursor, agency, mailbox, message_id, "pending"))
            conn.executemany(
                "INSERT INTO inbox (cursor, agency, mailbox, message_id, state) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return sequence, False

        assert self.writer is not None
        try:
            sequence, duplicate = await self.writer.run(job)
        except Problem as exc:
            return _problem(exc.status, exc.code)
        if not duplicate:
            self._wake([agency for agency, _ in recipients])
        return web.json_response(
            {
                "message_id": message_id,
                "header_digest": base64.b64encode(header_digest).decode(),
                "stored_at": stored_at,
                "sequence": sequence,
                "relay": "ceiling",
                "duplicate": duplicate,
            },
            status=200 if duplicate else 201,
        )

    def _inbox(self, agency: str, since: int, limit: int) -> list[dict[str, Any]]:
        assert self.reader is not None
        rows = self.reader.execute(
            "SELECT i.cursor, i.mailbox, m.message_id, m.sender, m.stored_at, m.header, "
            "m.signature FROM inbox i JOIN messages m ON m.message_id = i.message_id "
            "WHERE i.agency = ? AND i.cursor > ? AND i.state = 'pending' "
            "ORDER BY i.cursor LIMIT ?",
            (agency, since, limit),
        ).fetchall()
        return [
            {
                "cursor": cursor,
                "type": "envelope",
                "message_id": message_id,
                "sender": {"agency": sender},
                "mailbox": mailbox,
                "header": base64.b64encode(header).decode(),
                "signature": base64.b64encode(signature).decode(),
                "stored_at": stored_at,
            }
            for cursor, mailbox, message_id, sender, stored_at, header, signature in rows
        ]

    async def inbox(self, request: web.Request) -> web.Response:
        agency = request.match_info["agency"]
        try:
            since = int(request.query.get("since", "0") or 0)
            limit = min(500, int(request.query.get("limit", "100") or 100))
        except ValueError:
            return _problem(400, "invalid-request")
        items = self._inbox(agency, since, limit)
        return web.json_response(
            {"items": items, "next_since": items[-1]["cursor"] if items else since}
        )

    async def envelope(self, request: web.Request) -> web.Response:
        assert self.reader is not None
        row = self.reader.execute(
            "SELECT wire FROM messages WHERE message_id = ?", (request.match_info["id"],)
        ).fetchone()
        if row is None:
            return _problem(404, "not-found")
        return web.Response(
            body=row[0], headers={"Content-Type": "application/vnd.safeguard.envelope.v1+json"}
        )

    async def receipt(self, request: web.Request) -> web.Response:
        message_id = request.match_info["id"]
        raw = await request.read()
        try:
            document = json.loads(raw)
            body = _b64(document["body"])
            signature = _b64(document["signature"])
            value = json.loads(body)
            cert = value["cert"]
            agency = value["recipient"]
            digest = _b64(value["header_digest"])
        except (ValueError, KeyError, TypeError):
            return _problem(400, "invalid-receipt")
        except Problem:
            return _problem(400, "invalid-receipt")
        if value.get("message_id") != message_id:
            return _problem(400, "invalid-receipt")
        key = self.keys.get(cert)
        if key is None:
            return _problem(403, "unknown-agency")
        try:
            key.verify(pae(DOMAIN_RECEIPT, body), signature)
        except BadSignatureError:
            return _problem(400, "invalid-receipt")

        def job(conn: sqlite3.Connection) -> bool:
            found = conn.execute(
                "SELECT m.header_digest, i.cursor, i.state FROM inbox i JOIN messages m "
                "ON m.message_id = i.message_id WHERE i.message_id = ? AND i.agency = ?",
                (message_id, agency),
            ).fetchone()
            if found is None:
                raise Problem(404, "not-recipient")
            if found[0] != digest:
                raise Problem(400, "invalid-receipt")
            if found[2] == "delivered":
                return False
            conn.execute(
                "UPDATE inbox SET state = 'delivered', receipt = ? WHERE cursor = ?",
                (raw, found[1]),
            )
            return True

        assert self.writer is not None
        try:
            changed = await self.writer.run(job)
        except Problem as exc:
            return _problem(exc.status, exc.code)
        return web.json_response(
            {"message_id": message_id, "recipient": agency, "state": "delivered",
             "duplicate": not changed},
            status=201 if changed else 200,
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        agency = request.match_info["agency"]
        last = request.headers.get("Last-Event-ID") or request.query.get("since") or "0"
        cursor = int(last) if last.isdigit() else 0
        event = asyncio.Event()
        self.events.setdefault(agency, set()).add(event)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            await response.write(b": connected\n\n")
            while True:
                items = self._inbox(agency, cursor, 500)
                if items:
                    cursor = items[-1]["cursor"]
                    chunks = [
                        f"id: {item['cursor']}\nevent: envelope\n"
                        f"data: {json.dumps(item, separators=(',', ':'))}\n\n"
                        for item in items
                    ]
                    await response.write("".join(chunks).encode())
                    continue
                try:
                    await asyncio.wait_for(event.wait(), 15)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                event.clear()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.events[agency].discard(event)
        return response


def _problem(status: int, code: str) -> web.Response:
    return web.json_response(
        {"type": f"about:blank#{code}", "status": status, "code": code},
        status=status,
        content_type="application/problem+json",
    )


def create_app(db: str, keys: dict[str, bytes], batch_max: int = 256) -> web.Application:
    """The ceiling app over database ``db``; ``keys`` maps certificate ids to Ed25519 keys."""
    ceiling = Ceiling(db, keys, batch_max)
    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.on_startup.append(ceiling.startup)
    app.on_cleanup.append(ceiling.cleanup)
    app.router.add_get("/health", ceiling.health)
    app.router.add_post("/v1/envelopes", ceiling.submit)
    app.router.add_get("/v1/envelopes/{id}", ceiling.envelope)
    app.router.add_post("/v1/envelopes/{id}/receipts", ceiling.receipt)
    app.router.add_get("/v1/agencies/{agency}/inbox", ceiling.inbox)
    app.router.add_get("/v1/agencies/{agency}/events", ceiling.stream)
    return app


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--keys", required=True, help="JSON {certificate id: base64 key}")
    parser.add_argument("--batch-max", type=int, default=256)
    args = parser.parse_args()
    with open(args.keys, encoding="utf-8") as f:
        keys = {cert: base64.b64decode(key) for cert, key in json.load(f).items()}
    web.run_app(
        create_app(args.db, keys, args.batch_max),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        shutdown_timeout=2.0,
    )


if __name__ == "__main__":
    main()
