"""Practitioner forms: reading them from YAML or JSON, and the guided lawful-basis walk.

A form is a message body without its routing ids, plus ``to`` (``agency`` or
``agency/mailbox``, or a list) and ``basis`` (a basis tag in the interchange format)::

    to: northshire-mash/front-door
    basis: {regime: UK_GDPR, art6: [A6_1_e], ...}
    sent_by: {name: ..., role: ..., phone: ...}
    child: {given_name: ..., date_of_birth: 2019-03-14, ...}
    concern_categories: [physical_abuse]
    ...

The client fills in ``kind``, ``message_id``, ``thread_id``, ``sender_agency`` and
``recipient_agencies``. When ``basis`` is missing, the guided walk
(:func:`guided_basis`) starts from the engine's suggestion for the two organisation
types (:func:`schemas.policy.guidance.suggest_basis`), explains it in plain English and
asks only for what the practitioner must decide or write.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from schemas.policy.guidance import suggest_basis
from schemas.problems import InvalidRequest

__all__ = [
    "Prompter",
    "default_reply_basis",
    "guided_basis",
    "load_form",
    "read_document",
    "split_form",
]


def _jsonable(value: Any) -> Any:
    """YAML dates and times become the strings the body models expect."""
    if isinstance(value, _dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
        return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def read_document(source: str, *, stdin: TextIO | None = None, what: str = "form") -> Any:
    """Read a YAML or JSON document from a file, or from standard input when ``source`` is ``-``.

    :raises InvalidRequest: with one line naming the file (never its content).
    """
    name = "standard input" if source == "-" else source
    try:
        text = (stdin or sys.stdin).read() if source == "-" else Path(source).read_text("utf-8")
    except FileNotFoundError:
        raise InvalidRequest(f"cannot read {what} {name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {what} {name}: {exc.__class__.__name__}") from None
    try:
        if source.endswith(".json"):
            return json.loads(text)
        return _jsonable(yaml.safe_load(text))
    except (ValueError, yaml.YAMLError):
        raise InvalidRequest(f"cannot read {what} {name}: not valid YAML or JSON") from None


def load_form(source: str, *, stdin: TextIO | None = None) -> dict[str, Any]:
    """Read a form; it must be a mapping."""
    data = read_document(source, stdin=stdin)
    if not isinstance(data, dict):
        raise InvalidRequest("a form must be a mapping of field names to values")
    return data


def split_form(form: Mapping[str, Any]) -> tuple[list[str], dict[str, Any] | None, dict[str, Any]]:
    """Split a form into (recipients, basis or ``None``, body fields)."""
    to = form.get("to")
    if isinstance(to, str):
        recipients = [to]
    elif isinstance(to, list) and all(isinstance(t, str) for t in to):
        recipients = list(to)
    else:
        recipients = []
    basis = form.get("basis")
    if basis is not None and not isinstance(basis, dict):
        raise InvalidRequest("the form's basis must be a mapping (a basis tag)")
    fields = {k: v for k, v in form.items() if k not in {"to", "basis", "kind"}}
    return recipients, basis, fields


# -- reply bases -------------------------------------------------------------------------------

_REPLY_TEXTS: Mapping[str, Mapping[str, str]] = {
    "ACKNOWLEDGEMENT": {
        "necessity": (
            "The referrer needs to know the referral arrived and whom to contact, so that the "
            "child is not left without a response."
        ),
        "proportionality": (
            "Only the acknowledgement, a reference and a contact are shared; no new personal "
            "data about the child or family."
        ),
    },
    "DECISION_FEEDBACK": {
        "necessity": (
            "Working Together 2023 requires feedback to the referrer on the decision so that "
            "they can support and protect the child in their setting."
        ),
        "proportionality": (
            "Only the decision, what the referrer needs to do and who to contact are shared; "
            "no assessment content or third-party details."
        ),
        "public_interest": (
            "Protecting the child from significant harm outweighs the family's expectation of "
            "confidentiality for this limited feedback."
        ),
    },
    "REQUEST_FOR_INFORMATION": {
        "necessity": (
            "The information is needed to decide, within one working day, whether the child is "
            "suffering or likely to suffer significant harm."
        ),
        "proportionality": (
            "The request names only the child and household and asks only for what bears on "
            "the risk to the child."
        ),
        "public_interest": (
            "Protecting the child from significant harm outweighs the duty of confidence owed "
            "to the family for these checks."
        ),
        "substantial_public_interest": (
            "Safeguarding a child at risk of significant harm is a substantial public interest "
            "(DPA 2018 Sch 1 para 18)."
        ),
    },
    "RESPONSE_TO_RFI": {
        "necessity": (
            "Children's services need this to decide on s.47 enquiries today; without it the "
            "child may remain at risk."
        ),
        "proportionality": (
            "Only records bearing on the risk to the child are shared, and only with the front "
            "door that asked."
        ),
        "public_interest": (
            "Protecting the child from significant harm outweighs the duty of confidence owed "
            "to the adults concerned."
        ),
        "substantial_public_interest": (
            "Safeguarding a child at risk of significant harm is a substantial public interest "
            "(DPA 2018 Sch 1 para 18)."
        ),
    },
}


def default_reply_basis(
    *,
    kind: str,
    sender_org_type: str,
    recipient_org_type: str,
    data_categories: tuple[str, ...] = ("personal",),
    special_categories: tuple[str, ...] = (),
    texts: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A complete basis for a routine reply (acknowledgement, decision, request, response).

    Starts from the engine's suggestion for the two organisation types, fills the written
    reasons with standard professional wording (``texts`` overrides any of them) and the
    choices a reply of this kind usually carries. The result still goes through the
    policy check before sealing.
    """
    suggestion = suggest_basis(sender_org_type, recipient_org_type, kind, list(data_categories))
    basis: dict[str, Any] = dict(suggestion["basis"])
    justification: dict[str, Any] = dict(basis.get("justification", {}))
    for name, text in _REPLY_TEXTS.get(kind, {}).items():
        justification.setdefault(name, text)
    for name, text in (texts or {}).items():
        if text:
            justification[name] = text
    if "special_categories" in basis:
        basis["special_categories"] = list(special_categories) or ["health"]
    wanted = {item["field"] for item in suggestion["to_complete"]}
    if "transparency" in wanted and "transparency" not in basis:
        basis["transparency"] = {
            "informed": "no",
            "reason_not_informed": "would_increase_risk_to_child",
            "decision_authorised_by": "practitioner",
        }
    if "consent" in wanted and "consent" not in basis:
        basis["consent"] = [
            {
                "data_subject_role": "parent_or_pr_holder",
                "state": "not_sought",
                "not_sought_reason": "would_prejudice_enquiry_or_investigation",
            }
        ]
    if "retention_class" in wanted and "retention_class" not in basis:
        basis["retention_class"] = "CSC_CIN_CP"
    basis.setdefault("onward_disclosure", "permitted")
    basis["justification"] = justification
    return basis


