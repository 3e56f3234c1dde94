"""The practitioners' web page: app factory, routes, security middleware and server.

Theory of operation
-------------------
``agency ui`` unlocks the agency's keys once (passphrase from the environment, a file or
a prompt: never from the browser), opens one :class:`AgencyClient` and serves this
app on the loopback interface. Everything the page shows is decrypted here, on the
agency's machine; the relay still sees only sealed envelopes and basis codes.

Every request passes, in order:

1. **Host check**: the ``Host`` header must name this machine (or an allowed name), so
   a web page elsewhere cannot reach the server by rebinding its DNS name to 127.0.0.1.
2. **Error pages**: relay and validation problems become a plain page with the one-line
   reason; anything unexpected is logged by class name only (never content).
3. **Session and CSRF**: a session cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure``
   under HTTPS) names a server-side session. Every ``POST`` must carry the session's
   form token and, when the browser sends one, an ``Origin`` of this server. Pages
   other than sign-in need a signed-in session that has not expired.

Every response carries a strict Content-Security-Policy (scripts, styles and
connections from this server only: no inline script or style), ``frame-ancestors
'none'`` and ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``,
``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-store`` (pages hold
safeguarding content and must not stay in the browser's cache). The access log names
the route pattern and status only: no query strings, ids, addresses or bodies.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from agency_client.client import AgencyClient
from agency_client.settings import ClientSettings
from agency_client.ui import display
from agency_client.ui.live import LiveFeed
from agency_client.ui.sessions import Session, SessionStore
from agency_client.ui.settings import UISettings
from agency_client.ui.users import SignInGuard, UserStore

__all__ = [
    "CLIENT",
    "CLOCK",
    "FEED",
    "GUARD",
    "SESSIONS",
    "SETTINGS",
    "USERS",
    "RunningUI",
    "create_ui_app",
    "running_ui",
]

log = logging.getLogger("agency_client.ui")

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLIENT = web.AppKey("client", AgencyClient)
SETTINGS = web.AppKey("ui_settings", UISettings)
SESSIONS = web.AppKey("sessions", SessionStore)
USERS = web.AppKey("users", UserStore)
GUARD = web.AppKey("sign_in_guard", SignInGuard)
FEED = web.AppKey("feed", LiveFeed)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")

#: The request key holding the current :class:`Session` (or ``None``).
SESSION: Any = web.RequestKey("ui_session", object) if hasattr(web, "RequestKey") else "ui_session"

_STATIC = Path(__file__).parent / "static"
_PUBLIC_ROUTES = frozenset({"sign_in_page", "sign_in", "static", "favicon"})
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-store",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def cookie_name(settings: UISettings) -> str:
    """The session cookie's name (``__Host-`` prefixed when it is ``Secure``)."""
    return "__Host-agency-ui" if settings.cookies_secure else "agency-ui"


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, session: Session
) -> None:
    """Name ``session`` in the browser's cookie (HttpOnly, SameSite=Strict, Secure under TLS)."""
    settings = request.app[SETTINGS]
    response.set_cookie(
        cookie_name(settings),
        session.id,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.cookies_secure,
    )


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    """Remove the session cookie."""
    settings = request.app[SETTINGS]
    response.del_cookie(
        cookie_name(settings),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.cookies_secure,
    )


