"""``agency ui``: staff accounts from the command line, and the server as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.harness import PASSPHRASE, PASSPHRASE_VAR, run_cli
from tests.ui.harness import PASSWORD_VAR, STAFF_PASSWORD, World, build_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="one_agency", scope="module")
def _one_agency(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = build_world(tmp_path_factory.mktemp("ui-cli"), ("school",), serve=False)
    try:
        yield world
    finally:
        world.loop.close()


def _ui(home: Path, *args: str, password: str = STAFF_PASSWORD) -> object:
    env = {PASSPHRASE_VAR: PASSPHRASE, PASSWORD_VAR: password}
    return run_cli(["--home", str(home), *args], env=env)


def test_accounts_are_managed_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "agency"
    add = ["ui", "add-user", "dsl", "--name", "Priya Shah", "--job-role", "DSL"]
    result = _ui(home, *add, "--password-env", PASSWORD_VAR)
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    assert "Added dsl" in result.out  # type: ignore[attr-defined]
    stored = json.loads((home / "ui-users.json").read_text())
    assert stored["users"][0]["password_hash"].startswith("$argon2id$")
    assert STAFF_PASSWORD not in (home / "ui-users.json").read_text()

    again = _ui(home, *add, "--password-env", PASSWORD_VAR)
    assert again.code == 2  # type: ignore[attr-defined]
    assert "already a user called dsl" in again.err  # type: ignore[attr-defined]
    short = _ui(
        home,
        "ui",
        "add-user",
        "x2",
        "--name",
        "X",
        "--job-role",
        "Y",
        "--password-env",
        PASSWORD_VAR,
        password="short",
    )
    assert short.code == 2  # type: ignore[attr-defined]
    assert "at least 12 characters" in short.err  # type: ignore[attr-defined]
    no_password = _ui(home, "ui", "add-user", "x3", "--name", "X", "--job-role", "Y")
    assert no_password.code == 2  # type: ignore[attr-defined]

    listing = _ui(home, "--json", "ui", "users")
    assert json.loads(listing.out)["users"] == [  # type: ignore[attr-defined]
        {"username": "dsl", "name": "Priya Shah", "job_role": "DSL"}
    ]
    changed = _ui(
        home,
        "ui",
        "set-password",
        "dsl",
        "--password-env",
        PASSWORD_VAR,
        password="a brand new passphrase",
    )
    assert changed.code == 0  # type: ignore[attr-defined]
    assert _ui(home, "ui", "remove-user", "dsl").code == 0  # type: ignore[attr-defined]
    assert "No accounts yet" in _ui(home, "ui", "users").out  # type: ignore[attr-defined]


def test_serving_needs_an_account(one_agency: World, tmp_path: Path) -> None:
    home = one_agency.agencies["school"].home
    users = home / "ui-users.json"
    saved = users.read_bytes()
    users.unlink()
    try:
        result = _ui(home, "--relay", one_agency.relay_url, "ui", "--port", "0")
        assert result.code == 2  # type: ignore[attr-defined]
        assert "agency ui add-user" in result.err  # type: ignore[attr-defined]
    finally:
        users.write_bytes(saved)
    refused = _ui(home, "ui", "--host", "0.0.0.0", "--port", "0")
    assert refused.code == 2  # type: ignore[attr-defined]
    assert "this machine only" in refused.err  # type: ignore[attr-defined]


def test_agency_ui_serves_and_stops_cleanly(one_agency: World) -> None:
    home = one_agency.agencies["school"].home
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENCY_")} | {
        PASSPHRASE_VAR: PASSPHRASE,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agency_client",
            "--home",
            str(home),
            "--passphrase-env",
            PASSPHRASE_VAR,
            "--relay",
            one_agency.relay_url,
            "ui",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        match = re.search(r"is at (http://\S+)", line)
        assert match is not None, line
        url = match.group(1)
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/sign-in", timeout=30) as response:
            assert response.status == 200
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "Sign in" in response.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr
