"""The lawful-basis policy engine: one message in, one verdict out.

Theory of operation
-------------------
Every message on the exchange declares why it may lawfully be shared, in a
*basis tag* (``schemas.lawful_basis``, interchange format of
``shared/policy/README.md``). The same engine runs in three places, on the
same rules, so that they can never disagree:

1. the sender's client, on the full tag, **before** anything is encrypted, so
   an unlawful message never leaves the building and the practitioner sees why;
2. the relay, on the header codes only (``justification_available=False``): it
   cannot read the free-text reasons, so the rules that need them are skipped,
   not failed, and the header-level rules still stop a bad message at the door;
3. the recipient's client and the auditor, on the full tag again after opening.

A request (:class:`PolicyRequest`) is the message kind, the send time, the two
parties (:class:`PartyContext`), an optional :class:`Forwarding` description,
the raw tag, the partnership's :class:`DeploymentPolicy` switches and, when the
caller can see the content, some :class:`MessageFacts`.

:func:`evaluate` parses the tag leniently (``schemas.lawful_basis.parse_basis``
never raises: unknown fields and malformed values become findings X003/X002),
wraps the request in a :class:`~schemas.policy.context.RuleContext`, and runs a
*policy* over it. The default policy is every rule in
:data:`schemas.policy.rules.RULES`, each a small object with a stable id, a level,
a plain-English message and citations, combined with ``AllOf``. Each rule
yields zero or more :class:`Finding` values. The engine then

* drops exact duplicates,
* if ``deployment.reject_policy_as_warn`` is set, reports ``REJECT_POLICY``
  findings as ``WARN_ADVICE`` (the policy model makes those rules
  deployment-switchable; ``REJECT_LAW`` findings are never downgraded), and
* decides: ``reject`` if any finding is at a ``REJECT_*`` level, else ``warn``
  if there is any finding, else ``accept`` (the README rule).

The engine is pure: no I/O, no clock (callers pass ``sent_at``), no environment.
It is deterministic: findings come out in rule-registry order.

Not decided here: the timeliness rules G001-G005 are about threads (was a
referral acknowledged within a working day?), which one message cannot show;
the relay's deadlines code tracks them. L023 and L024 are duties on the system
and the partnership (records of processing, DPIA, processor contracts), not on
a message. See ``schemas.policy.rules`` for the full list and the reasons.

:func:`check_request_json` reads the README request format (``agency policy
check``) and raises :class:`~schemas.problems.InvalidRequest` with a one-line
reason for anything it cannot read; it never raises anything else.
:func:`raise_for_verdict` turns a ``reject`` into
:class:`~schemas.problems.LawfulBasisRejected` carrying the findings.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from schemas.policy.base import Policy
from schemas.policy.context import RuleContext
from schemas.policy.findings import Finding, Level, Verdict, decide
from schemas.policy.request import (
    DeploymentPolicy,
    Forwarding,
    MessageFacts,
    PartyContext,
    PolicyRequest,
    SensitiveIdentity,
)
from schemas.policy.rules import DEFAULT_POLICY
from schemas.problems import ExchangeError, InvalidRequest, LawfulBasisRejected
from schemas.timefmt import parse_time

__all__ = [
    "POLICY_VERSION",
    "DeploymentPolicy",
    "Finding",
    "Forwarding",
    "Level",
    "MessageFacts",
    "PartyContext",
    "PolicyRequest",
    "SensitiveIdentity",
    "Verdict",
    "check_request_json",
    "evaluate",
    "parse_request",
    "raise_for_verdict",
]

#: The rule-set version recorded with every verdict and in every message header.
POLICY_VERSION = "2026.11.1"


def evaluate(request: PolicyRequest, policy: Policy = DEFAULT_POLICY) -> Verdict:
    """Evaluate one message against ``policy`` (every rule by default). Pure; never raises
    for a valid :class:`PolicyRequest`."""
    ctx = RuleContext.from_request(request)
    downgrade = request.deployment.reject_policy_as_warn
    findings: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    for finding in policy.check(ctx):
        if downgrade and finding.level is Level.REJECT_POLICY:
            finding = finding.model_copy(update={"level": Level.WARN_ADVICE})
        key = (finding.rule, finding.level.value, finding.message)
        if key in seen:
            continue
        seen.add(key)
        findings.append(finding)
    return Verdict(decision=decide(findings), policy_version=POLICY_VERSION, findings=findings)


def raise_for_verdict(verdict: Verdict) -> Verdict:
    """Raise :class:`~schemas.problems.LawfulBasisRejected` if the verdict is ``reject``.

    The exception's ``extensions`` carry ``findings`` (README format) and
    ``policy_version``; its ``detail`` names only rule ids, never content.
    Returns the verdict unchanged otherwise, so calls can be chained.
    """
    if verdict.decision != "reject":
        return verdict
    blocking = [f.rule for f in verdict.findings if f.level.value.startswith("REJECT_")]
    detail = "the declared lawful basis fails rule(s) " + ", ".join(dict.fromkeys(blocking))
    raise LawfulBasisRejected(
        detail,
        extensions={
            "findings": [f.to_json_dict() for f in verdict.findings],
            "policy_version": verdict.policy_version,
        },
    )


# -- the README request format -------------------------------------------------------------

_REQUEST_FIELDS = (
    "kind",
    "sent_at",
    "sender",
    "recipient",
    "forwarding",
    "basis",
    "justification_available",
    "facts",
)
_REQUIRED_OBJECTS = ("sender", "recipient", "basis")
_NAME = re.compile(r"^[A-Za-z0-9_]{1,48}$")


def _name(value: object) -> str:
    text = str(value) if isinstance(value, str | int) else ""
    return text if _NAME.fullmatch(text) else "(unprintable name)"


def _validation_reason(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(_name(part) for part in error["loc"])
    message = " ".join(str(error["msg"]).split())
    return f"{where}: {message}" if where else message


def parse_request(data: Any, *, deployment: DeploymentPolicy | None = None) -> PolicyRequest:
    """Read a README-format request into a :class:`PolicyRequest`.

    Raises :class:`~schemas.problems.InvalidRequest` with a one-line reason when
    ``data`` is not such a request (missing ``kind``/``sender``/``recipient``/``basis``,
    wrong types, unknown request fields). The *basis* is not validated here: the
    engine reads it leniently and reports problems as findings.
    """
    if not isinstance(data, dict):
        raise InvalidRequest("the request must be a JSON object")
    for key in data:
        if key not in _REQUEST_FIELDS:
            raise InvalidRequest(f"unknown request field '{_name(key)}'")
    if not isinstance(data.get("kind"), str):
        raise InvalidRequest("the request needs 'kind' (a message kind code)")
    for key in _REQUIRED_OBJECTS:
        if not isinstance(data.get(key), dict):
            raise InvalidRequest(f"the request needs '{key}' (a JSON object)")
    values = dict(data)
    sent_at = values.get("sent_at")
    if sent_at is not None:
        try:
            values["sent_at"] = parse_time(sent_at, field="sent_at")
        except ExchangeError as exc:
            raise InvalidRequest(exc.detail) from None
    values["deployment"] = deployment if deployment is not None else DeploymentPolicy()
    try:
        return PolicyRequest.model_validate(values)
    except ValidationError as exc:
        raise InvalidRequest(_validation_reason(exc)) from None


def check_request_json(data: Any, *, deployment: DeploymentPolicy | None = None) -> Verdict:
    """Evaluate a README-format request (a decoded JSON value).

    Returns a :class:`Verdict` or raises :class:`~schemas.problems.InvalidRequest`;
    never anything else. ``deployment`` is the operator's configuration: it is not
    part of the request a sender writes.
    """
    return evaluate(parse_request(data, deployment=deployment))
