"""``agency receipts verify``: check that what this agency sent was stored and delivered intact."""

from __future__ import annotations

import argparse

from agency_client.cli._common import Context, add_common_options, emit, open_client

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``receipts`` (with ``verify``) to the subcommands."""
    parser = sub.add_parser(
        "receipts",
        help="verify receipts for messages this agency sent",
        description="Receipts for messages this agency sent.",
    )
    actions = parser.add_subparsers(dest="receipts_command", metavar="ACTION")
    actions.required = True
    verify = actions.add_parser(
        "verify",
        help="check the relay's receipts and the recipients' signed delivery receipts",
        description=(
            "For every message this agency sent: check that the relay's receipt names exactly "
            "the header we signed, and that each recipient's signed delivery receipt verifies "
            "against its certificate and names the same header. Messages the relay refused "
            "are listed as such. Exit status 1 if any check fails."
        ),
    )
    add_common_options(verify, suppress=True)
    verify.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Verify every sent message's receipts."""
    async with open_client(ctx) as client:
        ctx.progress("verifying receipts")
        checks = await client.verify_receipts()
    emit(
        ctx,
        {
            "messages": [
                {
                    "message_id": c.message_id,
                    "submit_receipt_ok": c.submit_receipt_ok,
                    "delivered_to": list(c.delivered_to),
                    "problems": list(c.problems),
                    "refused": c.refused,
                }
                for c in checks
            ]
        },
    )
    failed = 0
    for check in checks:
        if check.refused:
            ctx.out(f"{check.message_id}: refused by the relay when sent (never delivered)")
            continue
        delivered = ", ".join(check.delivered_to) or "no one yet"
        state = "ok" if check.submit_receipt_ok and not check.problems else "PROBLEM"
        ctx.out(
            f"{check.message_id}: {state}; relay receipt "
            f"{'verified' if check.submit_receipt_ok else 'not verified'}; "
            f"delivery confirmed by {delivered}"
        )
        for problem in check.problems:
            ctx.out(f"    {problem}")
        if check.problems:
            failed += 1
    if not checks:
        ctx.out("This agency has not sent anything yet.")
    return 1 if failed else 0
