"""``exchange``: run the relay and administer the partnership.

    exchange serve [--host H] [--port P] [--database-url URL]
    exchange migrate [--database-url URL]
    exchange root init --out root.key [--passphrase-env NAME | --passphrase-file F]
    exchange root show --root-key root.key [...]
    exchange cert issue --root-key root.key --agency-id ID --name NAME --org-type TYPE
                        --mailbox M [--mailbox M2 ...] (--signing-key B64 --encryption-key B64
                        | --public-keys FILE) [--days N] [--role agency|auditor] --out cert.json
    exchange cert revoke --root-key root.key --certificate cert.json [--revocations old.json]
                         [--reason R] --out rl.json
    exchange revocations publish rl.json [--database-url URL]
    exchange directory add cert.json [cert2.json ...] [--database-url URL]
    exchange log-key init --out relay-log.key [--relay-id ID] [--passphrase-env NAME | ...]

One error dispatch: any failure prints one line to standard error and exits
non-zero (1 for a refused operation, 2 for bad usage); ``--verbose`` re-raises
with the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from exchange.admin import (
    create_root,
    issue_agency_certificate,
    load_certificate,
    load_revocations,
    open_root,
    publish_to_database,
    read_json_file,
    read_public_keys,
    revoke_certificate,
    write_json,
)
from exchange.settings import Settings
from keys.certificate_request import CertificateRequest, verify_certificate_request
from keys.identity import RootKey
from schemas.encoding import b64decode, b64encode
from schemas.problems import ConfigurationError, ExchangeError, InvalidEnvelope
from schemas.timefmt import format_time, parse_time

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    settings = Settings.from_env(environ)
    changes: dict[str, object] = {}
    if getattr(args, "database_url", None):
        changes["database_url"] = args.database_url
    if getattr(args, "host", None):
        changes["host"] = args.host
    if getattr(args, "port", None) is not None:
        changes["port"] = args.port
    key = getattr(args, "root_public_key", None)
    if key:
        try:
            changes["root_public_key"] = b64decode(key, field="--root-public-key")
        except InvalidEnvelope:
            raise ConfigurationError("--root-public-key must be standard base64") from None
    return replace(settings, **changes)  # type: ignore[arg-type]


def _passphrase(args: argparse.Namespace, *, confirm: bool) -> bytes:
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise ConfigurationError(f"environment variable {args.passphrase_env} is not set")
        return value.encode()
    if args.passphrase_file:
        try:
            text = Path(args.passphrase_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the passphrase file: {exc.strerror}") from None
        if not text or not text[0]:
            raise ConfigurationError("the passphrase file is empty")
        return text[0].encode()
    if not sys.stdin.isatty():
        raise ConfigurationError("no passphrase: use --passphrase-env or --passphrase-file")
    first = getpass.getpass("Root key passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise ConfigurationError("the passphrases do not match")
    if not first:
        raise ConfigurationError("the passphrase must not be empty")
    return first.encode()


def _root(args: argparse.Namespace) -> RootKey:
    return open_root(Path(args.root_key), _passphrase(args, confirm=False))


def _time_option(text: str | None, name: str) -> datetime:
    if text is None:
        return _now()
    try:
        return parse_time(text, field=name)
    except InvalidEnvelope:
        raise ConfigurationError(f"{name} must look like 2026-11-24T09:30:00Z") from None


def _print(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


# -- commands ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the relay until interrupted."""
    from aiohttp import web

    from exchange.app import create_app
    from exchange.logs import configure_logging

    settings = _settings(args, os.environ)
    if len(settings.root_public_key) != 32:
        raise ConfigurationError(
            "pin the partnership root: set EXCHANGE_ROOT_PUBLIC_KEY (base64) or "
            "EXCHANGE_ROOT_PUBLIC_KEY_FILE"
        )
    configure_logging(settings.log_level, settings.log_format)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=5.0,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database schema up to date."""
    from exchange.database import open_database

    settings = _settings(args, os.environ)

    async def run() -> str | None:
        database = open_database(settings.database_url)
        try:
            await database.migrate()
            return await database.current_revision()
        finally:
            await database.dispose()

    revision = asyncio.run(run())
    print(f"database at revision {revision}")
    return 0


def cmd_root_init(args: argparse.Namespace) -> int:
    """Create the partnership root key file."""
    root = create_root(Path(args.out), _passphrase(args, confirm=True), limits=args.kdf)
    _print(
        {
            "root_key_file": str(args.out),
            "public_key": b64encode(root.public_key),
            "fingerprint": root.fingerprint,
        }
    )
    return 0


def cmd_root_show(args: argparse.Namespace) -> int:
    """Print the root's public key and fingerprint."""
    root = _root(args)
    _print({"public_key": b64encode(root.public_key), "fingerprint": root.fingerprint})
    return 0


