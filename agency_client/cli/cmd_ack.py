"""``agency ack``: acknowledge a referral (or notice) to the agency that sent it."""

from __future__ import annotations

import argparse

from agency_client.cli._common import Context, add_common_options, open_client
from agency_client.cli._send import default_contact, report_sent
from agency_client.cli.cmd_decide import reply_basis
from schemas.problems import InvalidRequest

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ack`` to the subcommands."""
    parser = sub.add_parser(
        "ack",
        help="acknowledge a referral to the referrer",
        description=(
            "Tell the referrer their referral arrived, with your reference and who to contact. "
            "Working Together 2023 expects this within one working day; 'agency threads' shows "
            "what is due."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("thread", help="the thread id of the referral (or a unique prefix)")
    parser.add_argument("--reference", help="your reference for the referrer to quote")
    parser.add_argument("--basis", help="a basis file to use instead of the standard one")
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Send the acknowledgement."""
    async with open_client(ctx) as client:
        thread = await client.resolve_thread_id(ctx.args.thread)
        opening = await client.opening_message(thread)
        if opening.direction != "in":
            raise InvalidRequest("only the recipient of a referral can acknowledge it")
        contact = default_contact(client)
        fields = {
            "sent_by": contact,
            "received_at": opening.content.get("received_at"),
            "contact_for_followup": contact,
            "reference": ctx.args.reference or f"REF-{thread[:8].upper()}",
        }
        basis = await reply_basis(ctx, client, "ACKNOWLEDGEMENT", opening.counterpart)
        ctx.progress("sealing and sending the acknowledgement")
        result = await client.reply(thread, kind="ACKNOWLEDGEMENT", fields=fields, basis=basis)
    return report_sent(ctx, result, "Acknowledgement sent")
