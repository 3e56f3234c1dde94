"""``agency watch``: wait for messages pushed by the relay and open them as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from agency_client.cli._common import Context, add_common_options, open_client
from agency_client.cli._display import result_json, result_line
from agency_client.protocol import NoticeItem

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``watch`` to the subcommands."""
    parser = sub.add_parser(
        "watch",
        help="wait for new messages and open them as they arrive",
        description=(
            "Stay connected to the relay and open each message as soon as it is pushed "
            "(checked, decrypted, re-checked and receipted as 'agency inbox' does). If the "
            "connection drops it reconnects by itself and resumes where it left off. Stops "
            "after --count messages, after --timeout seconds, or on Ctrl-C."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        help="stop after this many messages (notices not counted)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Follow the push stream; exit 1 if a message was refused or --count was not reached."""
    args = ctx.args
    stop = asyncio.Event()
    seen = 0
    refused = 0
    loop = asyncio.get_running_loop()
    timer = loop.call_later(args.timeout, stop.set) if args.timeout else None
    async with open_client(ctx) as client:
        ctx.progress("waiting for messages (Ctrl-C to stop)")
        try:
            async with contextlib.aclosing(client.watch(stop=stop)) as stream:
                async for result in stream:
                    if ctx.json:
                        print(
                            json.dumps(result_json(result), sort_keys=True),
                            file=ctx.stdout,
                            flush=True,
                        )
                    else:
                        ctx.out(result_line(result))
                        ctx.stdout.flush()
                    if result.error is not None:
                        refused += 1
                    if not isinstance(result.item, NoticeItem):
                        seen += 1
                    if args.count is not None and seen >= args.count:
                        stop.set()
                        break
        finally:
            if timer is not None:
                timer.cancel()
    if refused:
        return 1
    if args.count is not None and seen < args.count:
        ctx.out(f"Stopped after {seen} of {args.count} messages.")
        return 1
    return 0
