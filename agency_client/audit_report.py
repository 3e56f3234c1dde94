"""The audit report as one self-contained HTML page: tables and inline SVG charts, no script.

Every number shown comes from the JSON report and carries a ``data-metric``
attribute naming where (``log.leaves``, ``rejections.by_rule.L002``...), so a test
or a reader can check the page against the JSON. Charts are plain SVG drawn here:
bars with their value written beside them, so nothing depends on hovering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["SUMMARY_METRICS", "render_html"]

#: The headline figures: (JSON path, label).
SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("log.tree_heads", "Signed tree heads in the period"),
    ("log.tree_heads_verified", "Tree head signatures verified"),
    ("log.consistency_proofs_checked", "Consistency proofs checked"),
    ("log.roots_checked", "Tree roots recomputed from the leaves"),
    ("log.leaves", "Log leaves"),
    ("messages.checked", "Accepted headers checked"),
    ("messages.signatures_ok", "Header signatures verified"),
    ("messages.justifications_read", "Justifications read (sealed to the auditor)"),
    ("rejections.total", "Submissions refused on their lawful basis"),
    ("timeliness.threads", "Threads"),
    ("timeliness.referral_threads", "Referral threads"),
    ("timeliness.open", "Open threads"),
    ("timeliness.overdue", "Overdue threads"),
    ("timeliness.met_late", "Threads with a deadline met late"),
    ("summary.failures", "Failures"),
    ("summary.warnings", "Warnings"),
)

_PALETTE = (
    "#1f5f8b",
    "#e07b39",
    "#3a9d5d",
    "#b8405e",
    "#7d5ba6",
    "#c9a227",
    "#2aa1a8",
    "#8c6d4f",
    "#5f6b7a",
    "#d4609c",
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2733;
max-width:1180px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccd;
padding-bottom:4px}
.meta{color:#556;font-size:13px}.badge{display:inline-block;padding:3px 10px;border-radius:4px;
font-weight:600;color:#fff}.ok{background:#2e7d32}.fail{background:#c62828}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #d5d9e0;
padding:4px 8px;text-align:left;vertical-align:top}th{background:#f1f3f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:18px}.chart{border:1px solid #e1e4ea;border-radius:6px;
padding:8px;background:#fff}.note{color:#556;font-size:12px}
"""


def _get(report: Mapping[str, Any], path: str) -> Any:
    value: Any = report
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _num(value: Any, metric: str) -> str:
    return f'<td class="num" data-metric="{escape(metric)}">{escape(str(value))}</td>'


def _count(counts: Mapping[str, int], key: str, metric: str) -> str:
    """A count cell; tagged with its metric only when the JSON has the key (else 0)."""
    if key in counts:
        return _num(counts[key], f"{metric}.{key}")
    return '<td class="num">0</td>'


def _bar_chart(title: str, data: Mapping[str, int], metric: str, *, unit: str = "") -> str:
    """A horizontal bar chart, one bar per key, its value written after the bar."""
    if not data:
        return (
            f'<div class="chart"><strong>{escape(title)}</strong>'
            '<p class="note">Nothing to show in this period.</p></div>'
        )
    width, label_w, row_h = 520, 200, 24
    top = 28
    height = top + row_h * len(data) + 10
    peak = max(max(data.values()), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="14" font-weight="600">{escape(title)}</text>',
    ]
    for row, (key, value) in enumerate(data.items()):
        y = top + row * row_h
        bar = int((width - label_w - 60) * value / peak)
        colour = _PALETTE[row % len(_PALETTE)]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">'
            f"{escape(_short(key))}</text>"
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(bar, 1)}" height="{row_h - 8}" '
            f'fill="{colour}"><title>{escape(key)}: {value}{unit}</title></rect>'
        )
        parts.append(
            f'<text x="{label_w + max(bar, 1) + 6}" y="{y + 15}" font-size="12" '
            f'data-metric="{escape(metric)}.{escape(key)}">{value}</text>'
        )
    parts.append("</svg>")
    return '<div class="chart">' + "".join(parts) + "</div>"


