"""``agency refer``: send a referral from a form file (YAML or JSON) or by answering questions."""

from __future__ import annotations

import argparse
from typing import Any

from agency_client.cli._common import Context, add_common_options, emit, open_client
from agency_client.cli._send import default_contact, report_sent, verdict_lines
from agency_client.client import AgencyClient, to_tag
from agency_client.forms import Prompter, guided_basis, load_form, split_form
from schemas.codes import ConcernCategory
from schemas.policy import Verdict
from schemas.problems import InvalidRequest

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``refer`` to the subcommands."""
    parser = sub.add_parser(
        "refer",
        help="refer a child to another agency (usually the front door)",
        description=(
            "Send a referral. Write the referral in a form file (YAML or JSON; see "
            "'agency_client/templates/referral.yaml') or answer questions with --interactive. "
            "The lawful basis is checked by the partnership's rules before anything is "
            "encrypted; a basis that fails is refused here, with the reasons, and nothing is "
            "sent. If the relay cannot be reached the sealed referral waits in the outbox."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("form", nargs="?", help="the referral form file ('-' for standard input)")
    parser.add_argument(
        "--to",
        action="append",
        default=None,
        help="recipient as AGENCY or AGENCY/MAILBOX (overrides the form's 'to')",
    )
    parser.add_argument(
        "--interactive", action="store_true", help="answer questions instead of giving a form file"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check the form and its lawful basis; send nothing"
    )
    parser.set_defaults(handler=run)


async def _check(client: AgencyClient, to: list[str], basis: dict[str, Any]) -> Verdict:
    return await client.check_basis(kind="REFERRAL", recipients=to, basis=basis)


def _ask_form(prompter: Prompter) -> dict[str, Any]:
    prompter.say(
        "A referral to the front door. Answer each question; press Enter to accept "
        "the suggestion in brackets."
    )
    to = prompter.ask("Send to (agency/mailbox)", "")
    child = {"given_name": prompter.ask("Child's first name")}
    family = prompter.ask("Child's family name", "")
    if family:
        child["family_name"] = family
    dob = prompter.ask("Date of birth (YYYY-MM-DD, blank if unknown)", "")
    if dob:
        child["date_of_birth"] = dob
    codes = [str(c) for c in ConcernCategory]
    prompter.say("Concern categories: " + ", ".join(codes))
    concerns = [c.strip() for c in prompter.ask("Concerns (comma-separated)", "other").split(",")]
    summary = prompter.ask("What is the concern? (one paragraph)")
    words = prompter.ask("What did the child say, in their own words? (blank if nothing)", "")
    form: dict[str, Any] = {
        "to": to,
        "child": child,
        "concern_categories": [c for c in concerns if c],
        "concern_summary": summary,
        "facts_vs_opinion_marked": prompter.yes("Have you marked fact and opinion apart?", True),
        "immediate_risk": prompter.yes("Is the child at immediate risk?"),
        "child_location_now": prompter.ask("Where is the child now?"),
        "safe_to_go_home": prompter.ask(
            "Is it safe for the child to go home? (yes/no/unknown)", "unknown"
        ),
    }
    if words:
        form["child_words"] = [{"words": words, "said_to": prompter.ask("Said to whom (role)")}]
    if prompter.yes("Do the parents or carers know about this referral?"):
        form["parents_aware"] = {"status": "yes"}
    else:
        form["parents_aware"] = {
            "status": "no",
            "reason": prompter.ask("Why have they not been told?"),
        }
    return form


async def run(ctx: Context) -> int:
    """Send (or check) a referral."""
    args = ctx.args
    if not args.form and not args.interactive:
        raise InvalidRequest("give a referral form file, or use --interactive")
    prompter = Prompter(ctx.stdin, ctx.stderr if ctx.json else ctx.stdout)
    async with open_client(ctx) as client:
        form = load_form(args.form, stdin=ctx.stdin) if args.form else _ask_form(prompter)
        to, basis, fields = split_form(form)
        if args.to:
            to = list(args.to)
        if not to:
            raise InvalidRequest("say who the referral is for: 'to' in the form, or --to")
        if "sent_by" not in fields:
            fields["sent_by"] = default_contact(client)
        fields.setdefault("referrer_contact_for_followup", fields["sent_by"])
        if basis is None:
            if not (args.interactive or ctx.stdin.isatty()):
                raise InvalidRequest(
                    "the form has no lawful basis: add 'basis', or use --interactive to be "
                    "guided through it"
                )
            directory = await client.directory()
            recipient = directory.agency(to[0].split("/")[0], at=client.now())
            basis = guided_basis(
                prompter,
                kind="REFERRAL",
                sender_org_type=client.config.org_type,
                recipient_org_type=str(recipient.org_type),
                check=lambda b: _sync_check(client, to, b),
            )
        if args.dry_run:
            verdict = await _check(client, to, basis)
            emit(ctx, {"verdict": verdict.to_json_dict(), "sent": False})
            for line in verdict_lines(verdict):
                ctx.out(line)
            ctx.out("Dry run: nothing was sent.")
            return 1 if verdict.decision == "reject" else 0
        ctx.progress("checking the lawful basis, encrypting and signing the referral")
        result = await client.send(kind="REFERRAL", to=to, fields=fields, basis=basis)
    return report_sent(ctx, result, "Referral sent")


def _sync_check(client: AgencyClient, to: list[str], basis: dict[str, Any]) -> Verdict:
    """The guided walk is synchronous; the directory is already cached when it runs."""
    from keys.sealing import basis_verdict

    directory = client.cached_directory()
    assert directory is not None
    now = client.now()
    recipients = [directory.agency(spec.split("/")[0], at=now) for spec in to]
    tag = to_tag(basis)
    return basis_verdict(
        kind="REFERRAL",
        sent_at=now,
        sender=client.certificate.body,
        recipients=recipients,
        basis=tag.model_dump(mode="json", exclude_none=True),
        justification_available=True,
    )
