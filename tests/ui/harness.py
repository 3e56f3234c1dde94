"""Harness for the web page tests: a real partnership, real ``agency ui`` servers, Chromium.

A relay and each agency's web page run on one background event loop (the pages hold
real :class:`AgencyClient` instances that follow the relay's push stream). Agencies are
set up, and staff accounts created, through the real ``agency`` CLI. Browser tests drive
Debian's Chromium headless through Playwright (``executable_path``: nothing is ever
downloaded); they are skipped, with the reason shown, only when no Chromium is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import shutil
import threading
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from agency_client.settings import ClientSettings
from agency_client.ui.app import running_ui
from agency_client.ui.settings import UISettings
from exchange.testing import running_relay
from keys.identity import RootKey
from tests.client.conftest import relay_settings
from tests.client.harness import PASSPHRASE, Agency, run_cli, setup_agency

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
AXE_SOURCE = Path(__file__).parent / "vendor" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STAFF_PASSWORD = "plum orbit kettle meadow"
PASSWORD_VAR = "UI_TEST_STAFF_PASSWORD"

#: The staff of each agency in the tests (fictional; scenario 1 and 6 people).
STAFF = {
    "school": ("priya", "Priya Shah", "Designated safeguarding lead"),
    "mash": ("tom", "Tom Okafor", "Social worker, front door"),
    "academy": ("sam", "Sam Lee", "Designated safeguarding lead"),
    "auditor": ("jo", "Jo Audit", "Partnership auditor"),
}


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    for candidate in (os.environ.get("UI_TEST_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


class ManualClock:
    """Real time plus an offset the test can move forward (for session expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward."""
        self.offset += delta

    def reset(self) -> None:
        """Back to real time."""
        self.offset = timedelta(0)


class LoopThread:
    """An event loop in a daemon thread, to run servers while the test thread drives a browser."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stack = contextlib.AsyncExitStack()

    def call(self, coro: Awaitable[Any], timeout: float = 60) -> Any:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def enter(self, cm: contextlib.AbstractAsyncContextManager[Any]) -> Any:
        """Enter an async context manager on the loop; it is exited by :meth:`close`."""

        async def _enter() -> Any:
            return await self._stack.enter_async_context(cm)

        return self.call(_enter())

    def close(self) -> None:
        """Exit everything entered (last first) and stop the loop."""
        with contextlib.suppress(Exception):
            self.call(self._stack.aclose(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class World:
    """A running partnership: the relay, each agency's web page, and the clocks."""

    relay_url: str
    agencies: dict[str, Agency]
    urls: dict[str, str]
    clocks: dict[str, ManualClock]
    apps: dict[str, Any]
    loop: LoopThread
    tmp: Path
    extra: dict[str, Any] = field(default_factory=dict)


def add_staff(agency: Agency, key: str) -> None:
    """Create the staff account of ``key``'s agency through ``agency ui add-user``."""
    username, name, role = STAFF[key]
    env = {"AGENCY_TEST_PASSPHRASE": PASSPHRASE, PASSWORD_VAR: STAFF_PASSWORD}
    result = run_cli(
        [
            "--home",
            str(agency.home),
            "ui",
            "add-user",
            username,
            "--name",
            name,
            "--job-role",
            role,
            "--phone",
            "01632 960999",
            "--password-env",
            PASSWORD_VAR,
        ],
        env=env,
    )
    assert result.code == 0, result.err


def client_settings(agency: Agency, relay_url: str) -> ClientSettings:
    """Client settings for one test agency (quick retries)."""
    return ClientSettings(
        home=agency.home,
        relay_url=relay_url,
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.2,
        request_timeout=10,
    )


@contextlib.asynccontextmanager
async def attacker_site() -> AsyncIterator[str]:
    """Another origin on this machine whose page posts a form to a target page at once."""

    async def page(request: web.Request) -> web.Response:
        target = html.escape(request.query.get("target", ""), quote=True)
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><html lang='en'><head><title>Prize draw</title></head><body>"
                f"<form id='f' method='post' action='{target}/sign-out'>"
                "<input type='hidden' name='csrf_token' value='a-guess'></form>"
                "<script>document.getElementById('f').submit()</script></body></html>"
            ),
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def _relay(root: RootKey, tmp: Path) -> AsyncIterator[str]:
    async with running_relay(relay_settings(root, tmp)) as url:
        yield url


def build_world(
    tmp: Path,
    keys: tuple[str, ...] = ("school", "mash", "academy", "auditor"),
    *,
    serve: bool = True,
) -> World:
    """Start a relay, set up each agency with the CLI and serve each one's web page."""
    loop = LoopThread()
    try:
        root = RootKey.generate()
        relay_url = loop.enter(_relay(root, tmp))
        agencies = {key: setup_agency(tmp, key, root, relay_url) for key in keys}
        for key, agency in agencies.items():
            add_staff(agency, key)
        urls: dict[str, str] = {}
        clocks: dict[str, ManualClock] = {}
        apps: dict[str, Any] = {}
        for key, agency in agencies.items() if serve else ():
            clock = ManualClock()
            settings = client_settings(agency, relay_url)
            running = loop.enter(
                running_ui(
                    settings,
                    PASSPHRASE.encode(),
                    UISettings(port=0, keepalive=2.0),
                    clock=clock,
                )
            )
            urls[key] = running.url
            clocks[key] = clock
            apps[key] = running.app
        world = World(relay_url, agencies, urls, clocks, apps, loop, tmp)
        attacker = loop.enter(attacker_site())
        world.extra["attacker_url"] = lambda target: f"{attacker}/?target={quote(target)}"
        return world
    except BaseException:
        loop.close()
        raise
