"""The transparency log's SQL: appends inside the relay's write transactions, and proofs.

Theory of operation
-------------------
The tree is RFC 9162's (:mod:`schemas.merkle`). The database keeps three things:
``log_leaves`` (each leaf's exact bytes and hash, by index), ``log_nodes`` (every
*perfect, aligned* subtree, ``node(level, index)``) and ``log_heads`` (signed
tree heads, one per size).

**Appending** (:func:`append_leaves`) runs inside the transaction that writes
the event the leaves record (submit, receipt, expiry, deletion, rejection), so a
leaf exists exactly when its event does. Indices come from the ``log`` row of
``counters``, incremented in that transaction: the row lock serialises appends
from every relay process on one PostgreSQL database until commit (SQLite has one
writer), and a rolled-back transaction gives its indices back, so there are no
gaps and no duplicates. Every transaction takes the ``events`` counter before
the ``inbox`` and ``log`` counters, so event sequences and leaf indices increase
together and no two transactions wait on each other in opposite orders.

Appending leaf ``i`` needs the left siblings it completes subtrees with; those
are either new in this batch or on the *frontier* of the tree before it (the
perfect subtrees that decompose ``[0, first)``), which one query fetches. The
same in-memory nodes then give the new root and every new leaf's inclusion
proof, so the submit batch can sign its tree head and hand out proofs without
reading the tree again.

**Reading** a proof needs ``O(log n)`` nodes; :func:`prefetched` walks the proof
once with a recording lookup to learn which, fetches them in one query, and
walks it again for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from exchange.models import (
    Counter,
    InboxItem,
    LogHeadRecord,
    LogLeafRecord,
    LogNodeRecord,
    MessageRecord,
    RelayTable,
)
from keys.transparency import SignedTreeHead
from schemas.merkle import NodeLookup, leaf_hash, nodes_completed_by, tree_root

__all__ = [
    "LOG_COUNTER",
    "AppendResult",
    "HeadRow",
    "HeadSigner",
    "LeafRow",
    "NodeCache",
    "PendingLeaf",
    "append_leaves",
    "frontier_positions",
    "head_rows",
    "latest_head",
    "leaf_concerns",
    "leaf_rows",
    "leaves_for_message",
    "lock_size",
    "log_size",
    "prefetched",
    "rejection_logged",
    "sign_and_store_head",
    "store_head",
]

#: The ``counters`` row that hands out leaf indices.
LOG_COUNTER = "log"

#: Signs a tree head over ``(size, root)``; None when the relay has no certified log key.
HeadSigner = Callable[[int, bytes], SignedTreeHead | None]

Executor = Connection | Session
T = TypeVar("T")


def _table(model: type[RelayTable]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


LEAVES = _table(LogLeafRecord)
NODES = _table(LogNodeRecord)
HEADS = _table(LogHeadRecord)
COUNTERS = _table(Counter)


@dataclass(frozen=True, slots=True)
class PendingLeaf:
    """A leaf to append: its exact bytes and whom it concerns (for access control)."""

    leaf_type: str
    leaf: bytes
    message_id: str | None
    agency: str | None
    event_sequence: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class LeafRow:
    """A stored leaf."""

    index: int
    leaf_type: str
    message_id: str | None
    agency: str | None
    at: datetime
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class HeadRow:
    """A stored signed tree head."""

    size: int
    root: bytes
    timestamp: datetime
    signed: SignedTreeHead


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where the leaves went and the in-memory nodes that prove them."""

    first: int
    size: int
    lookup: NodeCache


def frontier_positions(size: int) -> list[tuple[int, int]]:
    """The perfect aligned subtrees ``(level, index)`` that decompose ``[0, size)``, left first."""
    positions: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            positions.append((level, start >> level))
            start += 1 << level
    return positions


