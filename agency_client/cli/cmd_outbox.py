"""``agency outbox``: messages sealed while the relay was unreachable."""

from __future__ import annotations

import argparse

from agency_client.cli._common import Context, add_common_options, emit, open_client

__all__ = ["register", "run_flush", "run_list"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``outbox`` (with ``flush`` and ``list``) to the subcommands."""
    parser = sub.add_parser(
        "outbox",
        help="messages waiting to be sent",
        description="Messages sealed while the relay was unreachable.",
    )
    actions = parser.add_subparsers(dest="outbox_command", metavar="ACTION")
    actions.required = True
    flush = actions.add_parser(
        "flush",
        help="send everything waiting in the outbox",
        description=(
            "Send every sealed message waiting in the outbox, oldest first. Each is sent as "
            "exactly the bytes that were sealed, so a message the relay already has is not "
            "delivered twice. Exit status 1 if anything is still waiting or was refused."
        ),
    )
    add_common_options(flush, suppress=True)
    flush.set_defaults(handler=run_flush)
    listing = actions.add_parser(
        "list", help="show what is waiting", description="Show the messages waiting in the outbox."
    )
    add_common_options(listing, suppress=True)
    listing.set_defaults(handler=run_list)


async def run_flush(ctx: Context) -> int:
    """Flush the outbox."""
    async with open_client(ctx) as client:
        ctx.progress("sending queued messages")
        results = await client.flush_outbox()
    emit(
        ctx,
        {
            "results": [
                {
                    "message_id": r.message_id,
                    "sent": r.receipt is not None and r.error is None,
                    "still_queued": r.still_queued,
                    "duplicate": bool(r.receipt.duplicate) if r.receipt else False,
                    "error": r.error.to_problem() if r.error else None,
                }
                for r in results
            ]
        },
    )
    if not results:
        ctx.out("The outbox is empty.")
    for r in results:
        if r.error is None and r.receipt is not None:
            extra = (
                " (the relay already had it: not delivered twice)" if r.receipt.duplicate else ""
            )
            ctx.out(f"{r.message_id}: sent{extra}")
        elif r.still_queued:
            ctx.out(f"{r.message_id}: still waiting ({r.error.diagnostics() if r.error else ''})")
        else:
            ctx.out(
                f"{r.message_id}: refused by the relay ({r.error.diagnostics() if r.error else ''})"
            )
    return 0 if all(r.error is None for r in results) else 1


async def run_list(ctx: Context) -> int:
    """List the outbox."""
    async with open_client(ctx) as client:
        entries = await client.store.outbox()
    emit(
        ctx,
        {
            "queued": [
                {"message_id": e.message_id, "attempts": e.attempts, "last_error": e.last_error}
                for e in entries
            ]
        },
    )
    if not entries:
        ctx.out("The outbox is empty.")
    for e in entries:
        ctx.out(
            f"{e.message_id}: {e.attempts} attempt(s)"
            + (f", last: {e.last_error}" if e.last_error else "")
        )
    return 0