def _certificate_request(args: argparse.Namespace) -> CertificateRequest | None:
    """The agency's signed certificate request, when one was given (proof verified)."""
    path = args.request or args.public_keys
    if path is None:
        return None
    data = read_json_file(Path(path), "certificate request")
    if args.request is None and not (isinstance(data, dict) and "proof" in data):
        return None  # a bare public-keys file (no proof of possession to check)
    return verify_certificate_request(data)


def cmd_cert_issue(args: argparse.Namespace) -> int:
    """Issue an agency certificate, from a verified certificate request or explicit keys."""
    request = _certificate_request(args)
    if request is not None:
        public_keys = request.public_keys
    else:
        public_keys = read_public_keys(
            signing=args.signing_key,
            encryption=args.encryption_key,
            keys_file=Path(args.public_keys) if args.public_keys else None,
        )
    agency_id = args.agency_id or (request.agency_id if request else None)
    name = args.name or (request.name if request else None)
    org_type = args.org_type or (request.org_type if request else None)
    if not (agency_id and name and org_type):
        raise ConfigurationError("give --agency-id, --name and --org-type, or --request FILE")
    mailboxes = args.mailbox or (list(request.mailboxes) if request else [])
    role = args.role or (request.role if request else "agency")
    if role == "agency" and not mailboxes:
        raise ConfigurationError("an agency certificate needs at least one --mailbox")
    root = _root(args)
    certificate = issue_agency_certificate(
        root,
        agency_id=agency_id,
        name=name,
        org_type=org_type,
        mailboxes=mailboxes,
        public_keys=public_keys,
        public_authority=(
            args.public_authority
            if args.public_authority is not None
            else (request.public_authority if request else True)
        ),
        apd_in_place=(
            args.apd_in_place
            if args.apd_in_place is not None
            else (request.apd_in_place if request else True)
        ),
        role=role,
        not_before=_time_option(args.not_before, "--not-before"),
        days=args.days,
    )
    write_json(Path(args.out), certificate.to_json())
    body = certificate.body
    _print(
        {
            "certificate_id": certificate.id,
            "agency_id": body.agency_id,
            "fingerprint": public_keys.fingerprint,
            "not_before": format_time(body.not_before),
            "not_after": format_time(body.not_after),
            "out": str(args.out),
        }
    )
    return 0


def cmd_cert_revoke(args: argparse.Namespace) -> int:
    """Add a certificate to the revocation list (a new list with the next sequence)."""
    certificate = load_certificate(Path(args.certificate))
    previous = load_revocations(Path(args.revocations)) if args.revocations else None
    root = _root(args)
    now = _now()
    rl = revoke_certificate(
        root,
        certificate,
        previous=previous,
        revoked_at=_time_option(args.revoked_at, "--revoked-at") if args.revoked_at else now,
        issued_at=now,
        reason=args.reason,
    )
    write_json(Path(args.out), rl.to_json())
    _print({"sequence": rl.sequence, "revoked": len(rl.revoked), "out": str(args.out)})
    return 0


def cmd_revocations_publish(args: argparse.Namespace) -> int:
    """Store a revocation list in the relay's database."""
    settings = _settings(args, os.environ)
    rl = load_revocations(Path(args.file))
    result = asyncio.run(publish_to_database(settings, revocations=rl, at=_now()))
    _print({"published_sequence": result.revocations_sequence})
    return 0


def cmd_log_key_init(args: argparse.Namespace) -> int:
    """Create the relay's transparency log key and its certificate request."""
    from exchange.log import create_log_key, log_key_request_path

    out = Path(args.out)
    relay_id = args.relay_id or Settings.from_env(os.environ).relay_id
    identity, _ = create_log_key(
        out, _passphrase(args, confirm=True), relay_id=relay_id, at=_now(), limits=args.kdf
    )
    _print(
        {
            "log_key_file": str(out),
            "request_file": str(log_key_request_path(out)),
            "relay_id": relay_id,
            "fingerprint": identity.public_keys.fingerprint,
            "next": (
                "exchange cert issue --role relay --request "
                f"{log_key_request_path(out)} --root-key ... --out relay-log-cert.json"
            ),
        }
    )
    return 0


def cmd_directory_add(args: argparse.Namespace) -> int:
    """Store certificates in the relay's database."""
    settings = _settings(args, os.environ)
    certificates = [load_certificate(Path(name)) for name in args.files]
    result = asyncio.run(publish_to_database(settings, certificates=certificates, at=_now()))
    _print({"certificates_added": result.certificates_added, "given": len(certificates)})
    return 0


# -- parser ------------------------------------------------------------------------------------


