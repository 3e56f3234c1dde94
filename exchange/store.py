"""The relay's storage: one method per use case, each one named transaction.

Theory of operation
-------------------
**Reads** open a short sqlmodel session each (on a reader thread for SQLite) and
return plain dataclasses (never table models).

**Writes** all go through one :class:`Writer` task per process. It takes every
write job waiting in its queue (up to ``batch_max``), runs each inside its own
savepoint of one transaction and commits once: *group commit*. Jobs are plain
synchronous SQL, so a whole batch crosses to the database's writer thread once
(SQLite) instead of once per statement. A job that fails
rolls back only its savepoint and gets its own exception; the others commit. No
caller is answered before the commit that holds its rows has returned, so a
``201`` always follows a durable commit (SQLite ``synchronous=FULL`` in WAL, or
PostgreSQL's default). A single writer also means SQLite never sees two writers
fight over its lock.

**Order.** Event sequence numbers and inbox cursors come from the ``counters``
table, incremented inside the writing transaction. The row lock is held until
commit, so numbers become visible in commit order even with several relay
processes sharing one PostgreSQL database: a reader paging by cursor never sees
``n+1`` before ``n``.

Rules (who may do what, thread transitions) are not decided here: the service
passes them in as plain functions (``thread_step``) that the write job calls with
the current row, inside the transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, select

from exchange import log_store
from exchange.database import Database, is_unavailable
from exchange.log_leaves import (
    deletion_leaf,
    envelope_leaf,
    expiry_leaf,
    receipt_leaf,
    rejection_leaf,
)
from exchange.log_store import HeadRow, HeadSigner, LeafRow, PendingLeaf
from exchange.models import (
    CertificateRecord,
    Counter,
    DeadlineBreach,
    EnvelopeContent,
    EventRecord,
    InboxItem,
    MessageRecord,
    NonceRecord,
    RelayTable,
    RevocationListRecord,
    ThreadRecord,
)
from keys.transparency import SignedTreeHead
from schemas.merkle import consistency_proof, inclusion_proof
from schemas.problems import ExchangeError, Expired, NotFound, ServiceUnavailable

__all__ = [
    "NONCE_BATCH",
    "SUBMIT_BATCH",
    "Accepted",
    "AlreadyStored",
    "BatchKind",
    "Breach",
    "Delivery",
    "EventEntry",
    "ExpiryStep",
    "InboxEntry",
    "NewMessage",
    "NewNotice",
    "RelayStore",
    "StoredMessage",
    "SweepResult",
    "ThreadRow",
    "ThreadStep",
    "Writer",
]

logger = logging.getLogger("exchange.store")
T = TypeVar("T")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
#: A write job: plain synchronous SQL on the batch's connection, inside its own savepoint.
Job = Callable[[Connection], T]


def _unavailable(database: Database) -> ServiceUnavailable:
    """The 503 for a database that cannot answer now (down, restarting, timed out)."""
    return ServiceUnavailable(
        "the database is unavailable", extensions={"retry_after": database.retry_after}
    )


def _table(model: type[RelayTable]) -> Table:
    """The Core table behind a sqlmodel table class (for the lean write path)."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _db_error(exc: BaseException) -> dict[str, Any]:
    """What to log about a database error: its types and SQL text, never bound values."""
    fields: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, DBAPIError):
        fields["driver_error"] = type(exc.orig).__name__
        fields["statement"] = (exc.statement or "")[:200]
    return fields


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


# -- plain records returned to the service ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """An accepted message's header and bookkeeping (no ciphertext)."""

    message_id: str
    sequence: int
    thread_id: str
    in_reply_to: str | None
    kind: str
    sender_agency: str
    sender_mailbox: str
    sender_cert: str
    created_at: datetime
    stored_at: datetime
    header: bytes
    signature: bytes
    header_digest: bytes
    envelope_digest: bytes
    size: int
    policy_decision: str
    policy_version: str
    content_deleted_at: datetime | None
    content_deleted_reason: str | None
    #: The seals block (wrapped keys, justification sealed to the auditor; never the body).
    seals: bytes | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's delivery state for one message."""

    cursor: int
    agency: str
    mailbox: str
    state: str
    delivered_at: datetime | None
    expired_at: datetime | None
    receipt: bytes | None
    receipt_sequence: int | None


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """An inbox item, joined with its message header when it is an envelope."""

    cursor: int
    agency: str
    mailbox: str
    item_type: str
    message_id: str | None
    thread_id: str | None
    notice: str | None
    detail: dict[str, Any]
    created_at: datetime
    state: str
    message: StoredMessage | None


@dataclass(frozen=True, slots=True)
class ThreadRow:
    """A tracked thread's state, as stored."""

    thread_id: str
    thread_type: str
    opened_by_kind: str
    referrer_agency: str
    referrer_mailbox: str
    recipient_agency: str
    recipient_mailbox: str
    state: str
    opened_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    feedback_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventEntry:
    """One entry of the relay's ordered event log."""

    sequence: int
    at: datetime
    event_type: str
    message_id: str | None
    thread_id: str | None
    agency: str | None
    digest: bytes | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """Everything the submit transaction writes for one accepted envelope."""

    message_id: str
    thread_id: str
    in_reply_to: str | None
    kind: str
    sender_agency: str
    sender_mailbox: str
    sender_cert: str
    created_at: datetime
    stored_at: datetime
    header: bytes
    signature: bytes
    header_digest: bytes
    envelope_digest: bytes
    wire: bytes
    recipients: tuple[tuple[str, str], ...]
    policy_decision: str
    policy_version: str
    #: The seals block, kept with the header for the auditor (never the body).
    seals: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewNotice:
    """A relay notice to put in one agency's inbox."""

    agency: str
    mailbox: str
    notice: str
    thread_id: str | None
    message_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The submit transaction committed this message."""

    sequence: int
    stored_at: datetime
    cursors: dict[str, int]
    #: The envelope's leaf in the transparency log: its index and exact bytes.
    leaf_index: int | None = None
    leaf: bytes = b""
    #: The tree head signed for this submission's batch (None without a certified log key).
    tree_head: SignedTreeHead | None = None
    #: The leaf's inclusion proof against ``tree_head``.
    inclusion: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class AlreadyStored:
    """A message with this id was already stored (same bytes or not: compare digests)."""

    message: StoredMessage


@dataclass(frozen=True, slots=True)
class Breach:
    """A missed deadline the service wants escalated (once)."""

    thread_id: str
    deadline: str
    due_at: datetime
    notices: tuple[NewNotice, ...]


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What a retention sweep did."""

    expired: int = 0
    deleted: int = 0
    nonces_purged: int = 0
    notified: tuple[str, ...] = ()


