"""Fixtures for relay tests: a real relay on a real port with a real SQLite file.

``partnership`` is a complete fictional partnership (keys.testing): a school
(``school``: maintained_school, mailbox ``dsl``), a MASH front door (``mash``:
local_authority_childrens_services, mailbox ``front-door``),
a police team, an auditor (role auditor, partnership_oversight) and an unrelated
agency, among others. ``relay_factory`` starts a relay that pins the partnership's
root and has the certificates published; ``agency`` gives a small signed-request
HTTP client for a member.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from exchange.settings import Settings
from exchange.testing import RunningRelay, started_relay
from keys.certificates import Certificate
from keys.http_signatures import new_nonce, sign_request
from keys.identity import AgencyIdentity
from keys.receipts import DeliveryReceipt, sign_receipt
from keys.sealing import header_digest, new_message_id, seal
from keys.testing import Member, Partnership
from schemas.envelope import SealedEnvelope
from schemas.lawful_basis import BasisTag
from schemas.policy import DeploymentPolicy
from tests.fixtures import scenarios
from tests.fixtures.scenarios import readdress

#: A marker sealed into test bodies and justifications; it must never reach the relay's disk.
PLAINTEXT_MARKER = "MARKER-PLAINTEXT-7f3a9c-Maya-Bennett"

#: The README's example basis tag (accepted for every kind between these agencies).
BASIS: dict[str, Any] = {
    "regime": "UK_GDPR",
    "art6": ["A6_1_e"],
    "data_categories": ["personal", "special_category", "criminal_offence"],
    "special_categories": ["health"],
    "art9_condition": "A9_2_g",
    "sch1_condition": "SCH1_P2_18",
    "art10_sch1_condition": "SCH1_P3_36",
    "gateways": ["EA2002_S175", "CA2004_S10"],
    "p18_purpose": "protect_from_harm",
    "data_subject_category": "under_18",
    "consent": [
        {
            "data_subject_role": "parent_or_pr_holder",
            "state": "not_sought",
            "not_sought_reason": "data_subject_is_alleged_perpetrator",
        },
        {
            "data_subject_role": "child",
            "state": "not_sought",
            "not_sought_reason": "cannot_be_given_age_or_capacity",
        },
    ],
    "transparency": {
        "informed": "no",
        "reason_not_informed": "would_increase_risk_to_child",
        "decision_authorised_by": "DSL",
    },
    "confidentiality_basis": "public_interest",
    "onward_disclosure": "permitted",
    "retention_class": "SCHOOL_CP_DOB_PLUS_25",
    "emergency": False,
    "justification": {
        "statutory_function_citation": "Education Act 2002 s.175(2)",
        "necessity": f"why this must be shared now {PLAINTEXT_MARKER}",
        "proportionality": "only what the front door needs to decide",
        "substantial_public_interest": "protecting a child from harm",
        "public_interest": "the risk to the child outweighs confidence",
    },
}


#: A scenario body for each kind the tests send (re-addressed by ``Scene.seal``).
BODIES: dict[str, Callable[[], Any]] = {
    "REFERRAL": scenarios.maya_referral,
    "ACKNOWLEDGEMENT": scenarios.maya_acknowledgement,
    "DECISION_FEEDBACK": scenarios.maya_decision,
    "REQUEST_FOR_INFORMATION": scenarios.maya_rfi_to_police,
    "RESPONSE_TO_RFI": scenarios.maya_police_response,
    "INFORMATION_ONLY": lambda: scenarios.leo_information_notices()[0],
    "POLICE_NOTIFICATION": scenarios.sam_police_notification,
    "ESCALATION": scenarios.noah_escalation,
}


class FakeClock:
    """A settable clock for the relay and the signing helpers."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self.now = moment

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)``."""
        self.now = self.now + timedelta(**delta)
        return self.now


def real_clock() -> datetime:
    """The wall clock, UTC."""
    return datetime.now(UTC)


@dataclass
class Reply:
    """An HTTP response, read."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    @property
    def problem_code(self) -> str | None:
        """The problem's ``code`` if this is a problem document."""
        if self.headers.get("Content-Type", "").startswith("application/problem+json"):
            return str(self.json().get("code"))
        return None


