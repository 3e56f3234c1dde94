"""Real relay processes (``python -m exchange serve``) sharing one real PostgreSQL database.

:func:`fresh_database` creates an empty database on the test server and drops it
afterwards (waiting for the server to be back if a test restarted it).
:class:`Cluster` starts N relays on different ports against it, all at once (so
they also race to migrate the schema), waits until each answers ``/ready``,
publishes the partnership's certificates to each, and stops them all at the end.
:class:`Member` is a signed-request client bound to one relay.

Every wait here is on real state with a deadline: a relay that does not come up
fails the test with the tail of its log instead of hanging.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

from keys.sealing import new_message_id, seal
from keys.testing import Partnership
from schemas.envelope import SealedEnvelope
from schemas.lawful_basis import BasisTag
from tests.fixtures.scenarios import readdress
from tests.relay.conftest import BASIS, BODIES, PLAINTEXT_MARKER, AgencyHTTP, real_clock

__all__ = [
    "Cluster",
    "RelayProcess",
    "admin_dsn",
    "eventually",
    "fresh_database",
    "message_id",
    "seal_for",
]

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

#: Settings every test relay gets (small pools: several relays share one test server).
RELAY_ENV: dict[str, str] = {
    "EXCHANGE_RATE_LIMIT_PER_SECOND": "100000",
    "EXCHANGE_RATE_LIMIT_BURST": "100000",
    "EXCHANGE_DATABASE_POOL_SIZE": "4",
    "EXCHANGE_DATABASE_MAX_OVERFLOW": "4",
    "EXCHANGE_DATABASE_RETRY_AFTER": "1",
    "EXCHANGE_PUSH_RECONNECT_INTERVAL": "0.2",
    # A stream re-reads its inbox on every heartbeat; make it long, so a prompt
    # delivery can only come from a wake-up.
    "EXCHANGE_PUSH_HEARTBEAT": "300",
    "EXCHANGE_SWEEP_INTERVAL": "3600",
    "EXCHANGE_LOG_FORMAT": "json",
    "EXCHANGE_LOG_LEVEL": "INFO",
}


def admin_dsn(url: str, database: str | None = None) -> str:
    """A plain ``postgresql://`` DSN for asyncpg (optionally another database)."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _connect_with_retry(dsn: str, deadline: float) -> Any:
    while True:
        try:
            return await asyncpg.connect(dsn, timeout=3)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server; yields its SQLAlchemy URL; dropped after."""
    name = f"exchange_pg_{secrets.token_hex(6)}"
    admin = await _connect_with_retry(admin_dsn(server_url), time.monotonic() + 30)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await _connect_with_retry(admin_dsn(server_url), time.monotonic() + 60)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something other than None; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RelayProcess:
    """One ``exchange serve`` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines it wrote to standard error."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """Its JSON log lines, parsed."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    records.append(value)
        return records

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time; always reaped."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@dataclass
class Cluster:
    """N relays on one database, a partnership, and a client session."""

    database_url: str
    partnership: Partnership
    workdir: Path
    session: aiohttp.ClientSession
    relays: list[RelayProcess] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Record a timestamped step of the test (shown with the relays' logs on failure)."""
        self.notes.append(f"{datetime.now(UTC).strftime('%H:%M:%S.%f')[:-3]} {text}")

    def diagnostics(self) -> str:
        """The test's steps, and each relay's warnings, errors and slow requests."""
        lines = ["-- test steps:", *self.notes]
        for relay in self.relays:
            lines.append(f"-- {relay.name} (exit {relay.process.poll()}), port {relay.port}:")
            records = relay.log_records()
            slow = [r for r in records if r.get("event") == "request" and r.get("ms", 0) > 2000]
            problems = [r for r in records if r.get("level") in ("warning", "error")]
            for record in slow[-10:] + problems[-15:]:
                lines.append(json.dumps(record)[:300])
            if not records:
                lines.append(relay.log_tail())
        return "\n".join(lines)

    def start(self, count: int, env: Mapping[str, str] | None = None) -> list[RelayProcess]:
        """Start ``count`` more relays at once (not yet waited for)."""
        started = []
        for _ in range(count):
            name = f"relay-{len(self.relays) + 1}"
            port = _free_port()
            log_path = self.workdir / f"{name}.log"
            full_env = dict(os.environ)
            full_env.update(RELAY_ENV)
            full_env.update(
                {
                    "EXCHANGE_ROOT_PUBLIC_KEY": base64.b64encode(
                        self.partnership.root.public_key
                    ).decode(),
                    "EXCHANGE_DATABASE_URL": self.database_url,
                    "EXCHANGE_HOST": "127.0.0.1",
                    "EXCHANGE_PORT": str(port),
                    "EXCHANGE_RELAY_ID": name,
                    "PYTHONPATH": str(REPO),
                }
            )
            full_env.update(env or {})
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "exchange", "serve"],
                    cwd=self.workdir,
                    env=full_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            relay = RelayProcess(name, port, process, log_path)
            self.relays.append(relay)
            started.append(relay)
        return started

    async def wait_ready(self, relays: Iterable[RelayProcess], timeout: float = 60) -> None:
        """Wait until each relay answers ``GET /ready`` with 200."""

        async def ready(relay: RelayProcess) -> None:
            async def probe() -> bool | None:
                if relay.process.poll() is not None:
                    raise AssertionError(
                        f"{relay.name} exited with {relay.process.returncode}:\n{relay.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    async with self.session.get(
                        relay.url + "/ready", timeout=aiohttp.ClientTimeout(total=2)
                    ) as response:
                        if response.status == 200:
                            return True
                return None

            try:
                await eventually(probe, timeout=timeout, what=f"{relay.name} to be ready")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{relay.log_tail()}") from None

        await asyncio.gather(*(ready(relay) for relay in relays))

    async def publish(self, relays: Iterable[RelayProcess]) -> None:
        """Publish every member's certificate through each relay's public endpoint."""
        for relay in relays:
            for member in self.partnership.members.values():
                async with self.session.post(
                    relay.url + "/v1/directory/certificates", json=member.certificate.to_json()
                ) as response:
                    body = await response.read()
                    assert response.status in (200, 201), body

    async def add(self, count: int, env: Mapping[str, str] | None = None) -> list[RelayProcess]:
        """Start ``count`` relays at once, wait until ready, publish the directory to each."""
        relays = self.start(count, env)
        await self.wait_ready(relays)
        await self.publish(relays)
        return relays

    def member(self, key: str, relay: RelayProcess) -> AgencyHTTP:
        """A signed-request client for partnership member ``key`` talking to ``relay``."""
        member = self.partnership[key]
        return AgencyHTTP(
            session=self.session,
            base_url=relay.url,
            identity=member.identity,
            certificate=member.certificate,
        )

    def stop(self) -> None:
        """Stop every relay."""
        for relay in self.relays:
            relay.stop()

    async def query(self, sql: str, *args: Any) -> list[Any]:
        """Run one query on the cluster's database (a direct connection, not a relay)."""
        connection = await _connect_with_retry(admin_dsn(self.database_url), time.monotonic() + 30)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()


