"""``agency audit``: the auditor verifies the relay's log, every share's basis, and timeliness.

``agency audit verify`` (the default) downloads a period of the transparency log
and checks it (:mod:`agency_client.audit_verify`); ``agency audit export`` writes
the same material to a signed bundle that ``agency audit verify --bundle`` checks
offline. Message content is never fetched or read.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from agency_client.audit import download, export_bundle, read_bundle
from agency_client.audit_report import render_html
from agency_client.audit_verify import AuditMaterial, verify_material
from agency_client.cli._common import Context, add_common_options, emit, open_client
from agency_client.client import AgencyClient
from schemas.deadlines import DeadlinePolicy
from schemas.problems import ConfigurationError, InvalidEnvelope, LogConsistencyError, NotFound
from schemas.timefmt import parse_time

__all__ = ["ProgressBar", "register", "run", "run_export", "run_verify"]

_SUMMARY_CODES = (
    "art6",
    "annex1_condition",
    "art9_condition",
    "sch1_condition",
    "art10_sch1_condition",
    "gateways",
)


def _period_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="period_from",
        metavar="TIME",
        help="start of the period (e.g. 2026-11-01T00:00:00Z; default: the log's start)",
    )
    parser.add_argument(
        "--to",
        dest="period_to",
        metavar="TIME",
        help="end of the period (default: now, with the newest tree head)",
    )


def _verify_options(parser: argparse.ArgumentParser) -> None:
    add_common_options(parser, suppress=True)
    _period_options(parser)
    parser.add_argument("--bundle", type=Path, help="verify this exported bundle offline")
    parser.add_argument("--report-json", type=Path, help="write the JSON report to this file")
    parser.add_argument("--report-html", type=Path, help="write the HTML report to this file")
    parser.add_argument(
        "--as-of",
        metavar="TIME",
        help="judge deadlines as at this time (default: the end of the period, or now)",
    )
    parser.add_argument(
        "--show-justifications",
        action="store_true",
        help="print the written justifications in full (and keep them in the report)",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="report progress on standard error even when it is not a terminal",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        metavar="N",
        help="processes to verify headers in, on long runs (default: one per core)",
    )
    for name, what in (
        ("ack-days", "acknowledge a referral"),
        ("decision-days", "decide"),
        ("feedback-days", "feed the decision back"),
    ):
        parser.add_argument(
            f"--{name}", type=int, default=1, metavar="N", help=f"working days to {what}"
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` (``verify``, ``export``) to the subcommands."""
    parser = sub.add_parser(
        "audit",
        help="(auditor) verify the relay's log, every share's lawful basis, and timeliness",
        description=(
            "For the partnership auditor. 'verify' (the default) downloads the relay's signed "
            "tree heads, log leaves and proofs for a period; checks every tree head signature "
            "and their consistency, recomputes the tree from the leaves; verifies every header "
            "signature against the certificate valid at the time, re-runs the lawful-basis "
            "rules, opens each justification sealed to the auditor; and measures the time to "
            "acknowledgement, decision and feedback of every referral in working days. It "
            "writes a JSON and an HTML report. 'export' writes a signed bundle that "
            "'verify --bundle' checks offline. Message content is never fetched or read. "
            "Exit status 1 if anything fails verification."
        ),
    )
    _verify_options(parser)
    parser.set_defaults(handler=run_verify)
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="download and verify a period of the log (or --bundle FILE offline)",
        description="Verify the relay's log, the shares in it and their timeliness.",
    )
    _verify_options(verify)
    verify.set_defaults(handler=run_verify)
    export = actions.add_parser(
        "export",
        help="write a signed, self-contained bundle of a period of the log",
        description=(
            "Download a period of the log (tree heads, leaves, proofs, header rows with "
            "seals, certificates and revocation list) and write it, signed by the auditor, "
            "to one file that 'agency audit verify --bundle FILE' checks without the relay."
        ),
    )
    add_common_options(export, suppress=True)
    _period_options(export)
    export.add_argument("--out", type=Path, required=True, help="the bundle file to create")
    export.add_argument("--progress", action="store_true", help="report progress on stderr")
    export.set_defaults(handler=run_export)


