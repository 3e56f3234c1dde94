"""``AgencyClient``: an agency's view of the exchange, as an async library.

Theory of operation
-------------------
The client holds the agency's keys (unlocked once from the passphrase-encrypted key
file), pins the partnership root, and trusts nothing the relay says about keys: the
directory it fetches is re-verified against the pinned root, and a revocation list
never goes backwards.

Sending: a message is *composed* (body validated for its kind, lawful basis checked by
the same policy engine the relay and auditor run, then sealed by :func:`keys.sealing.seal`,
which refuses an unlawful basis before encrypting anything), *recorded* in the local
store (what we said, encrypted at rest) together with its exact envelope bytes in the
outbox, and then the outbox is *flushed* in order. A relay that cannot be reached
leaves the message sealed in the outbox; flushing later submits the same bytes, and
the relay answers a repeat with the original receipt, so nothing is delivered twice.

Receiving: the inbox is read from the saved cursor (or pushed over server-sent events,
reconnecting and resuming from the cursor). Each envelope is fetched, its header
compared with the one listed, verified and opened (:func:`keys.sealing.open_envelope`:
signature, digests, decryption, re-addressing check, and a full lawful-basis re-check),
recorded, and then acknowledged to the relay with a signed delivery receipt. The cursor
only moves past items that were handled, so a message that fails to open stays listed.

Nothing here logs content, justification text or child identifiers; errors carry codes
and ids only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from agency_client import protocol
from agency_client.audit_log import (
    check_extends,
    envelope_leaf_matches,
    verify_envelope_inclusion,
    verify_leaf_inclusion,
)
from agency_client.errors import CertificateMismatch, RelayUnreachable
from agency_client.home import AgencyConfig, AgencyHome, read_json_file, write_json_file
from agency_client.protocol import (
    EnvelopeItem,
    InboxItem,
    NoticeItem,
    SubmitReceipt,
    ThreadSummary,
)
from agency_client.settings import ClientSettings
from agency_client.store import (
    LocalStore,
    StoreCipher,
    StoredMessage,
    StoredThread,
    ThreadUpdate,
)
from agency_client.transport import Transport
from keys.certificates import Certificate, CertificateBody
from keys.directory import Directory
from keys.identity import AgencyIdentity
from keys.keystore import load_identity
from keys.receipts import DeliveryReceipt, sign_receipt, verify_receipt
from keys.sealing import (
    basis_verdict,
    header_digest,
    new_message_id,
    open_envelope,
    open_justification,
    seal,
    verify_signed_header,
)
from keys.transparency import SignedTreeHead, TreeHead, verify_tree_head
from schemas.encoding import b64encode
from schemas.envelope import SealedEnvelope
from schemas.lawful_basis import BasisTag, Justification
from schemas.lifecycle import ActorRole, ThreadEvent, advance, event_for_kind, open_thread
from schemas.messages import body_to_dict, parse_body
from schemas.policy import Verdict
from schemas.problems import (
    ConfigurationError,
    ExchangeError,
    InvalidEnvelope,
    InvalidReceipt,
    InvalidRequest,
    InvalidTransition,
    LogConsistencyError,
    NotFound,
    StaleRevocationList,
    UnknownAgency,
    UnknownRecipient,
)
from schemas.timefmt import format_time

__all__ = [
    "AgencyClient",
    "AuditEntry",
    "FlushResult",
    "ReceiptCheck",
    "ReceiveResult",
    "SendResult",
    "ThreadView",
    "thread_update",
    "to_tag",
]

log = logging.getLogger("agency_client")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendResult:
    """A composed message: its ids, the sender's own verdict, and whether the relay has it."""

    message_id: str
    thread_id: str
    kind: str
    sender: str
    recipients: tuple[tuple[str, str], ...]
    verdict: Verdict
    receipt: SubmitReceipt | None
    queued: bool
    """True when the relay could not be reached: the sealed message waits in the outbox."""
    basis_codes: dict[str, Any] = field(default_factory=dict)
    """The basis codes in the signed header: all the relay can read of the basis."""


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What one outbox flush did with one message."""

    message_id: str
    receipt: SubmitReceipt | None
    error: ExchangeError | None
    still_queued: bool


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    """One inbox item handled: the opened message, a relay notice, or the error that stopped it."""

    item: InboxItem
    message: StoredMessage | None = None
    error: ExchangeError | None = None


@dataclass(frozen=True, slots=True)
class ThreadView:
    """What happened to a thread: local record merged with the relay's state and clocks."""

    thread_id: str
    role: str
    kind: str
    counterpart: str
    state: str
    overdue: bool
    deadlines: tuple[dict[str, Any], ...]
    opened_at: datetime
    updated_at: datetime
    summary: dict[str, Any]
    relay_state_known: bool


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    """Verification of one sent message's receipts."""

    message_id: str
    submit_receipt_ok: bool
    delivered_to: tuple[str, ...]
    problems: tuple[str, ...]
    refused: bool = False
    """The relay refused the message when it was sent (so there is nothing to deliver)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """The auditor's view of one header: who, what kind, which basis codes, and the checks."""

    sequence: int
    message_id: str
    kind: str
    sender: str
    recipients: tuple[str, ...]
    basis_codes: dict[str, Any]
    signature_ok: bool
    codes_verdict: str
    full_verdict: str | None
    justification: Justification | None
    findings: tuple[dict[str, Any], ...]
    problem: str | None


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    return verdict.to_json_dict()


