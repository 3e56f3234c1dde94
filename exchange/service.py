"""The relay's use cases, framework-free: submit, deliver, receipts, threads, audit, sweeps.

Theory of operation
-------------------
Views call one method per request with the authenticated :class:`~exchange.auth.Caller`
and plain values; methods return JSON-ready dicts (or bytes) or raise an
:class:`~schemas.problems.ExchangeError`. Storage goes through
:class:`~exchange.store.RelayStore`; thread rules through
:class:`~exchange.threads.ThreadTracker`; time through the injected clock.

**Submit** refuses, in order: oversize; malformed envelope; a sender certificate
unknown, expired or revoked *now*, a bad header signature or digests; a sender
that is not the authenticated agency; unknown recipients (agency + mailbox in the
directory); header basis codes the policy engine rejects for any recipient; a
kind the thread's state or the sender's side does not allow. A message id already
stored is answered from the store (checked inside the submit transaction, and
again before any of the last three refusals): the same bytes get the same receipt
(``duplicate: true``), anything else a 409. Only after the commit returns is the
receipt built and the recipients' streams woken.

The relay never decrypts: it sees the signed header (ids, kind, basis codes) and
stores the ciphertext as received.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exchange.auth import Caller, Clock
from exchange.directory_cache import DirectoryCache
from exchange.log import TransparencyLog
from exchange.metrics import RelayMetrics
from exchange.push import Notifier
from exchange.settings import Settings
from exchange.store import (
    AlreadyStored,
    Delivery,
    InboxEntry,
    NewMessage,
    RelayStore,
    StoredMessage,
    ThreadRow,
)
from exchange.threads import OPEN_STATES, ThreadTracker
from keys.certificates import CertificateBody
from keys.receipts import DeliveryReceipt, verify_receipt
from keys.sealing import VerifiedHeader, basis_verdict, parse_envelope, verify_header
from schemas.encoding import b64encode
from schemas.policy import raise_for_verdict
from schemas.policy.findings import REJECT_LEVELS
from schemas.problems import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    DuplicateMessageId,
    ExchangeError,
    Expired,
    Forbidden,
    InvalidEnvelope,
    InvalidReceipt,
    InvalidRequest,
    InvalidTransition,
    LawfulBasisRejected,
    NotFound,
    NotRecipient,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    UnknownAgency,
    UnknownRecipient,
)
from schemas.timefmt import format_time

__all__ = ["RelayService", "SubmitResult"]

logger = logging.getLogger("exchange.service")


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The submit receipt and whether this request stored the message (201) or not (200)."""

    receipt: dict[str, Any]
    created: bool


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def _log(event: str, **fields: Any) -> None:
    logger.info(event, extra={"fields": fields})