class ProgressBar:
    """A progress bar on standard error: redrawn in place on a terminal, else every 10%."""

    def __init__(self, stream: TextIO, *, forced: bool) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.enabled = self.tty or forced
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Show ``done`` of ``total`` for ``stage``."""
        if not self.enabled or total <= 0:
            return
        percent = min(100, int(100 * done / total))
        if self.tty:
            filled = percent * 30 // 100
            bar = "#" * filled + "-" * (30 - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{stage:<32} [{bar}] {percent:3d}% ({done}/{total}){end}")
            self.stream.flush()
            return
        step = percent // 10
        if (stage, step) != self._last:
            self._last = (stage, step)
            print(f"... {stage}: {percent}% ({done}/{total})", file=self.stream, flush=True)


def _time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_time(text, field=name)
    except InvalidEnvelope:
        raise ConfigurationError(f"{name} must look like 2026-11-24T09:30:00Z") from None


def _require_auditor(client: AgencyClient) -> None:
    if client.certificate.body.role != "auditor":
        raise ConfigurationError("agency audit is for the partnership auditor's identity")


async def _download(ctx: Context, client: AgencyClient, progress: ProgressBar) -> AuditMaterial:
    args = ctx.args
    directory = await client.directory(refresh=True)
    try:
        return await download(
            client.transport.call,
            directory,
            period_from=_time(args.period_from, "--from"),
            period_to=_time(args.period_to, "--to"),
            progress=progress,
        )
    except NotFound:
        raise NotFound(
            "the relay has no signed tree head yet (is its log key certified and published?)"
        ) from None


async def run_verify(ctx: Context) -> int:
    """Verify a period of the log (or a bundle) and report."""
    args = ctx.args
    progress = ProgressBar(ctx.stderr, forced=bool(getattr(args, "progress", False)))
    fork: str | None = None
    async with open_client(ctx) as client:
        _require_auditor(client)
        if args.bundle is not None:
            material, _ = read_bundle(args.bundle, client.home.root_public_key())
        else:
            ctx.progress("downloading the log, its tree heads and proofs")
            material = await _download(ctx, client, progress)
            if material.heads:
                try:
                    await client.observe_tree_head(material.heads[-1])
                except LogConsistencyError as exc:
                    fork = str(exc)
        ctx.progress("verifying")
        report = verify_material(
            material,
            identity=client.identity,
            now=_time(args.as_of, "--as-of") or client.now(),
            policy=DeadlinePolicy(
                ack_working_days=args.ack_days,
                decision_working_days=args.decision_days,
                feedback_working_days=args.feedback_days,
            ),
            show_justifications=bool(args.show_justifications),
            progress=progress,
            workers=max(1, int(args.workers)),
        )
    if fork is not None:
        report["failures"].insert(0, {"code": "log-fork", "message": fork})
        report["summary"]["failures"] = len(report["failures"])
        report["summary"]["failures_by_code"]["log-fork"] = 1
        report["ok"] = False
    report["source"] = "bundle" if args.bundle is not None else "relay"
    _write_reports(ctx, report)
    emit(ctx, report)
    _print_text(ctx, report)
    return 0 if report["ok"] else 1


def _write_reports(ctx: Context, report: dict[str, Any]) -> None:
    args = ctx.args
    if args.report_json is not None:
        args.report_json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", "utf-8")
    if args.report_html is not None:
        args.report_html.write_text(render_html(report), "utf-8")


def _codes(basis: dict[str, Any]) -> str:
    parts = []
    for name in _SUMMARY_CODES:
        value = basis.get(name)
        if value:
            parts.append("+".join(value) if isinstance(value, list) else str(value))
    return " ".join(parts)


def _print_text(ctx: Context, report: dict[str, Any]) -> None:
    log, messages, timeliness = report["log"], report["messages"], report["timeliness"]
    ctx.out(
        f"Log {log.get('log_id')}: {log['tree_heads_verified']}/{log['tree_heads']} tree heads "
        f"verified, {log['consistency_proofs_checked']} consistency proofs checked, "
        f"{log['leaves']} leaves, {log['roots_checked']} roots recomputed from the leaves."
    )
    for entry in report["entries"]:
        mark = "FAIL" if entry["problems"] else "ok"
        verdict = f"; with justification {entry['full_verdict']}" if entry["full_verdict"] else ""
        ctx.out(
            f"#{entry['leaf_index']} {mark} {entry['kind']} {entry['sender']} -> "
            f"{','.join(entry['recipients'])}: signature "
            f"{'verified' if entry['signature_ok'] else 'INVALID'}; basis "
            f"{_codes(entry['basis_codes']) or '(none)'}; codes {entry['codes_verdict']}{verdict}"
        )
        if entry.get("justification") is not None:
            for name, text in entry["justification"].items():
                ctx.out(f"      {name}: {text}")
        for finding in entry["findings"]:
            ctx.out(f"    [{finding.get('rule')} {finding.get('level')}] {finding.get('message')}")
    ctx.out(
        f"{messages['checked']} share(s) checked: {messages['signatures_ok']} signatures "
        f"verified, {messages['justifications_read']} justifications read; "
        f"{report['rejections']['total']} refused submission(s) in the log."
    )
    ctx.out(
        f"Timeliness: {timeliness['threads']} thread(s), {timeliness['open']} open, "
        f"{timeliness['overdue']} overdue, {timeliness['met_late']} with a deadline met late."
    )
    for mailbox, count in timeliness["overdue_by_mailbox"].items():
        ctx.out(f"  overdue at {mailbox}: {count}")
    for failure in report["failures"]:
        ctx.out(f"FAIL {failure['code']}: {failure['message']}")
    verdict = "VERIFIED" if report["ok"] else f"FAILED ({len(report['failures'])} failure(s))"
    ctx.out(f"{verdict}; no message content was read.")


async def run_export(ctx: Context) -> int:
    """Download a period and write it to a signed bundle."""
    progress = ProgressBar(ctx.stderr, forced=bool(getattr(ctx.args, "progress", False)))
    async with open_client(ctx) as client:
        _require_auditor(client)
        ctx.progress("downloading the log, its tree heads and proofs")
        material = await _download(ctx, client, progress)
        summary = export_bundle(
            ctx.args.out,
            material,
            identity=client.identity,
            auditor_cert=client.certificate.id,
            created_at=client.now(),
        )
    emit(ctx, summary)
    ctx.out(
        f"Wrote {summary['bundle']} ({summary['bytes']} bytes): {summary['tree_heads']} tree "
        f"heads, leaves {summary['start']}..{summary['end']}, {summary['headers']} headers; "
        "signed by this auditor. Check it with: agency audit verify --bundle FILE"
    )
    return 0


#: Kept for callers of the earlier single-command form.
run = run_verify
