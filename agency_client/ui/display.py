"""Plain-English words for the codes the exchange uses, and times in UK local time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from schemas.timefmt import parse_time

__all__ = [
    "ART6_LABELS",
    "CONCERN_LABELS",
    "DEADLINE_LABELS",
    "KIND_LABELS",
    "LEVEL_LABELS",
    "NOT_SOUGHT_LABELS",
    "NOT_TOLD_LABELS",
    "OUTCOME_LABELS",
    "SPECIAL_CATEGORY_LABELS",
    "STATE_LABELS",
    "label",
    "local_time",
]

_LONDON = ZoneInfo("Europe/London")


def _m(values: dict[str, str]) -> Mapping[str, str]:
    return MappingProxyType(values)


KIND_LABELS = _m(
    {
        "REFERRAL": "Referral",
        "ACKNOWLEDGEMENT": "Acknowledgement",
        "DECISION_FEEDBACK": "Decision",
        "REQUEST_FOR_INFORMATION": "Request for information",
        "RESPONSE_TO_RFI": "Answer to a request for information",
        "INFORMATION_ONLY": "Information shared",
        "POLICE_NOTIFICATION": "Police notification",
        "ESCALATION": "Escalation",
    }
)

STATE_LABELS = _m(
    {
        "SUBMITTED": "Waiting to be collected",
        "DELIVERED": "Received, not yet acknowledged",
        "ACKNOWLEDGED": "Acknowledged, waiting for a decision",
        "DECISION_GIVEN": "Decision given",
        "RESPONDED": "Answered",
        "CLOSED": "Closed",
        "WITHDRAWN": "Withdrawn",
        "REJECTED": "Refused by the recipient",
        "EXPIRED": "Never collected (expired)",
        "UNKNOWN": "Not known yet",
        "UNTRACKED": "Not tracked",
    }
)

OUTCOME_LABELS = _m(
    {
        "NFA": "No further action",
        "INFO_ADVICE": "Information and advice given",
        "EARLY_HELP": "Early help",
        "FAMILY_HELP": "Family help",
        "OTHER_AGENCY": "Passed to another agency",
        "S17_ASSESSMENT": "Assessment of a child in need (Children Act 1989 s.17)",
        "STRATEGY_S47": "Strategy discussion: child protection enquiries (s.47)",
        "IMMEDIATE_PROTECTION": "Immediate protection",
        "POLICE": "Passed to the police",
        "LADO": "Passed to the LADO (allegation against someone who works with children)",
        "ALREADY_OPEN": "Already open to children's social care",
        "TRANSFER_LA": "Transferred to another local authority",
        "MORE_INFO_NEEDED": "More information needed",
        "ASSESSMENT_NFA": "Assessment done: no further action",
        "ASSESSMENT_EARLY_HELP": "Assessment done: early help",
        "CIN_PLAN": "Child in need plan",
        "S47_NOT_SUBSTANTIATED": "Enquiries done: concerns not substantiated",
        "S47_SUBSTANTIATED_ICPC": "Enquiries done: child protection conference",
        "CP_PLAN": "Child protection plan",
        "LEGAL_PROCEEDINGS": "Legal proceedings",
    }
)

CONCERN_LABELS = _m(
    {
        "physical_abuse": "Physical abuse",
        "emotional_abuse": "Emotional abuse",
        "sexual_abuse": "Sexual abuse",
        "neglect": "Neglect",
        "child_sexual_exploitation": "Child sexual exploitation",
        "child_criminal_exploitation": "Child criminal exploitation",
        "domestic_abuse": "Domestic abuse",
        "female_genital_mutilation": "Female genital mutilation",
        "radicalisation": "Radicalisation",
        "online_harm": "Online harm",
        "self_harm": "Self-harm",
        "missing_from_home_or_education": "Missing from home or education",
        "peer_on_peer_abuse": "Child-on-child abuse",
        "honour_based_abuse": "So-called honour-based abuse",
        "trafficking_or_modern_slavery": "Trafficking or modern slavery",
        "parental_substance_misuse": "Parental substance misuse",
        "parental_mental_health": "Parental mental health",
        "other": "Something else",
    }
)

DEADLINE_LABELS = _m(
    {
        "T_DELIVERY": "Collect from the exchange",
        "T_ACK_REFERRAL": "Acknowledge",
        "T_DECISION": "Decide",
        "T_FEEDBACK": "Tell the referrer the decision",
    }
)

LEVEL_LABELS = _m(
    {
        "REJECT_LAW": "Not allowed by law",
        "REJECT_POLICY": "Not allowed by the partnership's rules",
        "WARN_GUIDANCE": "Statutory guidance",
        "WARN_ADVICE": "Advice",
        "INFO": "For information",
    }
)

ART6_LABELS = _m(
    {
        "A6_1_e": "Public task (UK GDPR Art 6(1)(e))",
        "A6_1_ea": "Recognised legitimate interests (UK GDPR Art 6(1)(ea))",
        "A6_1_f": "Legitimate interests (UK GDPR Art 6(1)(f))",
        "A6_1_c": "Legal obligation (UK GDPR Art 6(1)(c))",
        "A6_1_d": "Vital interests (UK GDPR Art 6(1)(d))",
        "A6_1_a": "Consent (UK GDPR Art 6(1)(a))",
    }
)

SPECIAL_CATEGORY_LABELS = _m(
    {
        "health": "Health (including injuries)",
        "sex_life": "Sex life",
        "sexual_orientation": "Sexual orientation",
        "racial_or_ethnic_origin": "Racial or ethnic origin",
        "religious_or_philosophical_beliefs": "Religious or philosophical beliefs",
        "genetic": "Genetic information",
        "biometric_for_identification": "Biometric information used to identify someone",
        "political_opinions": "Political opinions",
        "trade_union_membership": "Trade union membership",
    }
)

NOT_SOUGHT_LABELS = _m(
    {
        "data_subject_is_alleged_perpetrator": "They are the person alleged to have caused harm",
        "would_increase_risk_to_child": "Asking would put the child at more risk",
        "cannot_be_given_age_or_capacity": "They cannot give consent (age or capacity)",
        "would_prejudice_enquiry_or_investigation": "Asking would prejudice an enquiry",
        "urgency_delay_would_cause_harm": "There is no time: delay would cause harm",
        "cannot_reasonably_obtain_unreachable": "They cannot be reached",
    }
)

NOT_TOLD_LABELS = _m(
    {
        "would_increase_risk_to_child": "Telling them would increase the risk to the child",
        "would_prejudice_crime_prevention_or_police_investigation": (
            "It would prejudice a police investigation"
        ),
        "risk_to_another_person": "It would put someone else at risk",
        "cannot_locate": "They cannot be found",
    }
)


def label(table: Mapping[str, str], code: object) -> str:
    """The plain-English label for ``code``, or the code itself when there is none."""
    text = str(code) if code is not None else ""
    return table.get(text, text.replace("_", " ").capitalize() if text else "")


def local_time(value: Any, *, with_year: bool = True) -> str:
    """A time in UK local time, e.g. ``Tue 26 May 2026, 15:00`` (empty for none)."""
    if value is None or value == "":
        return ""
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = parse_time(str(value))
        except Exception:
            return str(value)
    local = moment.astimezone(_LONDON)
    pattern = "%a %d %b %Y, %H:%M" if with_year else "%a %d %b, %H:%M"
    return local.strftime(pattern)
