"""docs/policy.md is generated from the engine and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from schemas.policy import RULES
from schemas.policy.reference import render


def test_committed_reference_matches_the_engine() -> None:
    committed = Path(__file__).parents[2].joinpath("docs", "policy.md").read_text()
    assert committed == render(), "run: python -m schemas.policy.reference > docs/policy.md"


def test_every_rule_is_listed() -> None:
    page = render()
    for rule in RULES:
        assert f"| {rule.rule} |" in page
