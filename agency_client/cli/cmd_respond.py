"""``agency respond``: answer a request for information (provide it, or say why not)."""

from __future__ import annotations

import argparse
from typing import Any

from agency_client.cli._common import Context, add_common_options, open_client
from agency_client.cli._send import default_contact, report_sent
from agency_client.cli.cmd_decide import reply_basis
from schemas.problems import InvalidRequest

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``respond`` to the subcommands."""
    parser = sub.add_parser(
        "respond",
        help="answer a request for information",
        description=(
            "Answer a request for information you received: give the information "
            "(--provide), or withhold it with a reason (--withhold), or both (partial). "
            "The lawful basis of the answer is checked before it is sent."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("request", help="the request's message id (or a unique prefix)")
    parser.add_argument("--provide", help="the information provided")
    parser.add_argument("--withhold", help="why information is withheld")
    parser.add_argument(
        "--criminal-offence-data",
        action="store_true",
        help="the answer includes offence or allegation information",
    )
    parser.add_argument(
        "--special-category",
        action="append",
        default=[],
        metavar="CATEGORY",
        help="special category data included (e.g. health)",
    )
    parser.add_argument("--basis", help="a basis file to use instead of the standard one")
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Send the response."""
    args = ctx.args
    if not args.provide and not args.withhold:
        raise InvalidRequest("give --provide TEXT, --withhold REASON, or both")
    async with open_client(ctx) as client:
        request_id = await client.resolve_message_id(args.request)
        request = await client.store.message(request_id)
        if (
            request is None
            or request.direction != "in"
            or request.kind != ("REQUEST_FOR_INFORMATION")
        ):
            raise InvalidRequest("that is not a request for information this agency received")
        answer = (
            "partial"
            if args.provide and args.withhold
            else ("provided" if args.provide else "withheld")
        )
        fields: dict[str, Any] = {
            "sent_by": default_contact(client),
            "information_provided_or_withheld": answer,
        }
        if args.provide:
            fields["information"] = args.provide
        if args.withhold:
            fields["withholding_reason"] = args.withhold
        categories = ["personal"]
        if args.special_category:
            categories.append("special_category")
        if args.criminal_offence_data:
            categories.append("criminal_offence")
        basis = await reply_basis(
            ctx,
            client,
            "RESPONSE_TO_RFI",
            request.counterpart,
            data_categories=tuple(categories),
            special_categories=tuple(args.special_category),
        )
        ctx.progress("sealing and sending the answer")
        result = await client.reply(
            request.thread_id,
            kind="RESPONSE_TO_RFI",
            fields=fields,
            basis=basis,
            in_reply_to=request_id,
        )
    return report_sent(ctx, result, "Answer sent")