class NodeCache:
    """A :data:`~schemas.merkle.NodeLookup` over memory, falling back to ``log_nodes``."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self.nodes: dict[tuple[int, int], bytes] = {}

    def load(self, positions: Iterable[tuple[int, int]]) -> None:
        """Fetch these nodes (those not already in memory) in one query."""
        wanted = sorted({p for p in positions if p not in self.nodes})
        for start in range(0, len(wanted), 400):
            by_level: dict[int, list[int]] = {}
            for level, index in wanted[start : start + 400]:
                by_level.setdefault(level, []).append(index)
            # One equality on level and an IN on node_index per level: both engines use
            # the primary key for this, where a row-value IN made SQLite scan the table.
            condition = or_(
                *(
                    and_(NODES.c.level == level, NODES.c.node_index.in_(indices))
                    for level, indices in by_level.items()
                )
            )
            rows = self._executor.execute(
                select(NODES.c.level, NODES.c.node_index, NODES.c.hash).where(condition)
            )
            for level, index, value in rows:
                self.nodes[(int(level), int(index))] = bytes(value)

    def __call__(self, level: int, index: int) -> bytes:
        """``node(level, index)``; a node missing from the database is a broken log."""
        key = (level, index)
        value = self.nodes.get(key)
        if value is None:
            self.load([key])
            value = self.nodes.get(key)
            if value is None:
                raise LookupError(f"log node ({level}, {index}) is missing")
        return value


def prefetched(executor: Executor, compute: Callable[[NodeLookup], T]) -> T:
    """Run ``compute(lookup)`` after fetching every node it will ask for in one query."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(32)

    compute(record)
    cache = NodeCache(executor)
    cache.load(wanted)
    return compute(cache)


# -- counters ---------------------------------------------------------------------------------


def _bump(connection: Connection, count: int) -> int:
    result = connection.execute(
        update(COUNTERS)
        .where(COUNTERS.c.name == LOG_COUNTER)
        .values(value=COUNTERS.c.value + count)
        .returning(COUNTERS.c.value)
    )
    return int(result.scalar_one())


def lock_size(connection: Connection) -> int:
    """The committed log size, holding the ``log`` counter's row lock until commit."""
    return _bump(connection, 0)


def log_size(executor: Executor) -> int:
    """The log size as committed (no lock)."""
    value = executor.execute(
        select(COUNTERS.c.value).where(COUNTERS.c.name == LOG_COUNTER)
    ).scalar_one_or_none()
    return int(value or 0)


# -- appends ----------------------------------------------------------------------------------


def append_leaves(connection: Connection, leaves: Sequence[PendingLeaf]) -> AppendResult:
    """Append ``leaves`` in order, with every perfect subtree they complete (one transaction)."""
    count = len(leaves)
    first = _bump(connection, count) - count
    cache = NodeCache(connection)
    cache.load(frontier_positions(first))
    leaf_rows: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    for offset, pending in enumerate(leaves):
        index = first + offset
        hashed = leaf_hash(pending.leaf)
        for level, position, value in nodes_completed_by(index, hashed, cache):
            cache.nodes[(level, position)] = value
            node_rows.append({"level": level, "node_index": position, "hash": value})
        leaf_rows.append(
            {
                "leaf_index": index,
                "leaf_type": pending.leaf_type,
                "message_id": pending.message_id,
                "agency": pending.agency,
                "event_sequence": pending.event_sequence,
                "at": pending.at,
                "leaf": pending.leaf,
                "leaf_hash": hashed,
            }
        )
    if leaf_rows:
        connection.execute(insert(LEAVES), leaf_rows)
        connection.execute(insert(NODES), node_rows)
    return AppendResult(first=first, size=first + count, lookup=cache)


def store_head(connection: Connection, signed: SignedTreeHead) -> HeadRow:
    """Keep a signed tree head (the first one signed for a size wins)."""
    head = signed.head
    existing = connection.execute(select(HEADS).where(HEADS.c.tree_size == head.size)).first()
    if existing is not None:
        return _head_row(existing._mapping)
    connection.execute(
        insert(HEADS).values(
            tree_size=head.size,
            root=head.root,
            timestamp=head.timestamp,
            certificate_id=head.cert,
            head=signed.head_bytes,
            signature=signed.signature,
        )
    )
    return HeadRow(size=head.size, root=head.root, timestamp=head.timestamp, signed=signed)


def sign_and_store_head(
    connection: Connection, size: int, lookup: NodeLookup, signer: HeadSigner
) -> HeadRow | None:
    """Sign a head over the first ``size`` leaves and keep it; None without a log key."""
    if size == 0:
        return None
    existing = connection.execute(select(HEADS).where(HEADS.c.tree_size == size)).first()
    if existing is not None:
        return _head_row(existing._mapping)
    signed = signer(size, tree_root(size, lookup))
    if signed is None:
        return None
    return store_head(connection, signed)


def rejection_logged(connection: Connection, message_id: str) -> bool:
    """Whether a refusal of this message id is already in the log."""
    row = connection.execute(
        select(LEAVES.c.leaf_index)
        .where(and_(LEAVES.c.leaf_type == "rejection", LEAVES.c.message_id == message_id))
        .limit(1)
    ).first()
    return row is not None


# -- reads ------------------------------------------------------------------------------------


def _head_row(mapping: Any) -> HeadRow:
    signed = SignedTreeHead(
        head_bytes=bytes(mapping["head"]), signature=bytes(mapping["signature"])
    )
    return HeadRow(
        size=int(mapping["tree_size"]),
        root=bytes(mapping["root"]),
        timestamp=mapping["timestamp"],
        signed=signed,
    )


def latest_head(executor: Executor) -> HeadRow | None:
    """The signed head with the largest size."""
    row = executor.execute(select(HEADS).order_by(HEADS.c.tree_size.desc()).limit(1)).first()
    return None if row is None else _head_row(row._mapping)


def head_rows(
    executor: Executor,
    *,
    since_size: int = 0,
    limit: int = 100,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> list[HeadRow]:
    """Signed heads with size greater than ``since_size``, smallest first."""
    query = select(HEADS).where(HEADS.c.tree_size > since_size)
    if not_before is not None:
        query = query.where(HEADS.c.timestamp >= not_before)
    if not_after is not None:
        query = query.where(HEADS.c.timestamp <= not_after)
    rows = executor.execute(query.order_by(HEADS.c.tree_size).limit(limit))
    return [_head_row(row._mapping) for row in rows]


def _own(agency: str) -> Any:
    messages = _table(MessageRecord)
    sent = select(messages.c.message_id).where(messages.c.sender_agency == agency)
    inbox = _table(InboxItem)
    received = select(inbox.c.message_id).where(
        and_(inbox.c.agency == agency, inbox.c.item_type == "envelope")
    )
    return or_(
        LEAVES.c.agency == agency,
        LEAVES.c.message_id.in_(sent),
        LEAVES.c.message_id.in_(received),
    )


def _leaf_row(row: Any) -> LeafRow:
    return LeafRow(
        index=int(row.leaf_index),
        leaf_type=str(row.leaf_type),
        message_id=row.message_id,
        agency=row.agency,
        at=row.at,
        leaf=bytes(row.leaf),
        leaf_hash=bytes(row.leaf_hash),
    )


def leaf_rows(
    executor: Executor, *, start: int, end: int, agency: str | None = None
) -> list[LeafRow]:
    """Leaves with ``start <= index < end``; only those concerning ``agency`` when given."""
    query = select(LEAVES).where(and_(LEAVES.c.leaf_index >= start, LEAVES.c.leaf_index < end))
    if agency is not None:
        query = query.where(_own(agency))
    rows = executor.execute(query.order_by(LEAVES.c.leaf_index))
    return [_leaf_row(row) for row in rows]


def leaves_for_message(executor: Executor, message_id: str) -> list[LeafRow]:
    """Every leaf about one message (envelope, receipts, expiries, deletion), in order."""
    rows = executor.execute(
        select(LEAVES).where(LEAVES.c.message_id == message_id).order_by(LEAVES.c.leaf_index)
    )
    return [_leaf_row(row) for row in rows]


def leaf_concerns(executor: Executor, index: int, agency: str) -> bool:
    """Whether leaf ``index`` concerns ``agency`` (it may read it and prove it)."""
    row = executor.execute(
        select(LEAVES.c.leaf_index).where(and_(LEAVES.c.leaf_index == index, _own(agency)))
    ).first()
    return row is not None
