"""``agency init``: create this agency's keys and a certificate request for the partnership."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agency_client.cli._common import Context, add_common_options, emit
from agency_client.home import AgencyConfig, AgencyHome, write_json_file
from keys.certificate_request import CERTIFICATE_REQUEST_TYPE, make_certificate_request
from keys.identity import AgencyIdentity
from keys.keystore import save_identity
from schemas.codes import PUBLIC_AUTHORITY_ORG_TYPES, OrgType
from schemas.encoding import b64decode
from schemas.problems import ConfigurationError, InvalidEnvelope, KeyFileExists

__all__ = ["CERTIFICATE_REQUEST_TYPE", "certificate_request", "register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init`` to the subcommands."""
    parser = sub.add_parser(
        "init",
        help="create this agency's keys and a certificate request",
        description=(
            "Create this agency's signing and encryption keys, store them encrypted with a "
            "passphrase, pin the partnership's root key, and write a certificate request for "
            "the partnership administrator. Read the fingerprint to them over the phone so "
            "they know the request is yours."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument(
        "--agency-id", required=True, help="this agency's id, e.g. oakfield-primary"
    )
    parser.add_argument(
        "--name", required=True, help="display name, e.g. 'Oakfield Primary School'"
    )
    parser.add_argument(
        "--org-type",
        required=True,
        choices=sorted(str(o) for o in OrgType),
        metavar="ORG_TYPE",
        help="organisation type code, e.g. maintained_school, police, "
        "local_authority_childrens_services",
    )
    parser.add_argument(
        "--mailbox",
        action="append",
        default=[],
        help="a mailbox (role address) such as dsl or front-door; repeat for several",
    )
    parser.add_argument(
        "--role",
        choices=("agency", "auditor"),
        default="agency",
        help="agency (default) or auditor (reads headers and justifications, never content)",
    )
    public = parser.add_mutually_exclusive_group()
    public.add_argument(
        "--public-authority",
        dest="public_authority",
        action="store_true",
        default=None,
        help="this agency is a public authority",
    )
    public.add_argument(
        "--not-public-authority",
        dest="public_authority",
        action="store_false",
        help="this agency is not a public authority",
    )
    parser.add_argument(
        "--no-apd",
        dest="apd",
        action="store_false",
        default=True,
        help="this agency has no appropriate policy document (DPA 2018 Sch 1)",
    )
    root = parser.add_mutually_exclusive_group(required=True)
    root.add_argument("--root-key", help="the partnership root public key (base64)")
    root.add_argument(
        "--root-key-file", type=Path, help="a file holding the partnership root public key (base64)"
    )
    parser.add_argument("--contact-name", help="default sender name for messages")
    parser.add_argument("--contact-role", help="default sender role for messages")
    parser.add_argument("--contact-phone", help="default sender phone")
    parser.add_argument("--contact-email", help="default sender email")
    parser.add_argument(
        "--kdf",
        choices=("interactive", "moderate", "sensitive"),
        default=None,
        help="cost of the passphrase hashing (default: moderate; interactive for demos only)",
    )
    parser.add_argument(
        "--request-out",
        type=Path,
        help="where to write the certificate request (default: in the home)",
    )
    parser.set_defaults(handler=run)


def certificate_request(
    identity: AgencyIdentity, config: AgencyConfig, *, created_at: datetime
) -> dict[str, Any]:
    """The request document: who we are and our public keys, signed with our own key."""
    return make_certificate_request(
        identity,
        agency_id=config.agency_id,
        name=config.name,
        org_type=config.org_type,
        public_authority=config.public_authority,
        apd_in_place=config.apd_in_place,
        mailboxes=config.mailboxes,
        role=config.role,
        created_at=created_at,
    )


def _root_key(args: argparse.Namespace) -> bytes:
    text = args.root_key
    if text is None:
        try:
            text = Path(args.root_key_file).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            raise ConfigurationError(
                f"cannot read the root key file {args.root_key_file}"
            ) from None
    if text.startswith("{"):
        import json

        try:
            text = json.loads(text)["public_key"]
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError("the root key file holds no public_key") from None
    try:
        key = b64decode(str(text).strip(), field="root key")
    except InvalidEnvelope:
        raise ConfigurationError("the root key must be standard base64") from None
    if len(key) != 32:
        raise ConfigurationError("the root key must be 32 bytes")
    return key


def run(ctx: Context) -> int:
    """Create keys, pin the root and write the certificate request."""
    args = ctx.args
    home = AgencyHome(ctx.settings.home)
    if home.identity_path.exists():
        raise KeyFileExists(f"an agency is already set up in {home.path}")
    mailboxes = tuple(dict.fromkeys(args.mailbox))
    if args.role == "agency" and not mailboxes:
        raise ConfigurationError("an agency needs at least one --mailbox")
    public = args.public_authority
    if public is None:
        public = args.org_type in PUBLIC_AUTHORITY_ORG_TYPES
    root_key = _root_key(args)
    config = AgencyConfig(
        agency_id=args.agency_id,
        name=args.name,
        org_type=args.org_type,
        public_authority=bool(public),
        apd_in_place=bool(args.apd),
        mailboxes=mailboxes,
        role=args.role,
        relay_url=ctx.settings.relay_url,
    )
    passphrase = ctx.passphrase(confirm=True)
    ctx.progress("generating keys and encrypting them with your passphrase")
    identity = AgencyIdentity.generate()
    home.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    root_fp = home.pin_root(root_key)
    save_identity(
        home.identity_path,
        identity,
        passphrase.reveal(),
        metadata={"agency_id": config.agency_id},
        limits=args.kdf or ctx.settings.kdf_limits,
    )
    contact = {
        key: value
        for key, value in (
            ("name", args.contact_name),
            ("role", args.contact_role),
            ("phone", args.contact_phone),
            ("email", args.contact_email),
        )
        if value
    }
    home.write_config(dataclasses.replace(config, contact=contact))
    request = certificate_request(identity, config, created_at=datetime.now(UTC))
    request_path = args.request_out or home.request_path
    write_json_file(Path(request_path), request, mode=0o644)
    fingerprint = identity.public_keys.fingerprint
    emit(
        ctx,
        {
            "agency_id": config.agency_id,
            "fingerprint": fingerprint,
            "certificate_request": str(request_path),
            "root_fingerprint": root_fp,
            "home": str(home.path),
        },
    )
    ctx.out(f"Created keys for {config.name} ({config.agency_id}) in {home.path}")
    ctx.out(f"Your fingerprint:        {fingerprint}")
    ctx.out(f"Pinned partnership root: {root_fp}")
    ctx.out(f"Certificate request:     {request_path}")
    ctx.out("Next: send the request to the partnership administrator, read them your")
    ctx.out("fingerprint, then run: agency install-certificate CERTIFICATE.json")
    return 0
