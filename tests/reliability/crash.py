"""Crash durability: SIGKILL a real relay process at random moments under load, then check.

:func:`run_campaign` starts ``python -m exchange serve`` on a SQLite file, publishes a
partnership, and runs concurrent submitters (sealed referrals, some to two recipients)
and receivers (fetch, compare bytes, post signed delivery receipts) against it. A
killer task SIGKILLs the relay ``kills`` times at random moments (seeded) and starts
it again on the same database. Clients behave like the real agency client: a request
whose answer was lost (connection reset, timeout, 5xx) is retried later with exactly
the same bytes.

When the kills are done every uncertain submission is settled, the relay is killed
once more, restarted, and :func:`verify` checks through the API *and* in the database
file that:

* every message that got a ``201`` (or ``200`` for a retry) is stored exactly once,
  with the sequence, digest and time its receipt promised, and is deliverable: the
  recipient gets back exactly the submitted bytes;
* every message is in the event log exactly once as ``header_accepted`` at its
  receipt's sequence with its header digest; every recorded delivery receipt is
  there exactly once as ``receipt``;
* nothing half-written is visible: no message without its ciphertext, no ciphertext,
  inbox item or event without its message, event sequences and inbox cursors are
  contiguous and match their counters, SQLite's integrity and foreign-key checks pass;
* the log verifies: each header event's digest is the digest of the stored header
  bytes, whose signature verifies against the partnership directory; and when the
  relay serves a transparency log (``exchange/log.py``), it covers every event and
  its tree heads are consistent (see :func:`check_transparency_log`).

Used by ``tests/reliability/test_crash_durability.py`` (CI: 20 kills) and
``bench/fuzz.py crash`` (50+).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from keys.keystore import save_identity
from keys.sealing import header_digest, verify_signed_header
from keys.testing import STANDARD_MEMBERS, Partnership
from schemas.envelope import SealedEnvelope
from tests.relay.conftest import AgencyHTTP, Reply
from tests.reliability.relayproc import RelayProcess
from tests.reliability.traffic import client_for, seal_envelope
from tests.reliability.translog import HeadWatcher

__all__ = ["CampaignReport", "check_database", "check_transparency_log", "run_campaign", "verify"]

#: (sender, recipients) of the referrals the submitters send, in turn.
ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("school", ("mash",)),
    ("gp", ("mash",)),
    ("police", ("mash",)),
    ("school", ("mash", "police")),
    ("academy", ("mash",)),
)
_TRANSIENT = (aiohttp.ClientError, TimeoutError, OSError)
#: The relay's transparency-log key as a partnership member (certified with role ``relay``).
LOG_MEMBER = (
    "relay",
    "reliability-relay",
    "Reliability test relay transparency log",
    "exchange_relay",
    True,
    True,
    (),
    "relay",
)
_LOG_PASSPHRASE = "reliability-log-key"


@dataclass
class Sent:
    """One envelope a submitter sent, and what the relay answered."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    wire: bytes
    receipt: dict[str, Any] | None = None
    statuses: list[int | str] = field(default_factory=list)


@dataclass
class CampaignReport:
    """What happened: counts for the report, and the failures (empty when all is well)."""

    seed: int
    kills: int
    accepted: int = 0
    first_try_201: int = 0
    retried: int = 0
    duplicates_200: int = 0
    lost_answers: int = 0
    receipts: int = 0
    refused: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0
    log_checked: str = "events table"

    def summary(self) -> str:
        """One line for the test output."""
        return (
            f"seed={self.seed} kills={self.kills} accepted={self.accepted} "
            f"(first-try 201: {self.first_try_201}, answers lost to a kill: {self.lost_answers}, "
            f"settled by retry: {self.retried}, of which 200 duplicate: {self.duplicates_200}) "
            f"receipts={self.receipts} events={self.events} log={self.log_checked} "
            f"in {self.seconds:.1f}s"
        )


