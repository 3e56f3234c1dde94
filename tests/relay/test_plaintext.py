"""The relay never stores or logs plaintext: a sealed marker never reaches its disk."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from exchange.logs import JsonFormatter
from tests.relay.conftest import PLAINTEXT_MARKER, Scene


async def _every_stored_value(scene: Scene) -> bytes:
    """Every value in every relay table, as bytes (for a server database)."""
    from sqlalchemy import select
    from sqlalchemy.engine import Connection

    from exchange.appkeys import DATABASE
    from exchange.models import metadata

    def dump(connection: Connection) -> bytes:
        chunks: list[bytes] = []
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
        return b"\n".join(chunks)

    return await scene.relay.app[DATABASE].transaction(dump)


def _files(db_path: Path) -> list[Path]:
    return [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]


async def test_database_never_contains_sealed_plaintext(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    school, mash = scene.agency("school"), scene.agency("mash")
    referral = scene.referral()
    message_id = json.loads(referral.header_bytes)["id"]
    assert (await school.submit(referral)).status == 201
    assert (await mash.get(f"/v1/envelopes/{message_id}")).status == 200
    assert (await mash.acknowledge(referral, message_id)).status == 201
    reply = scene.seal(
        "mash", ["school"], kind="ACKNOWLEDGEMENT", thread_id=message_id, in_reply_to=message_id
    )
    assert (await mash.submit(reply)).status == 201
    await scene.relay.service.sweep()

    if scene.settings.is_sqlite:
        files = _files(scene.db_path)
        assert any(p.name == "relay.db" for p in files)
        stored = b"".join(p.read_bytes() for p in files)
    else:
        stored = await _every_stored_value(scene)
    assert message_id.encode() in stored  # the ids are there...
    for needle in (PLAINTEXT_MARKER, "Maya", "Craig", "squeezed"):
        assert needle.encode() not in stored  # ...the content never is

    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert message_id in logged
    assert PLAINTEXT_MARKER not in logged
    assert "Maya" not in logged
