"""Initial schema: messages, contents, inbox, events, threads, directory, nonces.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "certificates",
        sa.Column("certificate_id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_certificates")),
    )
    op.create_index(op.f("ix_certificates_agency_id"), "certificates", ["agency_id"], unique=False)

    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "deadline_breaches",
        sa.Column("thread_id", sa.String(length=32), nullable=False),
        sa.Column("deadline", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("thread_id", "deadline", name=op.f("pk_deadline_breaches")),
    )
    op.create_table(
        "events",
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.Column("thread_id", sa.String(length=32), nullable=True),
        sa.Column("agency", sa.String(length=64), nullable=True),
        sa.Column("digest", sa.LargeBinary(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_event_type"), "events", ["event_type"], unique=False)
    op.create_index(op.f("ix_events_message_id"), "events", ["message_id"], unique=False)

    op.create_table(
        "inbox_items",
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("agency", sa.String(length=64), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("item_type", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.Column("thread_id", sa.String(length=32), nullable=True),
        sa.Column("notice", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt", sa.LargeBinary(), nullable=True),
        sa.Column("receipt_sequence", sa.Integer(), nullable=True),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("cursor", name=op.f("pk_inbox_items")),
    )
    op.create_index(
        "ix_inbox_items_agency_cursor", "inbox_items", ["agency", "cursor"], unique=False
    )
    op.create_index("ix_inbox_items_message_id", "inbox_items", ["message_id"], unique=False)
    op.create_index(
        "ix_inbox_items_state_created_at", "inbox_items", ["state", "created_at"], unique=False
    )

    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.String(length=32), nullable=False),
        sa.Column("in_reply_to", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("sender_agency", sa.String(length=64), nullable=False),
        sa.Column("sender_mailbox", sa.String(length=64), nullable=False),
        sa.Column("sender_cert", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("header", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("header_digest", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_digest", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("policy_decision", sa.String(length=16), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("content_deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_deleted_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_messages")),
        sa.UniqueConstraint("sequence", name=op.f("uq_messages_sequence")),
    )
    op.create_index(op.f("ix_messages_sender_agency"), "messages", ["sender_agency"], unique=False)
    op.create_index(op.f("ix_messages_thread_id"), "messages", ["thread_id"], unique=False)

    op.create_table(
        "nonces",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "nonce", name=op.f("pk_nonces")),
    )
    op.create_index(op.f("ix_nonces_expires_at"), "nonces", ["expires_at"], unique=False)

    op.create_table(
        "revocation_lists",
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_revocation_lists")),
    )
    op.create_table(
        "threads",
        sa.Column("thread_id", sa.String(length=32), nullable=False),
        sa.Column("thread_type", sa.String(length=32), nullable=False),
        sa.Column("opened_by_kind", sa.String(length=64), nullable=False),
        sa.Column("referrer_agency", sa.String(length=64), nullable=False),
        sa.Column("referrer_mailbox", sa.String(length=64), nullable=False),
        sa.Column("recipient_agency", sa.String(length=64), nullable=False),
        sa.Column("recipient_mailbox", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("thread_id", name=op.f("pk_threads")),
    )
    op.create_index(
        op.f("ix_threads_recipient_agency"), "threads", ["recipient_agency"], unique=False
    )
    op.create_index(
        op.f("ix_threads_referrer_agency"), "threads", ["referrer_agency"], unique=False
    )

    op.create_table(
        "envelope_contents",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("wire", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.message_id"],
            name=op.f("fk_envelope_contents_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_envelope_contents")),
    )

    op.bulk_insert(
        sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.Integer)),
        [{"name": "events", "value": 0}, {"name": "inbox", "value": 0}],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("envelope_contents")
    op.drop_index(op.f("ix_threads_referrer_agency"), table_name="threads")
    op.drop_index(op.f("ix_threads_recipient_agency"), table_name="threads")

    op.drop_table("threads")
    op.drop_table("revocation_lists")
    op.drop_index(op.f("ix_nonces_expires_at"), table_name="nonces")

    op.drop_table("nonces")
    op.drop_index(op.f("ix_messages_thread_id"), table_name="messages")
    op.drop_index(op.f("ix_messages_sender_agency"), table_name="messages")

    op.drop_table("messages")
    op.drop_index("ix_inbox_items_state_created_at", table_name="inbox_items")
    op.drop_index("ix_inbox_items_message_id", table_name="inbox_items")
    op.drop_index("ix_inbox_items_agency_cursor", table_name="inbox_items")

    op.drop_table("inbox_items")
    op.drop_index(op.f("ix_events_message_id"), table_name="events")
    op.drop_index(op.f("ix_events_event_type"), table_name="events")

    op.drop_table("events")
    op.drop_table("deadline_breaches")
    op.drop_table("counters")
    op.drop_index(op.f("ix_certificates_agency_id"), table_name="certificates")

    op.drop_table("certificates")
