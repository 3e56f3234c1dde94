"""The web page's HTTP behaviour, with aiohttp's test client over a real partnership.

Security headers, the Host check, cookies, CSRF on every form, session expiry with an
injected clock, the sign-in lockout, ended sessions, the event stream, and logs that
carry no content or child identifiers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agency_client.client import AgencyClient
from agency_client.ui.app import CSP, RouteAccessLogger, create_ui_app
from agency_client.ui.settings import UISettings
from agency_client.ui.views import ROUTES
from tests.client.harness import PASSPHRASE
from tests.ui.harness import STAFF, STAFF_PASSWORD, ManualClock, World, build_world, client_settings

TEMPLATES = Path(__file__).resolve().parents[2] / "agency_client" / "ui" / "templates"


@pytest.fixture(name="plain_world", scope="module")
def _plain_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A relay and three agencies (no web servers: each test builds its own app)."""
    world = build_world(
        tmp_path_factory.mktemp("ui-http"), ("school", "mash", "auditor"), serve=False
    )
    try:
        yield world
    finally:
        world.loop.close()


@dataclass
class Page:
    """One agency's app under aiohttp's test client."""

    http: TestClient[Any, Any]
    client: AgencyClient
    clock: ManualClock
    key: str

    async def token(self, path: str = "/sign-in") -> str:
        """The form token on ``path``."""
        response = await self.http.get(path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', await response.text())
        assert match is not None, f"no form token on {path}"
        return match.group(1)

    async def sign_in(self, password: str = STAFF_PASSWORD) -> Any:
        """Sign in through the form; the (unfollowed) response."""
        token = await self.token()
        return await self.http.post(
            "/sign-in",
            data={
                "csrf_token": token,
                "username": STAFF[self.key][0],
                "password": password,
                "next": "/",
            },
            allow_redirects=False,
        )


async def _page(world: World, key: str, settings: UISettings | None = None) -> Page:
    clock = ManualClock()
    client = await AgencyClient.open(
        client_settings(world.agencies[key], world.relay_url), PASSPHRASE.encode()
    )
    app = create_ui_app(client, settings or UISettings(port=0, live_updates=False), clock=clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log_class=RouteAccessLogger)  # as ``agency ui`` serves
    http: TestClient[Any, Any] = TestClient(server)
    await http.start_server()
    return Page(http, client, clock, key)


@pytest.fixture(name="school")
async def _school(plain_world: World) -> AsyncIterator[Page]:
    page = await _page(plain_world, "school")
    try:
        yield page
    finally:
        await page.http.close()
        await page.client.close()


async def test_strict_security_headers_on_every_response(school: Page) -> None:
    assert "'unsafe-inline'" not in CSP
    assert "frame-ancestors 'none'" in CSP
    for path in ("/sign-in", "/static/ui.css", "/static/live.js", "/favicon.ico", "/nowhere"):
        response = await school.http.get(path)
        headers = response.headers
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_script_or_style() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert "<style" not in text, template.name
        assert not re.search(r"\sstyle=", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name


async def test_host_header_must_name_this_machine(school: Page) -> None:
    response = await school.http.get("/sign-in", headers={"Host": "rebound.example:8765"})
    assert response.status == 421
    response = await school.http.get("/sign-in", headers={"Host": "localhost:8765"})
    assert response.status == 200


async def test_session_cookie_attributes_and_rotation(school: Page) -> None:
    response = await school.http.get("/sign-in")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    before = response.cookies["agency-ui"].value
    signed = await school.sign_in()
    assert signed.status == 303
    after = signed.cookies["agency-ui"].value
    assert after != before  # a new session id at sign-in (no fixation)
    old = await school.http.get("/", cookies={"agency-ui": before}, allow_redirects=False)
    assert old.status == 303
    assert old.headers["Location"].startswith("/sign-in")


async def test_secure_cookie_when_served_over_https(plain_world: World) -> None:
    page = await _page(
        plain_world, "school", UISettings(port=0, live_updates=False, secure_cookies=True)
    )
    try:
        response = await page.http.get("/sign-in")
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-agency-ui=")
        assert "Secure" in cookie
    finally:
        await page.http.close()
        await page.client.close()


async def test_every_form_needs_the_session_token(school: Page) -> None:
    assert (await school.sign_in()).status == 303
    token = await school.token("/")
    posts = [path for method, path, _, _ in ROUTES if method == "POST"]
    assert posts
    thread = "0" * 32
    for path in posts:
        target = path.replace("{thread}", thread)
        for data, headers in (
            ({}, {}),
            ({"csrf_token": "forged"}, {}),
            ({"csrf_token": token}, {"Origin": "http://evil.example"}),
            ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
            ({"csrf_token": token}, {"Sec-Fetch-Site": "same-site"}),
        ):
            response = await school.http.post(
                target, data=data, headers=headers, allow_redirects=False
            )
            assert response.status == 403, (path, data, headers)
            assert "This form could not be accepted" in await response.text()
    # Still signed in: none of those did anything.
    assert (await school.http.get("/", allow_redirects=False)).status == 200


async def test_sessions_expire_when_idle_and_at_the_end_of_the_day(school: Page) -> None:
    assert (await school.sign_in()).status == 303
    school.clock.advance(timedelta(minutes=29))
    assert (await school.http.get("/", allow_redirects=False)).status == 200
    school.clock.advance(timedelta(minutes=31))
    response = await school.http.get("/refer", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/sign-in?next=/refer&expired=1"

    assert (await school.sign_in()).status == 303
    for _ in range(30):  # busy all day, a click every 20 minutes
        school.clock.advance(timedelta(minutes=20))
        response = await school.http.get("/", allow_redirects=False)
        if response.status != 200:
            break
    assert response.status == 303
    assert "expired=1" in response.headers["Location"]


async def test_live_refreshes_do_not_keep_a_session_alive(school: Page) -> None:
    assert (await school.sign_in()).status == 303
    for _ in range(2):
        school.clock.advance(timedelta(minutes=20))
        live = await school.http.get("/", headers={"X-Live-Refresh": "1"}, allow_redirects=False)
    assert live.status == 401  # 40 minutes without a real click


async def test_account_locked_after_repeated_wrong_passwords(school: Page) -> None:
    for _ in range(5):
        assert (await school.sign_in("wrong wrong wrong")).status == 401
    locked = await school.sign_in()
    assert locked.status == 429
    assert "locked" in await locked.text()
    school.clock.advance(timedelta(minutes=16))
    assert (await school.sign_in()).status == 303


async def test_removed_account_or_new_password_ends_the_session(
    school: Page, plain_world: World
) -> None:
    from agency_client.ui.users import UserStore

    users = UserStore(plain_world.agencies["school"].home / "ui-users.json")
    assert (await school.sign_in()).status == 303
    users.set_password("priya", "a completely new password")
    response = await school.http.get("/", allow_redirects=False)
    assert response.status == 303
    users.set_password("priya", STAFF_PASSWORD)


async def test_event_stream_starts_with_the_current_revision(school: Page) -> None:
    unauthenticated = await school.http.get("/events")
    assert unauthenticated.status == 401
    assert (await school.sign_in()).status == 303
    response = await school.http.get("/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Content-Security-Policy"] == CSP
    first = await response.content.readuntil(b"\n\n")
    assert b"event: revision\ndata: 0" in first
    response.close()


async def test_auditor_sees_the_report_and_agencies_do_not(
    plain_world: World, school: Page
) -> None:
    assert (await school.sign_in()).status == 303
    forbidden = await school.http.get("/audit")
    assert forbidden.status == 403
    auditor = await _page(plain_world, "auditor")
    try:
        assert (await auditor.sign_in()).status == 303
        response = await auditor.http.get("/", allow_redirects=False)
        assert response.headers["Location"] == "/audit"
        report = await auditor.http.get("/audit")
        assert report.status == 200
        assert "Audit report" in await report.text()
        assert (await auditor.http.get("/refer")).status == 403
    finally:
        await auditor.http.close()
        await auditor.client.close()


SECRETS = (
    "Maya",
    "Bennett",
    "Craig",
    "squeezed really hard",
    "Larch Close",
    "NB4 7QT",
    "stepfather",
)


async def test_no_content_or_child_identifiers_in_logs(
    school: Page, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await school.sign_in()).status == 303
    token = await school.token("/refer")
    details = {
        "csrf_token": token,
        "to": "northshire-mash/front-door",
        "child_given_name": "Maya",
        "child_family_name": "Bennett",
        "child_dob": "2019-03-14",
        "child_address_line": "12 Larch Close",
        "child_postcode": "NB4 7QT",
        "hh0_name": "Craig Dawson",
        "hh0_relationship": "stepfather",
        "hh0_alleged": "yes",
        "concern_categories": "physical_abuse",
        "concern_summary": "A bruise from her stepfather.",
        "child_words": "Craig did it when he was angry. He squeezed really hard.",
        "child_words_said_to": "Class teacher",
        "facts_vs_opinion_marked": "yes",
        "immediate_risk": "yes",
        "child_location_now": "In school",
        "safe_to_go_home": "unknown",
        "parents_aware": "no",
        "parents_reason": "It would increase the risk.",
        "sent_by_name": "Priya Shah",
        "sent_by_role": "DSL",
        "sent_by_phone": "01632 960101",
    }
    bad = await school.http.post("/refer", data={**details, "child_postcode": "nonsense"})
    assert bad.status == 400
    assert "Postcode must be a UK postcode" in await bad.text()
    step = await school.http.post("/refer", data=details, allow_redirects=False)
    assert step.headers["Location"] == "/refer/contents"
    step = await school.http.post(
        "/refer/contents",
        data={
            "csrf_token": token,
            "special": "yes",
            "special_categories": "health",
            "criminal": "yes",
        },
        allow_redirects=False,
    )
    assert step.headers["Location"] == "/refer/basis"
    basis_page = await school.http.get("/refer/basis")
    assert "A maintained school is a public authority" in await basis_page.text()
    step = await school.http.post(
        "/refer/basis",
        data={
            "csrf_token": token,
            "art6": "A6_1_e",
            "statutory_function_citation": "Education Act 2002 s.175(2)",
            "necessity": "Disclosure of harm by Craig.",
            "proportionality": "Only what Maya's front door needs.",
            "substantial_public_interest": "Protecting Maya Bennett.",
            "public_interest": "Risk outweighs confidentiality.",
            "consent_parent_or_pr_holder": "not_sought",
            "consent_parent_or_pr_holder_reason": "data_subject_is_alleged_perpetrator",
            "consent_child": "not_sought",
            "consent_child_reason": "cannot_be_given_age_or_capacity",
            "told_family": "no",
            "not_told_reason": "would_increase_risk_to_child",
            "not_told_authorised_by": "DSL",
            "retention_class": "SCHOOL_CP_DOB_PLUS_25",
        },
        allow_redirects=False,
    )
    assert step.headers["Location"] == "/refer/check"
    check = await school.http.get("/refer/check")
    assert "passes the partnership" in await check.text()
    sent = await school.http.post("/refer/send", data={"csrf_token": token}, allow_redirects=False)
    assert sent.status == 303
    thread_path = sent.headers["Location"]
    assert re.fullmatch(r"/threads/[0-9a-f]{32}", thread_path)
    thread = await school.http.get(thread_path)
    assert "Craig did it when he was angry" in await thread.text()

    ours = [r for r in caplog.records if r.name.startswith(("agency_client", "aiohttp"))]
    assert any("/threads/{thread}" in r.getMessage() for r in ours), "no access log seen"
    for record in ours:  # not even the thread id in our logs or the access log
        assert thread_path[9:] not in record.getMessage(), (record.name, record.getMessage())
    for record in caplog.records:  # every logger, the relay's and libraries' included
        message = record.getMessage()
        for secret in SECRETS:
            assert secret not in message, (record.name, message)
