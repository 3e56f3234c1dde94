"""The authorization matrix: every role x every route x every object it could reach.

Roles: the **sender** of a message (Oakfield Primary), its **recipient** (the front
door), an **unrelated** agency, the partnership **auditor**, a **revoked** agency (its
certificate revoked before it calls) and an **anonymous** caller (no signature).
Routes are enumerated from ``exchange/routes.py``: :func:`test_every_route_has_a_row`
fails as soon as a route is added without a row here. Each cell asserts the exact
outcome (status and problem code) and, where a route lists things, whether the object
is visible to that role. All cells run against one relay; cells that change state get
objects of their own.

Also here: replayed signed requests on every authenticated route, skewed clocks, and a
revoked certificate refused on its very next request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from yarl import URL

from exchange.routes import ROUTES
from keys.receipts import sign_receipt
from keys.sealing import header_digest
from keys.testing import STANDARD_MEMBERS, Partnership
from tests.relay.conftest import Reply, Scene
from tests.reliability.crash import LOG_MEMBER

ROLES = ("sender", "recipient", "unrelated", "auditor", "revoked", "anonymous")
MEMBER = {
    "sender": "school",
    "recipient": "mash",
    "unrelated": "unrelated",
    "auditor": "auditor",
    "revoked": "charity",
}
ENVELOPE = "application/vnd.safeguard.envelope.v1+json"

Outcome = tuple[int, str | None]
OK: Outcome = (200, None)
CREATED: Outcome = (201, None)
NOT_RECIPIENT: Outcome = (403, "not-recipient")
FORBIDDEN: Outcome = (403, "forbidden")
NOT_FOUND: Outcome = (404, "not-found")
#: What the two roles without a valid identity always get on an authenticated route.
UNAUTHENTICATED = {"revoked": (403, "certificate-revoked"), "anonymous": (401, "unauthenticated")}


def everyone(outcome: Outcome) -> dict[str, Outcome]:
    """The same outcome for every role (public routes)."""
    return dict.fromkeys(ROLES, outcome)


def signed(**outcomes: Outcome) -> dict[str, Outcome]:
    """Outcomes for the four identities; revoked and anonymous are refused first."""
    assert set(outcomes) == {"sender", "recipient", "unrelated", "auditor"}
    return {**outcomes, **UNAUTHENTICATED}


@dataclass
class World:
    """The relay and the objects the matrix reaches for."""

    scene: Scene
    message: str = ""  # school -> front door referral, pending (not receipted)
    leaf_index: int = 0  # its envelope leaf in the transparency log
    unknown: str = "0" * 32

    def agency_id(self, role: str) -> str:
        return self.scene.partnership[MEMBER[role]].agency_id

    async def fresh_message(self) -> str:
        reply = await self.scene.agency("school").submit(self.scene.referral())
        assert reply.status == 201, reply.body
        return str(reply.json()["message_id"])


@dataclass(frozen=True)
class Call:
    """One request to make as a role."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str = "application/json"


Build = Callable[[World, str], Any]  # -> Call (may be a coroutine for fresh objects)
Visible = Callable[[World, str, Reply], bool]


@dataclass(frozen=True)
class Row:
    """One route and object, with the exact outcome for each role."""

    route: str
    variant: str
    build: Build
    expect: dict[str, Outcome]
    #: For listings: whether the object is in what the role got (checked on 200s).
    visible: Visible | None = None
    sees: frozenset[str] = field(default_factory=frozenset)


def _get(path: str, query: str = "") -> Build:
    def build(world: World, role: str) -> Call:
        return Call("GET", path.format(m=world.message, u=world.unknown), query)

    return build


def _own(path: str) -> Build:
    def build(world: World, role: str) -> Call:
        agency = world.agency_id(role) if role in MEMBER else world.agency_id("unrelated")
        return Call("GET", path.format(agency=agency))

    return build


def _listed(world: World, role: str, reply: Reply) -> bool:
    """Whether the message's id appears anywhere in the listing."""
    return world.message in json.dumps(reply.json())


async def _submit_schools_envelope(world: World, role: str) -> Call:
    wire = world.scene.referral().to_wire()
    return Call("POST", "/v1/envelopes", body=wire, content_type=ENVELOPE)


async def _own_receipt(world: World, role: str) -> Call:
    """The role's own signed receipt for a fresh message to the front door."""
    message_id = await world.fresh_message()
    stored = await world.scene.agency("auditor").get(f"/v1/envelopes/{message_id}/header")
    header = base64.b64decode(stored.json()["header"])
    member = world.scene.partnership[MEMBER.get(role, "unrelated")]
    receipt = sign_receipt(
        member.identity,
        member.certificate,
        message_id=message_id,
        header_digest=header_digest(header),
        received_at=datetime.now(UTC),
    )
    body = json.dumps(receipt.to_json()).encode()
    return Call("POST", f"/v1/envelopes/{message_id}/receipts", body=body)