class RelayService:
    """Everything the relay does, behind one object per app."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: RelayStore,
        directory: DirectoryCache,
        notifier: Notifier,
        clock: Clock,
        metrics: RelayMetrics,
        tracker: ThreadTracker | None = None,
        log: TransparencyLog | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.directory = directory
        self.notifier = notifier
        self.clock = clock
        self.metrics = metrics
        self.tracker = tracker or ThreadTracker(settings)
        #: The transparency log (key, tree heads, log reads).
        self.log = log or TransparencyLog(
            settings=settings, store=store, directory=directory, clock=clock
        )

    # -- submit ------------------------------------------------------------------------------

    async def submit(self, caller: Caller, wire: bytes) -> SubmitResult:
        """Verify, check and store an envelope; see the module docstring for the order."""
        try:
            result = await self._submit(caller, wire)
        except ExchangeError as exc:
            self.metrics.rejected.labels(exc.code).inc()
            _log("envelope refused", agency=caller.agency_id, code=exc.code)
            raise
        if result.created:
            self.metrics.accepted.inc()
        else:
            self.metrics.duplicates.inc()
        return result

    async def _submit(self, caller: Caller, wire: bytes) -> SubmitResult:
        now = self.clock()
        if len(wire) > self.settings.max_envelope_bytes:
            raise PayloadTooLarge(
                f"envelopes are limited to {self.settings.max_envelope_bytes} bytes"
            )
        if caller.role != "agency":
            raise Forbidden("only agencies send messages")
        envelope = parse_envelope(wire)
        directory = self.directory.directory
        verified = verify_header(envelope, directory, at=now)
        header = verified.header
        if header.sender.agency != caller.agency_id:
            raise Forbidden("the envelope's sender is not the authenticated agency")
        if header.created_at > now + self.settings.clock_skew:
            raise InvalidEnvelope("the header's created_at is in the future")
        envelope_digest = hashlib.sha256(wire).digest()

        try:
            recipients = [
                self._recipient(directory, r.agency, r.mailbox, now) for r in header.recipients
            ]
            verdict = basis_verdict(
                kind=header.kind,
                sent_at=header.created_at,
                sender=verified.sender_certificate,
                recipients=recipients,
                basis=header.basis,
                justification_available=False,
            )
            raise_for_verdict(verdict)
            tracked = True
            if header.thread != header.id and await self.store.thread(header.thread) is None:
                if await self.store.find_message(header.thread) is None:
                    raise InvalidTransition("the thread is not known to this relay")
                tracked = False
            step = self.tracker.step_for_message(header, stored_at=now, thread_tracked=tracked)
        except ExchangeError as exc:
            # A retry of a message already stored gets its receipt even if the
            # directory, policy or thread state has moved on since.
            existing = await self.store.find_message(header.id)
            if existing is not None:
                return await self._duplicate(existing, envelope_digest)
            if isinstance(exc, LawfulBasisRejected):
                await self._log_rejection(verified, exc, now)
            raise

        new = NewMessage(
            message_id=header.id,
            thread_id=header.thread,
            in_reply_to=header.in_reply_to,
            kind=header.kind,
            sender_agency=header.sender.agency,
            sender_mailbox=header.sender.mailbox,
            sender_cert=header.sender.cert or "",
            created_at=header.created_at,
            stored_at=now,
            header=verified.header_bytes,
            signature=verified.signature,
            header_digest=verified.digest,
            envelope_digest=envelope_digest,
            wire=wire,
            recipients=tuple((r.agency, r.mailbox) for r in header.recipients),
            policy_decision=verdict.decision,
            policy_version=verdict.policy_version,
            seals=envelope.seals_bytes,
        )
        outcome = await self.store.submit(new, thread_step=step)
        if isinstance(outcome, AlreadyStored):
            return await self._duplicate(outcome.message, envelope_digest)
        await self.notifier.publish(agency for agency, _ in new.recipients)
        _log(
            "envelope accepted",
            message_id=header.id,
            thread=header.thread,
            kind=header.kind,
            sender=header.sender.agency,
            recipients=[agency for agency, _ in new.recipients],
            sequence=outcome.sequence,
            policy=verdict.decision,
        )
        receipt = self._receipt(
            message_id=header.id,
            header_digest=verified.digest,
            stored_at=outcome.stored_at,
            sequence=outcome.sequence,
            duplicate=False,
        )
        log_part = self.log.submit_receipt_log(outcome)
        if log_part is not None:
            receipt["log"] = log_part
        return SubmitResult(receipt=receipt, created=True)

    async def _log_rejection(
        self, verified: VerifiedHeader, error: LawfulBasisRejected, now: datetime
    ) -> None:
        """Put a signed header refused on its lawful basis in the log (once per message id)."""
        header = verified.header
        rules = [str(f.get("rule")) for f in error.findings if f.get("level") in REJECT_LEVELS]
        await self.store.record_rejection(
            message_id=header.id,
            thread_id=header.thread,
            sender=header.sender.agency,
            header=verified.header_bytes,
            signature=verified.signature,
            header_digest=verified.digest,
            code=error.code,
            rules=rules or [str(f.get("rule")) for f in error.findings],
            policy_version=str(error.extensions.get("policy_version", "")),
            at=now,
        )

    def _recipient(
        self, directory: Any, agency: str, mailbox: str, now: datetime
    ) -> CertificateBody:
        try:
            body: CertificateBody = directory.agency(agency, at=now)
        except (UnknownAgency, CertificateExpired, CertificateNotYetValid, CertificateRevoked):
            raise UnknownRecipient(
                f"recipient {agency} has no valid certificate in the directory"
            ) from None
        if body.role != "agency":
            raise UnknownRecipient(f"{agency} does not receive messages")
        if mailbox not in body.mailboxes:
            raise UnknownRecipient(f"{agency} has no mailbox {mailbox!r}")
        return body

    async def _duplicate(self, existing: StoredMessage, envelope_digest: bytes) -> SubmitResult:
        if not hmac.compare_digest(existing.envelope_digest, envelope_digest):
            raise DuplicateMessageId(
                "a different envelope with this message id was already accepted"
            )
        receipt = self._receipt(
            message_id=existing.message_id,
            header_digest=existing.header_digest,
            stored_at=existing.stored_at,
            sequence=existing.sequence,
            duplicate=True,
        )
        log_part = await self.log.receipt_log_for(existing.message_id)
        if log_part is not None:
            receipt["log"] = log_part
        return SubmitResult(receipt=receipt, created=False)

    def _receipt(
        self,
        *,
        message_id: str,
        header_digest: bytes,
        stored_at: datetime,
        sequence: int,
        duplicate: bool,
    ) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "header_digest": b64encode(header_digest),
            "stored_at": format_time(stored_at),
            "sequence": sequence,
            "relay": self.settings.relay_id,
            "duplicate": duplicate,
        }

    # -- reading envelopes ---------------------------------------------------------------------

    async def _message(self, message_id: str) -> StoredMessage:
        message = await self.store.find_message(message_id)
        if message is None:
            raise NotFound("no message with this id")
        return message

    async def get_envelope(self, caller: Caller, message_id: str) -> bytes:
        """The envelope exactly as submitted, for its sender and recipients (never the auditor)."""
        if caller.is_auditor:
            raise Forbidden("the auditor reads headers, never message bodies")
        message = await self._message(message_id)
        deliveries = await self.store.deliveries(message_id)
        mine = [d for d in deliveries if d.agency == caller.agency_id]
        if not mine and message.sender_agency != caller.agency_id:
            raise NotRecipient("this agency is neither the sender nor a recipient")
        if mine and mine[0].state == "expired":
            raise Expired("this delivery expired before it was collected")
        content = await self.store.get_content(message_id)
        if content is None:
            raise Expired("the envelope's content has been deleted under the retention policy")
        return content

    async def get_header(self, caller: Caller, message_id: str) -> dict[str, Any]:
        """The signed header, its signature and delivery state (sender, recipients, auditor)."""
        message = await self._message(message_id)
        deliveries = await self.store.deliveries(message_id)
        self._may_see(caller, message, deliveries)
        return self._header_view(message, deliveries)

    async def status(self, caller: Caller, message_id: str) -> dict[str, Any]:
        """Per-recipient delivery state with the signed receipts (sender and auditor)."""
        message = await self._message(message_id)
        if message.sender_agency != caller.agency_id and not caller.is_auditor:
            raise Forbidden("only the sender sees a message's delivery state")
        deliveries = await self.store.deliveries(message_id)
        return {
            "message_id": message.message_id,
            "stored_at": format_time(message.stored_at),
            "content_deleted_at": _time(message.content_deleted_at),
            "deliveries": [self._delivery_view(d) for d in deliveries],
        }

    def _may_see(self, caller: Caller, message: StoredMessage, deliveries: list[Delivery]) -> None:
        if caller.is_auditor or message.sender_agency == caller.agency_id:
            return
        if any(d.agency == caller.agency_id for d in deliveries):
            return
        raise NotRecipient("this agency is neither the sender nor a recipient")

    def _delivery_view(self, delivery: Delivery) -> dict[str, Any]:
        receipt = None if delivery.receipt is None else json.loads(delivery.receipt)
        return {
            "agency": delivery.agency,
            "mailbox": delivery.mailbox,
            "state": delivery.state,
            "delivered_at": _time(delivery.delivered_at),
            "expired_at": _time(delivery.expired_at),
            "receipt": receipt,
            "receipt_sequence": delivery.receipt_sequence,
        }

    def _header_view(
        self, message: StoredMessage, deliveries: list[Delivery] | None = None
    ) -> dict[str, Any]:
        view: dict[str, Any] = {
            "message_id": message.message_id,
            "sequence": message.sequence,
            "thread": message.thread_id,
            "in_reply_to": message.in_reply_to,
            "kind": message.kind,
            "sender": {"agency": message.sender_agency, "mailbox": message.sender_mailbox},
            "created_at": format_time(message.created_at),
            "stored_at": format_time(message.stored_at),
            "header": b64encode(message.header),
            "signature": b64encode(message.signature),
            "header_digest": b64encode(message.header_digest),
            "policy": {"decision": message.policy_decision, "version": message.policy_version},
            "content_deleted_at": _time(message.content_deleted_at),
            "seals": None if message.seals is None else b64encode(message.seals),
        }
        if deliveries is not None:
            view["deliveries"] = [
                {
                    "agency": d.agency,
                    "mailbox": d.mailbox,
                    "state": d.state,
                    "delivered_at": _time(d.delivered_at),
                }
                for d in deliveries
            ]
        return view

    # -- receipts ------------------------------------------------------------------------------

    async def post_receipt(self, caller: Caller, message_id: str, data: object) -> dict[str, Any]:
        """Record a recipient's signed delivery receipt; idempotent."""
        now = self.clock()
        message = await self._message(message_id)
        deliveries = await self.store.deliveries(message_id)
        if not any(d.agency == caller.agency_id for d in deliveries):
            raise NotRecipient("only a recipient posts a delivery receipt")
        receipt = DeliveryReceipt.from_json(data)
        body = verify_receipt(receipt, self.directory.directory, at=now)
        if body.message_id != message_id:
            raise InvalidReceipt("the receipt names another message")
        if body.recipient != caller.agency_id:
            raise InvalidReceipt("the receipt is signed by another agency")
        if not hmac.compare_digest(body.header_digest, message.header_digest):
            raise InvalidReceipt("the receipt's header digest does not match the stored header")
        document = json.dumps(receipt.to_json(), sort_keys=True, separators=(",", ":")).encode()
        delivery, changed = await self.store.record_receipt(
            message_id=message_id,
            agency=caller.agency_id,
            receipt=document,
            receipt_digest=hashlib.sha256(receipt.body_bytes).digest(),
            at=now,
            thread_id=message.thread_id,
            thread_step=self.tracker.step_for_receipt(
                message_id=message_id, agency=caller.agency_id, at=now
            ),
        )
        if changed:
            self.metrics.receipts.inc()
            _log("receipt recorded", message_id=message_id, agency=caller.agency_id)
        return {
            "message_id": message_id,
            "recipient": caller.agency_id,
            "state": delivery.state,
            "delivered_at": _time(delivery.delivered_at),
            "sequence": delivery.receipt_sequence,
            "duplicate": not changed,
        }

    # -- inbox and push ------------------------------------------------------------------------

    def _own(self, caller: Caller, agency: str, mailbox: str | None = None) -> None:
        if caller.agency_id != agency or caller.is_auditor:
            raise Forbidden("an agency reads only its own mailboxes")
        if mailbox is not None and mailbox not in caller.mailboxes:
            raise NotFound(f"{agency} has no mailbox {mailbox!r}")

    def _page(self, limit: int | None) -> int:
        if limit is None:
            return self.settings.default_page_size
        if not 1 <= limit <= self.settings.max_page_size:
            raise InvalidRequest(f"limit must be between 1 and {self.settings.max_page_size}")
        return limit

    def inbox_item(self, entry: InboxEntry) -> dict[str, Any]:
        """The wire form of one inbox item."""
        if entry.item_type == "envelope" and entry.message is not None:
            m = entry.message
            return {
                "cursor": entry.cursor,
                "type": "envelope",
                "message_id": m.message_id,
                "kind": m.kind,
                "thread": m.thread_id,
                "sender": {"agency": m.sender_agency, "mailbox": m.sender_mailbox},
                "mailbox": entry.mailbox,
                "header": b64encode(m.header),
                "signature": b64encode(m.signature),
                "stored_at": format_time(m.stored_at),
            }
        return {
            "cursor": entry.cursor,
            "type": "notice",
            "notice": entry.notice,
            "thread": entry.thread_id,
            "message_id": entry.message_id,
            "mailbox": entry.mailbox,
            "created_at": format_time(entry.created_at),
            "detail": entry.detail,
        }

    async def inbox(
        self,
        caller: Caller,
        agency: str,
        *,
        since: int = 0,
        limit: int | None = None,
        mailbox: str | None = None,
    ) -> dict[str, Any]:
        """Inbox items after cursor ``since``; envelopes stay until receipted."""
        self._own(caller, agency, mailbox)
        if since < 0:
            raise InvalidRequest("since must not be negative")
        entries = await self.store.inbox(
            agency, since=since, limit=self._page(limit), mailbox=mailbox
        )
        items = [self.inbox_item(e) for e in entries]
        next_since = entries[-1].cursor if entries else since
        return {"items": items, "next_since": next_since}

    def open_stream(self, caller: Caller, agency: str) -> None:
        """Check a push stream may open (ownership and connection limits)."""
        self._own(caller, agency)
        if self.notifier.count(agency) >= self.settings.max_streams_per_agency:
            raise RateLimited(
                "too many push streams open for this agency",
                extensions={"retry_after": 5},
            )
        if self.notifier.count() >= self.settings.max_streams_total:
            raise RateLimited("too many push streams open", extensions={"retry_after": 5})

    async def stream(
        self, caller: Caller, agency: str, *, since: int
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield batches of inbox items as they arrive; an empty batch means "still here".

        Subscribes before the first read, so an item committed while a batch is being
        sent wakes the next wait instead of being missed. While the database is
        unavailable the stream stays open (keep-alives) and reads again every
        ``database_retry_after`` seconds, or as soon as it is woken.
        """
        self.open_stream(caller, agency)
        subscription = self.notifier.subscribe(agency)
        heartbeat = self.settings.push_heartbeat.total_seconds()
        retry = float(self.settings.database_retry_after)
        cursor = max(0, since)
        try:
            while not subscription.closed:
                try:
                    entries = await self.store.inbox(
                        agency, since=cursor, limit=self.settings.max_page_size
                    )
                except ServiceUnavailable:
                    if not await subscription.wait(min(heartbeat, retry)):
                        yield []
                    continue
                if entries:
                    cursor = entries[-1].cursor
                    yield [self.inbox_item(e) for e in entries]
                    continue
                woke = await subscription.wait(heartbeat)
                if not woke and not subscription.closed:
                    yield []
        finally:
            subscription.close()

    # -- threads -------------------------------------------------------------------------------

    def _thread_view(self, row: ThreadRow, now: datetime) -> dict[str, Any]:
        deadlines = self.tracker.deadlines(row, now)
        return {
            "thread": row.thread_id,
            "type": row.thread_type,
            "opened_by": row.opened_by_kind,
            "state": row.state,
            "referrer": {"agency": row.referrer_agency, "mailbox": row.referrer_mailbox},
            "recipient": {"agency": row.recipient_agency, "mailbox": row.recipient_mailbox},
            "opened_at": format_time(row.opened_at),
            "updated_at": format_time(row.updated_at),
            "delivered_at": _time(row.delivered_at),
            "acknowledged_at": _time(row.acknowledged_at),
            "feedback_at": _time(row.feedback_at),
            "closed_at": _time(row.closed_at),
            "overdue": any(d.overdue for d in deadlines),
            "deadlines": [d.to_dict() for d in deadlines],
        }

    async def threads(
        self,
        caller: Caller,
        *,
        role: str | None = None,
        open_only: bool | None = None,
        overdue: bool | None = None,
    ) -> dict[str, Any]:
        """Threads the caller takes part in (every thread, for the auditor)."""
        if role not in (None, "sent", "received"):
            raise InvalidRequest("role must be sent or received")
        now = self.clock()
        rows = await self.store.threads(
            agency=None if caller.is_auditor else caller.agency_id,
            role=role,
            open_states=OPEN_STATES if open_only else (),
        )
        views = [self._thread_view(row, now) for row in rows]
        if open_only is False:
            views = [v for v in views if v["state"] not in OPEN_STATES]
        if overdue is not None:
            views = [v for v in views if v["overdue"] is overdue]
        return {"threads": views}

    async def thread(self, caller: Caller, thread_id: str) -> dict[str, Any]:
        """One thread: state, deadlines and its chronology of headers (no bodies)."""
        row = await self.store.thread(thread_id)
        if row is None:
            raise NotFound("no tracked thread with this id")
        if not caller.is_auditor and caller.agency_id not in {
            row.referrer_agency,
            row.recipient_agency,
        }:
            raise Forbidden("only the thread's participants and the auditor see it")
        view = self._thread_view(row, self.clock())
        messages = await self.store.thread_messages(thread_id)
        view["messages"] = [self._header_view(m) for m in messages]
        return view

    async def overdue(self, caller: Caller, agency: str) -> dict[str, Any]:
        """Open threads of this agency with an overdue deadline, either side."""
        self._own(caller, agency)
        now = self.clock()
        rows = await self.store.threads(agency=agency, open_states=OPEN_STATES)
        result = []
        for row in rows:
            view = self._thread_view(row, now)
            if view["overdue"]:
                view["role"] = "referrer" if row.referrer_agency == agency else "recipient"
                result.append(view)
        return {"agency": agency, "threads": result}

    # -- audit ---------------------------------------------------------------------------------

    async def audit_headers(
        self, caller: Caller, *, since: int = 0, limit: int | None = None
    ) -> dict[str, Any]:
        """Every accepted header in log order (auditor only)."""
        if not caller.is_auditor:
            raise Forbidden("only the partnership auditor reads the audit log")
        messages = await self.store.headers_since(since, self._page(limit))
        items = [self._header_view(m) for m in messages]
        return {"items": items, "next_since": messages[-1].sequence if messages else since}

    async def audit_events(
        self, caller: Caller, *, since: int = 0, limit: int | None = None
    ) -> dict[str, Any]:
        """The relay's event log: headers, receipts, deletions, expiries, notices (auditor)."""
        if not caller.is_auditor:
            raise Forbidden("only the partnership auditor reads the audit log")
        events = await self.store.events_since(since, self._page(limit))
        items = [
            {
                "sequence": e.sequence,
                "at": format_time(e.at),
                "type": e.event_type,
                "message_id": e.message_id,
                "thread": e.thread_id,
                "agency": e.agency,
                "digest": None if e.digest is None else b64encode(e.digest),
                "detail": e.detail,
            }
            for e in events
        ]
        return {"items": items, "next_since": events[-1].sequence if events else since}

    # -- transparency log ----------------------------------------------------------------------

    async def message_log(self, caller: Caller, message_id: str) -> dict[str, Any]:
        """A message's log entries with inclusion proofs (sender, recipients, auditor)."""
        message = await self._message(message_id)
        self._may_see(caller, message, await self.store.deliveries(message_id))
        return await self.log.message_entries(message_id)

    # -- directory -----------------------------------------------------------------------------

    def directory_view(self) -> dict[str, Any]:
        """The published directory: root fingerprint, certificates, revocation list."""
        return self.directory.directory.to_json()

    async def publish_certificate(self, data: object) -> tuple[dict[str, Any], bool]:
        """Publish a root-signed certificate; returns its summary and whether it is new."""
        certificate, created = await self.directory.publish_certificate(data, at=self.clock())
        body = certificate.body
        return {"certificate_id": certificate.id, "agency_id": body.agency_id}, created

    async def publish_revocations(self, data: object) -> tuple[dict[str, Any], bool]:
        """Publish a root-signed revocation list; takes effect on the next request."""
        rl, created = await self.directory.publish_revocations(data, at=self.clock())
        return {"sequence": rl.sequence, "revoked": len(rl.revoked)}, created

    # -- background work -----------------------------------------------------------------------

    async def sweep(self) -> dict[str, int]:
        """One maintenance pass: retention, expiry, deadline escalation, directory refresh."""
        now = self.clock()
        result = await self.store.sweep_retention(
            now=now,
            delete_delivered_before=now - self.settings.retention_after_receipt,
            expire_pending_before=now - self.settings.undelivered_expiry,
            on_expired=self.tracker.step_for_expiry(now),
        )
        if result.deleted:
            self.metrics.deleted.inc(result.deleted)
        if result.expired:
            self.metrics.notices.labels("NON_DELIVERY").inc(result.expired)
        notified = list(result.notified)
        rows = await self.store.threads(open_states=OPEN_STATES)
        recorded = await self.store.breaches([r.thread_id for r in rows])
        breaches = self.tracker.breaches(rows, recorded, now)
        if breaches:
            notified.extend(await self.store.record_breaches(breaches, at=now))
            self.metrics.notices.labels("OVERDUE").inc(sum(len(b.notices) for b in breaches))
            for breach in breaches:
                _log("deadline breached", thread=breach.thread_id, deadline=breach.deadline)
        settled = self.tracker.settled(rows, now)
        closed = await self.store.close_threads(settled, at=now) if settled else []
        for thread_id in closed:
            _log("thread closed", thread=thread_id, by="relay")
        overdue = sum(1 for r in rows if any(d.overdue for d in self.tracker.deadlines(r, now)))
        self.metrics.overdue.set(overdue)
        if notified:
            await self.notifier.publish(notified)
        await self.directory.refresh()
        await self.refresh_gauges()
        summary = {
            "expired": result.expired,
            "deleted": result.deleted,
            "nonces_purged": result.nonces_purged,
            "breaches": len(breaches),
            "closed_threads": len(closed),
            "overdue_threads": overdue,
        }
        if result.expired or result.deleted or breaches or closed:
            _log("sweep", **summary)
        return summary

    async def refresh_gauges(self) -> None:
        """Read queue depths from the database into the metrics."""
        depths = await self.store.queue_depths()
        self.metrics.pending.set(depths["pending_deliveries"])
        self.metrics.stored.set(depths["stored_envelopes"])

    async def ready(self) -> dict[str, Any]:
        """Readiness: the database answers (raises ServiceUnavailable otherwise)."""
        await self.store.ping()
        return {"status": "ready", "relay": self.settings.relay_id}

    async def wait_closed(self) -> None:
        """Close push streams (shutdown)."""
        await self.notifier.close()
        await asyncio.sleep(0)