class _Traffic:
    """Submitters and receivers that keep going across relay restarts."""

    def __init__(
        self, relay: RelayProcess, p: Partnership, session: aiohttp.ClientSession, seed: int
    ) -> None:
        self.relay = relay
        self.p = p
        self.session = session
        self.rng = random.Random(seed ^ 0x5EED)
        self.sent: dict[str, Sent] = {}
        self.uncertain: collections.deque[str] = collections.deque()
        self.receipted: dict[tuple[str, str], dict[str, Any]] = {}
        self.refused: list[str] = []
        self.stop = asyncio.Event()
        self.served_wrong_bytes: list[str] = []
        self.heads = HeadWatcher(lambda: self.client("auditor"))

    def client(self, key: str) -> AgencyHTTP:
        return client_for(self.session, self.relay.url, self.p, key)

    async def _submit(self, sent: Sent) -> None:
        try:
            reply = await self.client(sent.sender).submit(sent.wire)
        except _TRANSIENT:
            sent.statuses.append("lost")
            self.uncertain.append(sent.message_id)
            return
        sent.statuses.append(reply.status)
        if reply.status in (200, 201):
            receipt = reply.json()
            if sent.receipt is not None and receipt["sequence"] != sent.receipt["sequence"]:
                self.refused.append(f"{sent.message_id}: second receipt names another sequence")
            sent.receipt = sent.receipt or receipt
        elif reply.status in (429, 500, 502, 503, 504):
            self.uncertain.append(sent.message_id)
        else:
            self.refused.append(f"{sent.message_id}: {reply.status} {reply.body[:200]!r}")

    async def submitter(self, index: int) -> None:
        turn = index
        while not self.stop.is_set():
            if self.uncertain:
                await self._submit(self.sent[self.uncertain.popleft()])
            else:
                sender, recipients = ROUTES[turn % len(ROUTES)]
                turn += 1
                envelope = seal_envelope(self.p, sender, recipients)
                message_id = json.loads(envelope.header_bytes)["id"]
                sent = Sent(message_id, sender, recipients, envelope.to_wire())
                self.sent[message_id] = sent
                await self._submit(sent)
            if self.uncertain:
                await asyncio.sleep(0.02)  # the relay is probably down: do not spin

    async def receiver(self, key: str) -> None:
        agency = self.client(key)
        while not self.stop.is_set():
            agency.base_url = self.relay.url
            try:
                reply = await agency.get(f"/v1/agencies/{agency.agency_id}/inbox", "limit=50")
                if reply.status != 200:
                    await asyncio.sleep(0.02)
                    continue
                for item in reply.json()["items"]:
                    if item["type"] != "envelope" or self.stop.is_set():
                        continue
                    await self._collect(agency, key, item["message_id"])
            except _TRANSIENT:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0)

    async def _collect(self, agency: AgencyHTTP, key: str, message_id: str) -> None:
        reply = await agency.get(f"/v1/envelopes/{message_id}")
        if reply.status in (404, 410):  # listed but not there: half-written, visible
            self.served_wrong_bytes.append(f"{message_id} (listed, then {reply.status})")
            return
        if reply.status != 200:
            return
        sent = self.sent.get(message_id)
        if sent is None or reply.body != sent.wire:
            self.served_wrong_bytes.append(message_id)
            return
        if self.rng.random() < 0.3:
            return  # leave some deliveries pending: they must stay deliverable
        envelope = SealedEnvelope.from_wire(reply.body)
        answer = await agency.acknowledge(envelope, message_id)
        if answer.status in (200, 201):
            self.receipted[(message_id, agency.agency_id)] = answer.json()

    async def settle(self, deadline: float) -> None:
        """Resubmit every envelope whose answer was lost until each has a receipt."""
        while self.uncertain and time.monotonic() < deadline:
            await self._submit(self.sent[self.uncertain.popleft()])
            if self.uncertain:
                await asyncio.sleep(0.05)


