"""``agency directory``: the partnership's agencies, verified against the pinned root."""

from __future__ import annotations

import argparse

from agency_client.cli._common import Context, add_common_options, emit, open_client
from schemas.timefmt import format_time

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``directory`` to the subcommands."""
    parser = sub.add_parser(
        "directory",
        help="list the partnership's agencies and their mailboxes",
        description=(
            "Fetch the partnership directory from the relay and check every certificate "
            "against the pinned root key (the relay cannot substitute keys), then list the "
            "agencies, their mailboxes and key fingerprints."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument(
        "--cached",
        action="store_true",
        help="use the last fetched directory instead of asking the relay",
    )
    parser.set_defaults(handler=run)


async def run(ctx: Context) -> int:
    """Fetch, verify and list the directory."""
    async with open_client(ctx) as client:
        if ctx.args.cached:
            directory = await client.directory()
        else:
            ctx.progress("fetching the directory and verifying it against the pinned root")
            directory = await client.refresh_directory()
        now = client.now()
        agencies = directory.agencies(at=now)
        revoked = directory.revocations.sequence if directory.revocations is not None else None
    rows = [
        {
            "agency_id": a.agency_id,
            "name": a.name,
            "org_type": str(a.org_type),
            "public_authority": a.public_authority,
            "role": a.role,
            "mailboxes": list(a.mailboxes),
            "fingerprint": a.public_keys.fingerprint,
            "not_after": format_time(a.not_after),
        }
        for a in agencies
    ]
    emit(
        ctx,
        {"root": directory.root_fingerprint, "agencies": rows, "revocation_list_sequence": revoked},
    )
    ctx.out(f"Partnership root {directory.root_fingerprint} (all certificates verified)")
    for row in rows:
        boxes = ", ".join(row["mailboxes"]) or "-"
        ctx.out(f"  {row['agency_id']:<28} {row['role']:<8} {row['org_type']:<36} {boxes}")
        ctx.out(f"      {row['name']} | key {row['fingerprint']}")
    return 0