def to_tag(basis: BasisTag | Mapping[str, Any]) -> BasisTag:
    """A basis tag from the interchange format; one-line :class:`InvalidRequest` otherwise."""
    if isinstance(basis, BasisTag):
        return basis
    try:
        return BasisTag.model_validate(dict(basis))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "basis"
        raise InvalidRequest(
            f"the basis is not in the interchange format: {where}: {first.get('msg', 'invalid')}"
        ) from None


def thread_update(
    existing: StoredThread | None,
    *,
    kind: str,
    message_id: str,
    thread_id: str,
    we_send: bool,
    summary: Mapping[str, Any] | None = None,
) -> ThreadUpdate:
    """The local thread state after a message, from the lifecycle table (never raises).

    The relay's view is authoritative and replaces this when it is known; locally an
    event the table does not allow leaves the state as it was.
    """
    data = dict(summary or {})
    if existing is None:
        role = "sent" if we_send else "received"
        if thread_id == message_id:
            try:
                thread_type, first = open_thread(event_for_kind(kind))
                return ThreadUpdate(role, thread_type.value, first.value, data)
            except InvalidTransition:
                return ThreadUpdate(role, "UNTRACKED", "UNTRACKED", data)
        return ThreadUpdate(role, "UNKNOWN", "UNKNOWN", data)
    opener_is_us = existing.role == "sent"
    actor = ActorRole.REFERRER if opener_is_us == we_send else ActorRole.RECIPIENT
    try:
        next_state: str = advance(
            existing.state, event_for_kind(kind), actor, thread_type=existing.thread_type
        ).value
    except InvalidTransition:
        next_state = existing.state
    return ThreadUpdate(existing.role, existing.thread_type, next_state, data)


def _parse_recipient(spec: str) -> tuple[str, str | None]:
    agency, _, mailbox = spec.partition("/")
    return agency.strip(), (mailbox.strip() or None)


# -- the client -------------------------------------------------------------------------------


