"""``agency install-certificate``: install the certificate the partnership issued to this agency."""

from __future__ import annotations

import argparse

from agency_client.cli._common import Context, add_common_options, emit, open_client
from agency_client.forms import read_document
from keys.certificates import Certificate
from schemas.timefmt import format_time

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``install-certificate`` to the subcommands."""
    parser = sub.add_parser(
        "install-certificate",
        help="install the certificate issued by the partnership",
        description=(
            "Check that a certificate was issued by the pinned partnership root and is for "
            "this agency's own keys, then install it. With --publish, also publish it in the "
            "relay's directory so that other agencies can find this agency."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("certificate", help="the certificate file (JSON) from the administrator")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also publish the certificate to the relay's directory",
    )
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Verify and install the certificate."""
    certificate = Certificate.from_json(read_document(ctx.args.certificate, what="certificate"))
    async with open_client(ctx) as client:
        if ctx.args.publish:
            ctx.progress("publishing the certificate to the relay")
        body = await client.install_certificate(certificate, publish=ctx.args.publish)
    emit(
        ctx,
        {
            "certificate_id": certificate.id,
            "agency_id": body.agency_id,
            "mailboxes": list(body.mailboxes),
            "not_after": format_time(body.not_after),
            "published": bool(ctx.args.publish),
        },
    )
    ctx.out(f"Installed certificate {certificate.id[:16]}... for {body.agency_id}")
    ctx.out(
        f"Mailboxes: {', '.join(body.mailboxes) or '(none)'}; valid until "
        f"{format_time(body.not_after)}"
    )
    if ctx.args.publish:
        ctx.out("Published to the relay's directory.")
    return 0
