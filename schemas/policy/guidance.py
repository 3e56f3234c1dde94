"""Default lawful bases per organisation type, for the guided referral form.

Encodes ``policy.md`` section 7 ("Design implications"): a public body shares
under public task (Art 6(1)(e)) citing the law that gives it its safeguarding
function; an independent school, nursery or charity uses recognised legitimate
interests (Art 6(1)(ea)) with the Annex 1 safeguarding condition; special
category data goes under Art 9(2)(g) with Sch 1 para 18; an allegation about an
adult (criminal offence data) under Sch 1 para 36 built on para 18.

A suggestion is a starting point the practitioner confirms and completes (the
written reasons, the consent record, whether the family was told). It is never
applied silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from schemas import codes
from schemas.codes import PUBLIC_AUTHORITY_ORG_TYPES
from schemas.problems import InvalidRequest

__all__ = [
    "ORG_LABELS",
    "STATUTORY_FUNCTIONS",
    "StatutoryFunction",
    "suggest_basis",
]

#: Plain-English names of organisation types, used in messages ("A maintained school").
ORG_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "local_authority_childrens_services": "A council's children's services",
        "local_authority_other": "A council",
        "maintained_school": "A maintained school",
        "academy_or_free_school": "An academy or free school",
        "fe_college": "A further education college",
        "nhs_trust": "An NHS trust",
        "icb": "An integrated care board",
        "gp_practice_nhs_contract": "A GP practice doing NHS work",
        "police": "A police force",
        "probation": "The probation service",
        "youth_offending_team": "A youth offending team",
        "independent_school": "An independent school",
        "private_or_voluntary_nursery": "A private or voluntary nursery",
        "childminder": "A childminder",
        "charity_vcs": "A charity or voluntary organisation",
        "housing_association": "A housing association",
        "sports_club": "A sports club",
        "faith_organisation": "A faith organisation",
    }
)


@dataclass(frozen=True, slots=True)
class StatutoryFunction:
    """The law that gives an organisation type its safeguarding function."""

    gateways: tuple[str, ...]
    citation: str
    why: str


G = codes.Gateway

#: The safeguarding function each organisation type can cite (``policy.md`` sections 2 and 7).
STATUTORY_FUNCTIONS: Mapping[str, StatutoryFunction] = MappingProxyType(
    {
        "maintained_school": StatutoryFunction(
            (G.EA2002_S175, G.CA2004_S10),
            "Education Act 2002 s.175(2)",
            "The governing body of a maintained school must make sure its functions are "
            "carried out with a view to safeguarding and promoting the welfare of its pupils.",
        ),
        "academy_or_free_school": StatutoryFunction(
            (G.ISSR2014_P7,),
            "Education (Independent School Standards) Regulations 2014, Schedule Part 3 para 7",
            "An academy's proprietor must make and carry out arrangements to safeguard and "
            "promote the welfare of its pupils (formerly Education Act 2002 s.157).",
        ),
        "fe_college": StatutoryFunction(
            (G.EA2002_S175,),
            "Education Act 2002 s.175(3)",
            "A further education institution must carry out its functions with a view to "
            "safeguarding and promoting the welfare of its students under 18.",
        ),
        "local_authority_childrens_services": StatutoryFunction(
            (G.CA1989_S17, G.CA1989_S47),
            "Children Act 1989 s.17 and s.47",
            "The council must safeguard and promote the welfare of children in need (s.17) and "
            "make enquiries where it suspects a child is suffering significant harm (s.47).",
        ),
        "local_authority_other": StatutoryFunction(
            (G.CA2004_S11,),
            "Children Act 2004 s.11",
            "The council must carry out its functions having regard to the need to safeguard "
            "and promote the welfare of children.",
        ),
        "nhs_trust": StatutoryFunction(
            (G.CA2004_S11,),
            "Children Act 2004 s.11",
            "NHS bodies must carry out their functions having regard to the need to safeguard "
            "and promote the welfare of children.",
        ),
        "icb": StatutoryFunction(
            (G.CA2004_S11,),
            "Children Act 2004 s.11",
            "An integrated care board must carry out its functions having regard to the need to "
            "safeguard and promote the welfare of children.",
        ),
        "gp_practice_nhs_contract": StatutoryFunction(
            (G.CA2004_S11,),
            "Children Act 2004 s.11 (as a provider of NHS services)",
            "NHS services must be provided having regard to the need to safeguard and promote "
            "the welfare of children.",
        ),
        "police": StatutoryFunction(
            (G.CA2004_S11,),
            "Children Act 2004 s.11",
            "The chief officer of police must carry out the force's functions having regard to "
            "the need to safeguard and promote the welfare of children.",
        ),
        "probation": StatutoryFunction(
            (G.CA2004_S11,),
            "Children Act 2004 s.11",
            "The probation service must carry out its functions having regard to the need to "
            "safeguard and promote the welfare of children.",
        ),
        "youth_offending_team": StatutoryFunction(
            (G.CA2004_S11,),
            "Children Act 2004 s.11",
            "A youth offending team must carry out its functions having regard to the need to "
            "safeguard and promote the welfare of children.",
        ),
        "independent_school": StatutoryFunction(
            (G.ISSR2014_P7,),
            "Education (Independent School Standards) Regulations 2014, Schedule Part 3 para 7",
            "An independent school's proprietor must make and carry out arrangements to "
            "safeguard and promote the welfare of its pupils.",
        ),
    }
)

_NON_PUBLIC_SENDERS = frozenset(
    {
        "independent_school",
        "private_or_voluntary_nursery",
        "childminder",
        "charity_vcs",
        "housing_association",
        "sports_club",
        "faith_organisation",
    }
)

_RETENTION_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "maintained_school": "SCHOOL_CP_DOB_PLUS_25",
        "academy_or_free_school": "SCHOOL_CP_DOB_PLUS_25",
        "independent_school": "SCHOOL_CP_DOB_PLUS_25",
        "local_authority_childrens_services": "CSC_CIN_CP",
    }
)

_PROMPTS: Mapping[str, str] = MappingProxyType(
    {
        "justification.necessity": "Why must this information be shared, and why now?",
        "justification.proportionality": (
            "Why this much information, and why this recipient? Leave out anything they do not "
            "need."
        ),
        "justification.substantial_public_interest": (
            "Why is protecting this child a substantial public interest here?"
        ),
        "justification.public_interest": (
            "Why does protecting the child outweigh keeping this information confidential?"
        ),
        "consent": (
            "For each person the information is about, say whether you asked their consent and, "
            "if not, why not."
        ),
        "transparency": (
            "Say whether the family has been told about this sharing; if not, why not and who "
            "agreed that."
        ),
        "special_categories": (
            "List the kinds of sensitive information included (for example health)."
        ),
        "retention_class": "Choose the retention class from your retention policy.",
        "request_ref": "Give the reference of the request you are answering.",
        "justification.request_statement_public_task": (
            "Copy the requester's statement that they need the information for their public task."
        ),
        "justification.annex1_p1_statement": (
            "Say that you need the information for your public task and which law sets that task "
            "out, so that the recipient can lawfully answer."
        ),
    }
)


def _known(vocabulary: type[StrEnum], value: str) -> bool:
    return value in {member.value for member in vocabulary}


def suggest_basis(
    sender_org_type: str,
    recipient_org_type: str,
    kind: str,
    data_categories: Iterable[str],
) -> dict[str, Any]:
    """Suggest a basis tag for a message, with a plain-English explanation.

    Returns ``{"basis": {...}, "explanation": str, "to_complete": [{"field", "prompt"}]}``.
    ``basis`` is a README-format tag (codes plus the statutory citation where one
    applies); ``to_complete`` lists what the practitioner still has to write or choose.
    Raises :class:`~schemas.problems.InvalidRequest` for an unknown organisation
    type, message kind or data category, or for a sender that does not share
    safeguarding information (the auditor, the relay).
    """
    if not _known(codes.OrgType, sender_org_type) or sender_org_type not in ORG_LABELS:
        raise InvalidRequest("no default basis for this sending organisation type")
    if not _known(codes.OrgType, recipient_org_type):
        raise InvalidRequest("unknown recipient organisation type")
    if not _known(codes.MessageKind, kind):
        raise InvalidRequest("unknown message kind")
    categories = list(dict.fromkeys(data_categories))
    if not all(_known(codes.DataCategory, c) for c in categories):
        raise InvalidRequest("unknown data category")
    if codes.DataCategory.PERSONAL not in categories:
        categories.insert(0, codes.DataCategory.PERSONAL.value)

    special = codes.DataCategory.SPECIAL_CATEGORY in categories
    criminal = codes.DataCategory.CRIMINAL_OFFENCE in categories
    public = sender_org_type in PUBLIC_AUTHORITY_ORG_TYPES
    recipient_public = recipient_org_type in PUBLIC_AUTHORITY_ORG_TYPES
    function = STATUTORY_FUNCTIONS.get(sender_org_type)
    label = ORG_LABELS[sender_org_type]

    basis: dict[str, Any] = {"regime": codes.Regime.UK_GDPR.value}
    justification: dict[str, str] = {}
    explanation: list[str] = []
    to_complete: list[str] = ["justification.necessity"]

    # Article 6
    if public:
        basis["art6"] = [codes.Art6Basis.A6_1_E.value]
        if function is not None:
            justification["statutory_function_citation"] = function.citation
        explanation.append(
            f"{label} is a public authority, so it shares safeguarding information under "
            "'public task' (UK GDPR Art 6(1)(e)). It cannot use 'legitimate interests' for this "
            "work. Public task needs a basis in law: "
            + (function.why if function else "cite the law that gives you the function.")
        )
        to_complete.append("justification.proportionality")
    else:
        annex1 = codes.Annex1Condition.AX1_6
        if kind == codes.MessageKind.RESPONSE_TO_RFI and recipient_public:
            annex1 = codes.Annex1Condition.AX1_1
            to_complete += ["request_ref", "justification.request_statement_public_task"]
            explanation.append(
                f"{label} is not a public authority. When a public body asks for information it "
                "needs for its public task, you can answer under 'recognised legitimate "
                "interests' (UK GDPR Art 6(1)(ea)), Annex 1 paragraph 1. Keep their request and "
                "its statement that the information is needed for their public task."
            )
        else:
            explanation.append(
                f"{label} is not a public authority, so it can share under 'recognised "
                "legitimate interests' (UK GDPR Art 6(1)(ea)) using the Annex 1 safeguarding "
                "condition (paragraph 6): protecting a child or an adult at risk from harm. "
                "There is no balancing test, but sharing must still be necessary. 'Legitimate "
                "interests' (Art 6(1)(f)) with a written assessment is the alternative."
            )
        basis["art6"] = [codes.Art6Basis.A6_1_EA.value]
        basis["annex1_condition"] = annex1.value
        if function is not None:
            explanation.append(
                "If you are carrying out a legal duty (" + function.citation + "), "
                "'public task' (Art 6(1)(e)) is also available."
            )

    basis["data_categories"] = categories
    gateways: list[str] = [str(g) for g in function.gateways] if function else []

    # Special category and criminal offence data
    if special:
        basis["special_categories"] = []
        basis["art9_condition"] = codes.Art9Condition.A9_2_G.value
        basis["sch1_condition"] = codes.Sch1Condition.SCH1_P2_18.value
        to_complete += ["special_categories", "justification.substantial_public_interest"]
        explanation.append(
            "The message includes sensitive ('special category') information such as health. "
            "That needs a second condition: Art 9(2)(g) substantial public interest, met by the "
            "safeguarding condition in the Data Protection Act 2018, Schedule 1 paragraph 18. "
            "It applies when you cannot get consent, cannot reasonably be expected to, or "
            "asking would put the child at risk; your organisation needs an appropriate policy "
            "document."
        )
        if sender_org_type in {"nhs_trust", "gp_practice_nhs_contract", "icb"}:
            explanation.append(
                "Health bodies may instead use Art 9(2)(h) with Schedule 1 paragraph 2 for "
                "health and care purposes, if a health professional is responsible."
            )
    if criminal:
        basis["art10_sch1_condition"] = codes.Sch1Condition.SCH1_P3_36.value
        basis["art10_underlying_condition"] = codes.Sch1Condition.SCH1_P2_18.value
        explanation.append(
            "An allegation that someone committed an offence counts as criminal offence data "
            "(DPA 2018 s.11(2)). Schedule 1 paragraph 36 covers it, using the paragraph 18 "
            "safeguarding condition."
        )
        if recipient_org_type == codes.OrgType.POLICE:
            explanation.append(
                "When reporting to the police, Schedule 1 paragraph 10 (preventing or detecting "
                "an unlawful act) may fit better."
            )
    if special or criminal or basis.get("annex1_condition") == codes.Annex1Condition.AX1_6:
        basis["p18_purpose"] = codes.P18Purpose.PROTECT_FROM_HARM.value
        basis["data_subject_category"] = codes.DataSubjectCategory.UNDER_18.value
        to_complete.append("consent")

    # Kind-specific advice
    if kind == codes.MessageKind.REQUEST_FOR_INFORMATION and not recipient_public:
        to_complete.append("justification.annex1_p1_statement")
        explanation.append(
            "You are asking an organisation that is not a public authority. Say that you need "
            "the information for your public task and which law sets it out (UK GDPR Annex 1 "
            "paragraph 1), so that they can lawfully answer."
        )
    if kind == codes.MessageKind.DECISION_FEEDBACK:
        explanation.append(
            "Feedback to the person who referred should say what was decided and what they need "
            "to do to support the child, not the content of the assessment."
        )
    if kind == codes.MessageKind.CP_FILE_TRANSFER:
        gateways.append(codes.Gateway.KCSIE.value)
        explanation.append(
            "Send the child protection file within 5 school days, separately from the main pupil "
            "file, and ask the new school to confirm receipt (Keeping Children Safe in "
            "Education)."
        )
    if (
        kind == codes.MessageKind.POLICE_NOTIFICATION
        and sender_org_type == codes.OrgType.POLICE
        and recipient_org_type
        in {"maintained_school", "academy_or_free_school", "independent_school", "fe_college"}
    ):
        gateways.append(codes.Gateway.VPA2024_OP_ENCOMPASS.value)
    if sender_org_type == codes.OrgType.POLICE:
        explanation.append(
            "Police sharing with children's services to safeguard a child uses the UK GDPR; "
            "sharing for law enforcement between competent authorities uses DPA 2018 Part 3 "
            "instead (regime DPA_PART3, with a Schedule 8 condition)."
        )
    if gateways:
        basis["gateways"] = list(dict.fromkeys(gateways))

    if kind == codes.MessageKind.POLICE_NOTIFICATION:
        basis["transparency"] = {
            "informed": codes.TransparencyInformed.NO.value,
            "reason_not_informed": codes.ReasonNotInformed.POLICE_OR_ORIGINATOR_REQUEST.value,
        }
        basis["onward_disclosure"] = codes.OnwardDisclosure.ORIGINATOR_CONSENT_REQUIRED.value
    elif kind != codes.MessageKind.ACKNOWLEDGEMENT:
        to_complete.append("transparency")

    if kind != codes.MessageKind.ACKNOWLEDGEMENT:
        basis["confidentiality_basis"] = codes.ConfidentialityBasis.PUBLIC_INTEREST.value
        to_complete.append("justification.public_interest")
        explanation.append(
            "Information given in confidence can be passed on when protecting a child outweighs "
            "the duty of confidence; write down why."
        )
    else:
        to_complete.remove("justification.necessity")
        to_complete = [f for f in to_complete if f != "justification.proportionality"]

    retention = _RETENTION_DEFAULTS.get(sender_org_type)
    if retention is not None:
        basis["retention_class"] = retention
    else:
        to_complete.append("retention_class")
    basis["emergency"] = False
    if justification:
        basis["justification"] = justification

    return {
        "basis": basis,
        "explanation": "\n\n".join(explanation),
        "to_complete": [
            {"field": name, "prompt": _PROMPTS.get(name, "Complete this field.")}
            for name in dict.fromkeys(to_complete)
        ],
    }
