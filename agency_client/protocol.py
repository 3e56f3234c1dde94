"""The relay API as data: requests to send and typed results parsed from responses.

Theory of operation
-------------------
This module does no I/O. Each *builder* returns a :class:`Request` (method, path,
query, body bytes and whether the relay needs it signed); :mod:`agency_client.transport`
puts it on the wire and hands the status, headers and body back to a *parser* here,
which either returns a typed result or raises the :class:`~schemas.problems.ExchangeError`
subclass named by the relay's RFC 9457 problem document (via
:func:`schemas.problems.from_problem`), so ``except LawfulBasisRejected`` works the same
whether the sender's own check or the relay refused.

Parsing is strict where the client's safety depends on it (envelopes and headers keep
their exact bytes for verification by :mod:`keys.sealing`) and tolerant elsewhere:
unknown fields in listings are kept in ``raw`` so a newer relay does not break an
older client.

Retries: :func:`is_retryable` says which outcomes may be retried and
:func:`backoff_delay` computes exponential backoff with full jitter. Every request
this client makes is safe to repeat: reads are reads, an envelope is submitted as
the same bytes (the relay answers ``200`` with the original receipt), and receipts
are idempotent.

Push: :class:`SSEDecoder` turns the bytes of a ``text/event-stream`` into
:class:`SSEEvent` values, whatever the chunk boundaries.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from keys.receipts import DeliveryReceipt
from keys.transparency import SignedTreeHead
from schemas.encoding import b64decode
from schemas.envelope import MESSAGE_ID_PATTERN, SealedEnvelope
from schemas.problems import (
    PROBLEM_CONTENT_TYPE,
    ExchangeError,
    InvalidEnvelope,
    RemoteError,
    from_problem,
)
from schemas.timefmt import parse_time

__all__ = [
    "ENVELOPE_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "RETRYABLE_STATUSES",
    "AuditHeader",
    "AuditPage",
    "DeliveryStatus",
    "DirectoryDocument",
    "EnvelopeItem",
    "HeaderRecord",
    "InboxItem",
    "InboxPage",
    "LogEntry",
    "LogHead",
    "LogLeaves",
    "MessageLog",
    "NoticeItem",
    "ProtocolViolation",
    "ReceiptLog",
    "Request",
    "Response",
    "SSEDecoder",
    "SSEEvent",
    "SubmitReceipt",
    "ThreadDetail",
    "ThreadSummary",
    "backoff_delay",
    "is_retryable",
    "parse",
]

JSON_CONTENT_TYPE = "application/json"
ENVELOPE_CONTENT_TYPE = "application/vnd.safeguard.envelope.v1+json"
#: Statuses worth retrying: rate limited, or a gateway/relay that is briefly unavailable.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

T = TypeVar("T")


class ProtocolViolation(RemoteError):
    """The relay answered with something this client cannot read."""

    status = 502
    code = "client-protocol-violation"
    title = "Unreadable answer from the relay"


# -- requests and responses -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request to the relay, before signing.

    ``path`` is percent-encoded and ``query`` is the encoded query string without
    ``?``: both are signed exactly as they are sent.
    """

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str | None = None
    signed: bool = True
    accept: str = JSON_CONTENT_TYPE

    @property
    def target(self) -> str:
        """The request target: path plus ``?query`` when there is one."""
        return self.path + ("?" + self.query if self.query else "")


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers (lower-cased names) and the body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def retry_after(self) -> float | None:
        """The ``Retry-After`` delay in seconds, when given as a number."""
        value = self.headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return None


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _query(params: Mapping[str, object | None]) -> str:
    clean: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            clean.append((key, "true" if value else "false"))
        else:
            clean.append((key, str(value)))
    return urlencode(clean)


