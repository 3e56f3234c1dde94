"""The referral form: from posted fields to a referral body and a lawful basis.

No I/O here. The web handlers pass the posted form in as ``{name: [values]}``; this
module turns it into the body fields of :class:`schemas.messages.Referral` (checked
against the same model the client seals with, so every error is found before the
lawful-basis steps), guesses the answers of the "what does it contain" step, and
builds the basis tag from the engine's suggestion and the practitioner's answers.
Error messages name the form field and say what to do, never echo what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agency_client.ui.display import (
    ART6_LABELS,
    NOT_SOUGHT_LABELS,
    NOT_TOLD_LABELS,
    SPECIAL_CATEGORY_LABELS,
)
from schemas.codes import ConcernCategory
from schemas.messages import Referral

__all__ = [
    "HOUSEHOLD_ROWS",
    "FormData",
    "basis_from_answers",
    "contents_guess",
    "referral_from_form",
]

#: How many household rows the form offers.
HOUSEHOLD_ROWS = 3

FormData = Mapping[str, list[str]]

_DUMMY_ID = "0" * 32


def one(form: FormData, name: str) -> str:
    """The first value posted for ``name``, stripped ("" when absent)."""
    values = form.get(name) or [""]
    return values[0].strip()


def many(form: FormData, name: str) -> list[str]:
    """Every non-empty value posted for ``name`` (checkboxes)."""
    return [v.strip() for v in form.get(name, []) if v.strip()]


_LABELS: dict[str, str] = {
    "to": "Who the referral is for",
    "child_given_name": "The child's first name",
    "child_family_name": "The child's last name",
    "child_dob": "Date of birth",
    "child_school": "School or setting",
    "child_address_line": "Address",
    "child_town": "Town",
    "child_postcode": "Postcode",
    "concern_categories": "What the concern is about",
    "concern_summary": "The concern",
    "child_words": "The child's own words",
    "child_words_said_to": "Who the child said it to",
    "fact_statement": "What you saw or heard",
    "fact_source": "Who saw or heard it",
    "opinion_statement": "Your professional view",
    "opinion_source": "Whose view it is",
    "facts_vs_opinion_marked": "Fact and opinion",
    "immediate_risk": "Immediate risk",
    "child_location_now": "Where the child is now",
    "safe_to_go_home": "Safe to go home",
    "parents_aware": "Whether the parents or carers know",
    "parents_reason": "Why the parents or carers have not been told",
    "requested_action": "What you are asking the front door to do",
    "sent_by_name": "Your name",
    "sent_by_role": "Your role",
    "sent_by_phone": "Your phone number",
    "sent_by_email": "Your email address",
}
for _i in range(HOUSEHOLD_ROWS):
    _LABELS[f"hh{_i}_name"] = f"Household member {_i + 1}: name"
    _LABELS[f"hh{_i}_relationship"] = f"Household member {_i + 1}: relationship to the child"
    _LABELS[f"hh{_i}_dob"] = f"Household member {_i + 1}: date of birth"


def field_label(name: str) -> str:
    """The label of a form field, for error messages."""
    return _LABELS.get(name, name.replace("_", " ").capitalize())


_REQUIRED: tuple[tuple[str, str], ...] = (
    ("to", "Choose who the referral is for"),
    ("child_given_name", "Enter the child's first name"),
    ("concern_summary", "Describe the concern"),
    ("child_location_now", "Say where the child is now"),
    ("immediate_risk", "Say whether the child is at immediate risk"),
    ("safe_to_go_home", "Say whether it is safe for the child to go home"),
    ("parents_aware", "Say whether the parents or carers know about this referral"),
    ("sent_by_name", "Enter your name"),
    ("sent_by_role", "Enter your role"),
)


def _friendly(message: str) -> str:
    text = message.removeprefix("Value error, ")
    if text.startswith("String should have at most"):
        return "is too long"
    if text.startswith("String should match pattern"):
        return "is not in the expected form"
    if text == "Field required":
        return "is needed"
    return text


def _contact(form: FormData) -> dict[str, str]:
    contact = {"name": one(form, "sent_by_name"), "role": one(form, "sent_by_role")}
    if one(form, "sent_by_phone"):
        contact["phone"] = one(form, "sent_by_phone")
    if one(form, "sent_by_email"):
        contact["email"] = one(form, "sent_by_email")
    return contact


def referral_from_form(
    form: FormData,
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Read the first step of the form.

    Returns ``(recipient, body fields, errors)``: ``errors`` maps form field names to
    plain-English messages and is empty when the fields make a valid referral.
    """
    errors: dict[str, str] = {}
    for name, message in _REQUIRED:
        if not one(form, name):
            errors[name] = message
    if not many(form, "concern_categories"):
        errors["concern_categories"] = "Choose at least one thing the concern is about"
    if one(form, "parents_aware") in {"no", "not_yet"} and not one(form, "parents_reason"):
        errors["parents_reason"] = "Say why the parents or carers have not been told"
    if not one(form, "sent_by_phone") and not one(form, "sent_by_email"):
        errors["sent_by_phone"] = "Give a phone number or an email address for follow-up"

    # where each model path comes from, to point errors at the right field
    where: dict[tuple[str, ...], str] = {
        ("child", "given_name"): "child_given_name",
        ("child", "family_name"): "child_family_name",
        ("child", "date_of_birth"): "child_dob",
        ("child", "school"): "child_school",
        ("child", "address"): "child_address_line",
        ("child", "address", "lines"): "child_address_line",
        ("child", "address", "town"): "child_town",
        ("child", "address", "postcode"): "child_postcode",
        ("concern_categories",): "concern_categories",
        ("concern_summary",): "concern_summary",
        ("child_location_now",): "child_location_now",
        ("safe_to_go_home",): "safe_to_go_home",
        ("immediate_risk",): "immediate_risk",
        ("parents_aware",): "parents_reason",
        ("requested_action",): "requested_action",
        ("sent_by",): "sent_by_phone",
        ("sent_by", "name"): "sent_by_name",
        ("sent_by", "role"): "sent_by_role",
        ("sent_by", "phone"): "sent_by_phone",
        ("sent_by", "email"): "sent_by_email",
        ("referrer_contact_for_followup",): "sent_by_phone",
    }

    child: dict[str, Any] = {"given_name": one(form, "child_given_name")}
    for key, name in (
        ("family_name", "child_family_name"),
        ("date_of_birth", "child_dob"),
        ("school", "child_school"),
    ):
        if one(form, name):
            child[key] = one(form, name)
    if one(form, "child_address_line"):
        address: dict[str, Any] = {"lines": [one(form, "child_address_line")]}
        if one(form, "child_town"):
            address["town"] = one(form, "child_town")
        if one(form, "child_postcode"):
            address["postcode"] = one(form, "child_postcode")
        child["address"] = address

    household: list[dict[str, Any]] = []
    for i in range(HOUSEHOLD_ROWS):
        name = one(form, f"hh{i}_name")
        relationship = one(form, f"hh{i}_relationship")
        if not name and not relationship:
            continue
        if not name or not relationship:
            errors[f"hh{i}_name" if not name else f"hh{i}_relationship"] = (
                f"Give both the name and the relationship of household member {i + 1}"
            )
        member: dict[str, Any] = {
            "name": name or "-",
            "relationship": relationship or "-",
            "lives_with_child": one(form, f"hh{i}_lives_with") == "yes",
            "parental_responsibility": one(form, f"hh{i}_pr") or "unknown",
            "alleged_perpetrator": one(form, f"hh{i}_alleged") == "yes",
        }
        where[("family_and_household", str(len(household)), "name")] = f"hh{i}_name"
        where[("family_and_household", str(len(household)), "relationship")] = f"hh{i}_relationship"
        household.append(member)

    fields: dict[str, Any] = {
        "child": child,
        "family_and_household": household,
        "concern_categories": many(form, "concern_categories"),
        "concern_summary": one(form, "concern_summary"),
        "facts_vs_opinion_marked": one(form, "facts_vs_opinion_marked") == "yes",
        "immediate_risk": one(form, "immediate_risk") == "yes",
        "child_location_now": one(form, "child_location_now"),
        "safe_to_go_home": one(form, "safe_to_go_home") or "unknown",
        "sent_by": _contact(form),
        "referrer_contact_for_followup": _contact(form),
    }
    aware = one(form, "parents_aware") or "yes"
    fields["parents_aware"] = {"status": aware}
    if aware != "yes":
        fields["parents_aware"]["reason"] = one(form, "parents_reason") or "-"
    if one(form, "child_words"):
        words = {
            "words": one(form, "child_words"),
            "said_to": one(form, "child_words_said_to") or "the referrer",
        }
        if one(form, "child_words_context"):
            words["context"] = one(form, "child_words_context")
        fields["child_words"] = [words]
        where[("child_words", "0", "words")] = "child_words"
        where[("child_words", "0", "said_to")] = "child_words_said_to"
    observations: list[dict[str, Any]] = []
    for kind in ("fact", "opinion"):
        statement = one(form, f"{kind}_statement")
        if statement:
            where[("observations", str(len(observations)), "statement")] = f"{kind}_statement"
            where[("observations", str(len(observations)), "source")] = f"{kind}_source"
            observations.append(
                {
                    "statement": statement,
                    "fact_or_opinion": kind,
                    "source": one(form, f"{kind}_source") or fields["sent_by"]["role"] or "-",
                }
            )
    if observations:
        fields["observations"] = observations
    if one(form, "requested_action"):
        fields["requested_action"] = one(form, "requested_action")

    recipient = one(form, "to")
    try:
        Referral.model_validate(
            {
                **fields,
                "kind": "REFERRAL",
                "message_id": _DUMMY_ID,
                "thread_id": _DUMMY_ID,
                "sender_agency": "sender",
                "recipient_agencies": ["recipient"],
            }
        )
    except ValidationError as exc:
        for problem in exc.errors(include_url=False, include_input=False, include_context=False):
            location = tuple(str(part) for part in problem["loc"])
            name = ""
            for size in range(len(location), 0, -1):
                if location[:size] in where:
                    name = where[location[:size]]
                    break
            name = name or "concern_summary"
            if name not in errors:
                errors[name] = f"{field_label(name)} {_friendly(problem['msg'])}"
    return recipient, fields, errors