#: Given the thread's current row (None if untracked), the row to write (or None).
ThreadStep = Callable[[ThreadRow | None], ThreadRow | None]
#: Given a thread, the expired message id and the recipient, the row to write (or None).
ExpiryStep = Callable[[ThreadRow, str, str], ThreadRow | None]


def _message(row: MessageRecord) -> StoredMessage:
    return StoredMessage(
        message_id=row.message_id,
        sequence=row.sequence,
        thread_id=row.thread_id,
        in_reply_to=row.in_reply_to,
        kind=row.kind,
        sender_agency=row.sender_agency,
        sender_mailbox=row.sender_mailbox,
        sender_cert=row.sender_cert,
        created_at=row.created_at,
        stored_at=row.stored_at,
        header=row.header,
        signature=row.signature,
        header_digest=row.header_digest,
        envelope_digest=row.envelope_digest,
        size=row.size,
        policy_decision=row.policy_decision,
        policy_version=row.policy_version,
        content_deleted_at=row.content_deleted_at,
        content_deleted_reason=row.content_deleted_reason,
        seals=row.seals,
    )


def _thread(row: ThreadRecord) -> ThreadRow:
    return ThreadRow(
        thread_id=row.thread_id,
        thread_type=row.thread_type,
        opened_by_kind=row.opened_by_kind,
        referrer_agency=row.referrer_agency,
        referrer_mailbox=row.referrer_mailbox,
        recipient_agency=row.recipient_agency,
        recipient_mailbox=row.recipient_mailbox,
        state=row.state,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        delivered_at=row.delivered_at,
        acknowledged_at=row.acknowledged_at,
        feedback_at=row.feedback_at,
        closed_at=row.closed_at,
    )


def _thread_values(row: ThreadRow) -> dict[str, Any]:
    return {
        "thread_id": row.thread_id,
        "thread_type": row.thread_type,
        "opened_by_kind": row.opened_by_kind,
        "referrer_agency": row.referrer_agency,
        "referrer_mailbox": row.referrer_mailbox,
        "recipient_agency": row.recipient_agency,
        "recipient_mailbox": row.recipient_mailbox,
        "state": row.state,
        "opened_at": row.opened_at,
        "updated_at": row.updated_at,
        "delivered_at": row.delivered_at,
        "acknowledged_at": row.acknowledged_at,
        "feedback_at": row.feedback_at,
        "closed_at": row.closed_at,
    }


# -- the single writer -----------------------------------------------------------------------


@dataclass
class _Pending:
    name: str
    job: Job[Any] | None
    future: asyncio.Future[Any]
    kind: BatchKind[Any, Any] | None = None
    item: Any = None


class Writer:
    """One task per process that runs write jobs with group commit."""

    def __init__(self, database: Database, *, batch_max: int = 128) -> None:
        self._database = database
        self._batch_max = max(1, batch_max)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs = 0

    @property
    def depth(self) -> int:
        """Jobs waiting for the next batch."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the writer task (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="relay-writer")

    async def stop(self) -> None:
        """Finish the jobs already queued, then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        await self._queue.join()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        while not self._queue.empty():  # queued after join(): refuse rather than hang
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(ServiceUnavailable("the relay is shutting down"))
            self._queue.task_done()

    async def run(self, name: str, job: Job[T]) -> T:
        """Run ``job`` in the next batch and return its result after the commit."""
        if self._task is None:
            raise ServiceUnavailable("the relay is not accepting writes")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(name, job, future))
        return await asyncio.shield(future)

    async def run_batched(self, kind: BatchKind[ItemT, ResultT], item: ItemT) -> ResultT:
        """Add ``item`` to the next batch of ``kind``; return its result after the commit."""
        if self._task is None:
            raise ServiceUnavailable("the relay is not accepting writes")
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(kind.name, None, future, kind, item))
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception:  # pragma: no cover - _commit resolves every future itself
                logger.exception("writer batch failed")
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()

        def run_batch(connection: Connection) -> list[tuple[bool, Any]]:
            # Runs on the database's writer thread (or greenlet): no awaits, one commit.
            results: list[tuple[bool, Any]] = [(False, None)] * len(batch)
            groups: dict[BatchKind[Any, Any], list[int]] = {}
            for index, pending in enumerate(batch):
                if pending.kind is not None:
                    groups.setdefault(pending.kind, []).append(index)
                    continue
                assert pending.job is not None
                try:
                    with connection.begin_nested():
                        results[index] = (True, pending.job(connection))
                except (ExchangeError, IntegrityError) as exc:
                    results[index] = (False, exc)
            for kind, indexes in groups.items():
                try:
                    with connection.begin_nested():
                        outcomes = kind.run_many(connection, [batch[i].item for i in indexes])
                except IntegrityError:
                    outcomes = []
                    for i in indexes:  # a race with another process: one at a time
                        try:
                            with connection.begin_nested():
                                outcomes.extend(kind.run_many(connection, [batch[i].item]))
                        except IntegrityError as exc:
                            outcomes.append(exc)
                for i, outcome in zip(indexes, outcomes, strict=True):
                    failed = isinstance(outcome, ExchangeError | IntegrityError)
                    results[i] = (not failed, outcome)
            return results

        try:
            results = await self._database.transaction(run_batch)
        except Exception as exc:
            if isinstance(exc, DBAPIError) or is_unavailable(exc):
                # Nothing is acknowledged: a retry of the same envelope gets its
                # receipt whether or not this commit reached the disk.
                logger.error(
                    "write transaction failed",
                    extra={"fields": {**_db_error(exc), "jobs": len(batch)}},
                )
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(_unavailable(self._database))
                return
            # A bug in a job: fail the whole batch (nothing was committed).
            logger.exception("unexpected error in write batch")
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        self.batches += 1
        self.jobs += len(batch)
        logger.debug(
            "write batch committed",
            extra={
                "fields": {
                    "jobs": len(batch),
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
            },
        )
        for pending, (ok, value) in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)


# -- SQL helpers used inside write jobs ------------------------------------------------------


def _next(connection: Connection, name: str, count: int = 1) -> int:
    """Reserve ``count`` numbers from a counter; return the first."""
    result = connection.execute(
        update(Counter)
        .where(col(Counter.name) == name)
        .values(value=col(Counter.value) + count)
        .returning(col(Counter.value))
    )
    last = result.scalar_one()
    return int(last) - count + 1


