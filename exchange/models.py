"""The relay's tables (sqlmodel). Storage only: these never go over the wire.

What the relay keeps is deliberately little: the signed header bytes (routing ids,
kind, basis codes), the ciphertext until retention deletes it, per-recipient
delivery state and receipts, thread state derived from headers, and an ordered
event log. Nothing here is plaintext.

Schema changes go through ``exchange/migrations`` (one version per change); a test
checks these models and the migrations agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, LargeBinary, MetaData, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "CertificateRecord",
    "Counter",
    "DeadlineBreach",
    "EnvelopeContent",
    "EventRecord",
    "InboxItem",
    "LogHeadRecord",
    "LogLeafRecord",
    "LogNodeRecord",
    "MessageRecord",
    "NonceRecord",
    "RelayTable",
    "RevocationListRecord",
    "ThreadRecord",
    "UTCDateTime",
    "metadata",
]

# The relay's own metadata, so tables of other packages (the agency client's local
# store) never appear in the relay's migrations.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class RelayTable(SQLModel, registry=registry(metadata=metadata)):
    """Base of every relay table (own registry and metadata)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every engine (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC; SQLite gets a naive UTC value so string comparison stays ordered."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Counter(RelayTable, table=True):
    """Monotonic counters (``events``, ``inbox``).

    Incremented inside the writing transaction: the row lock is held until commit,
    so values are handed out in commit order even with several relay processes on
    one PostgreSQL database. An inbox reader therefore never sees cursor ``n+1``
    committed before ``n``.
    """

    __tablename__ = "counters"

    name: str = Field(primary_key=True, max_length=32)
    value: int = 0


class MessageRecord(RelayTable, table=True):
    """One accepted envelope's header (kept for audit after the ciphertext is gone)."""

    __tablename__ = "messages"

    message_id: str = Field(primary_key=True, max_length=32)
    sequence: int = Field(unique=True)
    thread_id: str = Field(index=True, max_length=32)
    in_reply_to: str | None = Field(default=None, max_length=32)
    kind: str = Field(max_length=64)
    sender_agency: str = Field(index=True, max_length=64)
    sender_mailbox: str = Field(max_length=64)
    sender_cert: str = Field(max_length=64)
    created_at: datetime = _when()
    stored_at: datetime = _when()
    header: bytes = Field(sa_type=LargeBinary)
    signature: bytes = Field(sa_type=LargeBinary)
    header_digest: bytes = Field(sa_type=LargeBinary)
    #: SHA-256 of the exact submitted bytes: same bytes again is an idempotent retry.
    envelope_digest: bytes = Field(sa_type=LargeBinary)
    size: int
    policy_decision: str = Field(max_length=16)
    policy_version: str = Field(max_length=64)
    content_deleted_at: datetime | None = _when(nullable=True)
    content_deleted_reason: str | None = Field(default=None, max_length=32)
    #: The seals block (wrapped keys and the justification sealed to the auditor; never the
    #: body), kept with the header so the auditor can read justifications after retention.
    seals: bytes | None = Field(default=None, sa_type=LargeBinary, nullable=True)


class EnvelopeContent(RelayTable, table=True):
    """The envelope as submitted (header, seals, ciphertext); deleted by retention."""

    __tablename__ = "envelope_contents"

    message_id: str = Field(primary_key=True, foreign_key="messages.message_id", max_length=32)
    wire: bytes = Field(sa_type=LargeBinary)


class InboxItem(RelayTable, table=True):
    """An item in an agency's inbox: an envelope to deliver, or a relay notice.

    ``cursor`` is the monotonic inbox stream position. Envelope items carry the
    delivery state for that recipient: ``pending`` until a signed receipt arrives
    (``delivered``) or the message expires (``expired``).
    """

    __tablename__ = "inbox_items"
    __table_args__ = (
        Index("ix_inbox_items_agency_cursor", "agency", "cursor"),
        Index("ix_inbox_items_state_created_at", "state", "created_at"),
        Index("ix_inbox_items_message_id", "message_id"),
    )

    cursor: int = Field(primary_key=True)
    agency: str = Field(max_length=64)
    mailbox: str = Field(max_length=64)
    item_type: str = Field(max_length=16)
    message_id: str | None = Field(default=None, max_length=32)
    thread_id: str | None = Field(default=None, max_length=32)
    notice: str | None = Field(default=None, max_length=32)
    detail: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _when()
    state: str = Field(max_length=16)
    delivered_at: datetime | None = _when(nullable=True)
    receipt: bytes | None = Field(default=None, sa_type=LargeBinary)
    receipt_sequence: int | None = None
    expired_at: datetime | None = _when(nullable=True)


class EventRecord(RelayTable, table=True):
    """The ordered log of everything the relay accepted or did (codes and ids only)."""

    __tablename__ = "events"

    sequence: int = Field(primary_key=True)
    at: datetime = _when()
    event_type: str = Field(max_length=32, index=True)
    message_id: str | None = Field(default=None, max_length=32, index=True)
    thread_id: str | None = Field(default=None, max_length=32)
    agency: str | None = Field(default=None, max_length=64)
    digest: bytes | None = Field(default=None, sa_type=LargeBinary)
    detail: str | None = Field(default=None, sa_type=Text)


class ThreadRecord(RelayTable, table=True):
    """A tracked thread (opened by a referral), derived from headers alone."""

    __tablename__ = "threads"

    thread_id: str = Field(primary_key=True, max_length=32)
    thread_type: str = Field(max_length=32)
    opened_by_kind: str = Field(max_length=64)
    referrer_agency: str = Field(index=True, max_length=64)
    referrer_mailbox: str = Field(max_length=64)
    recipient_agency: str = Field(index=True, max_length=64)
    recipient_mailbox: str = Field(max_length=64)
    state: str = Field(max_length=32)
    opened_at: datetime = _when()
    updated_at: datetime = _when()
    delivered_at: datetime | None = _when(nullable=True)
    acknowledged_at: datetime | None = _when(nullable=True)
    feedback_at: datetime | None = _when(nullable=True)
    closed_at: datetime | None = _when(nullable=True)


class DeadlineBreach(RelayTable, table=True):
    """A deadline a thread missed; the primary key makes the escalation exactly-once."""

    __tablename__ = "deadline_breaches"

    thread_id: str = Field(primary_key=True, max_length=32)
    deadline: str = Field(primary_key=True, max_length=32)
    due_at: datetime = _when()
    noticed_at: datetime = _when()


class CertificateRecord(RelayTable, table=True):
    """A root-signed certificate published to the relay's directory."""

    __tablename__ = "certificates"

    certificate_id: str = Field(primary_key=True, max_length=64)
    agency_id: str = Field(index=True, max_length=64)
    role: str = Field(max_length=16)
    document: str = Field(sa_type=Text)
    published_at: datetime = _when()


class RevocationListRecord(RelayTable, table=True):
    """A root-signed revocation list; the highest sequence is current."""

    __tablename__ = "revocation_lists"

    sequence: int = Field(primary_key=True)
    document: str = Field(sa_type=Text)
    published_at: datetime = _when()


class NonceRecord(RelayTable, table=True):
    """A request-signature nonce seen recently; shared by every relay process."""

    __tablename__ = "nonces"

    key_id: str = Field(primary_key=True, max_length=64)
    nonce: str = Field(primary_key=True, max_length=128)
    expires_at: datetime = _when(index=True)


class LogLeafRecord(RelayTable, table=True):
    """One leaf of the transparency log (``exchange/log.py``): exact bytes, never rewritten.

    ``agency`` and ``message_id`` only say whom the entry concerns, so an agency can
    be shown its own entries; the leaf bytes are what the Merkle tree commits to.
    """

    __tablename__ = "log_leaves"

    leaf_index: int = Field(primary_key=True)
    leaf_type: str = Field(max_length=16)
    message_id: str | None = Field(default=None, max_length=32, index=True)
    agency: str | None = Field(default=None, max_length=64, index=True)
    event_sequence: int | None = None
    at: datetime = _when()
    leaf: bytes = Field(sa_type=LargeBinary)
    leaf_hash: bytes = Field(sa_type=LargeBinary)


class LogNodeRecord(RelayTable, table=True):
    """A perfect, aligned subtree of the log: hash of leaves ``[index*2**level, ...)``."""

    __tablename__ = "log_nodes"

    level: int = Field(primary_key=True)
    node_index: int = Field(primary_key=True)
    hash: bytes = Field(sa_type=LargeBinary)


class LogHeadRecord(RelayTable, table=True):
    """A signed tree head; at most one per tree size."""

    __tablename__ = "log_heads"

    tree_size: int = Field(primary_key=True)
    root: bytes = Field(sa_type=LargeBinary)
    timestamp: datetime = _when(index=True)
    certificate_id: str = Field(max_length=64)
    head: bytes = Field(sa_type=LargeBinary)
    signature: bytes = Field(sa_type=LargeBinary)