def _passphrase_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--passphrase-env", metavar="NAME", help="read the passphrase from $NAME")
    group.add_argument("--passphrase-file", metavar="FILE", help="read it from FILE's first line")


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default: $EXCHANGE_DATABASE_URL or SQLite)"
    )
    parser.add_argument("--root-public-key", help="pinned root public key, base64")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(prog="exchange", description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the relay")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    _database_options(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--database-url")
    migrate.set_defaults(func=cmd_migrate)

    root = commands.add_parser("root", help="the partnership root key")
    root_commands = root.add_subparsers(dest="root_command", required=True, metavar="ACTION")
    init = root_commands.add_parser("init", help="create the root key file")
    init.add_argument("--out", required=True, help="key file to create (mode 0600)")
    init.add_argument(
        "--kdf",
        choices=["moderate", "sensitive", "interactive"],
        default="moderate",
        help="Argon2id cost (interactive is for tests only)",
    )
    _passphrase_options(init)
    init.set_defaults(func=cmd_root_init)
    show = root_commands.add_parser("show", help="print the root public key and fingerprint")
    show.add_argument("--root-key", required=True)
    _passphrase_options(show)
    show.set_defaults(func=cmd_root_show)

    cert = commands.add_parser("cert", help="agency certificates")
    cert_commands = cert.add_subparsers(dest="cert_command", required=True, metavar="ACTION")
    issue = cert_commands.add_parser("issue", help="issue a certificate")
    issue.add_argument("--root-key", required=True)
    _passphrase_options(issue)
    issue.add_argument(
        "--request",
        metavar="FILE",
        help="the agency's certificate request from `agency init` (its proof is checked)",
    )
    issue.add_argument("--agency-id", help="default: from --request")
    issue.add_argument("--name", help="default: from --request")
    issue.add_argument("--org-type", help="default: from --request")
    issue.add_argument(
        "--mailbox", action="append", help="repeat for each (auditors and relays need none)"
    )
    issue.add_argument("--role", choices=["agency", "auditor", "relay"])
    issue.add_argument("--public-authority", action=argparse.BooleanOptionalAction, default=None)
    issue.add_argument("--apd-in-place", action=argparse.BooleanOptionalAction, default=None)
    issue.add_argument("--signing-key", help="Ed25519 public key, base64")
    issue.add_argument("--encryption-key", help="X25519 public key, base64")
    issue.add_argument("--public-keys", metavar="FILE", help="JSON with both public keys")
    issue.add_argument("--days", type=int, default=365)
    issue.add_argument("--not-before", help="start of validity (default now)")
    issue.add_argument("--out", required=True)
    issue.set_defaults(func=cmd_cert_issue)
    revoke = cert_commands.add_parser("revoke", help="revoke a certificate")
    revoke.add_argument("--root-key", required=True)
    _passphrase_options(revoke)
    revoke.add_argument("--certificate", required=True, help="the certificate file to revoke")
    revoke.add_argument("--revocations", help="the current revocation list file, if any")
    revoke.add_argument("--reason", default="key_compromise")
    revoke.add_argument("--revoked-at", help="when the revocation applies from (default now)")
    revoke.add_argument("--out", required=True, help="the new revocation list file")
    revoke.set_defaults(func=cmd_cert_revoke)

    revocations = commands.add_parser("revocations", help="the revocation list")
    rl_commands = revocations.add_subparsers(dest="rl_command", required=True, metavar="ACTION")
    publish = rl_commands.add_parser("publish", help="publish a revocation list to the relay")
    publish.add_argument("file")
    _database_options(publish)
    publish.set_defaults(func=cmd_revocations_publish)

    directory = commands.add_parser("directory", help="the relay's directory")
    dir_commands = directory.add_subparsers(dest="dir_command", required=True, metavar="ACTION")
    add = dir_commands.add_parser("add", help="publish certificates to the relay")
    add.add_argument("files", nargs="+")
    _database_options(add)
    add.set_defaults(func=cmd_directory_add)

    log_key = commands.add_parser("log-key", help="the relay's transparency log key")
    log_commands = log_key.add_subparsers(dest="log_key_command", required=True, metavar="ACTION")
    log_init = log_commands.add_parser(
        "init", help="create the log key file and a certificate request for the administrator"
    )
    log_init.add_argument("--out", required=True, help="key file to create (mode 0600)")
    log_init.add_argument("--relay-id", help="the relay's id (default: $EXCHANGE_RELAY_ID)")
    log_init.add_argument(
        "--kdf",
        choices=["moderate", "sensitive", "interactive"],
        default="moderate",
        help="Argon2id cost (interactive is for tests only)",
    )
    _passphrase_options(log_init)
    log_init.set_defaults(func=cmd_log_key_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status (never raises except with --verbose)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return int(exc.code or 0)
    command: Command = args.func
    try:
        return command(args)
    except KeyboardInterrupt:
        return 130
    except ExchangeError as exc:
        if args.verbose:
            raise
        print(f"exchange: error: {exc.diagnostics()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        if args.verbose:
            raise
        print(f"exchange: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"exchange: unexpected error ({type(exc).__name__}); run with --verbose for details",
            file=sys.stderr,
        )
        return 70
