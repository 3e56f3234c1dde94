"""``agency rfi``: ask another agency for information about a child (e.g. s.47(9))."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from agency_client.cli._common import Context, add_common_options, open_client
from agency_client.cli._send import default_contact, report_sent
from agency_client.cli.cmd_decide import reply_basis
from agency_client.forms import load_form, split_form
from schemas.problems import InvalidRequest

__all__ = ["register", "run"]

_CHILD_FIELDS = (
    "given_name",
    "family_name",
    "other_names",
    "date_of_birth",
    "address",
    "identifiers",
    "gender",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rfi`` to the subcommands."""
    parser = sub.add_parser(
        "rfi",
        help="ask another agency for information about a child",
        description=(
            "Send a request for information (for example a Children Act 1989 s.47(9) request "
            "to the police). With --about THREAD the child's identifying details are taken "
            "from that referral (only what is needed to match records). The request opens a "
            "thread of its own; the answer arrives in your inbox."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("--to", required=True, help="AGENCY or AGENCY/MAILBOX to ask")
    parser.add_argument("--about", help="the referral thread this request is about")
    parser.add_argument("--form", help="a form file with the request fields (YAML or JSON)")
    parser.add_argument("--request", dest="information_requested", help="what information you need")
    parser.add_argument(
        "--why", dest="request_basis_statement", help="why you need it and for what function"
    )
    parser.add_argument(
        "--citation",
        dest="statutory_function_citation",
        default="Children Act 1989 s.47(9)",
        help="the law you ask under (default: Children Act 1989 s.47(9))",
    )
    parser.add_argument(
        "--due-hours",
        type=float,
        default=4.0,
        help="answer needed within this many hours (default 4)",
    )
    parser.add_argument("--enquiry-ref", help="your s.47 enquiry reference")
    parser.add_argument("--basis", help="a basis file to use instead of the standard one")
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Send the request for information."""
    args = ctx.args
    async with open_client(ctx) as client:
        fields: dict[str, Any] = {}
        if args.form:
            _, basis_from_form, fields = split_form(load_form(args.form, stdin=ctx.stdin))
        else:
            basis_from_form = None
        summary: dict[str, Any] = {}
        if args.about:
            about = await client.resolve_thread_id(args.about)
            referral = await client.opening_body(about)
            child = referral.get("child") or {}
            fields.setdefault(
                "child",
                {k: v for k, v in child.items() if k in _CHILD_FIELDS and v not in (None, [], {})},
            )
            summary["about_thread"] = about
        for name in (
            "information_requested",
            "request_basis_statement",
            "statutory_function_citation",
        ):
            if getattr(args, name, None) and name not in fields:
                fields[name] = getattr(args, name)
        if args.enquiry_ref:
            fields["s47_enquiry_ref"] = args.enquiry_ref
        fields.setdefault("response_due_by", client.now() + timedelta(hours=args.due_hours))
        if "sent_by" not in fields:
            fields["sent_by"] = default_contact(client)
        missing = [
            n
            for n in ("child", "information_requested", "request_basis_statement")
            if n not in fields
        ]
        if missing:
            raise InvalidRequest(
                "the request lacks "
                + ", ".join(missing)
                + " (use --about, --request and --why, or --form)"
            )
        recipient = args.to.split("/")[0]
        basis = basis_from_form or await reply_basis(
            ctx,
            client,
            "REQUEST_FOR_INFORMATION",
            recipient,
            data_categories=("personal", "criminal_offence"),
            texts={"statutory_function_citation": fields["statutory_function_citation"]},
        )
        if not basis_from_form and "47(9)" in fields["statutory_function_citation"]:
            gateways = [g for g in basis.get("gateways", []) if g != "CA1989_S47_9"]
            basis["gateways"] = ["CA1989_S47_9", *gateways]
        ctx.progress("sealing and sending the request")
        result = await client.send(
            kind="REQUEST_FOR_INFORMATION",
            to=[args.to],
            fields=fields,
            basis=basis,
            thread_summary=summary,
        )
    return report_sent(ctx, result, "Request for information sent")