def is_live_refresh(request: web.Request) -> bool:
    """A request made by the page itself to refresh (does not count as activity)."""
    return request.headers.get("X-Live-Refresh") == "1" or request.query.get("auto") == "1"


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in (anything else becomes ``/``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def same_origin(request: web.Request) -> bool:
    """Whether the browser says a form came from this server (when it says anything).

    ``Sec-Fetch-Site`` must be ``same-origin`` (or ``none``: typed by the user); an
    ``Origin`` must be this server's. ``Origin: null`` is what a browser sends for our own
    forms under ``Referrer-Policy: no-referrer``, so it proves nothing either way: the
    form token decides.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin in (None, "null") or origin == f"{request.scheme}://{request.host}"


# -- middleware -------------------------------------------------------------------------------


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse requests whose ``Host`` is not this server (DNS rebinding)."""
    if _host_name(request.host or "") not in request.app[SETTINGS].host_names():
        return web.Response(status=421, text="This server answers for this machine only.\n")
    return await handler(request)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render errors as plain pages; log only the kind of error."""
    from agency_client.ui import views  # the views import this module

    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            return views.error_page(
                request,
                exc.status,
                "Page not found" if exc.status == 404 else "Not allowed here",
                "Check the address, or go back to your inbox.",
            )
        raise
    except views.PageError as exc:
        return views.error_page(request, exc.status, exc.title, exc.detail)
    except Exception as exc:
        from schemas.problems import ExchangeError

        if isinstance(exc, ExchangeError):
            log.warning("request failed: %s (%s)", exc.code, _route_name(request))
            return views.error_page(
                request,
                exc.status if 400 <= exc.status < 600 else 500,
                exc.title,
                exc.diagnostics(),
            )
        log.error("unexpected %s in %s", exc.__class__.__name__, _route_name(request))
        return views.error_page(
            request,
            500,
            "Something went wrong",
            "The page could not be shown. Nothing was sent. Try again, and tell your "
            "administrator if it keeps happening.",
        )


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    return route.name or route.resource.canonical if route.resource is not None else "?"


@web.middleware
async def sessions_and_csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Load the session, check the form token on every POST, and require sign-in."""
    from agency_client.ui import views

    store = request.app[SESSIONS]
    name = request.match_info.route.name or ""
    if name in ("static", "favicon"):
        return await handler(request)
    touch = not is_live_refresh(request) and name != "events"
    session, expired = store.lookup(
        request.cookies.get(cookie_name(request.app[SETTINGS])), touch=touch
    )
    if session is not None and session.signed_in:
        user = request.app[USERS].get(session.username or "")
        if user is None or user.password_hash != session.credential:  # removed or new password
            store.end(session)
            session, expired = None, True
    request[SESSION] = session
    if request.method in _UNSAFE:
        if not same_origin(request):
            log.warning("refused a form from another site (%s)", name or "?")
            return views.csrf_refused(request)
        form = await request.post()
        token = form.get("csrf_token")
        if session is None:
            if name == "sign_in":
                return await views.sign_in_expired(request)
            return views.signed_out_redirect(request, expired=True)
        if not session.csrf_ok(token if isinstance(token, str) else None):
            log.warning("refused a form without a valid token (%s)", name or "?")
            return views.csrf_refused(request)
    if name in _PUBLIC_ROUTES:
        return await handler(request)
    if session is None or not session.signed_in:
        if name == "events" or is_live_refresh(request):
            return web.Response(status=401, text="Signed out.\n")
        return views.signed_out_redirect(request, expired=expired)
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    if request.app[SETTINGS].tls:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


class RouteAccessLogger(AbstractAccessLogger):
    """Logs method, route pattern, status and duration: no paths, queries or addresses."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Write one access line."""
        route = "?"
        match_info = getattr(request, "match_info", None)
        if match_info is not None and match_info.route.resource is not None:
            route = match_info.route.resource.canonical
        self.logger.info("%s %s %s %.0fms", request.method, route, response.status, time * 1000)


# -- the app ----------------------------------------------------------------------------------


def _setup_templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("agency_client.ui", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = display.local_time
    env.globals["label"] = display.label
    env.globals["L"] = {
        "kind": display.KIND_LABELS,
        "state": display.STATE_LABELS,
        "outcome": display.OUTCOME_LABELS,
        "concern": display.CONCERN_LABELS,
        "deadline": display.DEADLINE_LABELS,
        "level": display.LEVEL_LABELS,
        "art6": display.ART6_LABELS,
        "special": display.SPECIAL_CATEGORY_LABELS,
        "not_sought": display.NOT_SOUGHT_LABELS,
        "not_told": display.NOT_TOLD_LABELS,
    }


def create_ui_app(
    client: AgencyClient,
    settings: UISettings,
    *,
    clock: Clock = _utcnow,
) -> web.Application:
    """The web app for one agency's staff, using an open ``client``.

    :param client: the agency's unlocked client (the app does not close it).
    :param settings: how to serve and how long sessions last.
    :param clock: the time source for sessions and lockouts (tests pass one they move).
    """
    from agency_client.ui.views import ROUTES

    app = web.Application(
        middlewares=[host_guard, error_pages, sessions_and_csrf],
        client_max_size=512 * 1024,
    )
    app[CLIENT] = client
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[SESSIONS] = SessionStore(
        idle_timeout=settings.idle_timeout,
        absolute_timeout=settings.absolute_timeout,
        clock=clock,
    )
    app[USERS] = UserStore(settings.users_path(client.home.path))
    app[GUARD] = SignInGuard(settings.max_failed_sign_ins, settings.lockout, clock)
    app[FEED] = LiveFeed(client)
    _setup_templates(app)
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    app.router.add_static("/static", _STATIC, name="static", append_version=False)
    app.on_response_prepare.append(_security_headers)
    app.cleanup_ctx.append(_live_updates)
    app.on_shutdown.append(_end_event_streams)
    return app


async def _live_updates(app: web.Application) -> AsyncIterator[None]:
    feed = app[FEED]
    if app[SETTINGS].live_updates and app[CLIENT].config.role != "auditor":
        feed.start()
    yield
    await feed.stop()


async def _end_event_streams(app: web.Application) -> None:
    await app[FEED].stop()


@dataclass(frozen=True)
class RunningUI:
    """A web page being served: its base URL and its app."""

    url: str
    app: web.Application

    @property
    def client(self) -> AgencyClient:
        """The agency client behind the page."""
        return self.app[CLIENT]


def _ssl_context(settings: UISettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


@contextlib.asynccontextmanager
async def running_ui(
    client_settings: ClientSettings,
    passphrase: bytes,
    settings: UISettings,
    *,
    clock: Clock = _utcnow,
) -> AsyncIterator[RunningUI]:
    """Unlock the agency's keys, serve the web page until the block ends, then close."""
    client = await AgencyClient.open(client_settings, passphrase)
    try:
        app = create_ui_app(client, settings, clock=clock)
        runner = web.AppRunner(
            app, access_log_class=RouteAccessLogger, shutdown_timeout=2.0, handler_cancellation=True
        )
        await runner.setup()
        try:
            site = web.TCPSite(
                runner, settings.host, settings.port, ssl_context=_ssl_context(settings)
            )
            await site.start()
            host, port = runner.addresses[0][:2]
            shown = f"[{host}]" if ":" in host else host
            scheme = "https" if settings.tls else "http"
            yield RunningUI(url=f"{scheme}://{shown}:{port}", app=app)
        finally:
            await runner.cleanup()
    finally:
        await client.close()