def _stacked_chart(title: str, data: Mapping[str, Mapping[str, int]], metric: str) -> str:
    """One horizontal stacked bar per group, a legend of the stacked codes under it."""
    if not data:
        return (
            f'<div class="chart"><strong>{escape(title)}</strong>'
            '<p class="note">Nothing to show in this period.</p></div>'
        )
    codes = sorted({code for counts in data.values() for code in counts})
    colours = {code: _PALETTE[i % len(_PALETTE)] for i, code in enumerate(codes)}
    width, label_w, row_h, top = 560, 230, 26, 28
    legend_rows = (len(codes) + 2) // 3
    height = top + row_h * len(data) + 14 + legend_rows * 18
    peak = max(max(sum(c.values()) for c in data.values()), 1)
    scale = (width - label_w - 50) / peak
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="14" font-weight="600">{escape(title)}</text>',
    ]
    for row, (group, counts) in enumerate(data.items()):
        y = top + row * row_h
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" font-size="12" text-anchor="end">'
            f"{escape(_short(group, 32))}</text>"
        )
        x = float(label_w)
        for code in codes:
            value = counts.get(code, 0)
            if not value:
                continue
            w = value * scale
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{colours[code]}" data-metric="{escape(metric)}.{escape(group)}.'
                f'{escape(code)}" data-value="{value}"><title>{escape(group)}: {escape(code)} '
                f"{value}</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + 16}" font-size="12">{sum(counts.values())}</text>'
        )
    legend_y = top + row_h * len(data) + 14
    for i, code in enumerate(codes):
        lx, ly = (i % 3) * 185, legend_y + (i // 3) * 18
        parts.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colours[code]}"/>'
            f'<text x="{lx + 16}" y="{ly}" font-size="11">{escape(code)}</text>'
        )
    parts.append("</svg>")
    return '<div class="chart">' + "".join(parts) + "</div>"


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str) -> str:
    if not rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    return f"<td>{escape('' if value is None else str(value))}</td>"


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report page (UTF-8 text; no external resource, no script)."""
    ok = bool(report.get("ok"))
    period = report.get("period") or {}
    log = report.get("log") or {}
    timeliness = report.get("timeliness") or {}
    basis = report.get("basis") or {}
    rejections = report.get("rejections") or {}
    latest = log.get("latest_head") or {}
    sections: list[str] = []

    summary_rows = [
        [_cell(label), _num(_get(report, path), path)] for path, label in SUMMARY_METRICS
    ]
    sections.append("<h2>Summary</h2>" + _table(["Check", "Count"], summary_rows, empty=""))

    charts = [
        _stacked_chart(
            "Article 6 basis by sender organisation type",
            basis.get("art6_by_sender_org_type") or {},
            "basis.art6_by_sender_org_type",
        ),
        _stacked_chart(
            "Article 9 / Schedule 1 conditions by sender organisation type",
            basis.get("conditions_by_sender_org_type") or {},
            "basis.conditions_by_sender_org_type",
        ),
        _bar_chart(
            "Rejected submissions by rule",
            rejections.get("by_rule") or {},
            "rejections.by_rule",
        ),
        _bar_chart(
            "Referral to feedback, working days",
            timeliness.get("feedback_distribution") or {},
            "timeliness.feedback_distribution",
            unit=" referrals",
        ),
        _bar_chart(
            "Overdue threads by agency",
            timeliness.get("overdue_by_agency") or {},
            "timeliness.overdue_by_agency",
        ),
    ]
    sections.append('<h2>Charts</h2><div class="grid">' + "".join(charts) + "</div>")

    failures = report.get("failures") or []
    failure_rows = [
        [
            _cell(f.get("code")),
            _cell(f.get("message")),
            _cell(f.get("message_id") or f.get("thread") or f.get("leaf_index") or ""),
        ]
        for f in failures
    ]
    sections.append(
        f'<h2>Failures (<span data-metric="summary.failures">{len(failures)}</span>)</h2>'
        + _table(["Code", "What failed", "Where"], failure_rows, empty="No failures.")
    )
    warnings = report.get("warnings") or []
    sections.append(
        f"<h2>Warnings ({len(warnings)})</h2>"
        + _table(
            ["Code", "Note", "Where"],
            [
                [_cell(w.get("code")), _cell(w.get("message")), _cell(w.get("message_id", ""))]
                for w in warnings
            ],
            empty="No warnings.",
        )
    )

    mailbox_rows = []
    open_by = timeliness.get("open_by_mailbox") or {}
    overdue_by = timeliness.get("overdue_by_mailbox") or {}
    for mailbox in sorted(set(open_by) | set(overdue_by)):
        mailbox_rows.append(
            [
                _cell(mailbox),
                _count(open_by, mailbox, "timeliness.open_by_mailbox"),
                _count(overdue_by, mailbox, "timeliness.overdue_by_mailbox"),
            ]
        )
    limits = timeliness.get("limits_working_days") or {}
    sections.append(
        "<h2>Open and overdue threads by mailbox</h2>"
        f'<p class="note">Limits in working days (England and Wales): acknowledgement '
        f"{limits.get('acknowledgement')}, decision {limits.get('decision')}, feedback "
        f"{limits.get('feedback')}, from delivery (the recipient's signed receipt).</p>"
        + _table(["Mailbox", "Open", "Overdue"], mailbox_rows, empty="No open threads.")
    )
    thread_rows = []
    for t in timeliness.get("thread_list") or []:
        days = t.get("working_days") or {}
        thread_rows.append(
            [
                _cell(str(t.get("thread", ""))[:12]),
                _cell(t.get("opened_by")),
                _cell(t.get("referrer")),
                _cell(t.get("mailbox")),
                _cell(t.get("state")),
                _cell(days.get("acknowledgement")),
                _cell(days.get("decision")),
                _cell(days.get("feedback")),
                _cell(", ".join(t.get("overdue") or []) or "-"),
                _cell(", ".join(t.get("met_late") or []) or "-"),
            ]
        )
    sections.append(
        "<h2>Threads</h2>"
        + _table(
            [
                "Thread",
                "Opened by",
                "Referrer",
                "Recipient mailbox",
                "State",
                "Ack (wd)",
                "Decision (wd)",
                "Feedback (wd)",
                "Overdue",
                "Late",
            ],
            thread_rows,
            empty="No tracked threads in this period.",
        )
    )
    entry_rows = []
    for e in report.get("entries") or []:
        codes = e.get("basis_codes") or {}
        entry_rows.append(
            [
                _cell(e.get("leaf_index")),
                _cell(e.get("kind")),
                _cell(f"{e.get('sender')} ({e.get('sender_org_type')})"),
                _cell(", ".join(e.get("recipients") or [])),
                _cell(" ".join(codes.get("art6") or [])),
                _cell("yes" if e.get("signature_ok") else "NO"),
                _cell(e.get("codes_verdict")),
                _cell(e.get("full_verdict") or "-"),
                _cell("yes" if e.get("justification_read") else "no"),
                _cell(", ".join(e.get("problems") or []) or "-"),
            ]
        )
    sections.append(
        "<h2>Accepted headers</h2>"
        + _table(
            [
                "Leaf",
                "Kind",
                "Sender",
                "Recipients",
                "Art 6",
                "Signature",
                "Codes",
                "With justification",
                "Justification read",
                "Problems",
            ],
            entry_rows,
            empty="No accepted headers in this period.",
        )
    )

    badge = (
        '<span class="badge ok">VERIFIED</span>' if ok else '<span class="badge fail">FAILED</span>'
    )
    head = (
        f"<h1>Safeguarding exchange audit {badge}</h1>"
        f'<p class="meta">Log {escape(str(log.get("log_id")))}, leaves '
        f"{escape(str(period.get('first_leaf')))} to {escape(str(period.get('end_leaf')))}; "
        f"period {escape(str(period.get('from') or 'start'))} to "
        f"{escape(str(period.get('to') or 'now'))}; newest tree head size "
        f"{escape(str(latest.get('size')))} at {escape(str(latest.get('timestamp')))}; "
        f"generated {escape(str(report.get('generated_at')))}; policy "
        f"{escape(str(report.get('policy_version')))}. Built from signed headers, receipts and "
        "the relay's signed log only: no message content was read.</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Safeguarding exchange audit</title>"
        f"<style>{_CSS}</style></head><body>{head}{''.join(sections)}</body></html>\n"
    )