def _add_event(
    connection: Connection,
    *,
    at: datetime,
    event_type: str,
    message_id: str | None = None,
    thread_id: str | None = None,
    agency: str | None = None,
    digest: bytes | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    sequence = _next(connection, "events")
    connection.execute(
        insert(EventRecord).values(
            sequence=sequence,
            at=at,
            event_type=event_type,
            message_id=message_id,
            thread_id=thread_id,
            agency=agency,
            digest=digest,
            detail=_dumps(detail),
        )
    )
    return sequence


def _add_notices(
    connection: Connection, notices: Sequence[NewNotice], *, at: datetime
) -> list[int]:
    if not notices:
        return []
    first = _next(connection, "inbox", len(notices))
    rows = [
        {
            "cursor": first + i,
            "agency": n.agency,
            "mailbox": n.mailbox,
            "item_type": "notice",
            "message_id": n.message_id,
            "thread_id": n.thread_id,
            "notice": n.notice,
            "detail": _dumps(n.detail),
            "created_at": at,
            "state": "info",
        }
        for i, n in enumerate(notices)
    ]
    connection.execute(insert(InboxItem), rows)
    return [first + i for i in range(len(notices))]


def _load_thread(connection: Connection, thread_id: str) -> ThreadRow | None:
    result = connection.execute(
        sa_select(_table(ThreadRecord)).where(_table(ThreadRecord).c.thread_id == thread_id)
    )
    mapping = result.mappings().first()
    return None if mapping is None else ThreadRow(**dict(mapping))


def _save_thread(connection: Connection, before: ThreadRow | None, after: ThreadRow | None) -> None:
    if after is None or after == before:
        return
    values = _thread_values(after)
    if before is None:
        connection.execute(insert(ThreadRecord).values(**values))
    else:
        del values["thread_id"]
        connection.execute(
            update(ThreadRecord)
            .where(col(ThreadRecord.thread_id) == after.thread_id)
            .values(**values)
        )


# -- batched hot paths ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BatchKind(Generic[ItemT, ResultT]):
    """A write that the writer merges across concurrent callers.

    ``run_many`` handles every queued item of this kind with a few multi-row
    statements and returns one result per item (an :class:`ExchangeError` *returned*,
    not raised, fails only that item). If it raises :class:`IntegrityError` (a race
    with another process), the writer falls back to ``run_many([item])`` per item,
    each in its own savepoint.
    """

    name: str
    run_many: Callable[[Connection, list[ItemT]], list[ResultT | ExchangeError]]


def _submit_many(
    connection: Connection,
    items: list[tuple[NewMessage, ThreadStep | None]],
    signer: HeadSigner | None = None,
) -> list[Accepted | AlreadyStored | ExchangeError]:
    messages = _table(MessageRecord)
    ids = sorted({new.message_id for new, _ in items})
    stored: dict[str, StoredMessage] = {
        row.message_id: StoredMessage(**row._mapping)
        for row in connection.execute(sa_select(messages).where(messages.c.message_id.in_(ids)))
    }
    thread_ids = sorted({new.thread_id for new, step in items if step is not None})
    before: dict[str, ThreadRow] = {}
    if thread_ids:
        threads = _table(ThreadRecord)
        for row in connection.execute(
            sa_select(threads).where(threads.c.thread_id.in_(thread_ids))
        ):
            before[row.thread_id] = ThreadRow(**row._mapping)
    current = dict(before)

    results: list[Accepted | AlreadyStored | ExchangeError | None] = [None] * len(items)
    accepted: list[int] = []
    taken: dict[str, int] = {}
    for index, (new, step) in enumerate(items):
        if new.message_id in stored:
            results[index] = AlreadyStored(stored[new.message_id])
            continue
        if new.message_id in taken:
            continue  # filled in below, once the first one has its sequence
        if step is not None:
            try:
                after = step(current.get(new.thread_id))
            except ExchangeError as exc:
                results[index] = exc
                continue
            if after is not None:
                current[new.thread_id] = after
        taken[new.message_id] = index
        accepted.append(index)

    if accepted:
        first_sequence = _next(connection, "events", len(accepted))
        first_cursor = _next(
            connection, "inbox", sum(len(items[i][0].recipients) for i in accepted)
        )
        event_rows, message_rows, content_rows, inbox_rows = [], [], [], []
        leaves: list[PendingLeaf] = []
        cursor = first_cursor
        for offset, index in enumerate(accepted):
            new = items[index][0]
            sequence = first_sequence + offset
            cursors: dict[str, int] = {}
            for agency, mailbox in new.recipients:
                cursors[agency] = cursor
                inbox_rows.append(
                    {
                        "cursor": cursor,
                        "agency": agency,
                        "mailbox": mailbox,
                        "item_type": "envelope",
                        "message_id": new.message_id,
                        "thread_id": new.thread_id,
                        "notice": None,
                        "detail": None,
                        "created_at": new.stored_at,
                        "state": "pending",
                    }
                )
                cursor += 1
            event_rows.append(
                {
                    "sequence": sequence,
                    "at": new.stored_at,
                    "event_type": "header_accepted",
                    "message_id": new.message_id,
                    "thread_id": new.thread_id,
                    "agency": new.sender_agency,
                    "digest": new.header_digest,
                    "detail": _dumps(
                        {"kind": new.kind, "recipients": [a for a, _ in new.recipients]}
                    ),
                }
            )
            message_rows.append(
                {
                    "message_id": new.message_id,
                    "sequence": sequence,
                    "thread_id": new.thread_id,
                    "in_reply_to": new.in_reply_to,
                    "kind": new.kind,
                    "sender_agency": new.sender_agency,
                    "sender_mailbox": new.sender_mailbox,
                    "sender_cert": new.sender_cert,
                    "created_at": new.created_at,
                    "stored_at": new.stored_at,
                    "header": new.header,
                    "signature": new.signature,
                    "header_digest": new.header_digest,
                    "envelope_digest": new.envelope_digest,
                    "size": len(new.wire),
                    "policy_decision": new.policy_decision,
                    "policy_version": new.policy_version,
                    "content_deleted_at": None,
                    "content_deleted_reason": None,
                    "seals": new.seals,
                }
            )
            content_rows.append({"message_id": new.message_id, "wire": new.wire})
            leaves.append(
                PendingLeaf(
                    leaf_type="envelope",
                    leaf=envelope_leaf(
                        sequence=sequence,
                        at=new.stored_at,
                        header=new.header,
                        signature=new.signature,
                    ),
                    message_id=new.message_id,
                    agency=new.sender_agency,
                    event_sequence=sequence,
                    at=new.stored_at,
                )
            )
            results[index] = Accepted(sequence=sequence, stored_at=new.stored_at, cursors=cursors)
        connection.execute(insert(_table(EventRecord)), event_rows)
        connection.execute(insert(messages), message_rows)
        connection.execute(insert(_table(EnvelopeContent)), content_rows)
        connection.execute(insert(_table(InboxItem)), inbox_rows)
        _save_threads(connection, before, current)
        _log_accepted(connection, accepted, leaves, results, signer)

    for index, (new, _) in enumerate(items):
        if results[index] is None:  # a second copy of an id accepted earlier in this batch
            first = results[taken[new.message_id]]
            assert isinstance(first, Accepted)
            original = items[taken[new.message_id]][0]
            results[index] = AlreadyStored(_stored_from_new(original, first.sequence))
    return [r for r in results if r is not None]


def _log_accepted(
    connection: Connection,
    accepted: list[int],
    leaves: list[PendingLeaf],
    results: list[Accepted | AlreadyStored | ExchangeError | None],
    signer: HeadSigner | None,
) -> None:
    """Append the batch's envelope leaves; sign one head for the batch and prove each leaf."""
    appended = log_store.append_leaves(connection, leaves)
    head = (
        None
        if signer is None
        else log_store.sign_and_store_head(connection, appended.size, appended.lookup, signer)
    )
    for offset, index in enumerate(accepted):
        result = results[index]
        assert isinstance(result, Accepted)
        leaf_index = appended.first + offset
        proof: tuple[bytes, ...] = ()
        if head is not None:
            proof = tuple(inclusion_proof(leaf_index, head.size, appended.lookup))
        results[index] = replace(
            result,
            leaf_index=leaf_index,
            leaf=leaves[offset].leaf,
            tree_head=None if head is None else head.signed,
            inclusion=proof,
        )


def _stored_from_new(new: NewMessage, sequence: int) -> StoredMessage:
    return StoredMessage(
        message_id=new.message_id,
        sequence=sequence,
        thread_id=new.thread_id,
        in_reply_to=new.in_reply_to,
        kind=new.kind,
        sender_agency=new.sender_agency,
        sender_mailbox=new.sender_mailbox,
        sender_cert=new.sender_cert,
        created_at=new.created_at,
        stored_at=new.stored_at,
        header=new.header,
        signature=new.signature,
        header_digest=new.header_digest,
        envelope_digest=new.envelope_digest,
        size=len(new.wire),
        policy_decision=new.policy_decision,
        policy_version=new.policy_version,
        content_deleted_at=None,
        content_deleted_reason=None,
        seals=new.seals,
    )


def _save_threads(
    connection: Connection, before: dict[str, ThreadRow], after: dict[str, ThreadRow]
) -> None:
    new_rows = [_thread_values(row) for tid, row in after.items() if tid not in before]
    changed = [
        _thread_values(row) for tid, row in after.items() if tid in before and row != before[tid]
    ]
    threads = _table(ThreadRecord)
    if new_rows:
        connection.execute(insert(threads), new_rows)
    if changed:
        columns = [c for c in changed[0] if c != "thread_id"]
        statement = (
            update(threads)
            .where(threads.c.thread_id == bindparam("key_thread_id"))
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        connection.execute(
            statement,
            [
                {"key_thread_id": row["thread_id"], **{f"new_{c}": row[c] for c in columns}}
                for row in changed
            ],
        )


def _nonces_many(
    connection: Connection, items: list[tuple[str, str, datetime]]
) -> list[bool | ExchangeError]:
    table = _table(NonceRecord)
    by_key: dict[str, set[str]] = {}
    for key_id, nonce, _ in items:
        by_key.setdefault(key_id, set()).add(nonce)
    # Equality on key_id and an IN on nonce per key: the primary key answers it, where a
    # row-value IN made SQLite scan every nonce of the last few minutes.
    condition = or_(
        *(
            and_(table.c.key_id == key_id, table.c.nonce.in_(sorted(nonces)))
            for key_id, nonces in by_key.items()
        )
    )
    seen = {
        (row.key_id, row.nonce)
        for row in connection.execute(sa_select(table.c.key_id, table.c.nonce).where(condition))
    }
    results: list[bool | ExchangeError] = []
    rows = []
    for key_id, nonce, expires_at in items:
        fresh = (key_id, nonce) not in seen
        results.append(fresh)
        if fresh:
            seen.add((key_id, nonce))
            rows.append({"key_id": key_id, "nonce": nonce, "expires_at": expires_at})
    if rows:
        connection.execute(insert(table), rows)
    return results


#: Concurrent submissions: one multi-row insert per table per group commit.
SUBMIT_BATCH: BatchKind[tuple[NewMessage, ThreadStep | None], Accepted | AlreadyStored] = BatchKind(
    "submit_envelope", _submit_many
)
#: Request nonces: one lookup and one multi-row insert per group commit.
NONCE_BATCH: BatchKind[tuple[str, str, datetime], bool] = BatchKind("remember_nonce", _nonces_many)


# -- the store -------------------------------------------------------------------------------


class RelayStore:
    """Named transactions over the relay database."""

    def __init__(self, database: Database, writer: Writer) -> None:
        self.database = database
        self.writer = writer
        #: Signs tree heads for the transparency log (set once the relay's log key is loaded).
        self.head_signer: HeadSigner | None = None
        self._submit_batch: BatchKind[
            tuple[NewMessage, ThreadStep | None], Accepted | AlreadyStored
        ] = BatchKind("submit_envelope", self._submit_with_log)

    def _submit_with_log(
        self, connection: Connection, items: list[tuple[NewMessage, ThreadStep | None]]
    ) -> list[Accepted | AlreadyStored | ExchangeError]:
        return _submit_many(connection, items, self.head_signer)

    # -- helpers -----------------------------------------------------------------------------

    async def _read(self, name: str, fn: Callable[[Session], T]) -> T:
        try:
            return await self.database.read(fn)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            logger.error(
                "read transaction failed",
                extra={"fields": {"transaction": name, **_db_error(exc)}},
            )
            raise _unavailable(self.database) from None

    async def _write(self, name: str, job: Job[T]) -> T:
        return await self.writer.run(name, job)

    # -- health --------------------------------------------------------------------------------

    async def ping(self) -> None:
        """``ping``: one round trip to the database."""

        def fn(session: Session) -> None:
            session.exec(select(1))

        await self._read("ping", fn)

    # -- submit ------------------------------------------------------------------------------

    async def find_message(self, message_id: str) -> StoredMessage | None:
        """``find_message``: the stored header of a message id, if any."""

        table = _table(MessageRecord)

        def fn(session: Session) -> StoredMessage | None:
            # Core, not the ORM: this runs on the hot path of every submission.
            row = session.execute(sa_select(table).where(table.c.message_id == message_id)).first()
            return None if row is None else StoredMessage(**row._mapping)

        return await self._read("find_message", fn)

    async def submit(
        self, new: NewMessage, *, thread_step: ThreadStep | None
    ) -> Accepted | AlreadyStored:
        """``submit_envelope``: store the header, ciphertext, inbox items and event at once.

        Concurrent submissions share one batched insert (:data:`SUBMIT_BATCH`). Returns
        :class:`AlreadyStored` when the id is taken (the caller compares the digests to
        tell an idempotent retry from a reused id).
        """
        try:
            return await self.writer.run_batched(self._submit_batch, (new, thread_step))
        except IntegrityError:
            # Another relay process stored this id between our check and insert.
            message = await self.find_message(new.message_id)
            if message is None:
                raise ServiceUnavailable("the message could not be stored") from None
            return AlreadyStored(message)

    async def get_content(self, message_id: str) -> bytes | None:
        """``get_envelope_content``: the envelope as submitted, unless deleted."""

        def fn(session: Session) -> bytes | None:
            row = session.get(EnvelopeContent, message_id)
            return None if row is None else row.wire

        return await self._read("get_envelope_content", fn)

    # -- delivery ----------------------------------------------------------------------------

    async def deliveries(self, message_id: str) -> list[Delivery]:
        """``get_deliveries``: each recipient's delivery state for a message."""

        def fn(session: Session) -> list[Delivery]:
            rows = session.exec(
                select(InboxItem)
                .where(col(InboxItem.message_id) == message_id)
                .where(col(InboxItem.item_type) == "envelope")
                .order_by(col(InboxItem.cursor))
            )
            return [
                Delivery(
                    cursor=r.cursor,
                    agency=r.agency,
                    mailbox=r.mailbox,
                    state=r.state,
                    delivered_at=r.delivered_at,
                    expired_at=r.expired_at,
                    receipt=r.receipt,
                    receipt_sequence=r.receipt_sequence,
                )
                for r in rows.all()
            ]

        return await self._read("get_deliveries", fn)

    async def record_receipt(
        self,
        *,
        message_id: str,
        agency: str,
        receipt: bytes,
        receipt_digest: bytes,
        at: datetime,
        thread_id: str,
        thread_step: ThreadStep | None,
    ) -> tuple[Delivery, bool]:
        """``record_delivery_receipt``: mark one recipient delivered; idempotent.

        Returns the delivery and whether this call changed it.

        :raises NotFound: when the agency has no delivery of this message.
        :raises Expired: when the delivery already expired.
        """

        def job(connection: Connection) -> tuple[Delivery, bool]:
            table = _table(InboxItem)
            result = connection.execute(
                sa_select(table).where(
                    and_(
                        table.c.message_id == message_id,
                        table.c.agency == agency,
                        table.c.item_type == "envelope",
                    )
                )
            )
            row = result.mappings().first()
            if row is None:
                raise NotFound("no delivery of this message to this agency")
            if row["state"] == "expired":
                raise Expired("this delivery expired before a receipt arrived")
            if row["state"] == "delivered":
                return _delivery(row), False
            if thread_step is not None:
                before = _load_thread(connection, thread_id)
                _save_thread(connection, before, thread_step(before))
            sequence = _add_event(
                connection,
                at=at,
                event_type="receipt",
                message_id=message_id,
                thread_id=thread_id,
                agency=agency,
                digest=receipt_digest,
            )
            log_store.append_leaves(
                connection,
                [
                    PendingLeaf(
                        leaf_type="receipt",
                        leaf=receipt_leaf(
                            sequence=sequence,
                            at=at,
                            message_id=message_id,
                            recipient=agency,
                            receipt=json.loads(receipt),
                        ),
                        message_id=message_id,
                        agency=agency,
                        event_sequence=sequence,
                        at=at,
                    )
                ],
            )
            connection.execute(
                update(InboxItem)
                .where(col(InboxItem.cursor) == row["cursor"])
                .values(
                    state="delivered", delivered_at=at, receipt=receipt, receipt_sequence=sequence
                )
            )
            changed = dict(row)
            changed.update(
                state="delivered", delivered_at=at, receipt=receipt, receipt_sequence=sequence
            )
            return _delivery(changed), True

        return await self._write("record_delivery_receipt", job)

    async def inbox(
        self, agency: str, *, since: int, limit: int, mailbox: str | None = None
    ) -> list[InboxEntry]:
        """``get_inbox``: items after cursor ``since`` still to be handled, oldest first.

        Envelope items stay listed until delivered (or expired); notices are listed once
        per cursor position (a client that reads from an earlier cursor sees them again).
        """

        def fn(session: Session) -> list[InboxEntry]:
            query = (
                select(InboxItem, MessageRecord)
                .join(
                    MessageRecord,
                    col(MessageRecord.message_id) == col(InboxItem.message_id),
                    isouter=True,
                )
                .where(col(InboxItem.agency) == agency)
                .where(col(InboxItem.cursor) > since)
                .where(
                    or_(
                        col(InboxItem.item_type) == "notice",
                        col(InboxItem.state) == "pending",
                    )
                )
                .order_by(col(InboxItem.cursor))
                .limit(limit)
            )
            if mailbox is not None:
                query = query.where(col(InboxItem.mailbox) == mailbox)
            rows = session.exec(query)
            return [_inbox_entry(item, message) for item, message in rows.all()]

        return await self._read("get_inbox", fn)

    # -- threads -----------------------------------------------------------------------------

    async def thread(self, thread_id: str) -> ThreadRow | None:
        """``get_thread``: one tracked thread."""

        table = _table(ThreadRecord)

        def fn(session: Session) -> ThreadRow | None:
            row = session.execute(sa_select(table).where(table.c.thread_id == thread_id)).first()
            return None if row is None else ThreadRow(**row._mapping)

        return await self._read("get_thread", fn)

    async def thread_messages(self, thread_id: str) -> list[StoredMessage]:
        """``get_thread_messages``: every accepted header of a thread, in log order."""

        def fn(session: Session) -> list[StoredMessage]:
            rows = session.exec(
                select(MessageRecord)
                .where(col(MessageRecord.thread_id) == thread_id)
                .order_by(col(MessageRecord.sequence))
            )
            return [_message(r) for r in rows.all()]

        return await self._read("get_thread_messages", fn)

    async def threads(
        self, *, agency: str | None = None, role: str | None = None, open_states: Iterable[str] = ()
    ) -> list[ThreadRow]:
        """``list_threads``: threads an agency takes part in (all threads if ``agency`` is None)."""
        states = tuple(open_states)

        def fn(session: Session) -> list[ThreadRow]:
            query = select(ThreadRecord).order_by(col(ThreadRecord.opened_at))
            if agency is not None:
                if role == "sent":
                    query = query.where(col(ThreadRecord.referrer_agency) == agency)
                elif role == "received":
                    query = query.where(col(ThreadRecord.recipient_agency) == agency)
                else:
                    query = query.where(
                        or_(
                            col(ThreadRecord.referrer_agency) == agency,
                            col(ThreadRecord.recipient_agency) == agency,
                        )
                    )
            if states:
                query = query.where(col(ThreadRecord.state).in_(states))
            rows = session.exec(query)
            return [_thread(r) for r in rows.all()]

        return await self._read("list_threads", fn)

    async def breaches(self, thread_ids: Sequence[str]) -> dict[str, dict[str, datetime]]:
        """``get_deadline_breaches``: recorded breaches per thread (deadline -> noticed_at)."""
        ids = list(thread_ids)

        def fn(session: Session) -> dict[str, dict[str, datetime]]:
            result: dict[str, dict[str, datetime]] = {}
            for start in range(0, len(ids), 500):
                rows = session.exec(
                    select(DeadlineBreach).where(
                        col(DeadlineBreach.thread_id).in_(ids[start : start + 500])
                    )
                )
                for row in rows.all():
                    result.setdefault(row.thread_id, {})[row.deadline] = row.noticed_at
            return result

        return await self._read("get_deadline_breaches", fn)

    async def record_breaches(self, breaches: Sequence[Breach], *, at: datetime) -> list[str]:
        """``record_deadline_breaches``: escalate each breach once; return agencies notified."""

        def job(connection: Connection) -> list[str]:
            notified: list[str] = []
            for breach in breaches:
                table = _table(DeadlineBreach)
                seen = connection.execute(
                    sa_select(table.c.thread_id).where(
                        and_(
                            table.c.thread_id == breach.thread_id,
                            table.c.deadline == breach.deadline,
                        )
                    )
                )
                if seen.first() is not None:
                    continue
                connection.execute(
                    insert(DeadlineBreach).values(
                        thread_id=breach.thread_id,
                        deadline=breach.deadline,
                        due_at=breach.due_at,
                        noticed_at=at,
                    )
                )
                _add_event(
                    connection,
                    at=at,
                    event_type="deadline_breached",
                    thread_id=breach.thread_id,
                    detail={"deadline": breach.deadline},
                )
                _add_notices(connection, breach.notices, at=at)
                notified.extend(n.agency for n in breach.notices)
            return notified

        return await self._write("record_deadline_breaches", job)

    async def close_threads(self, steps: Mapping[str, ThreadStep], *, at: datetime) -> list[str]:
        """``close_settled_threads``: apply housekeeping closures; return the threads closed."""

        def job(connection: Connection) -> list[str]:
            closed: list[str] = []
            for thread_id, step in steps.items():
                before = _load_thread(connection, thread_id)
                after = step(before)
                if before is None or after is None or after == before:
                    continue
                _save_thread(connection, before, after)
                _add_event(
                    connection,
                    at=at,
                    event_type="thread_closed",
                    thread_id=thread_id,
                    detail={"by": "relay", "from_state": before.state},
                )
                closed.append(thread_id)
            return closed

        return await self._write("close_settled_threads", job)

    # -- retention ---------------------------------------------------------------------------

    async def sweep_retention(
        self,
        *,
        now: datetime,
        delete_delivered_before: datetime,
        expire_pending_before: datetime,
        on_expired: ExpiryStep | None = None,
        batch: int = 500,
    ) -> SweepResult:
        """``sweep_retention``: expire undelivered items, delete due ciphertext, purge nonces.

        An expired delivery gets a NON_DELIVERY notice to the sender. Ciphertext is
        deleted once no delivery is pending and every receipt is older than
        ``delete_delivered_before`` (at once when nothing was ever delivered). Each
        expiry and deletion is an event; headers stay.
        """

        def job(connection: Connection) -> SweepResult:
            items = _table(InboxItem)
            messages = _table(MessageRecord)
            expired_rows = (
                connection.execute(
                    sa_select(
                        items.c.cursor,
                        items.c.agency,
                        items.c.message_id,
                        items.c.thread_id,
                        messages.c.sender_agency,
                        messages.c.sender_mailbox,
                    )
                    .join(messages, messages.c.message_id == items.c.message_id)
                    .where(
                        and_(
                            items.c.state == "pending",
                            items.c.item_type == "envelope",
                            items.c.created_at < expire_pending_before,
                        )
                    )
                    .order_by(items.c.cursor)
                    .limit(batch)
                )
            ).all()
            notified: list[str] = []
            leaves: list[PendingLeaf] = []
            for row in expired_rows:
                connection.execute(
                    update(InboxItem)
                    .where(col(InboxItem.cursor) == row.cursor)
                    .values(state="expired", expired_at=now)
                )
                sequence = _add_event(
                    connection,
                    at=now,
                    event_type="delivery_expired",
                    message_id=row.message_id,
                    thread_id=row.thread_id,
                    agency=row.agency,
                )
                leaves.append(
                    PendingLeaf(
                        leaf_type="expiry",
                        leaf=expiry_leaf(
                            sequence=sequence,
                            at=now,
                            message_id=row.message_id,
                            recipient=row.agency,
                        ),
                        message_id=row.message_id,
                        agency=row.agency,
                        event_sequence=sequence,
                        at=now,
                    )
                )
                _add_notices(
                    connection,
                    [
                        NewNotice(
                            agency=row.sender_agency,
                            mailbox=row.sender_mailbox,
                            notice="NON_DELIVERY",
                            thread_id=row.thread_id,
                            message_id=row.message_id,
                            detail={"recipient": row.agency, "reason": "undelivered_expiry"},
                        )
                    ],
                    at=now,
                )
                notified.append(row.sender_agency)
                if on_expired is not None and row.thread_id is not None:
                    before = _load_thread(connection, row.thread_id)
                    if before is not None:
                        after = on_expired(before, row.message_id, row.agency)
                        _save_thread(connection, before, after)

            # Messages whose ciphertext may go: nothing pending, last receipt old enough.
            pending = (
                sa_select(items.c.message_id)
                .where(and_(items.c.state == "pending", items.c.item_type == "envelope"))
                .scalar_subquery()
            )
            recent = (
                sa_select(items.c.message_id)
                .where(
                    and_(
                        items.c.state == "delivered",
                        items.c.delivered_at >= delete_delivered_before,
                    )
                )
                .scalar_subquery()
            )
            due = (
                connection.execute(
                    sa_select(messages.c.message_id, messages.c.thread_id, messages.c.sender_agency)
                    .where(
                        and_(
                            messages.c.content_deleted_at.is_(None),
                            messages.c.message_id.not_in(pending),
                            messages.c.message_id.not_in(recent),
                        )
                    )
                    .order_by(messages.c.sequence)
                    .limit(batch)
                )
            ).all()
            deleted = 0
            for due_row in due:
                states = (
                    connection.execute(
                        sa_select(items.c.state).where(
                            and_(
                                items.c.message_id == due_row.message_id,
                                items.c.item_type == "envelope",
                            )
                        )
                    )
                ).scalars()
                reason = "retention" if "delivered" in set(states) else "expired"
                connection.execute(
                    delete(EnvelopeContent).where(
                        col(EnvelopeContent.message_id) == due_row.message_id
                    )
                )
                connection.execute(
                    update(MessageRecord)
                    .where(col(MessageRecord.message_id) == due_row.message_id)
                    .values(content_deleted_at=now, content_deleted_reason=reason)
                )
                sequence = _add_event(
                    connection,
                    at=now,
                    event_type="content_deleted",
                    message_id=due_row.message_id,
                    thread_id=due_row.thread_id,
                    agency=due_row.sender_agency,
                    detail={"reason": reason},
                )
                leaves.append(
                    PendingLeaf(
                        leaf_type="deletion",
                        leaf=deletion_leaf(
                            sequence=sequence,
                            at=now,
                            message_id=due_row.message_id,
                            reason=reason,
                        ),
                        message_id=due_row.message_id,
                        agency=due_row.sender_agency,
                        event_sequence=sequence,
                        at=now,
                    )
                )
                deleted += 1
            if leaves:
                log_store.append_leaves(connection, leaves)
            purged = connection.execute(
                delete(NonceRecord).where(col(NonceRecord.expires_at) < now)
            )
            return SweepResult(
                expired=len(expired_rows),
                deleted=deleted,
                nonces_purged=int(purged.rowcount or 0),
                notified=tuple(notified),
            )

        return await self._write("sweep_retention", job)

    # -- audit ---------------------------------------------------------------------------------

    async def headers_since(self, since: int, limit: int) -> list[StoredMessage]:
        """``get_audit_headers``: accepted headers after event sequence ``since``."""

        def fn(session: Session) -> list[StoredMessage]:
            rows = session.exec(
                select(MessageRecord)
                .where(col(MessageRecord.sequence) > since)
                .order_by(col(MessageRecord.sequence))
                .limit(limit)
            )
            return [_message(r) for r in rows.all()]

        return await self._read("get_audit_headers", fn)

    async def events_since(self, since: int, limit: int) -> list[EventEntry]:
        """``get_events``: the event log after sequence ``since``."""

        def fn(session: Session) -> list[EventEntry]:
            rows = session.exec(
                select(EventRecord)
                .where(col(EventRecord.sequence) > since)
                .order_by(col(EventRecord.sequence))
                .limit(limit)
            )
            return [
                EventEntry(
                    sequence=r.sequence,
                    at=r.at,
                    event_type=r.event_type,
                    message_id=r.message_id,
                    thread_id=r.thread_id,
                    agency=r.agency,
                    digest=r.digest,
                    detail=_loads(r.detail),
                )
                for r in rows.all()
            ]

        return await self._read("get_events", fn)

    # -- transparency log -----------------------------------------------------------------------

    async def record_rejection(
        self,
        *,
        message_id: str,
        thread_id: str,
        sender: str,
        header: bytes,
        signature: bytes,
        header_digest: bytes,
        code: str,
        rules: Sequence[str],
        policy_version: str,
        at: datetime,
    ) -> int | None:
        """``record_rejection``: log a refused signed header once; its leaf index (None if seen)."""

        def job(connection: Connection) -> int | None:
            if log_store.rejection_logged(connection, message_id):
                return None
            sequence = _add_event(
                connection,
                at=at,
                event_type="submission_rejected",
                message_id=message_id,
                thread_id=thread_id,
                agency=sender,
                digest=header_digest,
                detail={"code": code, "rules": sorted(set(rules))},
            )
            appended = log_store.append_leaves(
                connection,
                [
                    PendingLeaf(
                        leaf_type="rejection",
                        leaf=rejection_leaf(
                            sequence=sequence,
                            at=at,
                            header=header,
                            signature=signature,
                            code=code,
                            rules=rules,
                            policy_version=policy_version,
                        ),
                        message_id=message_id,
                        agency=sender,
                        event_sequence=sequence,
                        at=at,
                    )
                ],
            )
            return appended.first

        return await self._write("record_rejection", job)

    async def sign_tree_head(self, signer: HeadSigner) -> HeadRow | None:
        """``sign_tree_head``: a signed head covering every committed leaf (signed if needed)."""

        def job(connection: Connection) -> HeadRow | None:
            size = log_store.lock_size(connection)
            if size == 0:
                return None
            latest = log_store.latest_head(connection)
            if latest is not None and latest.size >= size:
                return latest
            cache = log_store.NodeCache(connection)
            cache.load(log_store.frontier_positions(size))
            return log_store.sign_and_store_head(connection, size, cache, signer)

        return await self._write("sign_tree_head", job)

    async def log_size(self) -> int:
        """``get_log_size``: how many leaves are committed."""
        return await self._read("get_log_size", lambda session: log_store.log_size(session))

    async def latest_head(self) -> HeadRow | None:
        """``get_latest_tree_head``: the newest signed tree head."""
        return await self._read("get_latest_tree_head", log_store.latest_head)

    async def tree_heads(
        self,
        *,
        since_size: int,
        limit: int,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> list[HeadRow]:
        """``get_tree_heads``: signed heads larger than ``since_size``, oldest first."""

        def fn(session: Session) -> list[HeadRow]:
            return log_store.head_rows(
                session,
                since_size=since_size,
                limit=limit,
                not_before=not_before,
                not_after=not_after,
            )

        return await self._read("get_tree_heads", fn)

    async def log_leaves(self, *, start: int, end: int, agency: str | None) -> list[LeafRow]:
        """``get_log_leaves``: leaves in ``[start, end)`` (only ``agency``'s when given)."""
        return await self._read(
            "get_log_leaves",
            lambda session: log_store.leaf_rows(session, start=start, end=end, agency=agency),
        )

    async def message_leaves(self, message_id: str) -> list[LeafRow]:
        """``get_message_leaves``: every log leaf about one message."""
        return await self._read(
            "get_message_leaves", lambda session: log_store.leaves_for_message(session, message_id)
        )

    async def leaf_concerns(self, index: int, agency: str) -> bool:
        """``check_leaf_access``: whether leaf ``index`` concerns ``agency``."""
        return await self._read(
            "check_leaf_access", lambda session: log_store.leaf_concerns(session, index, agency)
        )

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        """``get_inclusion_proof``: PATH(index, D[size]) from stored nodes."""
        return await self._read(
            "get_inclusion_proof",
            lambda session: log_store.prefetched(
                session, lambda node: inclusion_proof(index, size, node)
            ),
        )

    async def inclusions(self, indexes: Sequence[int], size: int) -> list[list[bytes]]:
        """``get_inclusion_proofs``: one proof per index against the same tree size."""
        return await self._read(
            "get_inclusion_proofs",
            lambda session: log_store.prefetched(
                session, lambda node: [inclusion_proof(i, size, node) for i in indexes]
            ),
        )

    async def consistency(self, first: int, second: int) -> list[bytes]:
        """``get_consistency_proof``: PROOF(first, D[second]) from stored nodes."""
        return await self._read(
            "get_consistency_proof",
            lambda session: log_store.prefetched(
                session, lambda node: consistency_proof(first, second, node)
            ),
        )

    async def frontier(self, size: int) -> list[tuple[int, int, bytes]]:
        """``get_log_frontier``: the perfect subtrees that decompose ``[0, size)``."""

        def fn(session: Session) -> list[tuple[int, int, bytes]]:
            cache = log_store.NodeCache(session)
            positions = log_store.frontier_positions(size)
            cache.load(positions)
            return [(level, index, cache(level, index)) for level, index in positions]

        return await self._read("get_log_frontier", fn)

    # -- directory -----------------------------------------------------------------------------

    async def directory_documents(self) -> tuple[list[str], str | None]:
        """``load_directory``: published certificate documents and the newest revocation list."""

        def fn(session: Session) -> tuple[list[str], str | None]:
            certs = session.exec(
                select(CertificateRecord).order_by(col(CertificateRecord.published_at))
            )
            latest = session.exec(
                select(RevocationListRecord)
                .order_by(col(RevocationListRecord.sequence).desc())
                .limit(1)
            )
            rl = latest.first()
            return [c.document for c in certs.all()], (None if rl is None else rl.document)

        return await self._read("load_directory", fn)

    async def directory_version(self) -> tuple[int, int]:
        """``get_directory_version``: (certificate count, newest revocation sequence)."""

        def fn(session: Session) -> tuple[int, int]:
            count = session.exec(select(func.count()).select_from(CertificateRecord))
            sequence = session.exec(select(func.max(RevocationListRecord.sequence)))
            return int(count.one()), int(sequence.one() or 0)

        return await self._read("get_directory_version", fn)

    async def publish_certificate(
        self, *, certificate_id: str, agency_id: str, role: str, document: str, at: datetime
    ) -> bool:
        """``publish_certificate``: store a verified certificate; False if already there."""

        def job(connection: Connection) -> bool:
            table = _table(CertificateRecord)
            seen = connection.execute(
                sa_select(table.c.certificate_id).where(table.c.certificate_id == certificate_id)
            )
            if seen.first() is not None:
                return False
            connection.execute(
                insert(CertificateRecord).values(
                    certificate_id=certificate_id,
                    agency_id=agency_id,
                    role=role,
                    document=document,
                    published_at=at,
                )
            )
            _add_event(
                connection,
                at=at,
                event_type="certificate_published",
                agency=agency_id,
                detail={"certificate_id": certificate_id, "role": role},
            )
            return True

        return await self._write("publish_certificate", job)

    async def publish_revocations(self, *, sequence: int, document: str, at: datetime) -> bool:
        """``publish_revocation_list``: store a verified revocation list; False if present."""

        def job(connection: Connection) -> bool:
            table = _table(RevocationListRecord)
            seen = connection.execute(
                sa_select(table.c.document).where(table.c.sequence == sequence)
            )
            row = seen.first()
            if row is not None:
                return False
            connection.execute(
                insert(RevocationListRecord).values(
                    sequence=sequence, document=document, published_at=at
                )
            )
            _add_event(
                connection,
                at=at,
                event_type="revocations_published",
                detail={"sequence": sequence},
            )
            return True

        return await self._write("publish_revocation_list", job)

    # -- nonces --------------------------------------------------------------------------------

    async def remember_nonce(self, key_id: str, nonce: str, *, expires_at: datetime) -> bool:
        """``remember_nonce``: record a request nonce; False when it was already seen."""
        try:
            return await self.writer.run_batched(NONCE_BATCH, (key_id, nonce, expires_at))
        except IntegrityError:
            return False  # another process recorded it first

    # -- gauges --------------------------------------------------------------------------------

    async def queue_depths(self) -> dict[str, int]:
        """``get_queue_depths``: pending deliveries and unread notices, for metrics."""

        def fn(session: Session) -> dict[str, int]:
            pending = session.exec(
                select(func.count())
                .select_from(InboxItem)
                .where(col(InboxItem.item_type) == "envelope")
                .where(col(InboxItem.state) == "pending")
            )
            stored = session.exec(select(func.count()).select_from(EnvelopeContent))
            return {"pending_deliveries": int(pending.one()), "stored_envelopes": int(stored.one())}

        return await self._read("get_queue_depths", fn)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        cursor=row["cursor"],
        agency=row["agency"],
        mailbox=row["mailbox"],
        state=row["state"],
        delivered_at=row["delivered_at"],
        expired_at=row["expired_at"],
        receipt=row["receipt"],
        receipt_sequence=row["receipt_sequence"],
    )


def _inbox_entry(item: InboxItem, message: MessageRecord | None) -> InboxEntry:
    return InboxEntry(
        cursor=item.cursor,
        agency=item.agency,
        mailbox=item.mailbox,
        item_type=item.item_type,
        message_id=item.message_id,
        thread_id=item.thread_id,
        notice=item.notice,
        detail=_loads(item.detail),
        created_at=item.created_at,
        state=item.state,
        message=None if message is None or item.item_type != "envelope" else _message(message),
    )


def with_state(row: ThreadRow, **changes: Any) -> ThreadRow:
    """A copy of ``row`` with ``changes`` (for thread steps)."""
    return replace(row, **changes)