_HEALTH_CONCERNS = {
    "physical_abuse",
    "sexual_abuse",
    "self_harm",
    "female_genital_mutilation",
    "neglect",
}


def contents_guess(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Likely answers to "what does the referral contain?", from the first step.

    An injury or abuse concern usually means health information; a household member
    marked as the alleged abuser means an allegation of an offence.
    """
    concerns = set(fields.get("concern_categories", []))
    special = bool(concerns & _HEALTH_CONCERNS)
    criminal = any(m.get("alleged_perpetrator") for m in fields.get("family_and_household", []))
    return {
        "special": special,
        "special_categories": ["health"] if special else [],
        "criminal": criminal,
    }


def contents_from_form(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """Read the "what does it contain" step."""
    errors: dict[str, str] = {}
    special = one(form, "special")
    criminal = one(form, "criminal")
    if special not in {"yes", "no"}:
        errors["special"] = "Say whether the referral includes sensitive information"
    if criminal not in {"yes", "no"}:
        errors["criminal"] = "Say whether the referral includes an allegation of an offence"
    chosen = [c for c in many(form, "special_categories") if c in SPECIAL_CATEGORY_LABELS]
    if special == "yes" and not chosen:
        errors["special_categories"] = "Choose which kinds of sensitive information it includes"
    return {
        "special": special == "yes",
        "special_categories": chosen if special == "yes" else [],
        "criminal": criminal == "yes",
    }, errors


def data_categories(contents: Mapping[str, Any]) -> list[str]:
    """The data categories for the engine's suggestion."""
    categories = ["personal"]
    if contents.get("special"):
        categories.append("special_category")
    if contents.get("criminal"):
        categories.append("criminal_offence")
    return categories


_REASON_FIELDS = (
    "necessity",
    "proportionality",
    "substantial_public_interest",
    "public_interest",
)


def basis_from_answers(
    suggestion: Mapping[str, Any],
    contents: Mapping[str, Any],
    form: FormData,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The basis tag from the engine's suggestion and the "why you may share" step.

    Only missing answers are errors here; whether the basis is lawful is the policy
    engine's verdict, shown on the next step.
    """
    errors: dict[str, str] = {}
    basis: dict[str, Any] = {
        k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
        for k, v in suggestion["basis"].items()
    }
    wanted = {item["field"] for item in suggestion["to_complete"]}
    art6 = one(form, "art6")
    if art6 not in ART6_LABELS:
        errors["art6"] = "Choose the lawful basis for sharing"
    else:
        basis["art6"] = [art6]
        if art6 == "A6_1_f":
            basis.pop("annex1_condition", None)
            basis["lia_reference"] = one(form, "lia_reference") or None
            if basis["lia_reference"] is None:
                del basis["lia_reference"]
        elif art6 == "A6_1_ea":
            basis.setdefault("annex1_condition", "AX1_6")
        else:
            basis.pop("annex1_condition", None)
    justification: dict[str, Any] = dict(basis.get("justification", {}))
    citation = one(form, "statutory_function_citation")
    if citation:
        justification["statutory_function_citation"] = citation
    else:
        justification.pop("statutory_function_citation", None)
    for name in _REASON_FIELDS:
        text = one(form, name)
        if text:
            justification[name] = text
        elif f"justification.{name}" in wanted:
            errors[name] = "Write a sentence or two"
    basis["justification"] = justification
    if contents.get("special"):
        basis["special_categories"] = list(contents.get("special_categories") or ["health"])
    if "consent" in wanted:
        consent = []
        for role in ("parent_or_pr_holder", "child"):
            state = one(form, f"consent_{role}")
            entry: dict[str, Any] = {"data_subject_role": role, "state": state or "not_sought"}
            if state in {"", "not_sought"}:
                reason = one(form, f"consent_{role}_reason")
                if reason not in NOT_SOUGHT_LABELS:
                    errors[f"consent_{role}_reason"] = "Say why consent was not asked for"
                entry["not_sought_reason"] = reason or "would_increase_risk_to_child"
            elif state in {"given", "refused"}:
                date = one(form, f"consent_{role}_date")
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
                    errors[f"consent_{role}_date"] = "Give the date as a date, like 2026-05-22"
                entry["date"] = date
                if state == "given":
                    entry["given_by"] = role
                    entry["scope"] = "Sharing with the front door for this referral"
                    entry["record_ref"] = one(form, f"consent_{role}_record") or "Not recorded"
                else:
                    entry["refused_by"] = role
            else:
                errors[f"consent_{role}"] = "Choose an answer"
            consent.append(entry)
        basis["consent"] = consent
    if "transparency" in wanted:
        told = one(form, "told_family")
        if told == "yes":
            basis["transparency"] = {"informed": "yes"}
        elif told == "no":
            reason = one(form, "not_told_reason")
            if reason not in NOT_TOLD_LABELS:
                errors["not_told_reason"] = "Say why the family has not been told"
            who = one(form, "not_told_authorised_by")
            if not who:
                errors["not_told_authorised_by"] = "Say who agreed not to tell the family"
            basis["transparency"] = {
                "informed": "no",
                "reason_not_informed": reason or "would_increase_risk_to_child",
                "decision_authorised_by": who or "-",
            }
        else:
            errors["told_family"] = "Say whether the family has been told"
    if one(form, "retention_class"):
        basis["retention_class"] = one(form, "retention_class")
    basis.setdefault("onward_disclosure", "permitted")
    return basis, errors


def concern_choices() -> list[str]:
    """Concern category codes in the order the form shows them."""
    return [str(c) for c in ConcernCategory]
