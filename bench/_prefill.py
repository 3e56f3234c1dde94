"""Pre-fill a relay database with N stored messages, quickly, through the relay's own models.

Submitting a million messages through the API would take longer than the rest of
the benchmark together, so the scaling runs start from a database filled by direct
bulk inserts (``executemany`` on the tables of ``exchange/models.py``, in
transactions of 20,000 messages, without journal or fsync: this is set-up, not a
measurement). Column order comes from the models' tables and datetimes are stored
in the format the relay's ``UTCDateTime`` column type produces (checked at start).
Each pre-filled message has every row the relay writes for a referral
that was submitted and then receipted:

* ``messages`` (the template's 1.5 KiB signed header), ``envelope_contents`` (the
  template's 7 KiB wire form: ciphertext is kept, as within the 30-day retention),
* ``inbox_items``: one, for the recipient, ``delivered`` with its signed receipt,
* ``events``: ``header_accepted`` and ``receipt``,
* ``threads``: one ``CLOSED`` thread per referral (old threads are closed; the
  benchmark's own submissions open new ones),
* the transparency log (when the relay has one): one ``envelope`` and one ``receipt``
  leaf per message, appended with the relay's own ``log_store.append_leaves``,
* the ``events`` and ``inbox`` counters advanced past them.

Senders rotate over the partnership's schools, GP and police; every pre-filled
message goes to the MASH front door (the busiest inbox, so its index ranges are the
longest). Stored and delivered times lie within the last 20 days, so the sweeper has
nothing to expire or delete while the benchmark runs. Ids are random; header bytes
are the template's (nothing re-verifies stored headers).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.dialects import sqlite as sqlite_dialect

from exchange.models import (
    EnvelopeContent,
    EventRecord,
    InboxItem,
    MessageRecord,
    ThreadRecord,
)
from keys.testing import Partnership
from schemas.envelope import SealedEnvelope

__all__ = ["prefill_relay"]

_SENDERS = ("school", "second_school", "academy", "gp", "police", "nursery")
_CHUNK = 20_000


def _table(model: Any) -> Any:
    return model.__table__


class _Inserter:
    """``INSERT`` statements for the relay's tables, column order from the models.

    Columns the benchmark does not know (the schema is still growing) get NULL when
    nullable, else their default or an empty value of their type; :attr:`filled`
    names them so the run can say so.
    """

    def __init__(self) -> None:
        self.tables = {
            model: _table(model)
            for model in (EventRecord, MessageRecord, EnvelopeContent, InboxItem, ThreadRecord)
        }
        self.filled: set[str] = set()
        self._fallback: dict[tuple[Any, str], Any] = {}

    def sql(self, model: Any) -> tuple[str, list[str]]:
        table = self.tables[model]
        names = [c.name for c in table.columns]
        marks = ", ".join("?" for _ in names)
        return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", names

    def value(self, model: Any, name: str, row: dict[str, Any]) -> Any:
        if name in row:
            return row[name]
        key = (model, name)
        if key not in self._fallback:
            column = self.tables[model].c[name]
            self.filled.add(f"{self.tables[model].name}.{name}")
            if column.nullable:
                fallback: Any = None
            elif column.default is not None and getattr(column.default, "is_scalar", False):
                fallback = column.default.arg
            else:
                python_type: Any = None
                with contextlib.suppress(NotImplementedError):
                    python_type = column.type.python_type
                fallback = {bytes: b"", int: 0, str: "", bool: False}.get(python_type, "")
                if python_type is datetime:
                    fallback = row.get("stored_at") or row.get("created_at") or row.get("at")
            self._fallback[key] = fallback
        return self._fallback[key]

    def row(self, model: Any, names: list[str], values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(self.value(model, name, values) for name in names)


def _time_text(moment: datetime) -> str:
    """A datetime as the relay's ``UTCDateTime`` stores it in SQLite (checked below)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _check_time_format() -> None:
    """Fail loudly if the relay's column type stores datetimes differently."""
    column = _table(MessageRecord).c.stored_at
    dialect = sqlite_dialect.dialect()
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    sample = datetime(2026, 11, 24, 9, 30, 1, 123456, tzinfo=UTC)
    stored = process(sample) if process else sample
    if stored != _time_text(sample):
        raise AssertionError(
            f"the relay stores datetimes as {stored!r}, not {_time_text(sample)!r}"
        )