def _publish_certificate(world: World, role: str) -> Call:
    body = json.dumps(world.scene.partnership["school"].certificate.to_json()).encode()
    return Call("POST", "/v1/directory/certificates", body=body)


def _publish_revocations(world: World, role: str) -> Call:
    rl = world.scene.partnership.revocations
    assert rl is not None
    return Call("POST", "/v1/directory/revocations", body=json.dumps(rl.to_json()).encode())


def _inclusion(world: World, role: str) -> Call:
    query = f"index={world.leaf_index}&size={world.leaf_index + 1}"
    return Call("GET", "/v1/log/proof/inclusion", query)


ROWS: tuple[Row, ...] = (
    # -- public ---------------------------------------------------------------------------------
    Row("health", "-", _get("/health"), everyone(OK)),
    Row("ready", "-", _get("/ready"), everyone(OK)),
    Row("metrics", "-", _get("/metrics"), everyone(OK)),
    Row("openapi", "-", _get("/openapi.json"), everyone(OK)),
    Row("well_known", "-", _get("/.well-known/safeguarding-exchange"), everyone(OK)),
    Row("directory", "-", _get("/v1/directory"), everyone(OK)),
    Row("publish_certificate", "already published", _publish_certificate, everyone(OK)),
    Row("publish_revocations", "already current", _publish_revocations, everyone(OK)),
    # -- envelopes ------------------------------------------------------------------------------
    Row("submit_envelope", "the sender's envelope", _submit_schools_envelope,
        signed(sender=CREATED, recipient=FORBIDDEN, unrelated=FORBIDDEN, auditor=FORBIDDEN)),
    Row("get_envelope", "the message", _get("/v1/envelopes/{m}"),
        signed(sender=OK, recipient=OK, unrelated=NOT_RECIPIENT, auditor=FORBIDDEN)),
    Row("get_envelope", "an unknown id", _get("/v1/envelopes/{u}"),
        signed(sender=NOT_FOUND, recipient=NOT_FOUND, unrelated=NOT_FOUND, auditor=FORBIDDEN)),
    Row("get_envelope_header", "the message", _get("/v1/envelopes/{m}/header"),
        signed(sender=OK, recipient=OK, unrelated=NOT_RECIPIENT, auditor=OK)),
    Row("get_envelope_header", "an unknown id", _get("/v1/envelopes/{u}/header"),
        signed(sender=NOT_FOUND, recipient=NOT_FOUND, unrelated=NOT_FOUND, auditor=NOT_FOUND)),
    Row("post_receipt", "its own receipt for a fresh message", _own_receipt,
        signed(sender=NOT_RECIPIENT, recipient=CREATED, unrelated=NOT_RECIPIENT,
               auditor=NOT_RECIPIENT)),
    Row("get_envelope_status", "the message", _get("/v1/envelopes/{m}/status"),
        signed(sender=OK, recipient=FORBIDDEN, unrelated=FORBIDDEN, auditor=OK)),
    Row("get_envelope_status", "an unknown id", _get("/v1/envelopes/{u}/status"),
        signed(sender=NOT_FOUND, recipient=NOT_FOUND, unrelated=NOT_FOUND, auditor=NOT_FOUND)),
    Row("get_envelope_log", "the message", _get("/v1/envelopes/{m}/log"),
        signed(sender=OK, recipient=OK, unrelated=NOT_RECIPIENT, auditor=OK)),
    # -- delivery -------------------------------------------------------------------------------
    Row("get_inbox", "its own", _own("/v1/agencies/{agency}/inbox"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=FORBIDDEN),
        visible=_listed, sees=frozenset({"recipient"})),
    Row("get_inbox", "the recipient's", _get("/v1/agencies/northbridge-front-door/inbox"),
        signed(sender=FORBIDDEN, recipient=OK, unrelated=FORBIDDEN, auditor=FORBIDDEN)),
    Row("get_events", "its own", _own("/v1/agencies/{agency}/events"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=FORBIDDEN)),
    Row("get_events", "the recipient's", _get("/v1/agencies/northbridge-front-door/events"),
        signed(sender=FORBIDDEN, recipient=OK, unrelated=FORBIDDEN, auditor=FORBIDDEN)),
    Row("get_overdue", "its own", _own("/v1/agencies/{agency}/overdue"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=FORBIDDEN)),
    Row("get_overdue", "the recipient's", _get("/v1/agencies/northbridge-front-door/overdue"),
        signed(sender=FORBIDDEN, recipient=OK, unrelated=FORBIDDEN, auditor=FORBIDDEN)),
    # -- threads --------------------------------------------------------------------------------
    Row("list_threads", "-", _get("/v1/threads"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=OK),
        visible=_listed, sees=frozenset({"sender", "recipient", "auditor"})),
    Row("get_thread", "the message's thread", _get("/v1/threads/{m}"),
        signed(sender=OK, recipient=OK, unrelated=FORBIDDEN, auditor=OK)),
    Row("get_thread", "an unknown thread", _get("/v1/threads/{u}"),
        signed(sender=NOT_FOUND, recipient=NOT_FOUND, unrelated=NOT_FOUND, auditor=NOT_FOUND)),
    # -- audit ----------------------------------------------------------------------------------
    Row("audit_headers", "-", _get("/v1/audit/headers"),
        signed(sender=FORBIDDEN, recipient=FORBIDDEN, unrelated=FORBIDDEN, auditor=OK),
        visible=_listed, sees=frozenset({"auditor"})),
    Row("audit_events", "-", _get("/v1/audit/events"),
        signed(sender=FORBIDDEN, recipient=FORBIDDEN, unrelated=FORBIDDEN, auditor=OK),
        visible=_listed, sees=frozenset({"auditor"})),
    # -- transparency log: hashes for every identity; leaves and proofs of one's own ---------
    Row("get_tree_head", "-", _get("/v1/log/head"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=OK)),
    Row("list_tree_heads", "-", _get("/v1/log/heads"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=OK)),
    Row("get_log_leaves", "-", _get("/v1/log/leaves", "start=0&limit=1000"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=OK),
        visible=lambda world, role, reply: _leaf_names(world, reply),
        sees=frozenset({"sender", "recipient", "auditor"})),
    Row("get_inclusion_proof", "the message's leaf", _inclusion,
        signed(sender=OK, recipient=OK, unrelated=FORBIDDEN, auditor=OK)),
    Row("get_consistency_proof", "-", _get("/v1/log/proof/consistency", "first=1&second=1"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=OK)),
    Row("get_log_frontier", "-", _get("/v1/log/frontier", "size=1"),
        signed(sender=OK, recipient=OK, unrelated=OK, auditor=OK)),
)  # fmt: skip


