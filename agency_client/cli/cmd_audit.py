"""``agency audit``: the auditor checks each share's signature and lawful basis, not content."""

from __future__ import annotations

import argparse
from typing import Any

from agency_client.cli._common import Context, add_common_options, emit, open_client
from agency_client.client import AuditEntry

__all__ = ["register", "run"]

_SUMMARY_CODES = (
    "art6",
    "annex1_condition",
    "art9_condition",
    "sch1_condition",
    "art10_sch1_condition",
    "gateways",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` to the subcommands."""
    parser = sub.add_parser(
        "audit",
        help="(auditor) check every share's signature and lawful basis",
        description=(
            "For the partnership auditor: go through every message header the relay accepted, "
            "verify the sender's signature against the directory, re-run the lawful-basis "
            "rules over the declared codes, and open the justification sealed to the auditor "
            "to check the written reasons too. Message content is never fetched or read. Exit "
            "status 1 if any share fails a check."
        ),
    )
    add_common_options(parser, suppress=True)
    parser.add_argument("--since", type=int, default=None, help="start after this log position")
    parser.add_argument(
        "--show-justifications",
        action="store_true",
        help="print the written justifications in full",
    )
    parser.set_defaults(handler=run)


def _codes(entry: AuditEntry) -> str:
    parts = []
    for name in _SUMMARY_CODES:
        value = entry.basis_codes.get(name)
        if value:
            parts.append("+".join(value) if isinstance(value, list) else str(value))
    return " ".join(parts)


def _entry_json(entry: AuditEntry, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sequence": entry.sequence,
        "message_id": entry.message_id,
        "kind": entry.kind,
        "sender": entry.sender,
        "recipients": list(entry.recipients),
        "basis_codes": entry.basis_codes,
        "signature_ok": entry.signature_ok,
        "codes_verdict": entry.codes_verdict,
        "full_verdict": entry.full_verdict,
        "justification_read": entry.justification is not None,
        "findings": list(entry.findings),
        "problem": entry.problem,
    }
    if full and entry.justification is not None:
        data["justification"] = entry.justification.to_dict()
    return data


def failed(entry: AuditEntry) -> bool:
    """Whether a share fails the audit."""
    return (
        not entry.signature_ok
        or entry.codes_verdict == "reject"
        or entry.full_verdict == "reject"
        or entry.problem is not None
    )


async def run(ctx: Context) -> int:
    """Audit every accepted header."""
    async with open_client(ctx) as client:
        ctx.progress("reading every accepted header and checking it")
        entries = await client.audit(since=ctx.args.since)
    show = bool(ctx.args.show_justifications)
    emit(
        ctx,
        {
            "entries": [_entry_json(e, show) for e in entries],
            "failed": sum(1 for e in entries if failed(e)),
        },
    )
    for entry in entries:
        mark = "FAIL" if failed(entry) else "ok"
        to = ",".join(entry.recipients)
        ctx.out(
            f"#{entry.sequence} {mark} {entry.kind} {entry.sender} -> {to}: "
            f"signature {'verified' if entry.signature_ok else 'INVALID'}; "
            f"basis {_codes(entry) or '(none)'}; codes {entry.codes_verdict}"
            + (f"; with justification {entry.full_verdict}" if entry.full_verdict else "")
        )
        if entry.justification is not None:
            j = entry.justification
            cite = j.statutory_function_citation or j.legal_obligation_citation or "-"
            ctx.out(f"    justification read (sealed to the auditor): function cited: {cite}")
            if show:
                for name, text in j.to_dict().items():
                    ctx.out(f"      {name}: {text}")
        if entry.problem:
            ctx.out(f"    problem: {entry.problem}")
        for finding in entry.findings:
            ctx.out(f"    [{finding.get('rule')} {finding.get('level')}] {finding.get('message')}")
    bad = sum(1 for e in entries if failed(e))
    ctx.out(f"{len(entries)} share(s) checked, {bad} failed; no message content was read.")
    return 1 if bad else 0