def _log_appender() -> Any:
    """The relay's transparency-log append (``exchange.log_store``), if this relay has one."""
    try:
        from exchange import log_leaves, log_store
    except ImportError:
        return None
    needed = ("append_leaves", "PendingLeaf")
    if not all(hasattr(log_store, n) for n in needed) or not all(
        hasattr(log_leaves, n) for n in ("envelope_leaf", "receipt_leaf")
    ):
        return None

    def append(connection: Any, entries: list[dict[str, Any]]) -> None:
        leaves = []
        for e in entries:
            leaves.append(log_store.PendingLeaf(
                leaf_type="envelope",
                leaf=log_leaves.envelope_leaf(sequence=e["sequence"], at=e["stored"],
                                              header=e["header"], signature=e["signature"]),
                message_id=e["message_id"], agency=e["sender"], event_sequence=e["sequence"],
                at=e["stored"]))
            leaves.append(log_store.PendingLeaf(
                leaf_type="receipt",
                leaf=log_leaves.receipt_leaf(sequence=e["receipt_sequence"], at=e["delivered"],
                                             message_id=e["message_id"], recipient=e["recipient"],
                                             receipt=e["receipt"]),
                message_id=e["message_id"], agency=e["recipient"],
                event_sequence=e["receipt_sequence"], at=e["delivered"]))
        log_store.append_leaves(connection, leaves)

    return append


