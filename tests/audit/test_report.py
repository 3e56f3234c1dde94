"""Honest history verifies; the HTML report renders in headless Chromium and matches the JSON;
an exported bundle verifies offline, and an altered bundle does not."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.audit.conftest import WRONG_BASIS, LoggedPartnership, full_scenario

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


class _Metrics(HTMLParser):
    """Collect ``data-metric`` values: element text, or ``data-value`` when given."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        metric = found.get("data-metric")
        if metric is not None and found.get("data-value") is not None:
            self.values[metric] = str(found["data-value"])
            metric = None
        self._open.append(metric)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] is not None and data.strip():
            self.values[self._open[-1]] = data.strip()


def _lookup(report: dict[str, Any], path: str) -> Any:
    """Follow a dotted metric path; keys may themselves contain dots (org types never do)."""
    value: Any = report
    parts = path.split(".")
    while parts:
        if not isinstance(value, dict):
            return None
        for size in range(len(parts), 0, -1):
            key = ".".join(parts[:size])
            if key in value:
                value = value[key]
                parts = parts[size:]
                break
        else:
            return None
    return value


def _force_wrong_basis(partnership: LoggedPartnership, monkeypatch: pytest.MonkeyPatch) -> None:
    """A modified client skips its own policy check; the relay refuses and logs the refusal."""
    import keys.sealing

    with monkeypatch.context() as patch:
        patch.setattr(keys.sealing, "raise_for_verdict", lambda verdict: None)
        refused = partnership.school.cli("refer", WRONG_BASIS)
    assert refused.code == 1
    assert "L002" in refused.err


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    return path


def _render(html: Path, screenshot: Path) -> str:
    """Render ``html`` in headless Chromium: save a screenshot, return the rendered DOM."""
    chromium = _chromium()
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1280,2600",
    ]
    shot = subprocess.run(
        [*flags, f"--screenshot={screenshot}", html.as_uri()],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert shot.returncode == 0, shot.stderr.decode(errors="replace")[-2000:]
    dom = subprocess.run(
        [*flags, "--dump-dom", html.as_uri()], capture_output=True, timeout=180, check=False
    )
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    return dom.stdout.decode()


def test_honest_history_verifies_and_the_html_report_matches(
    logged: LoggedPartnership, monkeypatch: pytest.MonkeyPatch
) -> None:
    _force_wrong_basis(logged, monkeypatch)
    thread = full_scenario(logged)
    html = logged.tmp / "audit.html"
    result, report = logged.audit("--report-html", str(html))
    assert result.code == 0, result.out + result.err
    assert report["ok"] is True
    assert report["failures"] == []
    assert "VERIFIED; no message content was read." in result.out

    log = report["log"]
    assert log["tree_heads"] == log["tree_heads_verified"] >= 4
    assert log["consistency_proofs_checked"] == log["tree_heads"] - 1
    assert log["root_verified"] is True
    assert log["roots_checked"] == log["tree_heads"]
    assert log["by_type"] == {"envelope": 3, "receipt": 3, "rejection": 1}
    assert report["messages"] == {
        "checked": 3,
        "signatures_ok": 3,
        "justifications_read": 3,
        "by_kind": {"ACKNOWLEDGEMENT": 1, "DECISION_FEEDBACK": 1, "REFERRAL": 1},
    }
    assert report["rejections"]["by_rule"] == {"L002": 1}
    assert report["rejections"]["by_sender_org_type"] == {"maintained_school": 1}
    assert report["basis"]["art6_by_sender_org_type"]["maintained_school"] == {"A6_1_e": 1}
    (row,) = report["timeliness"]["thread_list"]
    assert row["thread"] == thread
    assert row["state"] == "DECISION_GIVEN"
    assert row["working_days"] == {"acknowledgement": 0, "decision": 0, "feedback": 0}
    assert report["timeliness"]["feedback_distribution"] == {"0": 1}
    assert report["timeliness"]["overdue"] == 0
    assert all(e["justification_read"] and e["full_verdict"] != "reject" for e in report["entries"])
    # Codes only: no justification text unless asked for, and never a body.
    text = json.dumps(report)
    assert "Education Act 2002 s.175(2)" not in text
    assert "Maya" not in text

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "audit-report.png"
    screenshot.unlink(missing_ok=True)
    dom = _render(html, screenshot)
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000
    shutil.copy(html, ARTIFACTS / "audit-report.html")

    parser = _Metrics()
    parser.feed(dom)
    shown = parser.values
    assert "<svg" in dom
    assert "<script" not in dom
    assert len(shown) >= 20
    for metric, value in shown.items():
        expected = _lookup(report, metric)
        assert expected is not None, metric
        assert value == str(expected), (metric, value, expected)
    for metric in (
        "log.leaves",
        "messages.justifications_read",
        "rejections.by_rule.L002",
        "timeliness.feedback_distribution.0",
        "basis.art6_by_sender_org_type.maintained_school.A6_1_e",
        "timeliness.open_by_mailbox.northshire-mash/front-door",
    ):
        assert metric in shown, metric


def test_bundle_verifies_offline_and_refuses_tampering(logged: LoggedPartnership) -> None:
    full_scenario(logged)
    bundle = logged.tmp / "period.bundle.json"
    exported = logged.auditor.cli("--json", "audit", "export", "--out", str(bundle))
    assert exported.code == 0, exported.err
    summary = exported.json()
    assert summary["leaves"] == 6
    assert summary["headers"] == 3

    logged.relay.stop()  # offline from here on
    result, report = logged.audit("--bundle", str(bundle))
    assert result.code == 0, result.out + result.err
    assert report["source"] == "bundle"
    assert report["ok"] is True
    assert report["messages"]["justifications_read"] == 3
    assert report["log"]["root_verified"] is True

    document = json.loads(bundle.read_text())
    body = document["body"]
    document["body"] = body[:100] + ("A" if body[100] != "A" else "B") + body[101:]
    altered = logged.tmp / "altered.bundle.json"
    altered.write_text(json.dumps(document))
    refused = logged.auditor.cli("audit", "verify", "--bundle", str(altered))
    assert refused.code == 1
    lines = [line for line in refused.err.splitlines() if not line.startswith("...")]
    assert len(lines) == 1, refused.err
    assert lines[0].startswith("agency: error:"), refused.err
    assert re.search(r"(?i)signature|bundle", lines[0])
