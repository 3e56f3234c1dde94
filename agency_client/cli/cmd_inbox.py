"""``agency inbox``: collect, verify, open and acknowledge receipt of new messages."""

from __future__ import annotations

import argparse

from agency_client.cli._common import Context, add_common_options, emit, open_client
from agency_client.cli._display import result_json, result_line

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``inbox`` to the subcommands."""
    parser = sub.add_parser(
        "inbox",
        help="collect and open new messages",
        description=(
            "Collect new messages from the relay. Each one is checked (sender's signature and "
            "certificate, nothing altered or re-addressed), decrypted, its lawful basis "
            "re-checked, kept encrypted in the local store, and a signed delivery receipt is "
            "sent. A message that fails any check is refused and stays listed. Read a message "
            "with 'agency show MESSAGE_ID'."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Collect and open everything new; exit 1 if any message was refused."""
    async with open_client(ctx) as client:
        ctx.progress("collecting new messages from the relay")
        results = await client.receive()
    emit(ctx, {"items": [result_json(r) for r in results]})
    if not results:
        ctx.out("No new messages.")
    for result in results:
        ctx.out(result_line(result))
    return 1 if any(r.error is not None for r in results) else 0
