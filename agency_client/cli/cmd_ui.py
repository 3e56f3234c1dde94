"""``agency ui``: serve the practitioners' web page, and manage who may sign in to it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agency_client.cli._common import Context, add_common_options, emit
from agency_client.settings import passphrase_from_env, passphrase_from_file
from agency_client.ui.app import running_ui
from agency_client.ui.settings import UISettings
from agency_client.ui.users import UserStore
from schemas.problems import ConfigurationError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ui`` (and its account subcommands) to the subcommands."""
    parser = sub.add_parser(
        "ui",
        help="serve the web page for the agency's staff (and manage their accounts)",
        description=(
            "Serve a web page on this computer where the agency's staff sign in to refer a "
            "child, read and answer what arrives, and follow each thread and its deadlines; "
            "the auditor sees the audit report. The key passphrase is given here (never in "
            "the browser). Staff accounts are added with 'agency ui add-user'. The page "
            "listens on 127.0.0.1 only unless told otherwise."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (only with --tls-cert or behind an HTTPS proxy)",
    )
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the PEM private key for --tls-cert")
    parser.add_argument(
        "--secure-cookies",
        action="store_true",
        default=None,
        help="mark cookies Secure (automatic with --tls-cert; use behind an HTTPS proxy)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name the page may be reached by (loopback names always work)",
    )
    parser.add_argument(
        "--idle-minutes", type=float, default=30, help="sign out after this long unused"
    )
    parser.add_argument(
        "--max-hours", type=float, default=10, help="sign out this long after signing in"
    )
    parser.add_argument(
        "--no-live", action="store_true", help="do not follow the relay's push stream"
    )
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(
        dest="ui_action",
        metavar="[ACTION]",
        title="accounts (without an action, 'agency ui' serves the page)",
    )

    add = actions.add_parser("add-user", help="create a staff account for the web page")
    add_common_options(add, suppress=True)
    add.add_argument("username", help="the user name to sign in with")
    add.add_argument("--name", required=True, help="the person's full name")
    add.add_argument(
        "--job-role", required=True, help="their role, e.g. 'Designated safeguarding lead'"
    )
    add.add_argument("--phone", help="their phone number (offered for follow-up)")
    add.add_argument("--email", help="their email address (offered for follow-up)")
    _password_options(add)
    add.set_defaults(handler=run)

    reset = actions.add_parser("set-password", help="give a staff account a new password")
    add_common_options(reset, suppress=True)
    reset.add_argument("username")
    _password_options(reset)
    reset.set_defaults(handler=run)

    remove = actions.add_parser("remove-user", help="delete a staff account")
    add_common_options(remove, suppress=True)
    remove.add_argument("username")
    remove.set_defaults(handler=run)

    listing = actions.add_parser("users", help="list the staff accounts")
    add_common_options(listing, suppress=True)
    listing.set_defaults(handler=run)


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-env", metavar="NAME", help="read the password from environment variable NAME"
    )
    parser.add_argument(
        "--password-file", metavar="FILE", type=Path, help="read the password from FILE"
    )


def _password(ctx: Context) -> str:
    args = ctx.args
    if args.password_env:
        return passphrase_from_env(ctx.environ, args.password_env).reveal().decode("utf-8")
    if args.password_file:
        return passphrase_from_file(args.password_file).reveal().decode("utf-8")
    if not ctx.stdin.isatty():
        raise ConfigurationError(
            "no password given: use --password-env NAME or --password-file FILE"
        )
    first = getpass.getpass("New password (at least 12 characters): ")
    if getpass.getpass("Repeat the password: ") != first:
        raise ConfigurationError("the two passwords differ")
    return first


def _users(ctx: Context, settings: UISettings | None = None) -> UserStore:
    return UserStore((settings or UISettings()).users_path(ctx.settings.home))


def _ui_settings(args: argparse.Namespace) -> UISettings:
    return UISettings(
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        secure_cookies=args.secure_cookies,
        allowed_hosts=tuple(args.allowed_host),
        idle_timeout=timedelta(minutes=args.idle_minutes),
        absolute_timeout=timedelta(hours=args.max_hours),
        live_updates=not args.no_live,
    )


async def _serve(ctx: Context) -> int:
    settings = _ui_settings(ctx.args)
    if not _users(ctx, settings).load():
        raise ConfigurationError(
            "nobody can sign in yet: add an account first with 'agency ui add-user NAME'"
        )
    secret = ctx.passphrase()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with running_ui(ctx.settings, secret.reveal(), settings) as ui:
        emit(ctx, {"url": ui.url, "agency": ui.client.agency_id})
        ctx.out(f"The web page for {ui.client.config.name} is at {ui.url}")
        ctx.out("Open it in a browser on this computer. Press Ctrl-C to stop.")
        ctx.stdout.flush()
        await stop.wait()
    ctx.out("Stopped; everyone has been signed out.")
    return 0


async def run(ctx: Context) -> int:
    """Serve the page, or manage accounts."""
    action = ctx.args.ui_action or "serve"
    if action == "serve":
        return await _serve(ctx)
    ctx.settings.home.mkdir(parents=True, exist_ok=True)
    users = _users(ctx)
    if action == "add-user":
        user = users.add(
            ctx.args.username,
            name=ctx.args.name,
            job_role=ctx.args.job_role,
            password=_password(ctx),
            now=datetime.now(UTC),
            phone=ctx.args.phone,
            email=ctx.args.email,
        )
        emit(ctx, {"username": user.username, "created": True})
        ctx.out(f"Added {user.username} ({user.name}, {user.job_role}).")
    elif action == "set-password":
        user = users.set_password(ctx.args.username, _password(ctx))
        emit(ctx, {"username": user.username, "password_changed": True})
        ctx.out(
            f"New password set for {user.username}; "
            "they are signed out everywhere at their next click."
        )
    elif action == "remove-user":
        users.remove(ctx.args.username)
        emit(ctx, {"username": ctx.args.username, "removed": True})
        ctx.out(f"Removed {ctx.args.username}; they are signed out at their next click.")
    else:
        listing = sorted(users.load().values(), key=lambda u: u.username)
        emit(
            ctx,
            {
                "users": [
                    {"username": u.username, "name": u.name, "job_role": u.job_role}
                    for u in listing
                ]
            },
        )
        if not listing:
            ctx.out("No accounts yet: add one with 'agency ui add-user NAME'.")
        for user in listing:
            ctx.out(f"{user.username}: {user.name}, {user.job_role}")
    return 0
