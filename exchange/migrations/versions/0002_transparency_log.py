"""Transparency log: leaves, perfect-subtree nodes, signed tree heads; seals kept with headers.

Adds ``messages.seals`` (the wrapped keys and the justification sealed to the
auditor, never the body), the ``log_leaves``, ``log_nodes`` and ``log_heads``
tables and the ``log`` counter. A database that already holds messages is
backfilled: seals from the stored envelopes still present, and one leaf per
logged event (accepted header, receipt, expiry, deletion) in event order, with
the Merkle nodes they complete. Heads are signed later by the running relay.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from keys.transparency import leaf_bytes
from schemas.merkle import leaf_hash, nodes_completed_by
from schemas.timefmt import format_time

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("seals", sa.LargeBinary(), nullable=True))
    op.create_table(
        "log_leaves",
        sa.Column("leaf_index", sa.Integer(), nullable=False),
        sa.Column("leaf_type", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=True),
        sa.Column("agency", sa.String(length=64), nullable=True),
        sa.Column("event_sequence", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name=op.f("pk_log_leaves")),
    )
    op.create_index(op.f("ix_log_leaves_agency"), "log_leaves", ["agency"], unique=False)
    op.create_index(op.f("ix_log_leaves_message_id"), "log_leaves", ["message_id"], unique=False)
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("node_index", sa.Integer(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "node_index", name=op.f("pk_log_nodes")),
    )
    op.create_table(
        "log_heads",
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("certificate_id", sa.String(length=64), nullable=False),
        sa.Column("head", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_log_heads")),
    )
    op.create_index(op.f("ix_log_heads_timestamp"), "log_heads", ["timestamp"], unique=False)
    if context.is_offline_mode():
        _insert_counter(0)
    else:
        _backfill()


def _insert_counter(value: int) -> None:
    op.bulk_insert(
        sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.Integer)),
        [{"name": "log", "value": value}],
    )


def _backfill() -> None:
    """Seals for stored envelopes, and a leaf for every event already logged."""
    bind = op.get_bind()
    messages = sa.table(
        "messages",
        sa.column("message_id", sa.String),
        sa.column("sender_agency", sa.String),
        sa.column("stored_at", sa.DateTime),
        sa.column("header", sa.LargeBinary),
        sa.column("signature", sa.LargeBinary),
        sa.column("seals", sa.LargeBinary),
    )
    contents = sa.table(
        "envelope_contents", sa.column("message_id", sa.String), sa.column("wire", sa.LargeBinary)
    )
    events = sa.table(
        "events",
        sa.column("sequence", sa.Integer),
        sa.column("at", sa.DateTime),
        sa.column("event_type", sa.String),
        sa.column("message_id", sa.String),
        sa.column("agency", sa.String),
        sa.column("detail", sa.Text),
    )
    inbox = sa.table(
        "inbox_items",
        sa.column("message_id", sa.String),
        sa.column("agency", sa.String),
        sa.column("receipt", sa.LargeBinary),
        sa.column("receipt_sequence", sa.Integer),
    )
    for message_id, wire in bind.execute(sa.select(contents.c.message_id, contents.c.wire)):
        try:
            seals = base64.b64decode(json.loads(wire)["seals"], validate=True)
        except (ValueError, KeyError, TypeError):
            continue
        bind.execute(
            messages.update().where(messages.c.message_id == message_id).values(seals=seals)
        )

    headers = {
        row.message_id: row
        for row in bind.execute(
            sa.select(
                messages.c.message_id,
                messages.c.sender_agency,
                messages.c.stored_at,
                messages.c.header,
                messages.c.signature,
            )
        )
    }
    receipts = {
        row.receipt_sequence: row
        for row in bind.execute(
            sa.select(
                inbox.c.message_id, inbox.c.agency, inbox.c.receipt, inbox.c.receipt_sequence
            ).where(inbox.c.receipt_sequence.is_not(None))
        )
    }
    nodes: dict[tuple[int, int], bytes] = {}
    leaf_rows: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    query = sa.select(events).order_by(events.c.sequence)
    for event in bind.execute(query):
        at = _aware(event.at)
        common = {"sequence": int(event.sequence), "at": format_time(at)}
        agency = event.agency
        if event.event_type == "header_accepted" and event.message_id in headers:
            row = headers[event.message_id]
            leaf_type = "envelope"
            leaf = leaf_bytes(
                "envelope",
                {
                    **common,
                    "at": format_time(_aware(row.stored_at)),
                    "header": _b64(bytes(row.header)),
                    "signature": _b64(bytes(row.signature)),
                },
            )
            agency = row.sender_agency
        elif event.event_type == "receipt" and event.sequence in receipts:
            item = receipts[event.sequence]
            document = json.loads(item.receipt)
            leaf_type = "receipt"
            leaf = leaf_bytes(
                "receipt",
                {
                    **common,
                    "message_id": item.message_id,
                    "recipient": item.agency,
                    "receipt": {"body": document["body"], "signature": document["signature"]},
                },
            )
        elif event.event_type == "delivery_expired":
            leaf_type = "expiry"
            leaf = leaf_bytes(
                "expiry", {**common, "message_id": event.message_id, "recipient": event.agency}
            )
        elif event.event_type == "content_deleted":
            detail = json.loads(event.detail or "{}")
            leaf_type = "deletion"
            leaf = leaf_bytes(
                "deletion",
                {**common, "message_id": event.message_id, "reason": detail.get("reason", "")},
            )
        else:
            continue
        index = len(leaf_rows)
        hashed = leaf_hash(leaf)
        for level, position, value in nodes_completed_by(
            index, hashed, lambda level, position: nodes[(level, position)]
        ):
            nodes[(level, position)] = value
            node_rows.append({"level": level, "node_index": position, "hash": value})
        leaf_rows.append(
            {
                "leaf_index": index,
                "leaf_type": leaf_type,
                "message_id": event.message_id,
                "agency": agency,
                "event_sequence": int(event.sequence),
                "at": at,
                "leaf": leaf,
                "leaf_hash": hashed,
            }
        )
    leaves_table = sa.table(
        "log_leaves",
        sa.column("leaf_index", sa.Integer),
        sa.column("leaf_type", sa.String),
        sa.column("message_id", sa.String),
        sa.column("agency", sa.String),
        sa.column("event_sequence", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("leaf", sa.LargeBinary),
        sa.column("leaf_hash", sa.LargeBinary),
    )
    nodes_table = sa.table(
        "log_nodes",
        sa.column("level", sa.Integer),
        sa.column("node_index", sa.Integer),
        sa.column("hash", sa.LargeBinary),
    )
    if leaf_rows:
        if bind.dialect.name == "sqlite":
            for leaf_row in leaf_rows:
                leaf_row["at"] = leaf_row["at"].replace(tzinfo=None)
        op.bulk_insert(leaves_table, leaf_rows)
        op.bulk_insert(nodes_table, node_rows)
    _insert_counter(len(leaf_rows))


def downgrade() -> None:
    """Revert this revision."""
    op.execute(sa.text("DELETE FROM counters WHERE name = 'log'"))
    op.drop_index(op.f("ix_log_heads_timestamp"), table_name="log_heads")
    op.drop_table("log_heads")
    op.drop_table("log_nodes")
    op.drop_index(op.f("ix_log_leaves_message_id"), table_name="log_leaves")
    op.drop_index(op.f("ix_log_leaves_agency"), table_name="log_leaves")
    op.drop_table("log_leaves")
    # A plain ALTER (SQLite >= 3.35 and PostgreSQL): a batch copy would trip the foreign key
    # from envelope_contents.
    op.execute(sa.text("ALTER TABLE messages DROP COLUMN seals"))