# -- the guided walk ---------------------------------------------------------------------------


class Prompter:
    """Asks questions on a terminal (or any pair of streams, for tests)."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout

    def say(self, text: str = "") -> None:
        """Print a line of explanation."""
        print(text, file=self._out)

    def ask(self, question: str, default: str | None = None) -> str:
        """Ask one question; an empty answer takes ``default``."""
        suffix = f" [{default}]" if default else ""
        self._out.write(f"{question}{suffix}: ")
        self._out.flush()
        line = self._in.readline()
        if line == "":
            raise InvalidRequest("the questions ended before the form was complete")
        answer = line.strip()
        return answer or (default or "")

    def yes(self, question: str, default: bool = False) -> bool:
        """A yes/no question."""
        answer = self.ask(question + " (y/n)", "y" if default else "n").lower()
        return answer.startswith("y")

    def choose(self, question: str, options: list[tuple[str, str]], default: str) -> str:
        """Pick one code from ``options`` (code, plain-English label)."""
        for index, (code, label) in enumerate(options, start=1):
            self.say(f"  {index}. {label} ({code})")
        while True:
            answer = self.ask(question, default)
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1][0]
            if answer in {code for code, _ in options}:
                return answer
            self.say("  Please answer with one of the numbers above.")


_NOT_SOUGHT = [
    ("would_increase_risk_to_child", "asking would put the child at more risk"),
    ("data_subject_is_alleged_perpetrator", "they are the person alleged to have caused harm"),
    ("cannot_be_given_age_or_capacity", "they cannot give consent (age or capacity)"),
    ("would_prejudice_enquiry_or_investigation", "asking would prejudice an enquiry"),
    ("urgency_delay_would_cause_harm", "there is no time: delay would cause harm"),
    ("cannot_reasonably_obtain_unreachable", "they cannot be reached"),
]


def guided_basis(
    prompter: Prompter,
    *,
    kind: str,
    sender_org_type: str,
    recipient_org_type: str,
    check: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Walk the practitioner through the lawful basis, using the engine's rules.

    Asks which kinds of information are included, explains the suggested basis, asks for
    the written reasons, consent and transparency, then (when ``check`` is given) runs the
    policy check and shows its findings, offering to revise until it is not rejected.
    """
    prompter.say("")
    prompter.say("Lawful basis: why you may share this.")
    categories = ["personal"]
    special: list[str] = []
    if prompter.yes("Does it include health or other sensitive (special category) information?"):
        categories.append("special_category")
        special = ["health"]
        other = prompter.ask(
            "Which kinds, besides health? (comma-separated codes, blank for none)", ""
        )
        special += [s.strip() for s in other.split(",") if s.strip()]
    if prompter.yes("Does it include an allegation that someone committed an offence?"):
        categories.append("criminal_offence")
    suggestion = suggest_basis(sender_org_type, recipient_org_type, kind, categories)
    basis: dict[str, Any] = dict(suggestion["basis"])
    prompter.say("")
    for paragraph in str(suggestion["explanation"]).split("\n\n"):
        prompter.say(paragraph)
        prompter.say("")
    if special:
        basis["special_categories"] = special
    justification: dict[str, Any] = dict(basis.get("justification", {}))
    for item in suggestion["to_complete"]:
        name = item["field"]
        if name.startswith("justification."):
            justification[name.split(".", 1)[1]] = prompter.ask(item["prompt"])
        elif name == "consent":
            basis["consent"] = _ask_consent(prompter)
        elif name == "transparency":
            basis["transparency"] = _ask_transparency(prompter)
        elif name == "retention_class":
            basis["retention_class"] = prompter.ask(item["prompt"], "CSC_CIN_CP")
        elif name == "request_ref":
            basis["request_ref"] = prompter.ask(item["prompt"])
    basis["justification"] = justification
    basis.setdefault("onward_disclosure", "permitted")
    if check is None:
        return basis
    while True:
        verdict = check(basis)
        findings = verdict.findings
        prompter.say("")
        prompter.say(f"Policy check: {verdict.decision}.")
        for finding in findings:
            prompter.say(f"  [{finding.rule} {finding.level}] {finding.message}")
        if verdict.decision != "reject":
            return basis
        if not prompter.yes("Revise the written reasons and try again?", True):
            return basis
        for name in (
            "necessity",
            "proportionality",
            "substantial_public_interest",
            "public_interest",
        ):
            if name in justification:
                justification[name] = prompter.ask(f"{name.replace('_', ' ')}", justification[name])
        basis["justification"] = justification


