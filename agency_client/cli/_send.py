"""Shared output for commands that send a message."""

from __future__ import annotations

from typing import Any

from agency_client.cli._common import Context, emit
from agency_client.client import AgencyClient, SendResult
from schemas.policy import Verdict
from schemas.problems import ConfigurationError

__all__ = ["default_contact", "report_sent", "verdict_lines"]


def default_contact(client: AgencyClient) -> dict[str, str]:
    """The agency's default sender contact (from ``agency init``)."""
    contact = dict(client.config.contact)
    if not contact.get("name") or not contact.get("role"):
        raise ConfigurationError(
            "no sender contact: give sent_by in the form, or --contact-* options at init"
        )
    return contact


def verdict_lines(verdict: Verdict) -> list[str]:
    """The verdict in plain lines, one per finding."""
    lines = [f"Lawful basis check: {verdict.decision} (rules {verdict.policy_version})"]
    for finding in verdict.findings:
        lines.append(f"  [{finding.rule} {finding.level}] {finding.message}")
    return lines


def report_sent(ctx: Context, result: SendResult, what: str) -> int:
    """Print what happened to a sent message; exit status 0."""
    data: dict[str, Any] = {
        "message_id": result.message_id,
        "thread_id": result.thread_id,
        "kind": result.kind,
        "recipients": [f"{a}/{m}" for a, m in result.recipients],
        "verdict": result.verdict.to_json_dict(),
        "queued": result.queued,
        "receipt": result.receipt.raw if result.receipt is not None else None,
        "relay_sees": {
            "kind": result.kind,
            "sender": result.sender,
            "recipients": [f"{a}/{m}" for a, m in result.recipients],
            "basis": result.basis_codes,
        },
    }
    emit(ctx, data)
    for line in verdict_lines(result.verdict):
        ctx.out(line)
    to = ", ".join(f"{a}/{m}" for a, m in result.recipients)
    ctx.out(f"{what} to {to}: message {result.message_id}, thread {result.thread_id}")
    if result.queued:
        ctx.out("The relay could not be reached: the message is sealed in the outbox.")
        ctx.out("Run 'agency outbox flush' when the relay is back (it will be sent once).")
    elif result.receipt is not None:
        sequence = result.receipt.sequence
        ctx.out(
            "Accepted by the relay"
            + (f" (log entry {sequence})" if sequence is not None else "")
            + (" - already there, not sent twice" if result.receipt.duplicate else "")
        )
    return 0
