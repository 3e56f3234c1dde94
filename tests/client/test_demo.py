"""The README's demo, run exactly as ``scripts/demo`` runs it (real processes over HTTP)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_every_step(tmp_path: Path) -> None:
    work = tmp_path / "demo-run"
    result = subprocess.run(
        [sys.executable, "-m", "agency_client.demo", "--work", str(work)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    out = result.stdout
    assert "All 15 steps succeeded" in out
    assert "[L002 REJECT_LAW]" in out  # the wrong basis, refused by the sender's check
    assert "HTTP 422 lawful-basis-rejected" in out  # ...and by the relay when forced
    assert "Outcome: STRATEGY_S47." in out
    assert "What the relay saw: REFERRAL from oakfield-primary/dsl" in out
    # The relay's database and the agencies' stores hold no content in clear.
    for path in work.rglob("*"):
        if path.is_file() and path.suffix in {".db", ".sqlite", ".sqlite-wal", ".db-wal"}:
            data = path.read_bytes()
            assert b"squeezed really hard" not in data, path
            assert b"Larch Close" not in data, path