def prefill_relay(db: Path, partnership: Partnership, base: SealedEnvelope, count: int,
                  *, recipient: str = "mash") -> dict[str, Any]:
    """Insert ``count`` delivered messages into the (migrated) relay database ``db``."""
    started = time.perf_counter()
    _check_time_format()
    inserter = _Inserter()
    append_log = _log_appender()
    engine = create_engine(f"sqlite:///{db}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Set-up, not measurement: no journal, no fsync. WAL is back on at the end.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=OFF")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA cache_size=-262144")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    target = partnership[recipient]
    senders = [partnership[key] for key in _SENDERS]
    wire = base.to_wire()
    header = base.header_bytes
    now = datetime.now(UTC).replace(microsecond=0)
    span = timedelta(days=20).total_seconds()
    with engine.connect() as connection:
        counters = {
            str(name): int(value)
            for name, value in connection.exec_driver_sql("SELECT name, value FROM counters")
        }
    sequence = counters.get("events", 0)
    cursor = counters.get("inbox", 0)
    receipt_json = {"body": "x" * 300, "signature": "y" * 88}
    receipt = json.dumps(receipt_json, separators=(",", ":")).encode()
    detail = json.dumps({"kind": "REFERRAL", "recipients": [target.agency_id]},
                        sort_keys=True, separators=(",", ":"))
    statements = {model: inserter.sql(model) for model in inserter.tables}
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        rows: dict[Any, list[tuple[Any, ...]]] = {model: [] for model in inserter.tables}
        log_entries: list[dict[str, Any]] = []
        for i in range(start, start + n):
            message_id = os.urandom(16).hex()
            sender = senders[i % len(senders)]
            stored = now - timedelta(seconds=span * (1 - i / max(count, 1)), hours=2)
            delivered = stored + timedelta(minutes=30)
            stored_at, delivered_at = _time_text(stored), _time_text(delivered)
            closed_at = _time_text(delivered + timedelta(days=1))
            header_sequence, receipt_sequence = sequence + 1, sequence + 2
            sequence += 2
            cursor += 1
            signature = os.urandom(64)
            values: dict[Any, dict[str, Any]] = {
                MessageRecord: {
                    "message_id": message_id, "sequence": header_sequence,
                    "thread_id": message_id, "in_reply_to": None, "kind": "REFERRAL",
                    "sender_agency": sender.agency_id, "sender_mailbox": sender.mailbox,
                    "sender_cert": sender.certificate.id, "created_at": stored_at,
                    "stored_at": stored_at, "header": header, "signature": signature,
                    "header_digest": os.urandom(32), "envelope_digest": os.urandom(32),
                    "size": len(wire), "policy_decision": "allow",
                    "policy_version": "2026.11.1", "content_deleted_at": None,
                    "content_deleted_reason": None, "seals": base.seals_bytes,
                },
                EnvelopeContent: {"message_id": message_id, "wire": wire},
                InboxItem: {
                    "cursor": cursor, "agency": target.agency_id, "mailbox": target.mailbox,
                    "item_type": "envelope", "message_id": message_id,
                    "thread_id": message_id, "notice": None, "detail": None,
                    "created_at": stored_at, "state": "delivered",
                    "delivered_at": delivered_at, "receipt": receipt,
                    "receipt_sequence": receipt_sequence, "expired_at": None,
                },
                ThreadRecord: {
                    "thread_id": message_id, "thread_type": "REFERRAL",
                    "opened_by_kind": "REFERRAL", "referrer_agency": sender.agency_id,
                    "referrer_mailbox": sender.mailbox, "recipient_agency": target.agency_id,
                    "recipient_mailbox": target.mailbox, "state": "CLOSED",
                    "opened_at": stored_at, "updated_at": closed_at,
                    "delivered_at": delivered_at,
                    "acknowledged_at": _time_text(delivered + timedelta(hours=1)),
                    "feedback_at": closed_at, "closed_at": closed_at,
                },
            }
            for model, row in values.items():
                rows[model].append(inserter.row(model, statements[model][1], row))
            for seq, at, kind, agency, text in (
                (header_sequence, stored_at, "header_accepted", sender.agency_id, detail),
                (receipt_sequence, delivered_at, "receipt", target.agency_id, None),
            ):
                rows[EventRecord].append(inserter.row(EventRecord, statements[EventRecord][1], {
                    "sequence": seq, "at": at, "event_type": kind, "message_id": message_id,
                    "thread_id": message_id, "agency": agency, "digest": os.urandom(32),
                    "detail": text,
                }))
            if append_log is not None:
                log_entries.append({
                    "sequence": header_sequence, "receipt_sequence": receipt_sequence,
                    "stored": stored, "delivered": delivered, "header": header,
                    "signature": signature, "message_id": message_id,
                    "sender": sender.agency_id, "recipient": target.agency_id,
                    "receipt": receipt_json,
                })
        with engine.begin() as connection:
            for model, batch in rows.items():
                connection.exec_driver_sql(statements[model][0], batch)
            if append_log is not None:
                append_log(connection, log_entries)
    with engine.begin() as connection:
        for name, value in (("events", sequence), ("inbox", cursor)):
            updated = connection.exec_driver_sql(
                "UPDATE counters SET value = ? WHERE name = ?", (value, name)
            )
            if updated.rowcount == 0:
                connection.exec_driver_sql(
                    "INSERT INTO counters (name, value) VALUES (?, ?)", (name, value)
                )
    engine.dispose()
    raw = sqlite3.connect(db, isolation_level=None)
    try:
        raw.execute("ANALYZE")  # statistics as a long-running database would have them
        raw.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()
    return {
        "seconds": time.perf_counter() - started,
        "inbox_cursor": cursor,
        "db_bytes": float(db.stat().st_size),
        "transparency_log": append_log is not None,
        "columns_defaulted": sorted(inserter.filled),
    }