def seal_for(
    partnership: Partnership,
    sender: str,
    recipients: Sequence[str],
    *,
    kind: str = "REFERRAL",
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    message_id: str | None = None,
    created_at: datetime | None = None,
) -> SealedEnvelope:
    """A real envelope from member ``sender`` (the scenario body for ``kind``, re-addressed)."""
    from_member = partnership[sender]
    message_id = message_id or new_message_id()
    routing: dict[str, Any] = {
        "message_id": message_id,
        "thread_id": thread_id or message_id,
        "sender_agency": from_member.agency_id,
        "recipient_agencies": tuple(partnership[r].agency_id for r in recipients),
    }
    if in_reply_to is not None:
        routing["in_reply_to"] = in_reply_to
    body = readdress(BODIES[kind](), **routing)
    if kind == "REFERRAL":
        body = body.model_copy(
            update={"concern_summary": f"{body.concern_summary} {PLAINTEXT_MARKER}"}
        )
    return seal(
        identity=from_member.identity,
        sender=from_member.certificate,
        sender_mailbox=from_member.mailbox,
        recipients=[(partnership[r].certificate, partnership[r].mailbox) for r in recipients],
        auditor=partnership["auditor"].certificate,
        kind=kind,
        body=body,
        basis=BasisTag.model_validate(dict(BASIS)),
        created_at=created_at or real_clock(),
        thread_id=thread_id,
        in_reply_to=in_reply_to,
        message_id=message_id,
    )


def message_id(envelope: SealedEnvelope) -> str:
    """The envelope's message id (from its signed header)."""
    return str(json.loads(envelope.header_bytes)["id"])


def now() -> datetime:
    """The wall clock, UTC."""
    return datetime.now(UTC)
