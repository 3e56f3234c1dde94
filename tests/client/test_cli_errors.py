"""The ``agency`` CLI on the paths that go wrong: one line, a non-zero status, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agency_client.cli import build_parser
from tests.client.conftest import Partnership
from tests.client.harness import ENV, PASSPHRASE_VAR, run_cli
from tests.client.test_cli_scenario import REFERRAL

COMMANDS = [
    ["init"],
    ["install-certificate"],
    ["directory"],
    ["refer"],
    ["inbox"],
    ["watch"],
    ["show"],
    ["ack"],
    ["decide"],
    ["threads"],
    ["rfi"],
    ["respond"],
    ["policy", "check"],
    ["receipts", "verify"],
    ["outbox", "flush"],
    ["outbox", "list"],
    ["audit"],
    ["ui"],
    ["ui", "add-user"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_explains_itself(command: list[str]) -> None:
    result = run_cli([*command, "--help"])
    assert result.code == 0
    assert "usage: agency" in result.out
    # A plain-English description, not just the usage line.
    assert len(result.out.split()) > 25


def test_every_registered_command_is_covered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(sub.choices, dict)
    assert set(sub.choices) == {c[0] for c in COMMANDS}


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("... ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_wrong_passphrase(shared: Partnership) -> None:
    env = {**ENV, PASSPHRASE_VAR: "not the passphrase"}
    result = shared.school.cli("inbox", env=env)
    assert result.code == 1
    assert _one_line(result.err).startswith("agency: error: Wrong passphrase: ")
    # --verbose re-raises for whoever needs the traceback.
    from schemas.problems import WrongPassphrase

    with pytest.raises(WrongPassphrase):
        shared.school.cli("--verbose", "inbox", env=env)


def test_missing_passphrase_and_uninitialised_home(tmp_path: Path) -> None:
    result = run_cli(
        ["--home", str(tmp_path / "nowhere"), "--passphrase-env", "NOPE", "inbox"], env={}
    )
    assert result.code == 2
    assert "NOPE" in _one_line(result.err)
    result = run_cli(
        ["--home", str(tmp_path / "nowhere"), "--passphrase-env", PASSPHRASE_VAR, "inbox"]
    )
    assert result.code == 2
    assert "agency init" in _one_line(result.err)


def test_unknown_recipient(shared: Partnership) -> None:
    result = shared.school.cli("refer", REFERRAL, "--to", "no-such-agency/dsl")
    assert result.code == 1
    assert _one_line(result.err) == (
        "agency: error: Unknown recipient: no-such-agency is not in the partnership directory"
    )
    result = shared.school.cli("refer", REFERRAL, "--to", "northshire-mash/no-such-box")
    assert result.code == 1
    assert "has no mailbox" in _one_line(result.err)
    # Nothing was queued for either.
    listing = shared.school.cli("--json", "outbox", "list")
    assert listing.json() == {"queued": []}


def test_rejected_basis_prints_findings_and_sends_nothing(
    shared: Partnership, tmp_path: Path
) -> None:
    form = yaml.safe_load(Path(REFERRAL).read_text())
    form["basis"]["art6"] = ["A6_1_f"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(form, default=str))
    before = shared.mash.cli("--json", "inbox").json()["items"]
    result = shared.school.cli("--json", "refer", str(path))
    assert result.code == 1
    assert "L002" in result.err
    problem = result.json()["error"]
    assert problem["code"] == "lawful-basis-rejected"
    assert any(f["rule"] == "L002" for f in problem["findings"])
    assert shared.mash.cli("--json", "inbox").json()["items"] == []
    assert before == []


def test_unreadable_form_and_bad_body(shared: Partnership, tmp_path: Path) -> None:
    result = shared.school.cli("refer", str(tmp_path / "missing.yaml"))
    assert result.code == 2
    assert "no such file" in _one_line(result.err)
    broken = tmp_path / "broken.yaml"
    broken.write_text("to: [unclosed\n")
    result = shared.school.cli("refer", str(broken))
    assert result.code == 2
    assert "not valid YAML or JSON" in _one_line(result.err)
    form = yaml.safe_load(Path(REFERRAL).read_text())
    del form["child"]
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps(form, default=str))
    result = shared.school.cli("refer", str(incomplete))
    assert result.code == 1
    line = _one_line(result.err)
    assert "child" in line
    assert "Maya" not in line


def test_form_without_basis_needs_interactive(shared: Partnership, tmp_path: Path) -> None:
    form = yaml.safe_load(Path(REFERRAL).read_text())
    del form["basis"]
    path = tmp_path / "nobasis.json"
    path.write_text(json.dumps(form, default=str))
    result = shared.school.cli("refer", str(path), stdin="")
    assert result.code == 2
    assert "--interactive" in _one_line(result.err)


def test_interactive_referral_walks_the_basis(shared: Partnership, tmp_path: Path) -> None:
    form = yaml.safe_load(Path(REFERRAL).read_text())
    del form["basis"]
    path = tmp_path / "guided.json"
    path.write_text(json.dumps(form, default=str))
    answers = (
        "\n".join(
            [
                "y",  # health information
                "",  # no other special categories
                "y",  # an allegation
                "A disclosure of harm with a visible injury; the front door must decide today.",
                "Only what the front door needs to assess risk, sent only to them.",
                "Protecting a child from abuse is a substantial public interest.",
                "1",
                "2",  # parent: not asked, alleged perpetrator
                "1",
                "3",  # child: not asked, cannot consent
                "n",
                "1",
                "DSL",  # family not told: would increase risk
                "The risk of harm outweighs the family's expectation of confidence.",
            ]
        )
        + "\n"
    )
    result = shared.school.cli("--json", "refer", str(path), "--interactive", stdin=answers)
    assert result.code == 0, result.err
    sent = result.json()
    assert sent["verdict"]["decision"] in {"accept", "warn"}
    assert sent["relay_sees"]["basis"]["art9_condition"] == "A9_2_g"
    assert sent["relay_sees"]["basis"]["art10_sch1_condition"] == "SCH1_P3_36"


def test_show_unknown_and_ambiguous(shared: Partnership) -> None:
    result = shared.school.cli("show", "abcdef0123")
    assert result.code == 1
    assert "Not found" in _one_line(result.err)
