"""``agency policy check FILE``: exactly the interface of the partnership's policy README."""

from __future__ import annotations

import json
from pathlib import Path

from tests.client.harness import run_cli

EXAMPLE = Path(__file__).parents[1] / "policy_cases" / "readme_example.json"


def test_readme_example_is_accepted_with_the_verdict_shape() -> None:
    result = run_cli(["policy", "check", str(EXAMPLE)], env={})
    assert result.code == 0, result.err
    assert result.err == ""
    verdict = json.loads(result.out)
    assert set(verdict) == {"decision", "policy_version", "findings"}
    assert verdict["decision"] in {"accept", "warn"}
    assert isinstance(verdict["policy_version"], str)
    assert verdict["policy_version"]
    for finding in verdict["findings"]:
        assert set(finding) == {"rule", "level", "message", "cite"}
        assert finding["level"] not in {"REJECT_LAW", "REJECT_POLICY"}
        assert isinstance(finding["cite"], list)


def test_standard_input(tmp_path: Path) -> None:
    result = run_cli(["policy", "check", "-"], env={}, stdin=EXAMPLE.read_text())
    assert result.code == 0
    assert json.loads(result.out)["decision"] in {"accept", "warn"}


def test_rejecting_request_exits_1_with_findings(tmp_path: Path) -> None:
    request = json.loads(EXAMPLE.read_text())
    request["basis"]["art6"] = ["A6_1_f"]  # legitimate interests from a public authority
    path = tmp_path / "reject.json"
    path.write_text(json.dumps(request))
    result = run_cli(["policy", "check", str(path)], env={})
    assert result.code == 1
    verdict = json.loads(result.out)
    assert verdict["decision"] == "reject"
    l002 = [f for f in verdict["findings"] if f["rule"] == "L002"]
    assert l002
    assert l002[0]["level"] == "REJECT_LAW"
    assert l002[0]["cite"]


def test_unreadable_input_exits_2_with_one_line(tmp_path: Path) -> None:
    cases = {
        "missing": tmp_path / "missing.json",
        "not json": tmp_path / "garbage.json",
        "wrong shape": tmp_path / "shape.json",
    }
    cases["not json"].write_text("{not json")
    cases["wrong shape"].write_text(json.dumps({"kind": "REFERRAL"}))
    for name, path in cases.items():
        result = run_cli(["policy", "check", str(path)], env={})
        assert result.code == 2, name
        assert result.out == "", name
        lines = result.err.splitlines()
        assert len(lines) == 1, (name, result.err)
        assert lines[0].startswith("agency policy check: "), name
        assert "Traceback" not in result.err
