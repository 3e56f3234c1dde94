"""The relay's log key: created on first start or by ``exchange log-key init``, certified by the
root with role ``relay``; the schema migration backfills the log for an existing database."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from exchange.cli import main as exchange_main
from exchange.database import alembic_config, open_database
from exchange.log import log_key_request_path
from exchange.settings import Settings
from keys.certificate_request import verify_certificate_request
from keys.certificates import issue_certificate
from keys.testing import Partnership
from keys.transparency import SignedTreeHead, parse_leaf, verify_tree_head
from tests.log.helpers import all_leaves, assert_root, message_id
from tests.relay.conftest import SceneFactory


def _issue(partnership: Partnership, request: dict[str, Any]) -> Any:
    checked = verify_certificate_request(request)
    assert checked.role == "relay"
    assert checked.mailboxes == ()
    now = datetime.now(UTC)
    return issue_certificate(
        partnership.root,
        agency_id=checked.agency_id,
        name=checked.name,
        org_type=checked.org_type,
        public_authority=checked.public_authority,
        apd_in_place=checked.apd_in_place,
        mailboxes=checked.mailboxes,
        role="relay",
        public_keys=checked.public_keys,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
    )


async def test_log_key_created_on_first_start_then_certified(
    relay_factory: SceneFactory, tmp_path: Path
) -> None:
    key_file = tmp_path / "relay-log.key"
    overrides = {
        "log_key_file": str(key_file),
        "log_key_passphrase": b"relay log passphrase for tests",
        "tree_head_interval": timedelta(0),
    }
    async with relay_factory(**overrides) as scene:
        assert key_file.exists()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        request = json.loads(log_key_request_path(key_file).read_text())
        school = scene.agency("school")
        before = await school.submit(scene.referral())
        assert "tree_head" not in before.json()["log"]  # not certified yet
        certificate = _issue(scene.partnership, request)
        published = await scene.publish(certificate)
        assert published.status == 201
        after = await school.submit(scene.referral())
        assert after.json()["log"]["leaf_index"] == 1
        assert "tree_head" in after.json()["log"]
        directory = scene.partnership.directory()
        directory.add_certificate(certificate)
        latest = (await scene.agency("auditor").get("/v1/log/head")).json()
        tree = verify_tree_head(SignedTreeHead.from_json(latest["tree_head"]), directory)
        assert tree.size == 2
        assert_root(await all_leaves(scene), tree)
        fingerprint = request["fingerprint"]
    # A restart loads the same key (and the certificate from the directory).
    async with relay_factory(db_name="second.db", **overrides) as scene:
        again = json.loads(log_key_request_path(key_file).read_text())
        assert again["fingerprint"] == fingerprint
        await scene.publish(_issue(scene.partnership, again))
        assert "tree_head" in (await scene.agency("school").submit(scene.referral())).json()["log"]


def test_settings_read_the_log_key_and_hide_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse\n")
    settings = Settings.from_env(
        {
            "EXCHANGE_LOG_KEY_FILE": "/etc/exchange/log.key",
            "EXCHANGE_LOG_KEY_PASSPHRASE_FILE": str(secret),
            "EXCHANGE_TREE_HEAD_INTERVAL": "30",
        }
    )
    assert settings.log_key_file == "/etc/exchange/log.key"
    assert settings.log_key_passphrase == b"correct horse"
    assert settings.tree_head_interval == timedelta(seconds=30)
    shown = repr(replace(settings, log_private_key=b"k" * 64))
    assert "correct horse" not in shown
    assert "kkkk" not in shown
    assert "log_key_passphrase='<SECRET>'" in shown


def test_exchange_log_key_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["TEST_LOG_KEY_PASS"] = "relay log passphrase"
    try:
        code = exchange_main(
            [
                "log-key",
                "init",
                "--out",
                str(tmp_path / "log.key"),
                "--relay-id",
                "northshire-relay",
                "--passphrase-env",
                "TEST_LOG_KEY_PASS",
                "--kdf",
                "interactive",
            ]
        )
        assert code == 0
        printed = json.loads(capsys.readouterr().out)
        request = json.loads(Path(printed["request_file"]).read_text())
        assert verify_certificate_request(request).agency_id == "northshire-relay"
        assert printed["fingerprint"] == request["fingerprint"]
        again = exchange_main(
            ["log-key", "init", "--out", str(tmp_path / "log.key"), "--passphrase-env",
             "TEST_LOG_KEY_PASS", "--kdf", "interactive"]
        )  # fmt: skip
        assert again == 1
        assert "exists" in capsys.readouterr().err
    finally:
        del os.environ["TEST_LOG_KEY_PASS"]


async def test_migration_backfills_the_log_of_an_existing_database(
    relay_factory: SceneFactory, backend: str
) -> None:
    async with relay_factory() as scene:
        school, mash = scene.agency("school"), scene.agency("mash")
        referral = scene.referral()
        assert (await school.submit(referral)).status == 201
        assert (await mash.get(f"/v1/envelopes/{message_id(referral)}")).status == 200
        assert (await mash.acknowledge(referral, message_id(referral))).status == 201
        assert (await school.submit(scene.seal("school", ["police"]))).status == 201
        leaves = await all_leaves(scene)
        url = scene.settings.database_url
        database = open_database(url)
        try:
            # Back to the schema before the log, and forward again: the backfill rebuilds it.
            await database.transaction(
                lambda c: command.downgrade(alembic_config(c), "0001")  # type: ignore[func-returns-value]
            )
            await database.migrate()

            def read(connection: Any) -> tuple[list[tuple[int, bytes]], bytes | None]:
                from sqlalchemy import text

                rows = connection.execute(
                    text("SELECT leaf_index, leaf FROM log_leaves ORDER BY leaf_index")
                )
                seals = connection.execute(
                    text("SELECT seals FROM messages WHERE message_id = :m"),
                    {"m": message_id(referral)},
                ).scalar_one()
                return [(int(i), bytes(leaf)) for i, leaf in rows], seals

            backfilled, seals = await database.transaction(read)
        finally:
            await database.dispose()
        assert backfilled == leaves
        assert [parse_leaf(leaf)["type"] for _, leaf in leaves] == [
            "envelope",
            "receipt",
            "envelope",
        ]
        assert seals == referral.seals_bytes
