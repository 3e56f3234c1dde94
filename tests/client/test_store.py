"""The local store: content encrypted at rest, bound to its row, and an append-only chain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from agency_client.store import LocalStore, StoreCipher, ThreadUpdate
from keys.identity import AgencyIdentity
from schemas.problems import DecryptionFailed, KeystoreError

AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_cipher_binds_values_to_their_row_and_column() -> None:
    identity = AgencyIdentity.generate()
    cipher = StoreCipher.for_identity(identity)
    blob = cipher.encrypt(b"secret", table="messages", column="content", row_id="a")
    assert cipher.decrypt(blob, table="messages", column="content", row_id="a") == b"secret"
    for where in ({"row_id": "b"}, {"column": "envelope"}, {"table": "threads"}):
        args = {"table": "messages", "column": "content", "row_id": "a", **where}
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(blob, **args)
    other = StoreCipher.for_identity(AgencyIdentity.generate())
    with pytest.raises(DecryptionFailed):
        other.decrypt(blob, table="messages", column="content", row_id="a")
    # The key is derived, deterministic and not the secret key itself.
    again = StoreCipher.for_identity(identity)
    assert again.decrypt(blob, table="messages", column="content", row_id="a") == b"secret"


async def _store(tmp_path: Path, identity: AgencyIdentity) -> LocalStore:
    return await LocalStore.open(tmp_path / "store.sqlite", StoreCipher.for_identity(identity))


async def test_round_trip_marker_never_in_clear_and_chain(tmp_path: Path) -> None:
    identity = AgencyIdentity.generate()
    store = await _store(tmp_path, identity)
    marker = "UNIQUE-MARKER-7f3a9c"
    try:
        await store.record_outgoing(
            message_id="a" * 32,
            thread_id="a" * 32,
            in_reply_to=None,
            kind="REFERRAL",
            counterpart="northshire-mash",
            mailbox="dsl",
            created_at=AT,
            content={"body": {"concern_summary": marker}},
            envelope=marker.encode(),
            thread=ThreadUpdate("sent", "REFERRAL", "SUBMITTED", {"note": marker}),
        )
        (entry,) = await store.outbox()
        assert entry.envelope == marker.encode()
        await store.mark_sent("a" * 32, {"message_id": "a" * 32})
        assert await store.outbox() == []
        message = await store.message("a" * 32)
        assert message is not None
        assert message.content["body"]["concern_summary"] == marker
        thread = await store.thread("a" * 32)
        assert thread is not None
        assert thread.summary == {"note": marker}
        assert await store.resolve("aaaa") == ["a" * 32]
        assert await store.resolve("zz") == []
        await store.set_cursor(5)
        await store.set_cursor(3)
        assert await store.cursor() == 5  # never backwards
        assert await store.verify_chain() == 1
        await store.vacuum()
    finally:
        await store.close()
    for path in tmp_path.iterdir():
        assert marker.encode() not in path.read_bytes(), path
    # Another agency's key cannot read it.
    stranger = await _store(tmp_path, AgencyIdentity.generate())
    try:
        with pytest.raises(DecryptionFailed):
            await stranger.message("a" * 32)
    finally:
        await stranger.close()


async def test_chain_detects_edits(tmp_path: Path) -> None:
    identity = AgencyIdentity.generate()
    store = await _store(tmp_path, identity)
    try:
        for action in ("send", "open", "receipt"):
            await store.record_action(action, "b" * 32)
        assert await store.verify_chain() == 3
        async with store._engine.begin() as conn:  # an edit behind the store's back
            await conn.execute(text("UPDATE chain SET action = 'open' WHERE seq = 1"))
        with pytest.raises(KeystoreError):
            await store.verify_chain()
    finally:
        await store.close()
