"""``agency show``: read one message from the local store (decrypted on this machine only)."""

from __future__ import annotations

import argparse

import yaml

from agency_client.cli._common import Context, add_common_options, emit, open_client
from schemas.problems import NotFound
from schemas.timefmt import format_time

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``show`` to the subcommands."""
    parser = sub.add_parser(
        "show",
        help="read a message",
        description=(
            "Show one message sent or received by this agency: who sent it to whom, its "
            "declared lawful basis and the policy verdict, and its content. Content is kept "
            "encrypted on disk and decrypted only for display. With --recheck, the message is "
            "verified again from its exact signed bytes."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("message_id", help="the message id (or a unique prefix)")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="verify the signature and re-run the lawful-basis check again",
    )
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Print one stored message."""
    async with open_client(ctx) as client:
        message_id = await client.resolve_message_id(ctx.args.message_id)
        message = await client.store.message(message_id)
        if message is None:
            raise NotFound("no such message in the local store (run: agency inbox)")
        recheck = None
        if ctx.args.recheck and message.direction == "in":
            ctx.progress("verifying the message again from its signed bytes")
            opened = await client.recheck(message_id)
            recheck = opened.verdict.to_json_dict()
    content = message.content
    data = {
        "message_id": message.message_id,
        "thread_id": message.thread_id,
        "in_reply_to": message.in_reply_to,
        "kind": message.kind,
        "direction": message.direction,
        "counterpart": message.counterpart,
        "created_at": format_time(message.created_at),
        "status": message.status,
        "body": content.get("body"),
        "basis": content.get("basis"),
        "verdict": content.get("verdict"),
        "recheck": recheck,
    }
    emit(ctx, data)
    arrow = "from" if message.direction == "in" else "to"
    ctx.out(f"{message.kind} {message.message_id} {arrow} {message.counterpart}")
    ctx.out(
        f"Thread {message.thread_id}; created {format_time(message.created_at)}; "
        f"status {message.status}"
    )
    verdict = content.get("verdict") or {}
    ctx.out(f"Lawful basis check: {verdict.get('decision', '?')}")
    for finding in verdict.get("findings", []):
        ctx.out(f"  [{finding.get('rule')} {finding.get('level')}] {finding.get('message')}")
    if recheck is not None:
        ctx.out(f"Re-checked now: signature verified; lawful basis {recheck['decision']}")
    ctx.out("--- content ---")
    ctx.out(yaml.safe_dump(content.get("body"), sort_keys=False, allow_unicode=True).rstrip())
    ctx.out("--- declared lawful basis ---")
    ctx.out(yaml.safe_dump(content.get("basis"), sort_keys=False, allow_unicode=True).rstrip())
    return 0