async def run_campaign(
    workdir: Path,
    *,
    kills: int,
    seed: int,
    submitters: int = 4,
    max_uptime: float = 0.5,
    deadline_seconds: float = 600.0,
) -> CampaignReport:
    """Kill the relay ``kills`` times under load; return the report (see :func:`verify`)."""
    started = time.monotonic()
    deadline = started + deadline_seconds
    rng = random.Random(seed)
    p = Partnership.create(at=datetime.now(UTC), members=(*STANDARD_MEMBERS, LOG_MEMBER))
    report = CampaignReport(seed=seed, kills=kills)
    log_key = save_identity(
        workdir / "log-key.json",
        p["relay"].identity,
        _LOG_PASSPHRASE.encode(),
        limits="interactive",
    )
    relay = RelayProcess(
        p.root.public_key,
        workdir,
        env={
            # Not what is tested here: keep the per-agency limits out of the way.
            "EXCHANGE_RATE_LIMIT_PER_SECOND": "100000",
            "EXCHANGE_RATE_LIMIT_BURST": "100000",
            "EXCHANGE_MAX_CONCURRENT_REQUESTS_PER_AGENCY": "10000",
            "EXCHANGE_SWEEP_INTERVAL": "3600",
            "EXCHANGE_LOG_KEY_FILE": str(log_key),
            "EXCHANGE_LOG_KEY_PASSPHRASE": _LOG_PASSPHRASE,
            "EXCHANGE_TREE_HEAD_INTERVAL": "0.5",
        },
    )
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        await relay.start()
        await relay.publish(p.certificates)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            traffic = _Traffic(relay, p, session, seed)
            tasks = [
                asyncio.create_task(traffic.submitter(i), name=f"submitter-{i}")
                for i in range(submitters)
            ]
            tasks += [
                asyncio.create_task(traffic.receiver(key), name=f"receiver-{key}")
                for key in ("mash", "police")
            ]
            tasks.append(asyncio.create_task(traffic.heads.run(traffic.stop), name="heads"))
            try:
                for _ in range(kills):
                    if time.monotonic() > deadline:
                        report.failures.append("the campaign ran out of time before its kills")
                        break
                    await asyncio.sleep(rng.uniform(0.05, max_uptime))
                    for task in tasks:
                        if task.done():
                            task.result()  # a client task crashed: show why
                    relay.kill()
                    await asyncio.sleep(rng.uniform(0.0, 0.1))
                    await relay.start()
            finally:
                traffic.stop.set()
                results = await asyncio.gather(*tasks, return_exceptions=True)
            crashed = [r for r in results if isinstance(r, BaseException)]
            if crashed:
                raise crashed[0]
            await traffic.settle(deadline)
            # The state to check is the state a crash leaves: one more SIGKILL first.
            relay.kill()
            await relay.start()
            await verify(relay, p, session, traffic, report)
        report.kills = relay.kills - 1
    finally:
        relay.terminate()
    report.seconds = time.monotonic() - started
    return report