class AgencyClient:
    """One agency's access to the exchange. Create with :meth:`open`; use as ``async with``.

    :param settings: the process settings.
    :param home: the agency's home directory.
    :param identity: the unlocked agency identity.
    :param store: the local store (opened with a key derived from ``identity``).
    :param clock: the time source (tests may pass a fixed clock).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        home: AgencyHome,
        config: AgencyConfig,
        identity: AgencyIdentity,
        store: LocalStore,
        clock: Clock = _utcnow,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.home = home
        self.config = config
        self.identity = identity
        self.store = store
        self._clock = clock
        self._sleep = sleep
        self._root = home.root_public_key()
        self._certificate: Certificate | None = None
        self._directory: Directory | None = None
        # One flush at a time: concurrent sends must not submit the same queued
        # message twice at once, nor overtake each other.
        self._flush_lock = asyncio.Lock()
        relay_url = settings.relay_url or config.relay_url
        if not relay_url:
            raise ConfigurationError("no relay URL: pass --relay or set AGENCY_RELAY_URL")
        self.transport = Transport(
            relay_url,
            timeout=settings.request_timeout,
            max_attempts=settings.max_attempts,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            clock=clock,
        )
        if home.certificate_path.exists():
            self._install(home.certificate())

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        settings: ClientSettings,
        passphrase: bytes,
        *,
        clock: Clock = _utcnow,
    ) -> AgencyClient:
        """Unlock the agency's keys with ``passphrase`` and open its local store.

        :raises WrongPassphrase: when the passphrase does not unlock the key file.
        :raises NotInitialised: when ``agency init`` has not run in ``settings.home``.
        """
        home = AgencyHome(settings.home)
        config = home.config()
        identity = await asyncio.to_thread(load_identity, home.identity_path, passphrase)
        store = await LocalStore.open(home.store_path, StoreCipher.for_identity(identity))
        try:
            return cls(
                settings, home=home, config=config, identity=identity, store=store, clock=clock
            )
        except BaseException:
            await store.close()
            raise

    async def close(self) -> None:
        """Close the HTTP session and the local store."""
        await self.transport.close()
        await self.store.close()

    async def __aenter__(self) -> AgencyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _install(self, certificate: Certificate) -> CertificateBody:
        body = certificate.verify(self._root)
        if body.public_keys != self.identity.public_keys:
            raise CertificateMismatch("the certificate is for other keys than this agency's")
        if body.agency_id != self.config.agency_id:
            raise CertificateMismatch(
                f"the certificate is for {body.agency_id}, this agency is {self.config.agency_id}"
            )
        self._certificate = certificate
        self.transport.set_signer(self.identity, certificate.id)
        return body

    # -- identity and directory --------------------------------------------------------------

    @property
    def agency_id(self) -> str:
        """This agency's id."""
        return self.config.agency_id

    @property
    def certificate(self) -> Certificate:
        """This agency's installed certificate."""
        if self._certificate is None:
            self._install(self.home.certificate())
        assert self._certificate is not None
        return self._certificate

    @property
    def default_mailbox(self) -> str:
        """The mailbox messages are sent from unless another is named."""
        return self.certificate.body.mailboxes[0] if self.certificate.body.mailboxes else ""

    def now(self) -> datetime:
        """The client's clock, whole seconds."""
        return self._clock().astimezone(UTC).replace(microsecond=0)

    async def install_certificate(
        self, certificate: Certificate, *, publish: bool
    ) -> CertificateBody:
        """Check a certificate against the pinned root and our keys, save it, optionally publish."""
        body = self._install(certificate)
        write_json_file(self.home.certificate_path, certificate.to_json())
        if publish:
            await self.transport.call(
                protocol.publish_certificate(certificate.to_json()), protocol.parse_json
            )
        return body

    def cached_directory(self) -> Directory | None:
        """The directory from memory or ``directory.json`` (re-verified), or ``None``."""
        if self._directory is None and self.home.directory_path.exists():
            data = read_json_file(self.home.directory_path, "cached directory")
            self._directory = Directory.from_json(data, root_public_key=self._root)
        return self._directory

    async def refresh_directory(self) -> Directory:
        """Fetch the directory and verify every certificate against the pinned root.

        :raises StaleRevocationList: when the relay offers an older revocation list than
            one already seen (a rollback that would un-revoke a key).
        """
        document = await self.transport.call(protocol.get_directory(), protocol.parse_directory)
        fresh = Directory.from_json(document.data, root_public_key=self._root)
        previous = self.cached_directory()
        if previous is not None and previous.revocations is not None:
            if fresh.revocations is None:
                raise StaleRevocationList("the relay's directory omits the known revocation list")
            fresh.update_revocations(previous.revocations)  # raises if it would roll back
            if (
                fresh.revocations is not None
                and fresh.revocations.sequence < previous.revocations.sequence
            ):
                raise StaleRevocationList("the relay offered an older revocation list")
        for cert in previous.certificates if previous is not None else ():
            fresh.add_certificate(cert)
        self._directory = fresh
        write_json_file(self.home.directory_path, fresh.to_json())
        return fresh

    async def directory(self, *, refresh: bool = False) -> Directory:
        """The verified directory (fetched when there is none yet or ``refresh``)."""
        cached = None if refresh else self.cached_directory()
        return cached if cached is not None else await self.refresh_directory()

    async def _recipient(self, agency: str, mailbox: str | None) -> tuple[Certificate, str]:
        directory = await self.directory()
        now = self.now()
        for attempt in range(2):
            try:
                cert = directory.certificate(agency, at=now)
            except UnknownAgency:
                if attempt == 0:
                    directory = await self.refresh_directory()
                    continue
                raise UnknownRecipient(f"{agency} is not in the partnership directory") from None
            box = mailbox or (cert.body.mailboxes[0] if cert.body.mailboxes else "")
            if box not in cert.body.mailboxes:
                if attempt == 0:
                    directory = await self.refresh_directory()
                    continue
                raise UnknownRecipient(f"{agency} has no mailbox {box!r}")
            if cert.body.role != "agency":
                raise UnknownRecipient(f"{agency} does not receive messages")
            return cert, box
        raise UnknownRecipient(f"{agency} is not in the partnership directory")  # pragma: no cover

    async def _auditor(self) -> Certificate:
        directory = await self.directory()
        now = self.now()
        try:
            body = directory.auditor(at=now)
        except UnknownAgency:
            directory = await self.refresh_directory()
            body = directory.auditor(at=now)
        return directory.certificate(body.agency_id, at=now)

    # -- sending -----------------------------------------------------------------------------

    async def check_basis(
        self, *, kind: str, recipients: Sequence[str], basis: BasisTag | Mapping[str, Any]
    ) -> Verdict:
        """Run the policy engine over a draft without sealing or sending anything."""
        tag = to_tag(basis)
        certs = [await self._recipient(*_parse_recipient(r)) for r in recipients]
        return basis_verdict(
            kind=kind,
            sent_at=self.now(),
            sender=self.certificate.body,
            recipients=[c.body for c, _ in certs],
            basis=tag.model_dump(mode="json", exclude_none=True),
            justification_available=True,
        )

    async def send(
        self,
        *,
        kind: str,
        to: Sequence[str],
        fields: Mapping[str, Any],
        basis: BasisTag | Mapping[str, Any],
        thread_id: str | None = None,
        in_reply_to: str | None = None,
        mailbox: str | None = None,
        thread_summary: Mapping[str, Any] | None = None,
    ) -> SendResult:
        """Compose, check, seal, record and submit one message.

        ``fields`` is the body without its routing ids (the client fills ``kind``,
        ``message_id``, ``thread_id``, ``sender_agency``, ``recipient_agencies`` and, for
        replies, ``in_reply_to``). ``to`` lists ``agency`` or ``agency/mailbox``.

        :raises LawfulBasisRejected: (with findings) when the basis fails the policy; nothing
            is sealed, stored or sent.
        :raises UnknownRecipient: when a recipient is not in the verified directory.
        :raises InvalidEnvelope: when the body is not valid for ``kind``.
        """
        tag = to_tag(basis)
        recipients = [await self._recipient(*_parse_recipient(spec)) for spec in to]
        auditor = await self._auditor()
        sender_mailbox = mailbox or self.default_mailbox
        created_at = self.now()
        message_id = new_message_id()
        thread = thread_id or message_id
        body: dict[str, Any] = {
            key: value for key, value in fields.items() if key not in {"to", "basis"}
        }
        body.update(
            {
                "kind": kind,
                "message_id": message_id,
                "thread_id": thread,
                "sender_agency": self.agency_id,
                "recipient_agencies": [cert.body.agency_id for cert, _ in recipients],
            }
        )
        if in_reply_to is not None:
            body["in_reply_to"] = in_reply_to
        parsed = parse_body(kind, body)  # InvalidEnvelope with a one-line field path
        body_dict = body_to_dict(parsed)
        verdict = basis_verdict(
            kind=kind,
            sent_at=created_at,
            sender=self.certificate.body,
            recipients=[cert.body for cert, _ in recipients],
            basis=tag.model_dump(mode="json", exclude_none=True),
            justification_available=True,
        )
        envelope = seal(
            identity=self.identity,
            sender=self.certificate,
            sender_mailbox=sender_mailbox,
            recipients=recipients,
            auditor=auditor,
            kind=kind,
            body=parsed,
            basis=tag,
            created_at=created_at,
            message_id=message_id,
            thread_id=thread,
            in_reply_to=in_reply_to,
        )
        wire = envelope.to_wire()
        await self.store.record_outgoing(
            message_id=message_id,
            thread_id=thread,
            in_reply_to=in_reply_to,
            kind=kind,
            counterpart=recipients[0][0].body.agency_id,
            mailbox=sender_mailbox,
            created_at=created_at,
            content={
                "header": b64encode(envelope.header_bytes),
                "body": body_dict,
                "basis": tag.to_dict(),
                "verdict": _verdict_json(verdict),
                "recipients": [[c.body.agency_id, box] for c, box in recipients],
            },
            envelope=wire,
            thread=thread_update(
                await self.store.thread(thread),
                kind=kind,
                message_id=message_id,
                thread_id=thread,
                we_send=True,
                summary=thread_summary,
            ),
        )
        results = await self.flush_outbox()
        mine = next((r for r in results if r.message_id == message_id), None)
        if mine is not None and mine.error is not None and not mine.still_queued:
            raise mine.error
        return SendResult(
            message_id=message_id,
            thread_id=thread,
            kind=kind,
            sender=f"{self.agency_id}/{sender_mailbox}",
            recipients=tuple((c.body.agency_id, box) for c, box in recipients),
            verdict=verdict,
            receipt=mine.receipt if mine is not None else None,
            queued=mine is None or mine.still_queued,
            basis_codes=tag.header_codes(),
        )

    async def flush_outbox(self) -> list[FlushResult]:
        """Submit every queued message, oldest first; stop at the first one that must wait.

        A message the relay refuses for good (a problem other than unavailability) is
        marked refused and reported; the rest carry on. A message that must wait (relay
        unreachable, rate limited or unavailable, or a receipt that does not match) stops
        the flush, so a later message never overtakes an earlier one. One flush runs at
        a time per client.
        """
        async with self._flush_lock:
            return await self._flush_outbox()

    async def _flush_outbox(self) -> list[FlushResult]:
        results: list[FlushResult] = []
        pending = await self.store.outbox()
        for index, entry in enumerate(pending):
            waiting: ExchangeError | None = None
            receipt: SubmitReceipt | None = None
            try:
                receipt = await self.transport.call(
                    protocol.submit_envelope(entry.envelope), protocol.parse_submit_receipt
                )
            except ExchangeError as exc:
                if not isinstance(exc, RelayUnreachable) and (
                    exc.status not in protocol.RETRYABLE_STATUSES
                ):
                    await self.store.drop_outgoing(entry.message_id, exc.code)
                    results.append(FlushResult(entry.message_id, None, exc, False))
                    continue
                waiting = exc
            envelope = SealedEnvelope.from_wire(entry.envelope)
            if receipt is not None:
                problem = self._check_submit_receipt(entry.message_id, envelope, receipt)
                if problem is not None:
                    waiting = InvalidReceipt(problem)
            if waiting is not None:
                await self.store.mark_attempt_failed(entry.message_id, waiting.code)
                results.append(FlushResult(entry.message_id, receipt, waiting, True))
                results.extend(
                    FlushResult(rest.message_id, None, waiting, True)
                    for rest in pending[index + 1 :]
                )
                break
            assert receipt is not None
            await self.store.mark_sent(entry.message_id, receipt.raw)
            await self._check_receipt_log(envelope, receipt)
            results.append(FlushResult(entry.message_id, receipt, None, False))
        return results

    # -- the transparency log ----------------------------------------------------------------

    async def _check_receipt_log(self, envelope: SealedEnvelope, receipt: SubmitReceipt) -> None:
        """Verify a submit receipt's inclusion proof and that its head extends the last one seen.

        :raises LogConsistencyError: the proof does not match, or the log forked or was
            rewritten (the alarm: nothing the relay says can make this go away).
        """
        if receipt.log is None or receipt.log.tree_head is None:
            return  # a relay without a certified log key: nothing signed to check yet
        directory = await self.directory()
        try:
            verify_envelope_inclusion(
                receipt.log, envelope.header_bytes, envelope.signature, directory
            )
        except UnknownAgency:
            directory = await self.refresh_directory()
            verify_envelope_inclusion(
                receipt.log, envelope.header_bytes, envelope.signature, directory
            )
        await self.observe_tree_head(receipt.log.tree_head)

    async def observe_tree_head(self, signed: SignedTreeHead) -> TreeHead:
        """Verify a signed tree head and check it is consistent with the newest one kept.

        The first head seen is kept; a larger one is kept once the relay proves it extends
        the kept one; a smaller or equal one must be part of it.

        :raises LogConsistencyError: on a fork or a rewritten history.
        """
        directory = await self.directory()
        try:
            head = verify_tree_head(signed, directory)
        except UnknownAgency:
            head = verify_tree_head(signed, await self.refresh_directory())
        kept = await self.store.tree_head(head.log)
        if kept is None:
            await self.store.save_tree_head(head.log, head.size, signed)
            return head
        old = verify_tree_head(kept, directory)
        if old.size == head.size:
            check_extends(old, head, ())
            return head
        first, second = sorted((old.size, head.size))
        proof = await self.transport.call(
            protocol.get_consistency_proof(first=first, second=second), protocol.parse_proof
        )
        check_extends(old, head, proof)
        if head.size > old.size:
            await self.store.save_tree_head(head.log, head.size, signed)
        return head

    async def check_log(self) -> TreeHead:
        """Fetch the relay's newest tree head and check it extends the one kept."""
        latest = await self.transport.call(protocol.get_log_head(), protocol.parse_log_head)
        return await self.observe_tree_head(latest.signed)

    async def _log_problems(self, message_id: str, envelope: SealedEnvelope) -> list[str]:
        """Re-check a sent message in the relay's log now (its leaf, proved in the newest head)."""
        problems: list[str] = []
        try:
            entries = await self.transport.call(
                protocol.get_message_log(message_id), protocol.parse_message_log
            )
        except NotFound:
            return problems  # a relay without a transparency log
        except ExchangeError as exc:
            return [f"the relay's log entries are unavailable ({exc.code})"]
        if entries.tree_head is None:
            return problems
        head = await self.observe_tree_head(entries.tree_head.signed)
        mine = [e for e in entries.entries if e.leaf_type == "envelope"]
        if not mine or not envelope_leaf_matches(
            mine[0].leaf, envelope.header_bytes, envelope.signature
        ):
            return ["the relay's log does not hold the header this agency signed"]
        entry = mine[0]
        try:
            verify_leaf_inclusion(
                entry.leaf, entry.index, entry.inclusion_proof or (), head, what="the log entry"
            )
        except LogConsistencyError as exc:
            problems.append(str(exc))
        return problems

    @staticmethod
    def _check_submit_receipt(
        message_id: str, envelope: SealedEnvelope, receipt: SubmitReceipt
    ) -> str | None:
        if receipt.message_id != message_id:
            return "the relay's receipt names another message"
        if receipt.header_digest != header_digest(envelope.header_bytes):
            return "the relay's receipt does not match the header we signed"
        return None

    # -- receiving ---------------------------------------------------------------------------

    async def fetch_inbox(
        self, *, since: int | None = None, limit: int | None = None
    ) -> protocol.InboxPage:
        """One page of the relay inbox (no opening): items after ``since``."""
        return await self.transport.call(
            protocol.get_inbox(self.agency_id, since=since, limit=limit),
            protocol.parse_inbox_page,
        )

    async def receive(self, *, limit: int | None = None) -> list[ReceiveResult]:
        """Read the inbox from the saved cursor, open and receipt every new message.

        The saved cursor moves only past items that were handled, so anything that fails
        (for example a message altered in transit) is listed again next time.
        """
        results: list[ReceiveResult] = []
        since = await self.store.cursor()
        safe = since
        blocked = False
        while True:
            page = await self.fetch_inbox(since=since, limit=limit)
            if not page.items:
                break
            for item in page.items:
                result = await self._handle(item)
                results.append(result)
                if result.error is not None:
                    blocked = True
                elif not blocked:
                    safe = item.cursor
            if page.next_since is None or (since is not None and page.next_since <= since):
                break
            since = page.next_since
        if safe is not None:
            await self.store.set_cursor(safe)
        return results

    async def _handle(self, item: InboxItem) -> ReceiveResult:
        if isinstance(item, NoticeItem):
            return ReceiveResult(item=item)
        try:
            message = await self.open_message(item.message_id, listed=item)
        except ExchangeError as exc:
            log.warning("message %s could not be opened: %s", item.message_id, exc.code)
            return ReceiveResult(item=item, error=exc)
        return ReceiveResult(item=item, message=message)

    async def open_message(
        self, message_id: str, *, listed: EnvelopeItem | None = None
    ) -> StoredMessage:
        """Fetch, verify, open, record and receipt one message addressed to this agency.

        A message already opened is read from the local store (its receipt is posted
        again if the relay has not recorded it).

        :raises BadSignature, InvalidEnvelope, DecryptionFailed, NotRecipient: when the
            envelope was altered, re-addressed or is not for this agency.
        """
        existing = await self.store.message(message_id)
        if existing is not None and existing.direction == "out":
            raise InvalidRequest("this agency sent that message; it cannot open it")
        if existing is not None and existing.direction == "in":
            if existing.status != "receipted":
                await self._post_receipt(existing)
                existing = await self.store.message(message_id) or existing
            return existing
        envelope = await self.transport.call(
            protocol.get_envelope(message_id), protocol.parse_envelope
        )
        if listed is not None and (
            listed.header_bytes != envelope.header_bytes or listed.signature != envelope.signature
        ):
            raise InvalidEnvelope("the relay served a different header than it listed")
        opened = await self._open(envelope)
        header = opened.header
        if header.id != message_id:
            raise InvalidEnvelope("the relay served another message than the one asked for")
        body = opened.body_dict
        await self.store.record_incoming(
            message_id=header.id,
            thread_id=header.thread,
            in_reply_to=header.in_reply_to,
            kind=header.kind,
            sender=header.sender.agency,
            mailbox=next((p.mailbox for p in header.recipients if p.agency == self.agency_id), ""),
            created_at=header.created_at,
            content={
                "header": b64encode(envelope.header_bytes),
                "sender_mailbox": header.sender.mailbox,
                "body": body,
                "basis": opened.basis.to_dict(),
                "verdict": _verdict_json(opened.verdict),
                "received_at": format_time(self.now()),
            },
            envelope=envelope.to_wire(),
            thread=thread_update(
                await self.store.thread(header.thread),
                kind=header.kind,
                message_id=header.id,
                thread_id=header.thread,
                we_send=False,
                summary=_summary_from(header.kind, body),
            ),
        )
        stored = await self.store.message(message_id)
        assert stored is not None
        await self._post_receipt(stored)
        receipted = await self.store.message(message_id)
        assert receipted is not None
        return receipted

    async def _open(self, envelope: SealedEnvelope) -> Any:
        directory = await self.directory()
        at = _claimed_time(envelope)
        try:
            return open_envelope(
                envelope, self.identity, directory, agency_id=self.agency_id, at=at
            )
        except UnknownAgency:
            directory = await self.refresh_directory()
            return open_envelope(
                envelope, self.identity, directory, agency_id=self.agency_id, at=at
            )

    async def _post_receipt(self, message: StoredMessage) -> None:
        header_bytes = _b64_header(message.content)
        receipt = sign_receipt(
            self.identity,
            self.certificate,
            message_id=message.message_id,
            header_digest=header_digest(header_bytes),
            received_at=self.now(),
        )
        await self.transport.call(
            protocol.post_receipt(message.message_id, receipt), protocol.parse_nothing
        )
        await self.store.mark_receipted(message.message_id)
        if message.thread_id == message.message_id:
            thread = await self.store.thread(message.thread_id)
            if thread is not None:
                try:
                    state = advance(
                        thread.state,
                        ThreadEvent.DELIVERY_RECEIPT,
                        ActorRole.RECIPIENT,
                        thread_type=thread.thread_type,
                    )
                except InvalidTransition:
                    return
                await self.store.set_thread_state(thread.thread_id, state.value)

    async def recheck(self, message_id: str) -> Any:
        """Re-verify and re-open a stored message from its exact bytes (signature, basis)."""
        wire = await self.store.envelope(message_id)
        if wire is None:
            raise NotFound("no such message in the local store")
        envelope = SealedEnvelope.from_wire(wire)
        return await self._open(envelope)

    async def watch(
        self,
        *,
        stop: asyncio.Event | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> AsyncGenerator[ReceiveResult, None]:
        """Yield inbox items as they are pushed; reconnect and resume from the cursor.

        Each (re)connection first catches up with :meth:`receive`, then follows the
        relay's server-sent events from the saved cursor. Stops when ``stop`` is set.
        """
        stop = stop or asyncio.Event()
        attempt = 0
        while not stop.is_set():
            try:
                for result in await self.receive():
                    yield result
                cursor = await self.store.cursor()
                stream = self.transport.stream(
                    protocol.get_events(self.agency_id, since=cursor),
                    last_event_id=None if cursor is None else str(cursor),
                )
                if on_connect is not None:
                    on_connect()
                attempt = 0
                async with contextlib.aclosing(self._follow(stream, stop)) as follow:
                    async for result in follow:
                        yield result
            except ExchangeError as exc:
                if not isinstance(exc, RelayUnreachable) and (
                    exc.status not in protocol.RETRYABLE_STATUSES
                ):
                    raise
                attempt += 1
                delay = protocol.backoff_delay(
                    attempt,
                    base=self.settings.backoff_base,
                    cap=self.settings.backoff_max,
                    rng=random.random,
                )
                log.info("push stream lost; reconnecting in %.2fs", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(delay, 0.05))

    async def _follow(
        self, stream: AsyncIterator[protocol.SSEEvent], stop: asyncio.Event
    ) -> AsyncGenerator[ReceiveResult, None]:
        iterator = stream.__aiter__()
        blocked = False
        try:
            while not stop.is_set():
                next_event = asyncio.ensure_future(iterator.__anext__())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait(
                    {next_event, stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                stopper.cancel()
                if next_event not in done:
                    next_event.cancel()
                    await asyncio.gather(next_event, return_exceptions=True)
                    return
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    raise RelayUnreachable("the push stream ended") from None
                try:
                    item = protocol.parse_inbox_item(_json(event.data))
                except (ValueError, ExchangeError):
                    continue  # keep-alives and events this client does not know
                result = await self._handle(item)
                # Items arrive in cursor order: move the saved cursor up to the first failure.
                blocked = blocked or result.error is not None
                if not blocked:
                    await self.store.set_cursor(item.cursor)
                yield result
        finally:
            await _aclose(iterator)

    # -- replies -----------------------------------------------------------------------------

    async def resolve_message_id(self, prefix: str) -> str:
        """The full id of the stored message starting with ``prefix``."""
        return await self._resolve(prefix, thread=False)

    async def resolve_thread_id(self, prefix: str) -> str:
        """The full id of the local thread starting with ``prefix``."""
        return await self._resolve(prefix, thread=True)

    async def _resolve(self, prefix: str, *, thread: bool) -> str:
        what = "thread" if thread else "message"
        matches = await self.store.resolve(prefix, thread=thread)
        if not matches:
            raise NotFound(f"no {what} starting with {prefix[:32]!r} here (run: agency inbox)")
        if len(matches) > 1:
            raise InvalidRequest(f"{prefix!r} matches several {what}s: give more characters")
        return matches[0]

    async def opening_message(self, thread_id: str) -> StoredMessage:
        """The message that opened a thread (from the local store)."""
        return await self._thread_opening(thread_id)

    async def _thread_opening(self, thread_id: str) -> StoredMessage:
        messages = await self.store.messages(thread_id=thread_id)
        for message in messages:
            if message.message_id == thread_id:
                return message
        raise NotFound("no such thread in the local store (run: agency inbox)")

    def _reply_target(self, opening: StoredMessage) -> str:
        if opening.direction == "in":
            return f"{opening.counterpart}/{opening.content.get('sender_mailbox', '')}".rstrip("/")
        recipients = opening.content.get("recipients") or [[opening.counterpart, ""]]
        agency, box = recipients[0]
        return f"{agency}/{box}".rstrip("/")

    async def reply(
        self,
        thread_id: str,
        *,
        kind: str,
        fields: Mapping[str, Any],
        basis: BasisTag | Mapping[str, Any],
        in_reply_to: str | None = None,
        thread_summary: Mapping[str, Any] | None = None,
    ) -> SendResult:
        """Send a message within a thread to the other party (acknowledgement, decision...)."""
        opening = await self._thread_opening(thread_id)
        return await self.send(
            kind=kind,
            to=[self._reply_target(opening)],
            fields=fields,
            basis=basis,
            thread_id=thread_id,
            in_reply_to=in_reply_to or opening.message_id,
            mailbox=opening.mailbox or None,
            thread_summary=thread_summary,
        )

    async def opening_body(self, thread_id: str) -> dict[str, Any]:
        """The decrypted body of the message that opened a thread (from the local store)."""
        opening = await self._thread_opening(thread_id)
        body = opening.content.get("body")
        return dict(body) if isinstance(body, dict) else {}

    # -- threads -----------------------------------------------------------------------------

    async def relay_threads(
        self, *, role: str | None = None, overdue: bool | None = None
    ) -> tuple[ThreadSummary, ...]:
        """The relay's view of this agency's threads (codes only)."""
        return await self.transport.call(
            protocol.get_threads(role=role, overdue=overdue), protocol.parse_threads
        )

    async def relay_thread(self, thread_id: str) -> protocol.ThreadDetail:
        """The relay's view of one thread: state, deadlines and chronology of headers."""
        return await self.transport.call(protocol.get_thread(thread_id), protocol.parse_thread)

    async def threads(self, *, overdue_only: bool = False) -> tuple[list[ThreadView], bool]:
        """Local threads merged with the relay's state and deadlines.

        Returns the views and whether the relay could be asked (``False``: local view only).
        """
        local = await self.store.threads()
        remote: dict[str, ThreadSummary] = {}
        reachable = True
        try:
            for role in ("sent", "received"):
                for summary in await self.relay_threads(role=role):
                    remote[summary.thread] = summary
        except RelayUnreachable:
            reachable = False
        views = []
        for thread in local:
            known = remote.get(thread.thread_id)
            if known is not None:
                await self.store.set_thread_state(thread.thread_id, known.state)
            views.append(_view(thread, known))
        if overdue_only:
            views = [v for v in views if v.overdue]
        return views, reachable

    # -- receipts ----------------------------------------------------------------------------

    async def verify_receipts(self) -> list[ReceiptCheck]:
        """Check each sent message's submit receipt and the recipients' signed delivery receipts."""
        checks: list[ReceiptCheck] = []
        directory = await self.directory(refresh=True)
        for entry in await self.store.outbox(pending_only=False):
            problems: list[str] = []
            envelope = SealedEnvelope.from_wire(entry.envelope)
            digest = header_digest(envelope.header_bytes)
            ok = False
            if entry.receipt is None and entry.sent:
                checks.append(ReceiptCheck(entry.message_id, False, (), (), refused=True))
                continue
            if entry.receipt is None:
                problems.append("not yet accepted by the relay (still in the outbox)")
            else:
                try:
                    receipt = protocol.parse_submit_receipt(
                        protocol.Response(201, {}, _json_bytes(entry.receipt))
                    )
                    problem = self._check_submit_receipt(entry.message_id, envelope, receipt)
                    ok = problem is None
                    if problem:
                        problems.append(problem)
                except (ExchangeError, ValueError, KeyError):
                    problems.append("the stored submit receipt is unreadable")
            delivered: list[str] = []
            if entry.receipt is not None:
                try:
                    receipt_log = protocol.parse_receipt_log(entry.receipt.get("log"))
                    if receipt_log is not None:
                        verify_envelope_inclusion(
                            receipt_log, envelope.header_bytes, envelope.signature, directory
                        )
                except LogConsistencyError as exc:
                    problems.append(str(exc))
                except ExchangeError as exc:
                    problems.append(f"the receipt's log proof does not verify ({exc.code})")
                problems.extend(await self._log_problems(entry.message_id, envelope))
                try:
                    status = await self.transport.call(
                        protocol.get_status(entry.message_id), protocol.parse_status
                    )
                except ExchangeError as exc:
                    problems.append(f"delivery status unavailable ({exc.code})")
                else:
                    for recipient in status.recipients:
                        raw = recipient.get("receipt")
                        if raw is None:
                            continue
                        try:
                            body = verify_receipt(
                                DeliveryReceipt.from_json(raw), directory, at=self.now()
                            )
                        except ExchangeError as exc:
                            problems.append(f"a delivery receipt does not verify ({exc.code})")
                            continue
                        if body.header_digest != digest or body.message_id != entry.message_id:
                            problems.append(f"{body.recipient}'s receipt is for another message")
                            continue
                        delivered.append(body.recipient)
            checks.append(
                ReceiptCheck(
                    message_id=entry.message_id,
                    submit_receipt_ok=ok,
                    delivered_to=tuple(delivered),
                    problems=tuple(problems),
                )
            )
        return checks

    # -- audit -------------------------------------------------------------------------------

    async def audit(self, *, since: int | None = None, limit: int = 200) -> list[AuditEntry]:
        """The auditor's check over every accepted header, without any message content.

        For each header: the sender's signature (certificate from the verified directory),
        the policy verdict over the header's basis codes, and — when the relay shows the
        seals — the justification sealed to this auditor, re-checked with the full tag.
        """
        directory = await self.directory(refresh=True)
        entries: list[AuditEntry] = []
        cursor = since
        while True:
            page = await self.transport.call(
                protocol.get_audit_headers(since=cursor, limit=limit), protocol.parse_audit_page
            )
            if not page.items:
                break
            for item in page.items:
                record = item.record
                if record.seals_bytes is None:
                    with contextlib.suppress(ExchangeError):
                        record = await self.transport.call(
                            protocol.get_header(record.message_id), protocol.parse_header_record
                        )
                entries.append(self._audit_one(item.sequence, record, directory))
            if page.next_since is None or (cursor is not None and page.next_since <= cursor):
                break
            cursor = page.next_since
        return entries

    def _audit_one(
        self, sequence: int, record: protocol.HeaderRecord, directory: Directory
    ) -> AuditEntry:
        at = _claimed_header_time(record.header_bytes)
        try:
            header, sender = verify_signed_header(
                record.header_bytes, record.signature, directory, at=at
            )
        except ExchangeError as exc:
            return AuditEntry(
                sequence=sequence,
                message_id=record.message_id,
                kind="?",
                sender="?",
                recipients=(),
                basis_codes={},
                signature_ok=False,
                codes_verdict="not checked",
                full_verdict=None,
                justification=None,
                findings=(),
                problem=exc.code,
            )
        recipients = [directory.agency(p.agency, at=at) for p in header.recipients]
        codes = basis_verdict(
            kind=header.kind,
            sent_at=header.created_at,
            sender=sender,
            recipients=recipients,
            basis=header.basis,
            justification_available=False,
        )
        findings = [f.to_json_dict() for f in codes.findings]
        justification: Justification | None = None
        full: str | None = None
        problem: str | None = None
        if record.seals_bytes is not None and self.certificate.body.role == "auditor":
            try:
                _, justification = open_justification(
                    record.header_bytes,
                    record.signature,
                    record.seals_bytes,
                    self.identity,
                    directory,
                    at=at,
                )
                full_verdict = basis_verdict(
                    kind=header.kind,
                    sent_at=header.created_at,
                    sender=sender,
                    recipients=recipients,
                    basis=BasisTag.from_parts(header.basis, justification).model_dump(
                        mode="json", exclude_none=True
                    ),
                    justification_available=True,
                )
                full = full_verdict.decision
                seen = {(f["rule"], f["message"]) for f in findings}
                findings.extend(
                    f.to_json_dict()
                    for f in full_verdict.findings
                    if (f.rule, f.message) not in seen
                )
            except ExchangeError as exc:
                problem = exc.code
        return AuditEntry(
            sequence=sequence,
            message_id=header.id,
            kind=header.kind,
            sender=header.sender.agency,
            recipients=header.recipient_agencies,
            basis_codes=dict(header.basis),
            signature_ok=True,
            codes_verdict=codes.decision,
            full_verdict=full,
            justification=justification,
            findings=tuple(findings),
            problem=problem,
        )


# -- helpers ----------------------------------------------------------------------------------


def _json(text: str) -> dict[str, Any]:
    import json

    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _json_bytes(value: object) -> bytes:
    import json

    return json.dumps(value).encode()


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


def _b64_header(content: Mapping[str, Any]) -> bytes:
    from schemas.encoding import b64decode

    return b64decode(str(content.get("header", "")), field="header")


def _claimed_header_time(header_bytes: bytes) -> datetime:
    """The header's claimed creation time (only to pick which certificate was valid then)."""
    import json

    from schemas.timefmt import parse_time

    try:
        value = json.loads(header_bytes)
        return parse_time(value["created_at"], field="created_at")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidEnvelope("the header has no readable creation time") from None


def _claimed_time(envelope: SealedEnvelope) -> datetime:
    return _claimed_header_time(envelope.header_bytes)


def _summary_from(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a received message adds to its thread's summary (kept encrypted)."""
    if kind == "ACKNOWLEDGEMENT":
        return {
            "acknowledged_at": body.get("received_at"),
            "their_reference": body.get("reference"),
            "contact": body.get("contact_for_followup"),
        }
    if kind == "DECISION_FEEDBACK":
        return {
            "outcome_code": body.get("outcome_code"),
            "summary_for_referrer": body.get("summary_for_referrer"),
            "referrer_next_steps": body.get("referrer_next_steps"),
            "allocated_worker": body.get("allocated_worker"),
            "decided_at": body.get("decided_at"),
        }
    if kind == "RESPONSE_TO_RFI":
        return {"response": body.get("information_provided_or_withheld")}
    return {}


def _view(thread: StoredThread, summary: ThreadSummary | None) -> ThreadView:
    return ThreadView(
        thread_id=thread.thread_id,
        role=thread.role,
        kind=thread.kind,
        counterpart=thread.counterpart,
        state=summary.state if summary is not None else thread.state,
        overdue=summary.overdue if summary is not None else False,
        deadlines=summary.deadlines if summary is not None else (),
        opened_at=thread.opened_at,
        updated_at=thread.updated_at,
        summary=thread.summary,
        relay_state_known=summary is not None,
    )
