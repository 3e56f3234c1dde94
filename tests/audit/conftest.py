"""Fixtures for the auditor tests: a real relay with a certified log key, agencies set up by CLI.

The relay runs in a background thread (``tests/client/harness.py``) on a SQLite file, so a
test can reach into its database the way an attacker with access to the relay's storage
would (:meth:`LoggedPartnership.db`), and then see what the auditor's verification says.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import agency_client
from keys.certificates import Certificate, issue_certificate
from keys.identity import AgencyIdentity, RootKey
from tests.client.conftest import relay_settings
from tests.client.harness import Agency, RelayThread, Result, setup_agency

TEMPLATES = Path(agency_client.__file__).parent / "templates"
REFERRAL = str(TEMPLATES / "referral.yaml")
WRONG_BASIS = str(TEMPLATES / "referral-wrong-basis.yaml")
RELAY_ID = "relay"


def issue_relay_certificate(root: RootKey, identity: AgencyIdentity, at: datetime) -> Certificate:
    """What the partnership administrator does with the relay's log-key request."""
    return issue_certificate(
        root,
        agency_id=RELAY_ID,
        name="Northshire exchange relay transparency log",
        org_type="exchange_relay",
        public_authority=True,
        apd_in_place=True,
        mailboxes=(),
        role="relay",
        public_keys=identity.public_keys,
        not_before=at - timedelta(days=1),
        not_after=at + timedelta(days=365),
    )


@dataclass
class LoggedPartnership:
    """A relay with a certified log key, and four agencies set up through the CLI."""

    root: RootKey
    relay: RelayThread
    tmp: Path
    log_identity: AgencyIdentity
    school: Agency
    mash: Agency
    police: Agency
    auditor: Agency

    @property
    def db_path(self) -> Path:
        """The relay's SQLite file."""
        return self.tmp / "relay.db"

    def db(self) -> sqlite3.Connection:
        """A direct connection to the relay's database (to tamper with it, as an attacker)."""
        connection = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    def audit(self, *args: str) -> tuple[Result, dict[str, Any]]:
        """Run ``agency audit verify --report-json`` as the auditor; return result and report."""
        out = self.tmp / f"report-{len(list(self.tmp.glob('report-*.json')))}.json"
        result = self.auditor.cli("audit", "verify", "--report-json", str(out), *args)
        report = json.loads(out.read_text()) if out.exists() else {}
        return result, report


def _publish(url: str, certificate: Certificate) -> None:
    request = urllib.request.Request(
        url + "/v1/directory/certificates",
        data=json.dumps(certificate.to_json()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in {200, 201}


def start_logged_partnership(tmp: Path) -> Iterator[LoggedPartnership]:
    """Start the relay with a log key the root certified, publish it, set up the agencies."""
    root = RootKey.generate()
    log_identity = AgencyIdentity.generate()
    settings = replace(
        relay_settings(root, tmp),
        relay_id=RELAY_ID,
        log_private_key=log_identity.to_private_bytes(),
        tree_head_interval=timedelta(0),
    )
    relay = RelayThread(settings)
    url = relay.start()
    try:
        _publish(url, issue_relay_certificate(root, log_identity, datetime.now(UTC)))
        yield LoggedPartnership(
            root=root,
            relay=relay,
            tmp=tmp,
            log_identity=log_identity,
            school=setup_agency(tmp, "school", root, url),
            mash=setup_agency(tmp, "mash", root, url),
            police=setup_agency(tmp, "police", root, url),
            auditor=setup_agency(tmp, "auditor", root, url),
        )
    finally:
        relay.close()


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[LoggedPartnership]:
    """A fresh relay with a certified log key and four agencies, for one test."""
    yield from start_logged_partnership(tmp_path)


def refer(partnership: LoggedPartnership) -> str:
    """The school refers Maya; the front door collects it (signed receipt). Returns the thread."""
    sent = partnership.school.cli("--json", "refer", REFERRAL)
    assert sent.code == 0, sent.err
    assert partnership.mash.cli("inbox").code == 0
    return str(sent.json()["thread_id"])


def full_scenario(partnership: LoggedPartnership) -> str:
    """Referral, acknowledgement, decision feedback, the school reads it. Returns the thread."""
    thread = refer(partnership)
    mash, school = partnership.mash, partnership.school
    assert mash.cli("ack", thread, "--reference", "NB-FD-2026-118842").code == 0
    decided = mash.cli(
        "decide",
        thread,
        "--outcome",
        "STRATEGY_S47",
        "--summary",
        "A strategy discussion is being held today; s.47 enquiries have started.",
        "--next-steps",
        "If the stepfather arrives, keep Maya in school and call the social worker.",
        "--worker-name",
        "Grace Adeyemi",
        "--worker-role",
        "Social worker",
        "--worker-phone",
        "01632 960210",
    )
    assert decided.code == 0, decided.err
    assert school.cli("inbox").code == 0
    return thread
