"""What the policy engine says: a :class:`Verdict` made of :class:`Finding` values."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["REJECT_LEVELS", "Decision", "Finding", "Level", "Verdict", "decide"]

Decision = Literal["accept", "warn", "reject"]


class Level(StrEnum):
    """How strongly a rule binds (``policy.md`` section 0)."""

    REJECT_LAW = "REJECT_LAW"
    """A statute or the UK GDPR imposes the rule directly: the message is refused."""
    REJECT_POLICY = "REJECT_POLICY"
    """A platform requirement derived from a legal duty; a deployment may downgrade it."""
    WARN_GUIDANCE = "WARN_GUIDANCE"
    """Statutory guidance (Working Together 2023, KCSIE): warn, allow a recorded override."""
    WARN_ADVICE = "WARN_ADVICE"
    """Non-statutory advice (DfE, ICO) or common practice: warn."""
    INFO = "INFO"
    """Help text only."""


#: Levels that make the decision ``reject``.
REJECT_LEVELS: frozenset[Level] = frozenset({Level.REJECT_LAW, Level.REJECT_POLICY})


class Finding(BaseModel):
    """One rule's objection (or warning) about one message, in plain English."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    level: Level
    message: str
    cite: list[str]

    def to_json_dict(self) -> dict[str, Any]:
        """``{"rule", "level", "message", "cite"}`` as in the README verdict format."""
        return {
            "rule": self.rule,
            "level": str(self.level),
            "message": self.message,
            "cite": list(self.cite),
        }


def decide(findings: list[Finding]) -> Decision:
    """``reject`` if any finding is at a ``REJECT_*`` level, else ``warn`` if any, else ``accept``.

    The README rule; ``Verdict.decision`` is always computed with it.
    """
    if any(f.level in REJECT_LEVELS for f in findings):
        return "reject"
    return "warn" if findings else "accept"


class Verdict(BaseModel):
    """The engine's answer for one message: a decision, the rule-set version and the findings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: Decision
    policy_version: str
    findings: list[Finding]

    @property
    def rejected(self) -> bool:
        """True when the message must not be sent."""
        return self.decision == "reject"

    @property
    def rule_ids(self) -> list[str]:
        """The ids of the rules that produced findings, in order, without repeats."""
        return list(dict.fromkeys(f.rule for f in self.findings))

    def findings_for(self, rule: str) -> list[Finding]:
        """The findings produced by one rule."""
        return [f for f in self.findings if f.rule == rule]

    def to_json_dict(self) -> dict[str, Any]:
        """Exactly ``{"decision", "policy_version", "findings": [...]}`` (README format)."""
        return {
            "decision": self.decision,
            "policy_version": self.policy_version,
            "findings": [f.to_json_dict() for f in self.findings],
        }