@dataclass
class AgencyHTTP:
    """A minimal signed-request client for one member of the partnership."""

    session: aiohttp.ClientSession
    base_url: str
    identity: AgencyIdentity
    certificate: Certificate
    clock: Callable[[], datetime] = real_clock
    sent: list[dict[str, str]] = field(default_factory=list)

    @property
    def agency_id(self) -> str:
        """This member's agency id."""
        return self.certificate.body.agency_id

    def sign(
        self,
        method: str,
        path: str,
        query: str = "",
        body: bytes = b"",
        *,
        created: datetime | None = None,
        nonce: str | None = None,
        identity: AgencyIdentity | None = None,
        key_id: str | None = None,
    ) -> dict[str, str]:
        """The signature headers for a request."""
        return sign_request(
            identity=identity or self.identity,
            key_id=key_id or self.certificate.id,
            method=method,
            path=path,
            query=query,
            body=body,
            created=created or self.clock(),
            nonce=nonce or new_nonce(),
        )

    async def send(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        signed: bool = True,
        content_type: str = "application/json",
        **sign_options: Any,
    ) -> Reply:
        """Send one request (signed unless ``signed=False``) and read the reply."""
        all_headers = {"Content-Type": content_type}
        if signed:
            signature = self.sign(method, path, query, body, **sign_options)
            self.sent.append(signature)
            all_headers.update(signature)
        all_headers.update(headers or {})
        url = URL(self.base_url + path + (f"?{query}" if query else ""), encoded=True)
        async with self.session.request(method, url, data=body, headers=all_headers) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.read())

    async def replay(
        self, method: str, path: str, signature: Mapping[str, str], body: bytes = b""
    ) -> Reply:
        """Send a request again with exactly the same signature headers."""
        headers = {"Content-Type": "application/json", **signature}
        async with self.session.request(
            method, URL(self.base_url + path, encoded=True), data=body, headers=headers
        ) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.read())

    async def get(self, path: str, query: str = "") -> Reply:
        """A signed GET."""
        return await self.send("GET", path, query=query)

    async def post_json(self, path: str, value: Any) -> Reply:
        """A signed POST of JSON."""
        return await self.send("POST", path, body=json.dumps(value).encode())

    async def submit(self, envelope: SealedEnvelope | bytes) -> Reply:
        """Submit an envelope."""
        wire = envelope if isinstance(envelope, bytes) else envelope.to_wire()
        return await self.send(
            "POST",
            "/v1/envelopes",
            body=wire,
            content_type="application/vnd.safeguard.envelope.v1+json",
        )

    async def inbox(self, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        """This agency's inbox after ``since``."""
        query = f"since={since}" + (f"&limit={limit}" if limit else "")
        reply = await self.get(f"/v1/agencies/{self.agency_id}/inbox", query)
        assert reply.status == 200, reply.body
        return reply.json()  # type: ignore[no-any-return]

    def receipt_for(self, envelope: SealedEnvelope, message_id: str) -> dict[str, str]:
        """A signed delivery receipt for ``envelope``."""
        receipt: DeliveryReceipt = sign_receipt(
            self.identity,
            self.certificate,
            message_id=message_id,
            header_digest=header_digest(envelope.header_bytes),
            received_at=self.clock(),
        )
        return receipt.to_json()

    async def acknowledge(self, envelope: SealedEnvelope, message_id: str) -> Reply:
        """Post a signed delivery receipt."""
        return await self.post_json(
            f"/v1/envelopes/{message_id}/receipts", self.receipt_for(envelope, message_id)
        )


@dataclass
class Scene:
    """A running relay, its partnership and helpers to act as its members."""

    relay: RunningRelay
    partnership: Partnership
    session: aiohttp.ClientSession
    clock: Callable[[], datetime]
    settings: Settings
    db_path: Path

    @property
    def url(self) -> str:
        """The relay's base URL."""
        return self.relay.url

    def agency(self, key: str) -> AgencyHTTP:
        """A signed-request client for member ``key`` (school, mash, police, auditor...)."""
        member = self.partnership[key]
        return AgencyHTTP(
            session=self.session,
            base_url=self.url,
            identity=member.identity,
            certificate=member.certificate,
            clock=self.clock,
        )

    def seal(
        self,
        sender: str,
        recipients: Iterable[str],
        *,
        kind: str = "REFERRAL",
        body: Any = None,
        basis: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
        in_reply_to: str | None = None,
        message_id: str | None = None,
        created_at: datetime | None = None,
        deployment: DeploymentPolicy | None = None,
    ) -> SealedEnvelope:
        """Seal a real envelope from member ``sender`` to members ``recipients``.

        Without ``body``, the practice scenario body for ``kind`` is re-addressed to
        these members and ids (a referral also carries :data:`PLAINTEXT_MARKER`).
        """
        p = self.partnership
        from_member: Member = p[sender]
        recipient_keys = list(recipients)
        message_id = message_id or new_message_id()
        if body is None:
            routing: dict[str, Any] = {
                "message_id": message_id,
                "thread_id": thread_id or message_id,
                "sender_agency": from_member.agency_id,
                "recipient_agencies": tuple(p[r].agency_id for r in recipient_keys),
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
            recipients=[(p[r].certificate, p[r].mailbox) for r in recipient_keys],
            auditor=p["auditor"].certificate,
            kind=kind,
            body=body,
            basis=BasisTag.model_validate(dict(basis or BASIS)),
            created_at=created_at or self.clock(),
            thread_id=thread_id,
            in_reply_to=in_reply_to,
            message_id=message_id,
            deployment=deployment,
        )

    def referral(self, sender: str = "school", recipient: str = "mash") -> SealedEnvelope:
        """A real referral (Maya's, carrying the plaintext marker) from/to members."""
        return self.seal(sender, [recipient], kind="REFERRAL")

    async def publish(self, certificate: Certificate) -> Reply:
        """Publish a certificate through the public endpoint."""
        async with self.session.post(
            self.url + "/v1/directory/certificates", json=certificate.to_json()
        ) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.read())

    async def publish_revocations(self, rl: Any) -> Reply:
        """Publish a revocation list through the public endpoint."""
        async with self.session.post(
            self.url + "/v1/directory/revocations", json=rl.to_json()
        ) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.read())


