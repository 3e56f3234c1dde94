"""Crash durability: SIGKILL the relay process under load, restart, and prove nothing was lost.

``SGX_CRASH_KILLS`` (default 20) and ``SGX_CRASH_SEED`` (default: a fresh one, printed)
configure the run; ``bench/fuzz.py crash --kills 50`` is the long version. See
``tests/reliability/crash.py`` for what is checked.
"""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from keys.testing import Partnership
from tests.reliability.crash import check_database, run_campaign

KILLS = int(os.environ.get("SGX_CRASH_KILLS", "20"))
SEED = int(os.environ.get("SGX_CRASH_SEED", str(random.SystemRandom().randrange(2**31))))


async def test_sigkill_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    report = await run_campaign(tmp_path, kills=KILLS, seed=SEED)
    print(report.summary())
    assert not report.failures, (
        f"{report.summary()} (rerun with SGX_CRASH_SEED={SEED}):\n" + "\n".join(report.failures)
    )
    assert report.kills >= KILLS
    # The run proves something only if messages were in flight when the relay died.
    assert report.accepted >= KILLS
    assert report.receipts > 0

    # The database checks can fail: damage a copy the way a torn write would, and look.
    damaged = tmp_path / "damaged.db"
    source = sqlite3.connect(tmp_path / "relay.db")
    target = sqlite3.connect(damaged)
    source.backup(target)
    source.close()
    with target:
        target.execute("PRAGMA foreign_keys=OFF")
        target.execute(
            "DELETE FROM envelope_contents WHERE rowid = (SELECT min(rowid) FROM envelope_contents)"
        )
        target.execute("DELETE FROM events WHERE sequence = (SELECT max(sequence) FROM events)")
    target.close()
    found: list[str] = []
    check_database(damaged, Partnership.create(at=datetime.now(UTC)), found.append)
    assert any("messages without ciphertext" in f for f in found), found
    assert any("events counter" in f for f in found), found