def _ask_consent(prompter: Prompter) -> list[dict[str, Any]]:
    entries = []
    for role, label in (("parent_or_pr_holder", "the parents or carers"), ("child", "the child")):
        prompter.say(f"Consent of {label}:")
        state = prompter.choose(
            "Was it asked?",
            [("not_sought", "not asked"), ("given", "given"), ("refused", "refused")],
            "not_sought",
        )
        entry: dict[str, Any] = {"data_subject_role": role, "state": state}
        if state == "not_sought":
            entry["not_sought_reason"] = prompter.choose("Why not?", _NOT_SOUGHT, "1")
        elif state == "refused":
            entry["refused_by"] = role
            entry["date"] = prompter.ask("Date refused (YYYY-MM-DD)")
        else:
            entry["given_by"] = role
            entry["date"] = prompter.ask("Date given (YYYY-MM-DD)")
            entry["scope"] = prompter.ask("What they agreed to")
            entry["record_ref"] = prompter.ask("Where the consent is recorded")
        entries.append(entry)
    return entries


def _ask_transparency(prompter: Prompter) -> dict[str, Any]:
    if prompter.yes("Has the family been told about this sharing?"):
        return {"informed": "yes"}
    reason = prompter.choose(
        "Why not?",
        [
            ("would_increase_risk_to_child", "telling them would increase the risk to the child"),
            (
                "would_prejudice_crime_prevention_or_police_investigation",
                "it would prejudice a police investigation",
            ),
            ("risk_to_another_person", "it would put someone else at risk"),
            ("cannot_locate", "they cannot be found"),
        ],
        "1",
    )
    who = prompter.ask("Who authorised not telling them (role)", "DSL")
    return {"informed": "no", "reason_not_informed": reason, "decision_authorised_by": who}
