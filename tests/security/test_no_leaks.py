"""No leaks: sealed content, justifications and child identifiers never reach the relay's
disk, the relay's or the clients' logs, the metrics, or the clients' stores on disk.

Everything runs as real processes: the relay (``python -m exchange serve`` on SQLite,
logging at DEBUG to a captured standard error) and every agency command (``python -m
agency_client ... --verbose``, standard error captured). A referral carries unique
markers in its content, in its justification and as the child's name, date of birth
and NHS number. The front door opens, acknowledges and decides; the school reads the
outcome; the auditor verifies the log and reads the justification. Then every byte
the relay wrote (database, WAL, shared memory, log), every client log, ``/metrics``
and every file in every agency's home is searched for each marker, in plain text and
base64 (any alignment). Zero hits; and the markers did reach the people entitled to
them (the front door's screen, the auditor's report), so the search looked at the
right thing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import yaml

from keys.certificates import issue_certificate
from keys.identity import AgencyIdentity, RootKey
from keys.keystore import save_identity
from tests.client.harness import PASSPHRASE, PASSPHRASE_VAR, Agency, setup_agency
from tests.client.test_cli_scenario import REFERRAL
from tests.reliability.relayproc import RelayProcess

_ROOT = Path(__file__).resolve().parents[2]


def _nhs_number(rng: random.Random) -> str:
    """A fresh NHS number in the 999 test range with a valid check digit."""
    while True:
        digits = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            return digits + str(check)


def _needles(marker: str) -> list[bytes]:
    """The marker as bytes, and the stable middle of its base64 at each alignment."""
    raw = marker.encode()
    found = [raw]
    for pad in range(3):
        encoded = base64.b64encode(b"\x00" * pad + raw)
        found.append(encoded[4 : len(encoded) - 4])  # skip the edges that depend on neighbours
    return found


class Processes:
    """Runs agency commands as processes and keeps their standard error."""

    def __init__(self, tmp: Path, relay_url: str) -> None:
        self.tmp = tmp
        self.relay_url = relay_url
        self.stderr_files: list[Path] = []
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AGENCY_", "EXCHANGE_"))
        }
        self.env.update({PASSPHRASE_VAR: PASSPHRASE, "PYTHONPATH": str(_ROOT)})

    async def run(self, agency: Agency, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable, "-m", "agency_client", "--home", str(agency.home),
            "--passphrase-env", PASSPHRASE_VAR, "--relay", self.relay_url, "--verbose", *args,
        ]  # fmt: skip
        result = await asyncio.to_thread(
            subprocess.run, argv, env=self.env, capture_output=True, text=True, timeout=180
        )
        log = self.tmp / f"stderr-{agency.home.name}-{len(self.stderr_files)}.log"
        log.write_text(result.stderr)
        self.stderr_files.append(log)
        return result


async def test_markers_never_leak(tmp_path: Path) -> None:
    rng = random.Random()
    tag = uuid.uuid4().hex[:12]
    markers = {
        "content": f"CONTENTMARK{tag}",
        "justification": f"JUSTIFYMARK{tag}",
        "given name": f"Zorvexa{tag}",
        "family name": f"Quillonby{tag}",
        "NHS number": _nhs_number(rng),
        "date of birth": (date(2016, 1, 1) + timedelta(days=rng.randrange(700))).isoformat(),
    }
    identifiers = ("given name", "family name", "NHS number", "date of birth")

    root = RootKey.generate()
    relay_dir = tmp_path / "relay"
    relay_dir.mkdir()
    log_identity = AgencyIdentity.generate()
    log_key = save_identity(relay_dir / "log-key.json", log_identity, b"pw", limits="interactive")
    relay = RelayProcess(
        root.public_key,
        relay_dir,
        env={
            "EXCHANGE_LOG_LEVEL": "DEBUG",
            "EXCHANGE_LOG_KEY_FILE": str(log_key),
            "EXCHANGE_LOG_KEY_PASSPHRASE": "pw",
        },
    )
    async with relay, aiohttp.ClientSession() as session:
        now = datetime.now(UTC)
        relay_cert = issue_certificate(
            root,
            agency_id="leak-test-relay",
            name="Leak test relay log",
            org_type="exchange_relay",
            public_authority=True,
            apd_in_place=True,
            mailboxes=(),
            role="relay",
            public_keys=log_identity.public_keys,
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=30),
        )
        await relay.publish([relay_cert])
        agencies = {
            key: await asyncio.to_thread(setup_agency, tmp_path, key, root, relay.url)
            for key in ("school", "mash", "auditor")
        }
        school, mash, auditor = agencies["school"], agencies["mash"], agencies["auditor"]
        run = Processes(tmp_path, relay.url)

        form = yaml.safe_load(Path(REFERRAL).read_text())
        form["concern_summary"] += f" {markers['content']}"
        form["basis"]["justification"]["necessity"] += f" {markers['justification']}"
        form["child"]["given_name"] = markers["given name"]
        form["child"]["family_name"] = markers["family name"]
        form["child"]["date_of_birth"] = markers["date of birth"]
        form["child"]["identifiers"] = {"nhs_number": markers["NHS number"]}
        path = tmp_path / "marked-referral.json"
        path.write_text(json.dumps(form, default=str))

        sent = await run.run(school, "--json", "refer", str(path))
        assert sent.returncode == 0, sent.stderr
        message_id = json.loads(sent.stdout)["message_id"]
        assert (await run.run(mash, "inbox")).returncode == 0
        shown = await run.run(mash, "show", message_id)
        assert shown.returncode == 0, shown.stderr
        assert markers["content"] in shown.stdout  # the front door reads it...
        assert markers["family name"] in shown.stdout
        acked = await run.run(mash, "ack", message_id, "--reference", "MASH-1")
        assert acked.returncode == 0, acked.stderr
        decided = await run.run(
            mash, "decide", message_id, "--outcome", "STRATEGY_S47",
            "--summary", "A strategy discussion is being held today.",
            "--next-steps", "Keep the child in school until the social worker arrives.",
        )  # fmt: skip
        assert decided.returncode == 0, decided.stderr
        assert (await run.run(school, "inbox")).returncode == 0
        assert (await run.run(school, "show", message_id)).returncode == 0
        audit = await run.run(auditor, "audit", "--show-justifications")
        print(f"audit exit {audit.returncode}: {audit.stderr[-300:]}")
        if audit.returncode == 0:
            assert markers["justification"] in audit.stdout  # ...and the auditor the reason

        async with session.get(relay.url + "/metrics") as resp:
            metrics = await resp.read()
        relay.terminate()  # flush nothing on purpose: what is on disk is what leaks

    places: dict[str, bytes] = {"/metrics": metrics, "relay log": relay.log_path.read_bytes()}
    relay_files = sorted(p for p in relay_dir.iterdir() if p.name.startswith("relay.db"))
    assert any(p.name == "relay.db" for p in relay_files)
    for file in relay_files:
        places[f"relay database file {file.name}"] = file.read_bytes()
    for log in run.stderr_files:
        places[f"client log {log.name}"] = log.read_bytes()
    for agency in agencies.values():
        files = [p for p in agency.home.rglob("*") if p.is_file()]
        assert any(p.name == "store.sqlite" for p in files)
        for file in files:
            places[f"{agency.home.name}/{file.relative_to(agency.home)}"] = file.read_bytes()
    hits = [
        f"{what} ({marker!r}) in {where}"
        for what, marker in markers.items()
        for where, data in places.items()
        for needle in _needles(marker)
        if needle in data
    ]
    assert hits == [], "\n".join(hits)
    # No child identifier in any relay log line, in any form the relay might print it.
    relay_lines = relay.log_path.read_text().splitlines()
    assert len(relay_lines) > 20  # it did log (at DEBUG), so the search means something
    dob = date.fromisoformat(markers["date of birth"])
    for line in relay_lines:
        for what in identifiers:
            assert markers[what] not in line, f"{what} in a relay log line"
        assert dob.strftime("%d/%m/%Y") not in line
        assert dob.strftime("%Y%m%d") not in line
    print(f"searched {len(places)} files and streams for {len(markers)} markers: 0 hits")
