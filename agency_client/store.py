"""The agency's local record: threads, messages, the outbox and the inbox cursor.

Theory of operation
-------------------
One SQLite file (sqlmodel over aiosqlite). Columns that only route or order things
(message and thread ids, kinds, agency ids, times, states) are in clear so that the
store can be queried; everything that carries content — the decrypted body, the
justification, the basis tag and verdict, outcome summaries, the sealed envelope
bytes — is encrypted before it is written:

* key: HKDF-SHA256 over the agency's secret key bytes, ``info`` =
  ``"safeguard:client-store:v1"`` (so the key is useless for anything else, and the
  store cannot be read without unlocking the key file);
* cipher: XChaCha20-Poly1305 with a fresh 24-byte nonce per value and associated
  data ``pae("safeguard:client-store-aad:v1", table, column, row id)``, so a value
  cannot be moved to another row or column unnoticed.

Each public method is one transaction named after its use case. Nothing here logs.
A local hash chain (``chain`` table) records send, open, receipt and outcome actions;
each entry's hash covers the previous one (``verify_chain`` re-walks it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.utils
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError
from sqlalchemy import event, func, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from keys.identity import AgencyIdentity
from keys.transparency import SignedTreeHead
from schemas.encoding import canonical_json, pae
from schemas.problems import DecryptionFailed, KeystoreError
from schemas.timefmt import format_time, parse_time

__all__ = [
    "STORE_KEY_INFO",
    "LocalStore",
    "OutboxEntry",
    "StoreCipher",
    "StoredMessage",
    "StoredThread",
    "ThreadUpdate",
]

#: HKDF ``info`` for the store key (domain separation).
STORE_KEY_INFO = b"safeguard:client-store:v1"
_AAD_DOMAIN = "safeguard:client-store-aad:v1"
_CHAIN_DOMAIN = "safeguard:client-chain:v1"
_NONCE = 24


class StoreCipher:
    """Authenticated encryption of store values under a key derived from the agency's keys."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the store key must be 32 bytes")
        self._key = key

    @classmethod
    def for_identity(cls, identity: AgencyIdentity) -> StoreCipher:
        """Derive the store key from ``identity``'s secret key (HKDF-SHA256, domain-separated)."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=STORE_KEY_INFO)
        return cls(hkdf.derive(identity.to_private_bytes()))

    @staticmethod
    def _aad(table: str, column: str, row_id: str) -> bytes:
        return pae(_AAD_DOMAIN, table.encode(), column.encode(), row_id.encode())

    def encrypt(self, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        """``nonce || ciphertext`` bound to (table, column, row id)."""
        nonce = nacl.utils.random(_NONCE)
        return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, self._aad(table, column, row_id), nonce, self._key
        )

    def decrypt(self, blob: bytes, *, table: str, column: str, row_id: str) -> bytes:
        """Inverse of :meth:`encrypt`; raise :class:`DecryptionFailed` when altered or moved."""
        if len(blob) < _NONCE + 16:
            raise DecryptionFailed("a stored value is truncated")
        try:
            return crypto_aead_xchacha20poly1305_ietf_decrypt(
                blob[_NONCE:], self._aad(table, column, row_id), blob[:_NONCE], self._key
            )
        except CryptoError:
            raise DecryptionFailed(
                "a stored value does not decrypt (altered, moved, or another agency's key)"
            ) from None

    def seal_json(self, value: object, *, table: str, column: str, row_id: str) -> bytes:
        """Encrypt a JSON value."""
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        return self.encrypt(data, table=table, column=column, row_id=row_id)

    def open_json(self, blob: bytes, *, table: str, column: str, row_id: str) -> Any:
        """Decrypt a JSON value."""
        return json.loads(self.decrypt(blob, table=table, column=column, row_id=row_id))


# -- tables ----------------------------------------------------------------------------------


class _ClientModel(SQLModel, registry=registry()):
    """Base of the client's tables: its own metadata, never mixed with the relay's."""


class ThreadRow(_ClientModel, table=True):
    """A thread this agency takes part in (content columns encrypted)."""

    __tablename__ = "threads"

    thread_id: str = Field(primary_key=True)
    role: str  # "sent" (we opened it) or "received"
    thread_type: str  # REFERRAL, NOTIFICATION, REQUEST (schemas.lifecycle) or UNTRACKED
    kind: str  # the kind of the opening message
    counterpart: str  # the other agency
    opened_at: str
    updated_at: str
    state: str  # last state known locally (the relay's view is authoritative)
    sealed_summary: bytes  # encrypted JSON: latest outcome and what the referrer should do


class MessageRow(_ClientModel, table=True):
    """One message sent or received (content encrypted)."""

    __tablename__ = "messages"

    message_id: str = Field(primary_key=True)
    thread_id: str = Field(index=True)
    in_reply_to: str | None = None
    kind: str
    direction: str  # "out" or "in"
    counterpart: str
    mailbox: str
    created_at: str
    recorded_at: str
    status: str  # out: queued|sent ; in: opened|receipted
    sealed_content: bytes  # encrypted JSON: header, body, basis, verdict
    sealed_envelope: bytes  # encrypted exact envelope bytes


class OutboxRow(_ClientModel, table=True):
    """A sealed message waiting for (or done with) submission to the relay."""

    __tablename__ = "outbox"

    message_id: str = Field(primary_key=True)
    position: int = Field(index=True)  # composition order (times have whole seconds only)
    queued_at: str
    attempts: int = 0
    last_error: str | None = None  # an error *code* only
    sent_at: str | None = None
    sealed_receipt: bytes | None = None  # encrypted JSON: the relay's submit receipt


class CursorRow(_ClientModel, table=True):
    """Named cursors (the inbox position)."""

    __tablename__ = "cursors"

    name: str = Field(primary_key=True)
    value: int


class TreeHeadRow(_ClientModel, table=True):
    """The newest verified signed tree head of each relay log this agency has seen."""

    __tablename__ = "tree_heads"

    log: str = Field(primary_key=True)
    size: int
    head: bytes
    signature: bytes
    seen_at: str


class ChainRow(_ClientModel, table=True):
    """The local hash chain of actions: ``entry_hash = H(prev_hash, canonical entry)``."""

    __tablename__ = "chain"

    seq: int = Field(primary_key=True)
    action: str
    message_id: str
    at: str
    prev_hash: str
    entry_hash: str


# -- values returned -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A decrypted message record."""

    message_id: str
    thread_id: str
    in_reply_to: str | None
    kind: str
    direction: str
    counterpart: str
    mailbox: str
    created_at: datetime
    status: str
    content: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ThreadUpdate:
    """What a recorded message does to its thread (computed by the client from the lifecycle)."""

    role: str
    thread_type: str
    state: str
    summary: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StoredThread:
    """A decrypted thread record."""

    thread_id: str
    role: str
    thread_type: str
    kind: str
    counterpart: str
    opened_at: datetime
    updated_at: datetime
    state: str
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A queued message: its exact envelope bytes and delivery attempts."""

    message_id: str
    envelope: bytes
    attempts: int
    sent: bool
    last_error: str | None
    receipt: dict[str, Any] | None


def _now() -> datetime:
    return datetime.now(UTC)


class LocalStore:
    """The agency's local store. Create with :meth:`open`, close with :meth:`close`."""

    def __init__(self, engine: AsyncEngine, cipher: StoreCipher) -> None:
        self._engine = engine
        self._cipher = cipher

    @classmethod
    async def open(cls, path: Path, cipher: StoreCipher) -> LocalStore:
        """Open (creating if needed) the store at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        try:
            async with engine.begin() as conn:
                await conn.run_sync(_ClientModel.metadata.create_all)
        except Exception as exc:
            await engine.dispose()
            raise KeystoreError(
                f"cannot open the local store {path}: {exc.__class__.__name__}"
            ) from None
        if path.exists():
            path.chmod(0o600)
        return cls(engine, cipher)

    async def close(self) -> None:
        """Release the database."""
        await self._engine.dispose()

    def _session(self) -> AsyncSession:
        return AsyncSession(self._engine, expire_on_commit=False)

    # -- composing and sending ---------------------------------------------------------------

    async def record_outgoing(
        self,
        *,
        message_id: str,
        thread_id: str,
        in_reply_to: str | None,
        kind: str,
        counterpart: str,
        mailbox: str,
        created_at: datetime,
        content: dict[str, Any],
        envelope: bytes,
        thread: ThreadUpdate,
    ) -> None:
        """Compose: keep the message (what we said, encrypted) and queue its envelope."""
        c = self._cipher
        now = format_time(_now())
        async with self._session() as session:
            session.add(
                MessageRow(
                    message_id=message_id,
                    thread_id=thread_id,
                    in_reply_to=in_reply_to,
                    kind=kind,
                    direction="out",
                    counterpart=counterpart,
                    mailbox=mailbox,
                    created_at=format_time(created_at),
                    recorded_at=now,
                    status="queued",
                    sealed_content=c.seal_json(
                        content, table="messages", column="content", row_id=message_id
                    ),
                    sealed_envelope=c.encrypt(
                        envelope, table="messages", column="envelope", row_id=message_id
                    ),
                )
            )
            last = (await session.exec(select(func.max(OutboxRow.position)))).one()
            position = (last or 0) + 1
            session.add(OutboxRow(message_id=message_id, position=position, queued_at=now))
            await self._touch_thread(
                session,
                thread_id=thread_id,
                kind=kind,
                counterpart=counterpart,
                at=created_at,
                role=thread.role,
                thread_type=thread.thread_type,
                state=thread.state,
                summary=thread.summary,
            )
            await self._chain(session, "send", message_id)
            await session.commit()

    async def outbox(self, *, pending_only: bool = True) -> list[OutboxEntry]:
        """Queued messages in the order they were composed."""
        async with self._session() as session:
            query = select(OutboxRow).order_by(col(OutboxRow.position))
            if pending_only:
                query = query.where(col(OutboxRow.sent_at).is_(None))
            rows = (await session.exec(query)).all()
            result = []
            for row in rows:
                message = await session.get(MessageRow, row.message_id)
                if message is None:
                    continue
                receipt = (
                    self._cipher.open_json(
                        row.sealed_receipt, table="outbox", column="receipt", row_id=row.message_id
                    )
                    if row.sealed_receipt
                    else None
                )
                result.append(
                    OutboxEntry(
                        message_id=row.message_id,
                        envelope=self._cipher.decrypt(
                            message.sealed_envelope,
                            table="messages",
                            column="envelope",
                            row_id=row.message_id,
                        ),
                        attempts=row.attempts,
                        sent=row.sent_at is not None,
                        last_error=row.last_error,
                        receipt=receipt,
                    )
                )
            return result

    async def mark_sent(self, message_id: str, receipt: dict[str, Any]) -> None:
        """Record the relay's submit receipt; the message leaves the outbox."""
        async with self._session() as session:
            row = await session.get(OutboxRow, message_id)
            message = await session.get(MessageRow, message_id)
            if row is None or message is None:
                return
            row.attempts += 1
            row.sent_at = format_time(_now())
            row.last_error = None
            row.sealed_receipt = self._cipher.seal_json(
                receipt, table="outbox", column="receipt", row_id=message_id
            )
            message.status = "sent"
            session.add(row)
            session.add(message)
            await session.commit()

    async def mark_attempt_failed(self, message_id: str, error_code: str) -> None:
        """Count a failed attempt (the code only is kept)."""
        async with self._session() as session:
            row = await session.get(OutboxRow, message_id)
            if row is None:
                return
            row.attempts += 1
            row.last_error = error_code
            session.add(row)
            await session.commit()

    async def drop_outgoing(self, message_id: str, error_code: str) -> None:
        """The relay refused the message for good: mark it refused and stop retrying."""
        async with self._session() as session:
            row = await session.get(OutboxRow, message_id)
            message = await session.get(MessageRow, message_id)
            if row is not None:
                row.attempts += 1
                row.last_error = error_code
                row.sent_at = format_time(_now())
                session.add(row)
            if message is not None:
                message.status = "refused"
                session.add(message)
            await session.commit()

    # -- receiving ---------------------------------------------------------------------------

    async def has_message(self, message_id: str) -> bool:
        """Whether this message is already recorded."""
        async with self._session() as session:
            return (await session.get(MessageRow, message_id)) is not None

    async def record_incoming(
        self,
        *,
        message_id: str,
        thread_id: str,
        in_reply_to: str | None,
        kind: str,
        sender: str,
        mailbox: str,
        created_at: datetime,
        content: dict[str, Any],
        envelope: bytes,
        thread: ThreadUpdate,
    ) -> None:
        """Keep an opened message (decrypted content encrypted under the store key)."""
        c = self._cipher
        async with self._session() as session:
            if await session.get(MessageRow, message_id) is not None:
                return
            session.add(
                MessageRow(
                    message_id=message_id,
                    thread_id=thread_id,
                    in_reply_to=in_reply_to,
                    kind=kind,
                    direction="in",
                    counterpart=sender,
                    mailbox=mailbox,
                    created_at=format_time(created_at),
                    recorded_at=format_time(_now()),
                    status="opened",
                    sealed_content=c.seal_json(
                        content, table="messages", column="content", row_id=message_id
                    ),
                    sealed_envelope=c.encrypt(
                        envelope, table="messages", column="envelope", row_id=message_id
                    ),
                )
            )
            await self._touch_thread(
                session,
                thread_id=thread_id,
                kind=kind,
                counterpart=sender,
                at=created_at,
                role=thread.role,
                thread_type=thread.thread_type,
                state=thread.state,
                summary=thread.summary,
            )
            await self._chain(session, "open", message_id)
            await session.commit()

    async def mark_receipted(self, message_id: str) -> None:
        """Record that our signed delivery receipt was accepted by the relay."""
        async with self._session() as session:
            message = await session.get(MessageRow, message_id)
            if message is None:
                return
            message.status = "receipted"
            session.add(message)
            await self._chain(session, "receipt", message_id)
            await session.commit()

    # -- threads -----------------------------------------------------------------------------

    async def _touch_thread(
        self,
        session: AsyncSession,
        *,
        thread_id: str,
        role: str,
        thread_type: str,
        state: str,
        kind: str,
        counterpart: str,
        at: datetime,
        summary: dict[str, Any] | None,
    ) -> None:
        row = await session.get(ThreadRow, thread_id)
        stamp = format_time(at)
        if row is None:
            row = ThreadRow(
                thread_id=thread_id,
                role=role,
                thread_type=thread_type,
                kind=kind,
                counterpart=counterpart,
                opened_at=stamp,
                updated_at=stamp,
                state=state,
                sealed_summary=self._cipher.seal_json(
                    summary or {}, table="threads", column="summary", row_id=thread_id
                ),
            )
        else:
            row.updated_at = max(row.updated_at, stamp)
            row.state = state
            if summary:
                current = self._cipher.open_json(
                    row.sealed_summary, table="threads", column="summary", row_id=thread_id
                )
                current.update(summary)
                row.sealed_summary = self._cipher.seal_json(
                    current, table="threads", column="summary", row_id=thread_id
                )
        session.add(row)

    async def set_thread_state(self, thread_id: str, state: str) -> None:
        """Record the relay's view of a thread's state."""
        async with self._session() as session:
            row = await session.get(ThreadRow, thread_id)
            if row is None:
                return
            row.state = state
            session.add(row)
            await session.commit()

    async def threads(self) -> list[StoredThread]:
        """Every local thread, newest activity first."""
        async with self._session() as session:
            rows = (
                await session.exec(select(ThreadRow).order_by(col(ThreadRow.updated_at).desc()))
            ).all()
            return [self._thread(row) for row in rows]

    async def thread(self, thread_id: str) -> StoredThread | None:
        """One local thread."""
        async with self._session() as session:
            row = await session.get(ThreadRow, thread_id)
            return None if row is None else self._thread(row)

    def _thread(self, row: ThreadRow) -> StoredThread:
        return StoredThread(
            thread_id=row.thread_id,
            role=row.role,
            thread_type=row.thread_type,
            kind=row.kind,
            counterpart=row.counterpart,
            opened_at=parse_time(row.opened_at),
            updated_at=parse_time(row.updated_at),
            state=row.state,
            summary=self._cipher.open_json(
                row.sealed_summary, table="threads", column="summary", row_id=row.thread_id
            ),
        )

    # -- messages ----------------------------------------------------------------------------

    async def message(self, message_id: str) -> StoredMessage | None:
        """One decrypted message, or ``None``."""
        async with self._session() as session:
            row = await session.get(MessageRow, message_id)
            return None if row is None else self._message(row)

    async def envelope(self, message_id: str) -> bytes | None:
        """The exact envelope bytes of a stored message (to re-check it)."""
        async with self._session() as session:
            row = await session.get(MessageRow, message_id)
            if row is None:
                return None
            return self._cipher.decrypt(
                row.sealed_envelope, table="messages", column="envelope", row_id=message_id
            )

    async def messages(
        self, *, thread_id: str | None = None, direction: str | None = None
    ) -> list[StoredMessage]:
        """Decrypted messages in creation order, optionally one thread's or one direction's."""
        async with self._session() as session:
            query = select(MessageRow).order_by(
                col(MessageRow.created_at), col(MessageRow.recorded_at)
            )
            if thread_id is not None:
                query = query.where(MessageRow.thread_id == thread_id)
            if direction is not None:
                query = query.where(MessageRow.direction == direction)
            rows = (await session.exec(query)).all()
            return [self._message(row) for row in rows]

    def _message(self, row: MessageRow) -> StoredMessage:
        return StoredMessage(
            message_id=row.message_id,
            thread_id=row.thread_id,
            in_reply_to=row.in_reply_to,
            kind=row.kind,
            direction=row.direction,
            counterpart=row.counterpart,
            mailbox=row.mailbox,
            created_at=parse_time(row.created_at),
            status=row.status,
            content=self._cipher.open_json(
                row.sealed_content, table="messages", column="content", row_id=row.message_id
            ),
        )

    async def resolve(self, prefix: str, *, thread: bool = False) -> list[str]:
        """Full ids of messages (or threads) starting with ``prefix``."""
        clean = prefix.strip().lower()
        if not clean or any(ch not in "0123456789abcdef" for ch in clean):
            return []
        async with self._session() as session:
            if thread:
                query = select(ThreadRow.thread_id).where(
                    col(ThreadRow.thread_id).startswith(clean)
                )
            else:
                query = select(MessageRow.message_id).where(
                    col(MessageRow.message_id).startswith(clean)
                )
            return list((await session.exec(query.limit(5))).all())

    # -- cursors -----------------------------------------------------------------------------

    async def cursor(self, name: str = "inbox") -> int | None:
        """The saved position of cursor ``name``."""
        async with self._session() as session:
            row = await session.get(CursorRow, name)
            return None if row is None else row.value

    async def set_cursor(self, value: int, name: str = "inbox") -> None:
        """Save cursor ``name`` (never moves backwards)."""
        async with self._session() as session:
            row = await session.get(CursorRow, name)
            if row is None:
                session.add(CursorRow(name=name, value=value))
            elif value > row.value:
                row.value = value
                session.add(row)
            await session.commit()

    # -- transparency log --------------------------------------------------------------------

    async def tree_head(self, log: str) -> SignedTreeHead | None:
        """The newest verified tree head kept for relay log ``log``."""
        async with self._session() as session:
            row = await session.get(TreeHeadRow, log)
            if row is None:
                return None
            return SignedTreeHead(head_bytes=row.head, signature=row.signature)

    async def save_tree_head(self, log: str, size: int, signed: SignedTreeHead) -> None:
        """Keep ``signed`` as the newest head of ``log`` (the caller checked it extends)."""
        async with self._session() as session:
            row = await session.get(TreeHeadRow, log)
            if row is None:
                row = TreeHeadRow(
                    log=log, size=size, head=b"", signature=b"", seen_at=format_time(_now())
                )
            elif size < row.size:
                return
            row.size = size
            row.head = signed.head_bytes
            row.signature = signed.signature
            row.seen_at = format_time(_now())
            session.add(row)
            await session.commit()

    # -- local hash chain --------------------------------------------------------------------

    async def _chain(self, session: AsyncSession, action: str, message_id: str) -> None:
        last = (
            await session.exec(select(ChainRow).order_by(col(ChainRow.seq).desc()).limit(1))
        ).first()
        seq = 1 if last is None else last.seq + 1
        prev = "0" * 64 if last is None else last.entry_hash
        at = format_time(_now())
        entry_hash = _chain_hash(seq, action, message_id, at, prev)
        session.add(
            ChainRow(
                seq=seq,
                action=action,
                message_id=message_id,
                at=at,
                prev_hash=prev,
                entry_hash=entry_hash,
            )
        )

    async def record_action(self, action: str, message_id: str) -> None:
        """Append an action (for example ``outcome``) to the local chain."""
        async with self._session() as session:
            await self._chain(session, action, message_id)
            await session.commit()

    async def verify_chain(self) -> int:
        """Re-walk the local chain; return its length or raise :class:`KeystoreError`."""
        async with self._session() as session:
            rows: Sequence[ChainRow] = (
                await session.exec(select(ChainRow).order_by(col(ChainRow.seq)))
            ).all()
        prev = "0" * 64
        for expected_seq, row in enumerate(rows, start=1):
            if row.seq != expected_seq or row.prev_hash != prev:
                raise KeystoreError("the local action chain is broken (an entry is missing)")
            if _chain_hash(row.seq, row.action, row.message_id, row.at, prev) != row.entry_hash:
                raise KeystoreError("the local action chain has been altered")
            prev = row.entry_hash
        return len(rows)

    async def vacuum(self) -> None:
        """Checkpoint the journal so no stale pages linger in side files."""
        async with self._engine.begin() as conn:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def _chain_hash(seq: int, action: str, message_id: str, at: str, prev: str) -> str:
    entry = canonical_json({"seq": seq, "action": action, "message_id": message_id, "at": at})
    return hashlib.sha256(pae(_CHAIN_DOMAIN, bytes.fromhex(prev), entry)).hexdigest()
