"""Test harness for the agency client: a real relay in a background thread, agencies set up
through the real ``agency`` CLI, certificates issued by a real root key.

The CLI runs its own event loop (``asyncio.run``), so CLI tests are synchronous and the
relay serves from a thread with a loop of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agency_client.cli import main
from exchange.settings import Settings
from exchange.testing import running_relay
from keys.certificates import Certificate, issue_certificate
from keys.identity import AgencyPublicKeys, RootKey
from schemas.encoding import b64decode, b64encode

PASSPHRASE_VAR = "AGENCY_TEST_PASSPHRASE"
PASSPHRASE = "correct horse battery staple"
ENV = {
    PASSPHRASE_VAR: PASSPHRASE,
    "AGENCY_MAX_ATTEMPTS": "2",
    "AGENCY_BACKOFF_BASE": "0.01",
    "AGENCY_BACKOFF_MAX": "0.05",
    "AGENCY_REQUEST_TIMEOUT": "10",
}


@dataclass
class Result:
    """What one CLI run printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(
    argv: list[str], *, env: dict[str, str] | None = None, stdin: str | None = None
) -> Result:
    """Run ``agency`` in-process, capturing its output."""
    import sys

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr = out, err
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(argv, environ=env if env is not None else dict(ENV))
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
    return Result(code, out.getvalue(), err.getvalue())


class RelayThread:
    """A real relay serving from a background thread's event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._cm: contextlib.AbstractAsyncContextManager[str] | None = None
        self.url = ""

    def call(self, coro: Awaitable[Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def start(self) -> str:
        async def _start() -> str:
            self._cm = running_relay(self.settings)
            return await self._cm.__aenter__()

        self.url = self.call(_start())
        return self.url

    def stop(self) -> None:
        if self._cm is not None:
            cm, self._cm = self._cm, None
            self.call(cm.__aexit__(None, None, None))

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Agency:
    """An agency set up through ``agency init`` and ``install-certificate``."""

    agency_id: str
    home: Path
    relay: str

    def cli(
        self,
        *args: str,
        relay: str | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        argv = [
            "--home",
            str(self.home),
            "--passphrase-env",
            PASSPHRASE_VAR,
            "--relay",
            relay or self.relay,
            *args,
        ]
        return run_cli(argv, env=env, stdin=stdin)


MEMBERS = {
    "school": (
        "oakfield-primary",
        "Oakfield Primary School",
        "maintained_school",
        ["dsl"],
        "agency",
        ("Priya Shah", "Designated safeguarding lead", "01632 960101"),
    ),
    "mash": (
        "northshire-mash",
        "Northshire Children's Services MASH",
        "local_authority_childrens_services",
        ["front-door"],
        "agency",
        ("Tom Okafor", "Social worker, front door", "01632 960200"),
    ),
    "police": (
        "northshire-police-ppu",
        "Northshire Police Public Protection Unit",
        "police",
        ["public-protection"],
        "agency",
        ("DC Alan Reid", "Detective constable, MASH", "01632 960300"),
    ),
    "academy": (
        "hillcrest-academy",
        "Hillcrest Academy",
        "academy_or_free_school",
        ["dsl"],
        "agency",
        ("Sam Lee", "Designated safeguarding lead", "01632 960500"),
    ),
    "auditor": (
        "northshire-scp-audit",
        "Northshire Safeguarding Partnership Audit",
        "partnership_oversight",
        [],
        "auditor",
        ("Jo Audit", "Partnership auditor", "01632 960600"),
    ),
}


def issue_from_request(root: RootKey, request: dict[str, Any], *, now: datetime) -> Certificate:
    """What the partnership administrator does with a certificate request."""
    return issue_certificate(
        root,
        agency_id=request["agency_id"],
        name=request["name"],
        org_type=request["org_type"],
        public_authority=request["public_authority"],
        apd_in_place=request["apd_in_place"],
        mailboxes=request["mailboxes"],
        role=request["role"],
        public_keys=AgencyPublicKeys(
            signing=b64decode(request["signing_key"]),
            encryption=b64decode(request["encryption_key"]),
        ),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
    )


def setup_agency(tmp: Path, key: str, root: RootKey, relay: str) -> Agency:
    """Run ``agency init`` and ``agency install-certificate --publish`` for one member."""
    agency_id, name, org_type, mailboxes, role, contact = MEMBERS[key]
    home = tmp / key
    argv = [
        "--home",
        str(home),
        "--passphrase-env",
        PASSPHRASE_VAR,
        "--relay",
        relay,
        "init",
        "--agency-id",
        agency_id,
        "--name",
        name,
        "--org-type",
        org_type,
        "--role",
        role,
        "--root-key",
        b64encode(root.public_key),
        "--kdf",
        "interactive",
        "--contact-name",
        contact[0],
        "--contact-role",
        contact[1],
        "--contact-phone",
        contact[2],
    ]
    for box in mailboxes:
        argv += ["--mailbox", box]
    result = run_cli(argv)
    assert result.code == 0, result.err
    request = json.loads((home / "certificate-request.json").read_text())
    cert = issue_from_request(root, request, now=datetime.now(UTC))
    cert_path = tmp / f"{key}-certificate.json"
    cert_path.write_text(json.dumps(cert.to_json()))
    agency = Agency(agency_id, home, relay)
    result = agency.cli("install-certificate", str(cert_path), "--publish")
    assert result.code == 0, result.err
    return agency