def _leaf_names(world: World, reply: Reply) -> bool:
    for item in reply.json()["items"]:
        leaf = json.loads(base64.b64decode(item["leaf"]))
        header = leaf.get("header")
        if header and json.loads(base64.b64decode(header)).get("id") == world.message:
            return True
    return False


def test_every_route_has_a_row() -> None:
    routes = {route.name for route in ROUTES}
    covered = {row.route for row in ROWS}
    assert routes - covered == set(), "routes without an authorization row"
    assert covered - routes == set(), "rows for routes that no longer exist"
    for row in ROWS:
        assert set(row.expect) == set(ROLES), row


async def _call(world: World, role: str, call: Call) -> Reply:
    scene = world.scene
    headers = {"Content-Type": call.content_type}
    if role != "anonymous":
        member = scene.agency(MEMBER[role])
        headers.update(member.sign(call.method, call.path, call.query, call.body))
    url = URL(scene.url + call.path + (f"?{call.query}" if call.query else ""), encoded=True)
    async with scene.session.request(call.method, url, data=call.body, headers=headers) as resp:
        if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
            return Reply(resp.status, dict(resp.headers), b"")  # a push stream: do not wait on it
        return Reply(resp.status, dict(resp.headers), await resp.read())


@pytest.fixture
async def world(relay_factory: Any) -> Any:
    p = Partnership.create(at=datetime.now(UTC), members=(*STANDARD_MEMBERS, LOG_MEMBER))
    p.revoke("charity", at=datetime.now(UTC) - timedelta(minutes=1))
    async with relay_factory(
        partnership=p,
        log_private_key=p["relay"].identity.to_private_bytes(),
        tree_head_interval=timedelta(0),
        rate_limit_per_second=1e6,
        rate_limit_burst=10**6,
    ) as scene:
        assert p.revocations is not None
        assert (await scene.publish_revocations(p.revocations)).status == 201
        w = World(scene)
        reply = await scene.agency("school").submit(scene.referral())
        assert reply.status == 201, reply.body
        w.message = reply.json()["message_id"]
        w.leaf_index = reply.json()["log"]["leaf_index"]
        yield w


async def test_authorization_matrix(world: World) -> None:
    wrong: list[str] = []
    cells = 0
    for row in ROWS:
        for role in ROLES:
            call = row.build(world, role)
            if hasattr(call, "__await__"):
                call = await call
            reply = await _call(world, role, call)
            cells += 1
            code = reply.problem_code
            status, want_code = row.expect[role]
            where = f"{row.route} [{row.variant}] as {role}"
            if (reply.status, code) != (status, want_code):
                wrong.append(f"{where}: got {reply.status} {code}, want {status} {want_code}")
                continue
            if reply.status >= 400:
                assert reply.headers["Content-Type"].startswith("application/problem+json")
            seen = row.visible is not None and reply.status == 200
            if seen and row.visible(world, role, reply) != (role in row.sees):  # type: ignore[misc]
                wrong.append(f"{where}: the message is {'not ' * (role in row.sees)}listed")
    print(f"authorization matrix: {len(ROWS)} rows x {len(ROLES)} roles = {cells} cells")
    assert wrong == [], "\n".join(wrong)