def _json_body(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- builders --------------------------------------------------------------------------------


def health() -> Request:
    """``GET /health`` (public)."""
    return Request("GET", "/health", signed=False)


def get_directory() -> Request:
    """``GET /v1/directory`` (public): every certificate and the revocation list."""
    return Request("GET", "/v1/directory", signed=False)


def publish_certificate(certificate_json: Mapping[str, Any]) -> Request:
    """``POST /v1/directory/certificates`` (public; the root signature is the authority)."""
    return Request(
        "POST",
        "/v1/directory/certificates",
        body=_json_body(dict(certificate_json)),
        content_type=JSON_CONTENT_TYPE,
        signed=False,
    )


def publish_revocations(revocation_json: Mapping[str, Any]) -> Request:
    """``POST /v1/directory/revocations`` (public; root-signed)."""
    return Request(
        "POST",
        "/v1/directory/revocations",
        body=_json_body(dict(revocation_json)),
        content_type=JSON_CONTENT_TYPE,
        signed=False,
    )


def submit_envelope(wire: bytes) -> Request:
    """``POST /v1/envelopes`` with the exact envelope bytes (repeatable: the relay dedupes)."""
    return Request("POST", "/v1/envelopes", body=wire, content_type=ENVELOPE_CONTENT_TYPE)


def _message_path(message_id: str, suffix: str = "") -> str:
    if not MESSAGE_ID_PATTERN.match(message_id):
        raise InvalidEnvelope("a message id is 32 lowercase hex characters")
    return f"/v1/envelopes/{message_id}{suffix}"


def get_envelope(message_id: str) -> Request:
    """``GET /v1/envelopes/{id}``: the whole envelope as submitted."""
    return Request("GET", _message_path(message_id), accept=ENVELOPE_CONTENT_TYPE)


def get_header(message_id: str) -> Request:
    """``GET /v1/envelopes/{id}/header``: header, signature and delivery state, no body."""
    return Request("GET", _message_path(message_id, "/header"))


def post_receipt(message_id: str, receipt: DeliveryReceipt) -> Request:
    """``POST /v1/envelopes/{id}/receipts`` with a signed delivery receipt."""
    return Request(
        "POST",
        _message_path(message_id, "/receipts"),
        body=_json_body(receipt.to_json()),
        content_type=JSON_CONTENT_TYPE,
    )


def get_status(message_id: str) -> Request:
    """``GET /v1/envelopes/{id}/status``: delivery state per recipient (sender only)."""
    return Request("GET", _message_path(message_id, "/status"))


def get_inbox(
    agency_id: str,
    *,
    since: int | None = None,
    limit: int | None = None,
    mailbox: str | None = None,
) -> Request:
    """``GET /v1/agencies/{agency}/inbox``: items after cursor ``since``."""
    return Request(
        "GET",
        f"/v1/agencies/{_q(agency_id)}/inbox",
        query=_query({"since": since, "limit": limit, "mailbox": mailbox}),
    )


def get_events(agency_id: str, *, since: int | None = None) -> Request:
    """``GET /v1/agencies/{agency}/events``: server-sent events from cursor ``since``."""
    return Request(
        "GET",
        f"/v1/agencies/{_q(agency_id)}/events",
        query=_query({"since": since}),
        accept="text/event-stream",
    )


def get_threads(
    *, role: str | None = None, open_only: bool | None = None, overdue: bool | None = None
) -> Request:
    """``GET /v1/threads``: this agency's threads with state and deadlines."""
    return Request(
        "GET", "/v1/threads", query=_query({"role": role, "open": open_only, "overdue": overdue})
    )


def get_thread(thread_id: str) -> Request:
    """``GET /v1/threads/{thread}``: chronology (headers only), state and deadlines."""
    if not MESSAGE_ID_PATTERN.match(thread_id):
        raise InvalidEnvelope("a thread id is 32 lowercase hex characters")
    return Request("GET", f"/v1/threads/{thread_id}")


def get_overdue(agency_id: str) -> Request:
    """``GET /v1/agencies/{agency}/overdue``: overdue threads for this agency's mailboxes."""
    return Request("GET", f"/v1/agencies/{_q(agency_id)}/overdue")


def get_audit_headers(*, since: int | None = None, limit: int | None = None) -> Request:
    """``GET /v1/audit/headers``: every accepted header in order (auditor only)."""
    return Request("GET", "/v1/audit/headers", query=_query({"since": since, "limit": limit}))


def get_log_head() -> Request:
    """``GET /v1/log/head``: the newest signed tree head."""
    return Request("GET", "/v1/log/head")


def get_tree_heads(
    *,
    since: int | None = None,
    limit: int | None = None,
    not_before: str | None = None,
    not_after: str | None = None,
) -> Request:
    """``GET /v1/log/heads``: signed tree heads larger than size ``since``, oldest first."""
    return Request(
        "GET",
        "/v1/log/heads",
        query=_query({"since": since, "limit": limit, "from": not_before, "to": not_after}),
    )


def get_log_leaves(*, start: int, limit: int | None = None) -> Request:
    """``GET /v1/log/leaves``: leaves from index ``start``."""
    return Request("GET", "/v1/log/leaves", query=_query({"start": start, "limit": limit}))


def get_inclusion_proof(*, index: int, size: int) -> Request:
    """``GET /v1/log/proof/inclusion``: PATH(index, D[size])."""
    return Request("GET", "/v1/log/proof/inclusion", query=_query({"index": index, "size": size}))


def get_consistency_proof(*, first: int, second: int) -> Request:
    """``GET /v1/log/proof/consistency``: PROOF(first, D[second])."""
    return Request(
        "GET", "/v1/log/proof/consistency", query=_query({"first": first, "second": second})
    )


def get_log_frontier(*, size: int) -> Request:
    """``GET /v1/log/frontier``: the perfect subtrees that decompose ``[0, size)``."""
    return Request("GET", "/v1/log/frontier", query=_query({"size": size}))


def get_message_log(message_id: str) -> Request:
    """``GET /v1/envelopes/{id}/log``: a message's log entries with inclusion proofs."""
    return Request("GET", _message_path(message_id, "/log"))


# -- parsing ---------------------------------------------------------------------------------


def raise_for_problem(response: Response) -> None:
    """Raise the mapped :class:`ExchangeError` when ``response`` is an error."""
    if response.status < 400:
        return
    problem: Any = None
    if response.body:
        try:
            problem = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            problem = None
    if isinstance(problem, dict) and ("code" in problem or "type" in problem):
        error = from_problem(problem, status=response.status)
        if type(error) is ExchangeError:
            # An error type this client does not know: keep the relay's status.
            error.status = response.status  # type: ignore[misc]
        raise error
    error = ExchangeError(f"the relay answered HTTP {response.status}")
    error.status = response.status  # type: ignore[misc]
    raise error


def parse(response: Response, parser: Callable[[Response], T]) -> T:
    """Raise the mapped problem for an error status, else run ``parser``."""
    raise_for_problem(response)
    try:
        return parser(response)
    except ExchangeError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolViolation(
            f"unexpected answer ({exc.__class__.__name__}) for HTTP {response.status}"
        ) from None


def json_object(response: Response) -> dict[str, Any]:
    """The response body as a JSON object."""
    try:
        value = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolViolation("the relay's answer is not JSON") from None
    if not isinstance(value, dict):
        raise ProtocolViolation("the relay's answer is not a JSON object")
    return value


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolViolation(f"{name} must be an integer")
    return value


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ProtocolViolation(f"{name} must be a string")
    return value


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except InvalidEnvelope:
        return None


@dataclass(frozen=True, slots=True)
class SubmitReceipt:
    """The relay's answer to a submission: where and when the envelope was stored."""

    message_id: str
    header_digest: bytes
    stored_at: datetime | None
    sequence: int | None
    relay: str | None
    duplicate: bool
    raw: dict[str, Any] = field(repr=False, compare=False)
    log: ReceiptLog | None = None
    """Where the relay logged the header, with its inclusion proof (None from older relays)."""


@dataclass(frozen=True, slots=True)
class ReceiptLog:
    """The ``log`` part of a submit receipt: leaf index and bytes, tree head, inclusion proof."""

    leaf_index: int
    leaf: bytes
    tree_head: SignedTreeHead | None
    inclusion_proof: tuple[bytes, ...]


def _proof(value: object, name: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise ProtocolViolation(f"{name} must be a list")
    return tuple(b64decode(_str(item, name), field=name) for item in value)


def parse_receipt_log(value: object) -> ReceiptLog | None:
    """Parse a receipt's ``log`` part strictly (None when there is none)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ProtocolViolation("the receipt's log part must be an object")
    head = value.get("tree_head")
    return ReceiptLog(
        leaf_index=_int(value.get("leaf_index"), "leaf_index"),
        leaf=b64decode(_str(value.get("leaf"), "leaf"), field="leaf"),
        tree_head=None if head is None else SignedTreeHead.from_json(head),
        inclusion_proof=(
            _proof(value.get("inclusion_proof"), "inclusion_proof") if head is not None else ()
        ),
    )


def parse_submit_receipt(response: Response) -> SubmitReceipt:
    """Parse a ``201``/``200`` answer to ``POST /v1/envelopes``."""
    data = json_object(response)
    return SubmitReceipt(
        message_id=_str(data["message_id"], "message_id"),
        header_digest=b64decode(_str(data["header_digest"], "header_digest")),
        stored_at=_time(data.get("stored_at")),
        sequence=data.get("sequence") if isinstance(data.get("sequence"), int) else None,
        relay=_opt_str(data.get("relay")),
        duplicate=bool(data.get("duplicate", response.status == 200)),
        raw=data,
        log=parse_receipt_log(data.get("log")),
    )


def parse_envelope(response: Response) -> SealedEnvelope:
    """Parse ``GET /v1/envelopes/{id}``: the exact envelope bytes (not yet verified)."""
    return SealedEnvelope.from_wire(response.body)


@dataclass(frozen=True, slots=True)
class HeaderRecord:
    """A header as the relay shows it: exact bytes and signature, plus delivery state."""

    message_id: str
    header_bytes: bytes
    signature: bytes
    seals_bytes: bytes | None
    state: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)


def _header_record(data: Mapping[str, Any]) -> HeaderRecord:
    seals = data.get("seals")
    state = data.get("state", data.get("delivery_state"))
    return HeaderRecord(
        message_id=_str(data.get("message_id", data.get("id")), "message_id"),
        header_bytes=b64decode(_str(data["header"], "header"), field="header"),
        signature=b64decode(_str(data["signature"], "signature"), field="signature"),
        seals_bytes=b64decode(seals, field="seals") if isinstance(seals, str) else None,
        state=state if isinstance(state, str) else None,
        raw=dict(data),
    )


def parse_header_record(response: Response) -> HeaderRecord:
    """Parse ``GET /v1/envelopes/{id}/header``."""
    return _header_record(json_object(response))


@dataclass(frozen=True, slots=True)
class EnvelopeItem:
    """An inbox entry pointing at an envelope (stays listed until a receipt is posted)."""

    cursor: int
    message_id: str
    kind: str
    thread: str
    sender: str
    sender_mailbox: str | None
    mailbox: str | None
    header_bytes: bytes
    signature: bytes
    stored_at: datetime | None


@dataclass(frozen=True, slots=True)
class NoticeItem:
    """An inbox notice from the relay (overdue, non-delivery, retention): codes only."""

    cursor: int
    notice: str
    thread: str | None
    message_id: str | None
    detail: dict[str, Any]


InboxItem = EnvelopeItem | NoticeItem


def parse_inbox_item(data: Mapping[str, Any]) -> InboxItem:
    """One inbox item (also the payload of a push event)."""
    cursor = _int(data["cursor"], "cursor")
    kind = data.get("type")
    if kind == "notice":
        detail = data.get("detail")
        return NoticeItem(
            cursor=cursor,
            notice=_str(data["notice"], "notice"),
            thread=_opt_str(data.get("thread")),
            message_id=_opt_str(data.get("message_id")),
            detail=dict(detail) if isinstance(detail, dict) else {},
        )
    if kind != "envelope":
        raise ProtocolViolation(f"unknown inbox item type {kind!r}")
    sender = data["sender"]
    sender_mailbox = None
    if isinstance(sender, dict):
        sender_mailbox = _opt_str(sender.get("mailbox"))
        sender = sender.get("agency")
    return EnvelopeItem(
        cursor=cursor,
        message_id=_str(data["message_id"], "message_id"),
        kind=_str(data["kind"], "kind"),
        thread=_str(data["thread"], "thread"),
        sender=_str(sender, "sender"),
        sender_mailbox=sender_mailbox,
        mailbox=_opt_str(data.get("mailbox")),
        header_bytes=b64decode(_str(data["header"], "header"), field="header"),
        signature=b64decode(_str(data["signature"], "signature"), field="signature"),
        stored_at=_time(data.get("stored_at")),
    )


@dataclass(frozen=True, slots=True)
class InboxPage:
    """A page of inbox items and the cursor to ask from next."""

    items: tuple[InboxItem, ...]
    next_since: int | None


def parse_inbox_page(response: Response) -> InboxPage:
    """Parse ``GET /v1/agencies/{agency}/inbox``."""
    data = json_object(response)
    items = data.get("items", [])
    if not isinstance(items, list):
        raise ProtocolViolation("inbox items must be a list")
    parsed = tuple(parse_inbox_item(item) for item in items)
    next_since = data.get("next_since")
    if not isinstance(next_since, int) or isinstance(next_since, bool):
        next_since = max((item.cursor for item in parsed), default=None)
    return InboxPage(items=parsed, next_since=next_since)


@dataclass(frozen=True, slots=True)
class DirectoryDocument:
    """The directory as published by the relay: unverified until checked against the root."""

    data: dict[str, Any]


def parse_directory(response: Response) -> DirectoryDocument:
    """Parse ``GET /v1/directory`` (verification happens in :mod:`keys.directory`)."""
    data = json_object(response)
    return DirectoryDocument(
        data={
            "root": data.get("root"),
            "certificates": data.get("certificates", []),
            "revocation_list": data.get("revocation_list"),
        }
    )


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """Delivery state of a sent message, per recipient, with any signed receipts."""

    message_id: str
    recipients: tuple[dict[str, Any], ...]
    raw: dict[str, Any] = field(repr=False, compare=False)


def parse_status(response: Response) -> DeliveryStatus:
    """Parse ``GET /v1/envelopes/{id}/status``."""
    data = json_object(response)
    recipients = data.get("deliveries", data.get("recipients", []))
    if isinstance(recipients, dict):
        recipients = [
            {"agency": k, **(v if isinstance(v, dict) else {"state": v})}
            for k, v in recipients.items()
        ]
    if not isinstance(recipients, list):
        raise ProtocolViolation("status recipients must be a list")
    return DeliveryStatus(
        message_id=_str(data.get("message_id", ""), "message_id"),
        recipients=tuple(dict(r) for r in recipients if isinstance(r, dict)),
        raw=data,
    )


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """A thread as the relay tracks it: state and deadlines, codes only."""

    thread: str
    kind: str | None
    state: str
    overdue: bool
    deadlines: tuple[dict[str, Any], ...]
    raw: dict[str, Any] = field(repr=False, compare=False)


def _thread_summary(data: Mapping[str, Any]) -> ThreadSummary:
    deadlines = data.get("deadlines", [])
    if isinstance(deadlines, dict):
        deadlines = [
            {"name": k, **(v if isinstance(v, dict) else {"due": v})} for k, v in deadlines.items()
        ]
    if not isinstance(deadlines, list):
        deadlines = []
    return ThreadSummary(
        thread=_str(data.get("thread", data.get("thread_id", data.get("id"))), "thread"),
        kind=_opt_str(data.get("kind")),
        state=_str(data.get("state", "unknown"), "state"),
        overdue=bool(data.get("overdue", False)),
        deadlines=tuple(dict(d) for d in deadlines if isinstance(d, dict)),
        raw=dict(data),
    )


def parse_threads(response: Response) -> tuple[ThreadSummary, ...]:
    """Parse ``GET /v1/threads`` (and ``/overdue``)."""
    data = json_object(response)
    threads = data.get("threads", data.get("items", []))
    if not isinstance(threads, list):
        raise ProtocolViolation("threads must be a list")
    return tuple(_thread_summary(t) for t in threads if isinstance(t, dict))


@dataclass(frozen=True, slots=True)
class ThreadDetail:
    """One thread: its summary and its chronology of headers."""

    summary: ThreadSummary
    messages: tuple[dict[str, Any], ...]


def parse_thread(response: Response) -> ThreadDetail:
    """Parse ``GET /v1/threads/{thread}``."""
    data = json_object(response)
    messages = data.get("messages", data.get("chronology", []))
    if not isinstance(messages, list):
        messages = []
    return ThreadDetail(
        summary=_thread_summary(data),
        messages=tuple(dict(m) for m in messages if isinstance(m, dict)),
    )


@dataclass(frozen=True, slots=True)
class AuditHeader:
    """One accepted header in the relay's log order, with what the auditor needs."""

    sequence: int
    record: HeaderRecord


@dataclass(frozen=True, slots=True)
class AuditPage:
    """A page of the audit feed and the cursor to ask from next."""

    items: tuple[AuditHeader, ...]
    next_since: int | None


def parse_audit_page(response: Response) -> AuditPage:
    """Parse ``GET /v1/audit/headers``."""
    data = json_object(response)
    items = data.get("items", data.get("headers", []))
    if not isinstance(items, list):
        raise ProtocolViolation("audit items must be a list")
    parsed = tuple(
        AuditHeader(
            sequence=_int(item.get("sequence", item.get("cursor")), "sequence"),
            record=_header_record(item),
        )
        for item in items
        if isinstance(item, dict)
    )
    next_since = data.get("next_since")
    if not isinstance(next_since, int) or isinstance(next_since, bool):
        next_since = max((item.sequence for item in parsed), default=None)
    return AuditPage(items=parsed, next_since=next_since)


@dataclass(frozen=True, slots=True)
class LogHead:
    """A signed tree head as served (the signed bytes decide; the rest is a readable copy)."""

    signed: SignedTreeHead
    size: int


def _log_head(value: object) -> LogHead:
    if not isinstance(value, Mapping):
        raise ProtocolViolation("a tree head must be an object")
    return LogHead(
        signed=SignedTreeHead.from_json(value.get("tree_head")),
        size=_int(value.get("size"), "size"),
    )


def parse_log_head(response: Response) -> LogHead:
    """Parse ``GET /v1/log/head`` (not yet verified: see ``keys.transparency``)."""
    return _log_head(json_object(response))


def parse_tree_heads(response: Response) -> tuple[tuple[LogHead, ...], int]:
    """Parse ``GET /v1/log/heads``: the heads and the ``next_since`` size."""
    data = json_object(response)
    items = data.get("items")
    if not isinstance(items, list):
        raise ProtocolViolation("tree heads must be a list")
    return tuple(_log_head(item) for item in items), _int(data.get("next_since"), "next_since")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One leaf: its index, type and exact bytes, and an inclusion proof when one was sent."""

    index: int
    leaf_type: str
    leaf: bytes
    inclusion_proof: tuple[bytes, ...] | None = None


def _log_entry(value: object) -> LogEntry:
    if not isinstance(value, Mapping):
        raise ProtocolViolation("a log entry must be an object")
    proof = value.get("inclusion_proof")
    return LogEntry(
        index=_int(value.get("index"), "index"),
        leaf_type=_str(value.get("type"), "type"),
        leaf=b64decode(_str(value.get("leaf"), "leaf"), field="leaf"),
        inclusion_proof=None if proof is None else _proof(proof, "inclusion_proof"),
    )


@dataclass(frozen=True, slots=True)
class LogLeaves:
    """A page of leaves: ``[start, end)`` of a log of ``size`` leaves (gaps: not visible)."""

    size: int
    start: int
    end: int
    items: tuple[LogEntry, ...]


def parse_log_leaves(response: Response) -> LogLeaves:
    """Parse ``GET /v1/log/leaves``."""
    data = json_object(response)
    items = data.get("items")
    if not isinstance(items, list):
        raise ProtocolViolation("leaves must be a list")
    return LogLeaves(
        size=_int(data.get("size"), "size"),
        start=_int(data.get("start"), "start"),
        end=_int(data.get("end"), "end"),
        items=tuple(_log_entry(item) for item in items),
    )


def parse_proof(response: Response) -> tuple[bytes, ...]:
    """Parse an inclusion or consistency proof answer (its ``proof`` list)."""
    return _proof(json_object(response).get("proof"), "proof")


def parse_frontier(response: Response) -> tuple[tuple[int, int, bytes], ...]:
    """Parse ``GET /v1/log/frontier``: ``(level, index, hash)`` triples, left first."""
    nodes = json_object(response).get("nodes")
    if not isinstance(nodes, list):
        raise ProtocolViolation("frontier nodes must be a list")
    result = []
    for node in nodes:
        if not isinstance(node, Mapping):
            raise ProtocolViolation("a frontier node must be an object")
        result.append(
            (
                _int(node.get("level"), "level"),
                _int(node.get("index"), "index"),
                b64decode(_str(node.get("hash"), "hash"), field="hash"),
            )
        )
    return tuple(result)


@dataclass(frozen=True, slots=True)
class MessageLog:
    """A message's log entries, each proved against ``tree_head`` (when there is one)."""

    message_id: str
    tree_head: LogHead | None
    entries: tuple[LogEntry, ...]


def parse_message_log(response: Response) -> MessageLog:
    """Parse ``GET /v1/envelopes/{id}/log``."""
    data = json_object(response)
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise ProtocolViolation("log entries must be a list")
    head = data.get("tree_head")
    return MessageLog(
        message_id=_str(data.get("message_id"), "message_id"),
        tree_head=None if head is None else _log_head(head),
        entries=tuple(_log_entry(entry) for entry in entries),
    )


def parse_nothing(response: Response) -> None:
    """For answers whose body does not matter."""
    return None


def parse_json(response: Response) -> dict[str, Any]:
    """For answers kept as plain JSON objects."""
    return json_object(response)


def is_problem(response: Response) -> bool:
    """True when the body is an RFC 9457 problem document."""
    return response.content_type == PROBLEM_CONTENT_TYPE


# -- retries ---------------------------------------------------------------------------------


def is_retryable(status: int) -> bool:
    """Whether an HTTP status is worth retrying (the request is repeatable)."""
    return status in RETRYABLE_STATUSES


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full jitter, capped.

    A ``Retry-After`` from the relay is honoured as a floor (still capped).
    """
    ceiling = min(cap, base * float(2 ** max(0, attempt - 1)))
    delay: float = ceiling * float(rng())
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay


# -- server-sent events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event: ``id`` (the inbox cursor), ``event`` type and ``data``."""

    id: str | None
    event: str
    data: str


class SSEDecoder:
    """Incremental ``text/event-stream`` parser (WHATWG HTML, "event stream interpretation").

    Feed it bytes as they arrive; it returns the events completed so far. Comments
    (keep-alives) are dropped. ``last_event_id`` is what to resume from.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._pending = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return every event it completes."""
        data = self._pending + chunk
        try:
            text = data.decode("utf-8")
            self._pending = b""
        except UnicodeDecodeError as exc:
            # Keep an incomplete multi-byte character for the next chunk.
            text = data[: exc.start].decode("utf-8", errors="replace")
            self._pending = data[exc.start :]
        self._buffer += text
        # A trailing CR may be the first half of CRLF: keep it until the next chunk.
        complete, held = (
            (self._buffer[:-1], "\r") if self._buffer.endswith("\r") else (self._buffer, "")
        )
        lines = complete.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop() + held
        events: list[SSEEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data and self._id is None:
                self._event = ""
                return None
            event = SSEEvent(
                id=self._id, event=self._event or "message", data="\n".join(self._data)
            )
            if self._id is not None:
                self.last_event_id = self._id
            self._data, self._event, self._id = [], "", None
            return event if event.data or event.id is not None else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None