SceneFactory = Callable[..., contextlib.AbstractAsyncContextManager[Scene]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the relay runs on (PostgreSQL only with EXCHANGE_TEST_DATABASE_URL)."""
    if request.param == "postgres" and not os.environ.get("EXCHANGE_TEST_DATABASE_URL"):
        pytest.skip("set EXCHANGE_TEST_DATABASE_URL to run the relay tests on PostgreSQL")
    return str(request.param)


@contextlib.asynccontextmanager
async def _fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the test server; dropped afterwards."""
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(os.environ["EXCHANGE_TEST_DATABASE_URL"])
    name = f"relay_test_{secrets.token_hex(6)}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def relay_factory(tmp_path: Path, backend: str) -> SceneFactory:
    """Start relays: ``async with relay_factory(clock=..., **settings) as scene``."""

    @contextlib.asynccontextmanager
    async def factory(
        *,
        clock: Callable[[], datetime] | None = None,
        publish: Iterable[str] | None = None,
        partnership: Partnership | None = None,
        db_name: str = "relay.db",
        **overrides: Any,
    ) -> AsyncIterator[Scene]:
        use_clock = clock or real_clock
        p = partnership or Partnership.create(at=use_clock())
        db_path = tmp_path / db_name
        async with contextlib.AsyncExitStack() as stack:
            if backend == "postgres":
                url = await stack.enter_async_context(_fresh_postgres_database())
            else:
                url = f"sqlite+aiosqlite:///{db_path}"
            settings = Settings(
                relay_id="test-relay",
                root_public_key=p.root.public_key,
                database_url=url,
                run_sweeper=False,
            )
            settings = replace(settings, **overrides)
            scene = await stack.enter_async_context(
                _scene(settings, use_clock, p, db_path, publish)
            )
            yield scene

    return factory


@contextlib.asynccontextmanager
async def _scene(
    settings: Settings,
    use_clock: Callable[[], datetime],
    p: Partnership,
    db_path: Path,
    publish: Iterable[str] | None,
) -> AsyncIterator[Scene]:
    """Serve a relay with the partnership's certificates published, and a client session."""
    async with (
        started_relay(settings, clock=use_clock) as relay,
        aiohttp.ClientSession() as session,
    ):
        scene = Scene(
            relay=relay,
            partnership=p,
            session=session,
            clock=use_clock,
            settings=settings,
            db_path=db_path,
        )
        keys = list(p.members) if publish is None else list(publish)
        for key in keys:
            reply = await scene.publish(p[key].certificate)
            assert reply.status == 201, reply.body
        yield scene


@pytest.fixture
async def scene(relay_factory: SceneFactory) -> AsyncIterator[Scene]:
    """A relay on the wall clock with the whole partnership published."""
    async with relay_factory() as running:
        yield running
