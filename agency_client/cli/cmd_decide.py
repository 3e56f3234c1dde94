"""``agency decide``: tell the referrer what was decided and what they should do next."""

from __future__ import annotations

import argparse
from typing import Any

from agency_client.cli._common import Context, add_common_options, open_client
from agency_client.cli._send import default_contact, report_sent
from agency_client.client import AgencyClient
from agency_client.forms import default_reply_basis, read_document
from schemas.codes import OutcomeCode
from schemas.problems import InvalidRequest

__all__ = ["register", "reply_basis", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``decide`` to the subcommands."""
    parser = sub.add_parser(
        "decide",
        help="send the decision on a referral back to the referrer",
        description=(
            "Record the decision on a referral (an outcome code such as STRATEGY_S47, "
            "S17_ASSESSMENT, EARLY_HELP or NFA) and tell the referrer, in plain words, what "
            "was decided and what they should do next. Do not include assessment content."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("thread", help="the thread id of the referral (or a unique prefix)")
    parser.add_argument(
        "--outcome",
        required=True,
        choices=[str(o) for o in OutcomeCode],
        metavar="CODE",
        help="the outcome code, e.g. STRATEGY_S47",
    )
    parser.add_argument("--summary", required=True, help="what was decided, for the referrer")
    parser.add_argument("--next-steps", required=True, help="what the referrer should do now")
    parser.add_argument("--worker-name", help="the allocated worker's name")
    parser.add_argument("--worker-role", help="the allocated worker's role")
    parser.add_argument("--worker-phone", help="the allocated worker's phone")
    parser.add_argument("--worker-email", help="the allocated worker's email")
    parser.add_argument("--threshold-not-met", help="why the threshold was not met, if so")
    parser.add_argument("--alternative-support", help="other support suggested")
    parser.add_argument("--basis", help="a basis file to use instead of the standard one")
    parser.set_defaults(handler=run)


async def reply_basis(
    ctx: Context, client: AgencyClient, kind: str, recipient: str, **kwargs: Any
) -> dict[str, Any]:
    """The basis for a routine reply: ``--basis FILE`` or the standard one for the two parties."""
    if getattr(ctx.args, "basis", None):
        data = read_document(ctx.args.basis, what="basis")
        if not isinstance(data, dict):
            raise InvalidRequest("a basis file must hold a basis tag (a mapping)")
        return data
    directory = await client.directory()
    other = directory.agency(recipient, at=client.now())
    return default_reply_basis(
        kind=kind,
        sender_org_type=client.config.org_type,
        recipient_org_type=str(other.org_type),
        **kwargs,
    )


async def run(ctx: Context) -> int:
    """Send the decision feedback."""
    args = ctx.args
    async with open_client(ctx) as client:
        thread = await client.resolve_thread_id(args.thread)
        opening = await client.opening_message(thread)
        if opening.direction != "in" or opening.kind != "REFERRAL":
            raise InvalidRequest("decisions are sent on referrals this agency received")
        fields: dict[str, Any] = {
            "sent_by": default_contact(client),
            "outcome_code": args.outcome,
            "summary_for_referrer": args.summary,
            "referrer_next_steps": args.next_steps,
            "decided_at": client.now(),
        }
        if args.worker_name:
            worker = {"name": args.worker_name, "role": args.worker_role or "Allocated worker"}
            if args.worker_phone:
                worker["phone"] = args.worker_phone
            if args.worker_email:
                worker["email"] = args.worker_email
            fields["allocated_worker"] = worker
        if args.threshold_not_met:
            fields["threshold_not_met_reasons"] = args.threshold_not_met
        if args.alternative_support:
            fields["alternative_support_suggested"] = args.alternative_support
        basis = await reply_basis(ctx, client, "DECISION_FEEDBACK", opening.counterpart)
        ctx.progress("sealing and sending the decision")
        result = await client.reply(
            thread,
            kind="DECISION_FEEDBACK",
            fields=fields,
            basis=basis,
            thread_summary={"outcome_code": args.outcome},
        )
        await client.store.record_action("outcome", result.message_id)
    return report_sent(ctx, result, f"Decision {args.outcome} sent")
