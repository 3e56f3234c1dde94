"""The lawful-basis policy engine (pure; shared by the sender's client, the relay and the auditor).

Start with :func:`evaluate` (a :class:`PolicyRequest` in, a :class:`Verdict` out) or
:func:`check_request_json` (the README request format). Rules live in
:mod:`schemas.policy.rules`; the composable building blocks in :mod:`schemas.policy.base`;
default bases per organisation type in :mod:`schemas.policy.guidance`.
"""

from __future__ import annotations

from schemas.policy.base import AllOf, AllowAnything, AnyOf, FunctionRule, Policy, Rule, When, rule
from schemas.policy.context import RuleContext, TextState
from schemas.policy.engine import (
    POLICY_VERSION,
    check_request_json,
    evaluate,
    parse_request,
    raise_for_verdict,
)
from schemas.policy.findings import REJECT_LEVELS, Decision, Finding, Level, Verdict, decide
from schemas.policy.guidance import suggest_basis
from schemas.policy.request import (
    DeploymentPolicy,
    Forwarding,
    MessageFacts,
    PartyContext,
    PolicyRequest,
    SensitiveIdentity,
)
from schemas.policy.rules import DEFAULT_POLICY, RULES, RULES_BY_ID, SKIPPED_MODEL_RULES

__all__ = [
    "DEFAULT_POLICY",
    "POLICY_VERSION",
    "REJECT_LEVELS",
    "RULES",
    "RULES_BY_ID",
    "SKIPPED_MODEL_RULES",
    "AllOf",
    "AllowAnything",
    "AnyOf",
    "Decision",
    "DeploymentPolicy",
    "Finding",
    "Forwarding",
    "FunctionRule",
    "Level",
    "MessageFacts",
    "PartyContext",
    "Policy",
    "PolicyRequest",
    "Rule",
    "RuleContext",
    "SensitiveIdentity",
    "TextState",
    "Verdict",
    "When",
    "check_request_json",
    "decide",
    "evaluate",
    "parse_request",
    "raise_for_verdict",
    "rule",
    "suggest_basis",
]
