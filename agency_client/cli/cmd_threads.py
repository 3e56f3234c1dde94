"""``agency threads``: what happened to each referral and request, and what is overdue."""

from __future__ import annotations

import argparse
from typing import Any

from agency_client.cli._common import Context, add_common_options, emit, open_client
from agency_client.client import ThreadView
from schemas.timefmt import format_time

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``threads`` to the subcommands."""
    parser = sub.add_parser(
        "threads",
        help="what happened to each referral, and what is overdue",
        description=(
            "List this agency's threads (referrals sent or received, requests for "
            "information) with their state as the relay tracks it (submitted, delivered, "
            "acknowledged, decision given...), the deadlines in working days, whether anything "
            "is overdue, and the outcome fed back to you."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("--overdue", action="store_true", help="only threads that are overdue")
    parser.set_defaults(handler=run)


def _deadline_text(deadline: dict[str, Any]) -> str:
    name = deadline.get("name") or deadline.get("code") or deadline.get("clock") or "deadline"
    due = deadline.get("due") or deadline.get("due_at") or "?"
    met = deadline.get("met") or deadline.get("met_at")
    status = "met" if met else ("OVERDUE" if deadline.get("overdue") else "due")
    return f"{name} {status} {due if not met else ''}".rstrip()


def _view_json(view: ThreadView) -> dict[str, Any]:
    return {
        "thread_id": view.thread_id,
        "role": view.role,
        "kind": view.kind,
        "counterpart": view.counterpart,
        "state": view.state,
        "overdue": view.overdue,
        "deadlines": list(view.deadlines),
        "opened_at": format_time(view.opened_at),
        "updated_at": format_time(view.updated_at),
        "outcome": {k: v for k, v in view.summary.items() if v is not None},
        "relay_state_known": view.relay_state_known,
    }


async def run(ctx: Context) -> int:
    """List threads."""
    async with open_client(ctx) as client:
        ctx.progress("asking the relay for the state of each thread")
        views, reachable = await client.threads(overdue_only=ctx.args.overdue)
    emit(ctx, {"threads": [_view_json(v) for v in views], "relay_reachable": reachable})
    if not reachable:
        ctx.out("(The relay could not be reached: showing what this machine knows.)")
    if not views:
        ctx.out("No threads." if not ctx.args.overdue else "Nothing is overdue.")
    for view in views:
        direction = "to" if view.role == "sent" else "from"
        flag = "  OVERDUE" if view.overdue else ""
        ctx.out(
            f"{view.kind} {direction} {view.counterpart}: {view.state}{flag}  "
            f"(thread {view.thread_id}, opened {format_time(view.opened_at)})"
        )
        for deadline in view.deadlines:
            ctx.out(f"    {_deadline_text(deadline)}")
        summary = view.summary
        if summary.get("acknowledged_at") or summary.get("their_reference"):
            ctx.out(f"    acknowledged; their reference {summary.get('their_reference')}")
        if summary.get("outcome_code"):
            ctx.out(f"    outcome: {summary['outcome_code']}")
            if summary.get("summary_for_referrer"):
                ctx.out(f"    what was decided: {summary['summary_for_referrer']}")
            if summary.get("referrer_next_steps"):
                ctx.out(f"    what to do next: {summary['referrer_next_steps']}")
            worker = summary.get("allocated_worker")
            if isinstance(worker, dict):
                ctx.out(
                    f"    allocated worker: {worker.get('name')}, {worker.get('role')}, "
                    f"{worker.get('phone') or worker.get('email') or ''}".rstrip(", ")
                )
        if summary.get("about_thread"):
            ctx.out(f"    about referral thread {summary['about_thread']}")
        if summary.get("response"):
            ctx.out(f"    answered: information {summary['response']}")
    return 0