async def _pages(agency: AgencyHTTP, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    since = 0
    for _ in range(10_000):
        reply = await agency.get(path, f"since={since}&limit=500")
        assert reply.status == 200, reply.body
        page = reply.json()
        items.extend(page["items"])
        if not page["items"]:
            return items
        since = page["next_since"]
    raise AssertionError(f"{path} did not end")


async def verify(
    relay: RelayProcess,
    p: Partnership,
    session: aiohttp.ClientSession,
    traffic: _Traffic,
    report: CampaignReport,
) -> None:
    """Check the relay after the last crash; failures go to ``report.failures``."""
    fail = report.failures.append
    if traffic.uncertain:
        fail(f"{len(traffic.uncertain)} submissions never got an answer after the relay was back")
    report.refused = list(traffic.refused)
    for refusal in traffic.refused:
        fail(f"refused: {refusal}")
    for message_id in traffic.served_wrong_bytes:
        fail(f"{message_id}: the inbox listed it but the relay served other bytes or none")
    accepted = {m: s for m, s in traffic.sent.items() if s.receipt is not None}
    report.accepted = len(accepted)
    report.first_try_201 = sum(1 for s in accepted.values() if s.statuses[0] == 201)
    report.lost_answers = sum(1 for s in traffic.sent.values() if "lost" in s.statuses)
    report.retried = sum(1 for s in accepted.values() if len(s.statuses) > 1)
    report.duplicates_200 = sum(1 for s in accepted.values() if s.statuses[-1] == 200)
    report.receipts = len(traffic.receipted)
    # A lost answer whose request had committed must come back as a duplicate, never twice.
    for s in accepted.values():
        if s.statuses.count(201) > 1:
            fail(f"{s.message_id}: accepted twice (two 201s)")

    auditor = client_for(session, relay.url, p, "auditor")
    # -- through the API: deliverable, with what the receipt promised ---------------------------
    pending: set[tuple[str, str]] = set()
    delivered: set[tuple[str, str]] = set()
    for message_id, s in accepted.items():
        assert s.receipt is not None
        for key in s.recipients:
            reply: Reply = await client_for(session, relay.url, p, key).get(
                f"/v1/envelopes/{message_id}"
            )
            if reply.status != 200 or reply.body != s.wire:
                fail(f"{message_id}: not deliverable to {key} ({reply.status})")
        header = await auditor.get(f"/v1/envelopes/{message_id}/header")
        if header.status != 200:
            fail(f"{message_id}: header not served ({header.status})")
            continue
        view = header.json()
        for name in ("sequence", "stored_at", "header_digest"):
            if view[name] != s.receipt[name]:
                fail(f"{message_id}: {name} is {view[name]}, its receipt said {s.receipt[name]}")
        states = {d["agency"]: d["state"] for d in view["deliveries"]}
        if sorted(states) != sorted(p[key].agency_id for key in s.recipients):
            fail(f"{message_id}: deliveries {sorted(states)} are not its recipients")
        for agency, state in states.items():
            (delivered if state == "delivered" else pending).add((message_id, agency))
    # A receipt the relay answered 201/200 to is recorded (one whose answer was lost may be).
    for delivery in traffic.receipted:
        if delivery not in delivered:
            fail(f"receipt {delivery} was acknowledged but is not marked delivered")
    # -- the event log, as the auditor reads it ----------------------------------------------
    events = await _pages(auditor, "/v1/audit/events")
    report.events = len(events)
    sequences = [e["sequence"] for e in events]
    if sequences != list(range(1, len(events) + 1)):
        fail("event sequences are not 1..n without gaps or repeats")
    headers = collections.Counter(e["message_id"] for e in events if e["type"] == "header_accepted")
    by_sequence = {e["sequence"]: e for e in events}
    for message_id, s in accepted.items():
        assert s.receipt is not None
        if headers[message_id] != 1:
            fail(f"{message_id}: {headers[message_id]} header_accepted events (want 1)")
        event = by_sequence.get(s.receipt["sequence"])
        if event is None or event["message_id"] != message_id:
            fail(f"{message_id}: no event at its receipt's sequence")
        elif event["digest"] != s.receipt["header_digest"]:
            fail(f"{message_id}: the logged digest is not the receipt's")
    strangers = set(headers) - set(accepted)
    unanswered = {m for m in strangers if m not in traffic.sent}
    if unanswered:
        fail(f"{len(unanswered)} logged messages were never submitted: {sorted(unanswered)[:3]}")
    receipt_events = collections.Counter(
        (e["message_id"], e["agency"]) for e in events if e["type"] == "receipt"
    )
    for delivery in delivered:
        if receipt_events[delivery] != 1:
            fail(f"delivery {delivery}: {receipt_events[delivery]} receipt events (want 1)")
    # -- the inbox lists each pending delivery once, and nothing delivered ---------------------
    for key in ("mash", "police"):
        agency = client_for(session, relay.url, p, key)
        items = await _pages(agency, f"/v1/agencies/{agency.agency_id}/inbox")
        listed = collections.Counter(i["message_id"] for i in items if i["type"] == "envelope")
        twice = [m for m, n in listed.items() if n > 1]
        if twice:
            fail(f"{key}: {len(twice)} messages listed more than once in the inbox")
        mine = {m for m, a in pending if a == agency.agency_id}
        if set(listed) != mine:
            fail(
                f"{key}: inbox lists {len(set(listed) - mine)} messages not pending and misses "
                f"{len(mine - set(listed))} pending ones"
            )
    check_database(relay.db_path, p, fail)
    report.log_checked = await check_transparency_log(
        auditor, p, accepted, delivered, traffic.heads, fail
    )


def check_database(db_path: Path, p: Partnership, fail: Any) -> None:
    """Structural checks on the SQLite file as the last crash left it (a second reader)."""
    directory = p.directory()
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        q = connection.execute
        if q("PRAGMA integrity_check").fetchone()[0] != "ok":
            fail("SQLite integrity_check failed")
        if q("PRAGMA foreign_key_check").fetchall():
            fail("SQLite foreign_key_check found orphans")
        checks = {
            "messages without ciphertext or deletion": (
                "SELECT count(*) FROM messages m WHERE m.content_deleted_at IS NULL AND NOT "
                "EXISTS (SELECT 1 FROM envelope_contents c WHERE c.message_id = m.message_id)"
            ),
            "ciphertext without message": (
                "SELECT count(*) FROM envelope_contents c WHERE NOT EXISTS "
                "(SELECT 1 FROM messages m WHERE m.message_id = c.message_id)"
            ),
            "envelope inbox items without message": (
                "SELECT count(*) FROM inbox_items i WHERE i.item_type = 'envelope' AND NOT "
                "EXISTS (SELECT 1 FROM messages m WHERE m.message_id = i.message_id)"
            ),
            "messages without inbox items": (
                "SELECT count(*) FROM messages m WHERE NOT EXISTS "
                "(SELECT 1 FROM inbox_items i WHERE i.message_id = m.message_id)"
            ),
            "messages without their header event": (
                "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM events e "
                "WHERE e.sequence = m.sequence AND e.message_id = m.message_id "
                "AND e.event_type = 'header_accepted')"
            ),
            "header events without message": (
                "SELECT count(*) FROM events e WHERE e.event_type = 'header_accepted' AND NOT "
                "EXISTS (SELECT 1 FROM messages m WHERE m.message_id = e.message_id)"
            ),
            "deliveries listed twice": (
                "SELECT count(*) FROM (SELECT message_id, agency FROM inbox_items WHERE "
                "item_type = 'envelope' GROUP BY message_id, agency HAVING count(*) > 1)"
            ),
            "delivered items without receipt or receipt event": (
                "SELECT count(*) FROM inbox_items i WHERE i.state = 'delivered' AND "
                "(i.receipt IS NULL OR NOT EXISTS (SELECT 1 FROM events e WHERE "
                "e.sequence = i.receipt_sequence AND e.event_type = 'receipt'))"
            ),
        }
        for what, sql in checks.items():
            count = q(sql).fetchone()[0]
            if count:
                fail(f"half-written state: {count} {what}")
        counters = dict(q("SELECT name, value FROM counters").fetchall())
        max_event, n_events = q(
            "SELECT coalesce(max(sequence), 0), count(*) FROM events"
        ).fetchone()
        max_cursor, n_items = q(
            "SELECT coalesce(max(cursor), 0), count(*) FROM inbox_items"
        ).fetchone()
        if not counters.get("events", 0) == max_event == n_events:
            fail(f"events counter {counters.get('events')} vs max {max_event} vs {n_events} rows")
        if not counters.get("inbox", 0) == max_cursor == n_items:
            fail(f"inbox counter {counters.get('inbox')} vs max {max_cursor} vs {n_items} rows")
        # The log verifies: every header event names the stored header, whose signature holds.
        rows = q(
            "SELECT e.sequence, e.digest, m.header, m.signature, m.stored_at FROM events e "
            "JOIN messages m ON m.message_id = e.message_id "
            "WHERE e.event_type = 'header_accepted'"
        ).fetchall()
        for sequence, digest, header, signature, stored_at in rows:
            if digest != header_digest(header):
                fail(f"event {sequence}: digest does not match the stored header")
                continue
            at = datetime.fromisoformat(str(stored_at)).replace(tzinfo=UTC)
            try:
                verify_signed_header(header, signature, directory, at=at)
            except Exception as exc:
                fail(f"event {sequence}: stored header does not verify ({type(exc).__name__})")
    finally:
        connection.close()


async def check_transparency_log(
    auditor: AgencyHTTP,
    p: Partnership,
    accepted: dict[str, Sent],
    delivered: set[tuple[str, str]],
    heads: HeadWatcher,
    fail: Any,
) -> str:
    """Check the Merkle log when the relay serves one; say what was checked.

    Until the transparency log's routes exist the events table is the log, and
    :func:`verify` has checked it; then :func:`tests.reliability.translog.check` runs.
    """
    from exchange.routes import ROUTES
    from tests.reliability import translog

    if "get_tree_head" not in {route.name for route in ROUTES}:
        return "events table (no transparency log routes yet)"
    return await translog.check(auditor, p, accepted, delivered, heads, fail)
