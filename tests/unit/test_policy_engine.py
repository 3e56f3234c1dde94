"""The lawful-basis policy engine: every rule, the scenarios, the request format, robustness."""

from __future__ import annotations

import copy
import json
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import codes
from schemas.lawful_basis import BasisTag
from schemas.policy import (
    POLICY_VERSION,
    RULES,
    RULES_BY_ID,
    SKIPPED_MODEL_RULES,
    AllOf,
    AllowAnything,
    AnyOf,
    DeploymentPolicy,
    Level,
    PolicyRequest,
    Rule,
    RuleContext,
    Verdict,
    When,
    check_request_json,
    evaluate,
    raise_for_verdict,
    suggest_basis,
)
from schemas.policy.guidance import ORG_LABELS
from schemas.problems import InvalidRequest, LawfulBasisRejected

CASES_DIR = pathlib.Path(__file__).resolve().parent.parent / "policy_cases"
DELETE = object()

# The README's example tag: scenario 1, a maintained school's referral.
BASE_TAG: dict[str, Any] = json.loads((CASES_DIR / "readme_example.json").read_text())["basis"]


def tag(**changes: Any) -> dict[str, Any]:
    """The README tag with top-level fields replaced (``DELETE`` removes one)."""
    result = copy.deepcopy(BASE_TAG)
    for key, value in changes.items():
        if value is DELETE:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def just(**changes: Any) -> dict[str, Any]:
    """The README justification with fields replaced (``None`` clears one)."""
    result = copy.deepcopy(BASE_TAG["justification"])
    result.update(changes)
    return result


SCHOOL = {"org_type": "maintained_school", "public_authority": True, "apd_in_place": True}
ACADEMY = {"org_type": "academy_or_free_school", "apd_in_place": True}
CHARITY = {"org_type": "charity_vcs", "apd_in_place": True}
NHS = {"org_type": "nhs_trust", "apd_in_place": True}
POLICE = {"org_type": "police", "apd_in_place": True}
CSC = {"org_type": "local_authority_childrens_services", "apd_in_place": True}

COMPLETE_GIVEN = {
    "data_subject_role": "parent_or_pr_holder",
    "state": "given",
    "given_by": "parent_or_pr_holder",
    "date": "2026-11-20",
    "scope": "sharing the concern with children's social care",
    "record_ref": "CONSENT-17",
}
REFUSED_C = {
    "data_subject_role": "parent_or_pr_holder",
    "state": "refused",
    "refused_by": "parent_or_pr_holder",
    "date": "2026-11-20",
    "p18_consent_reason": "p18_2_c",
}


def req(
    basis: dict[str, Any] | None = None,
    *,
    kind: str = "REFERRAL",
    sent_at: str | None = "2026-11-24T09:30:00Z",
    sender: dict[str, Any] | None = None,
    recipient: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A request dict in the README format (plus engine options in ``extra``)."""
    result: dict[str, Any] = {
        "kind": kind,
        "sent_at": sent_at,
        "sender": sender or SCHOOL,
        "recipient": recipient or {"org_type": "local_authority_childrens_services"},
        "forwarding": None,
        "basis": tag() if basis is None else basis,
    }
    result.update(extra)
    return result


def run(request: dict[str, Any]) -> Verdict:
    return evaluate(PolicyRequest.model_validate(request))


def ids(request: dict[str, Any]) -> list[str]:
    return run(request).rule_ids


# -- the charity (scenario 5) and other non-school bases used by several cases ------------------

CHARITY_TAG = tag(
    art6=["A6_1_ea"],
    annex1_condition="AX1_6",
    data_categories=["personal", "special_category"],
    special_categories=["health"],
    art10_sch1_condition=DELETE,
    gateways=DELETE,
    consent=[
        REFUSED_C,
        {
            "data_subject_role": "child",
            "state": "not_sought",
            "not_sought_reason": "urgency_delay_would_cause_harm",
        },
    ],
    retention_class="CHARITY_SAFEGUARDING_7Y",
    justification=just(
        statutory_function_citation=None,
        override_justification="Ava's self-harm is escalating; waiting would put her at risk.",
    ),
)
CHARITY_F_TAG = {
    **CHARITY_TAG,
    "art6": ["A6_1_f"],
    "annex1_condition": None,
    "lia_reference": "LIA-2026-004",
}


# == the rule table: every registered rule triggers and does not trigger =======================


@dataclass(frozen=True)
class Case:
    """One rule: requests that must trigger it, and near misses that must not."""

    triggers: list[dict[str, Any]]
    clean: list[dict[str, Any]]


CASES: dict[str, Case] = {
    "X001": Case(
        triggers=[
            req(tag(art6=["A6_1_e", "A6_1_z"])),
            req(kind="REFERAL"),
            req(sender={**SCHOOL, "org_type": "school"}),
            req(tag(art10_sch1_condition="SCH1_P3_36(SCH1_P2_99)")),
            req(tag(consent=[{**COMPLETE_GIVEN, "given_by": "Mrs Jones"}])),
            req(forwarding={"onward_disclosure": "never"}),
        ],
        clean=[req(), req(forwarding={"onward_disclosure": "permitted"})],
    ),
    "X002": Case(
        triggers=[req(tag(emergency="no")), req(tag(art6="A6_1_e")), req(tag(consent=["x"]))],
        clean=[req(tag(emergency=False))],
    ),
    "X003": Case(
        triggers=[req(tag(child_name="x")), req(tag(transparency={"informed": "yes", "by": 1}))],
        clean=[req()],
    ),
    "L001": Case(
        triggers=[req(tag(art6=[])), req(tag(art6=DELETE)), req(tag(art6=["A6_1_q"]))],
        clean=[
            req(),
            req(tag(regime="DPA_PART3", art6=[], sch8_condition="SCH8_4"), sender=POLICE),
        ],
    ),
    "L002": Case(
        triggers=[
            req(tag(art6=["A6_1_f"], lia_reference="LIA-1"), sender=ACADEMY),
            req(tag(art6=["A6_1_ea"], annex1_condition="AX1_6"), sender=SCHOOL),
            req(CHARITY_F_TAG, sender={**CHARITY, "public_authority": True}),
        ],
        clean=[req(CHARITY_F_TAG, sender=CHARITY), req(CHARITY_TAG, sender=CHARITY)],
    ),
    "L003": Case(
        triggers=[
            req({**CHARITY_TAG, "annex1_condition": None}, sender=CHARITY),
            req(CHARITY_TAG, sender=CHARITY, sent_at="2026-02-04T23:59:59Z"),
        ],
        clean=[
            req(CHARITY_TAG, sender=CHARITY),
            req(CHARITY_TAG, sender=CHARITY, sent_at="2026-02-05T00:00:00Z"),
            req(CHARITY_TAG, sender=CHARITY, sent_at=None),
        ],
    ),
    "L004": Case(
        triggers=[
            req({**CHARITY_TAG, "data_subject_category": "adult_not_at_risk"}, sender=CHARITY),
            req({**CHARITY_TAG, "p18_purpose": None}, sender=CHARITY),
        ],
        clean=[
            req(CHARITY_TAG, sender=CHARITY),
            req({**CHARITY_TAG, "data_subject_category": "adult_at_risk"}, sender=CHARITY),
        ],
    ),
    "L005": Case(
        triggers=[
            req(
                {**CHARITY_TAG, "annex1_condition": "AX1_1"},
                kind="RESPONSE_TO_RFI",
                sender=CHARITY,
            )
        ],
        clean=[
            req(
                {
                    **CHARITY_TAG,
                    "annex1_condition": "AX1_1",
                    "request_ref": "RFI-2026-118",
                    "justification": {
                        **CHARITY_TAG["justification"],
                        "request_statement_public_task": "Needed for our s.47 enquiries "
                        "(Children Act 1989).",
                    },
                },
                kind="RESPONSE_TO_RFI",
                sender=CHARITY,
            )
        ],
    ),
    "L006": Case(
        triggers=[
            req(tag(art6=["A6_1_e", "A6_1_a"])),
            req(tag(art6=["A6_1_a"], consent=[{**COMPLETE_GIVEN, "record_ref": None}])),
        ],
        clean=[req(tag(art6=["A6_1_a"], consent=[COMPLETE_GIVEN]))],
    ),
    "L007": Case(
        triggers=[
            req(tag(art9_condition=DELETE)),
            req(tag(art9_condition="A9_2_x")),
            req(tag(data_categories=["personal"], art9_condition=None)),  # listed health only
        ],
        clean=[
            req(),
            req(tag(data_categories=["personal"], special_categories=[], art9_condition=None)),
        ],
    ),
    "L008": Case(
        triggers=[
            req(tag(art9_condition="A9_2_h")),
            req(tag(art9_condition="A9_2_b", sch1_condition="SCH1_P1_2")),
        ],
        clean=[
            req(
                tag(
                    art9_condition="A9_2_h",
                    sch1_condition="SCH1_P1_2",
                    art10_underlying_condition="SCH1_P2_18",
                    professional_secrecy_basis="health_professional",
                ),
                sender=NHS,
            )
        ],
    ),
    "L009": Case(
        triggers=[req(tag(sch1_condition="SCH1_P1_2")), req(tag(sch1_condition=DELETE))],
        clean=[req(), req(tag(sch1_condition="SCH1_P2_6"))],
    ),
    "L010": Case(
        triggers=[
            req(tag(art9_condition="A9_2_c", consent=[BASE_TAG["consent"][0]])),
            req(tag(art9_condition="A9_2_c")),  # incapacity shown, but no statement
        ],
        clean=[
            req(
                tag(
                    art9_condition="A9_2_c",
                    justification=just(incapacity_statement="Maya is 7 and cannot consent."),
                )
            )
        ],
    ),
    "L011": Case(
        triggers=[req(tag(art9_condition="A9_2_a"))],
        clean=[req(tag(art9_condition="A9_2_a", consent=[COMPLETE_GIVEN]))],
    ),
    "L012": Case(
        triggers=[
            req(tag(art10_sch1_condition=DELETE)),
            req(tag(art10_sch1_condition="SCH1_P3_36", sch1_condition="SCH1_P1_2")),
            req(
                tag(
                    art10_sch1_condition="SCH1_P3_36(SCH1_P2_18)",
                    art10_underlying_condition="SCH1_P2_6",
                )
            ),
            req(tag(art10_sch1_condition="SCH1_P3_29")),
            req(tag(art10_sch1_condition="SCH1_P3_30", consent=[BASE_TAG["consent"][0]])),
        ],
        clean=[
            req(),
            req(tag(art10_sch1_condition="SCH1_P3_36(SCH1_P2_18)")),
            req(tag(art10_sch1_condition="SCH1_P3_30")),
            req(
                tag(regime="DPA_PART3", art10_sch1_condition=None, sch8_condition="SCH8_4"),
                sender=POLICE,
            ),
        ],
    ),
    "L013": Case(
        triggers=[
            req(tag(data_subject_category="adult_not_at_risk")),
            req(tag(p18_purpose="punishment")),
            req(tag(consent=[])),
            req(tag(justification=just(substantial_public_interest=None))),
            req(tag(justification=just(substantial_public_interest="yes"))),
        ],
        clean=[
            req(),
            req(tag(consent=[], p18_consent_reason="p18_2_b")),
            # Para 18 via para 36 only: no substantial-public-interest statement needed.
            req(
                tag(
                    data_categories=["personal", "criminal_offence"],
                    special_categories=[],
                    art9_condition=None,
                    sch1_condition=None,
                    art10_sch1_condition="SCH1_P3_36(SCH1_P2_18)",
                    justification=just(substantial_public_interest=None),
                )
            ),
        ],
    ),
    "L014": Case(
        triggers=[req(tag(consent=[*BASE_TAG["consent"], COMPLETE_GIVEN]))],
        clean=[req()],
    ),
    "L015": Case(
        triggers=[
            req(sender={**SCHOOL, "apd_in_place": False}),
            req(sender={"org_type": "maintained_school"}),
            req(
                tag(regime="DPA_PART3", art6=[], sch8_condition="SCH8_4"),
                sender={"org_type": "police", "apd_in_place": False},
            ),
        ],
        clean=[
            req(),
            # Para 10 disclosure to a competent authority needs no APD (para 10(2)).
            req(
                tag(
                    sch1_condition="SCH1_P2_10",
                    art10_sch1_condition="SCH1_P2_10",
                    justification=just(
                        unlawful_act_description="Assault occasioning actual bodily harm.",
                        why_consent_would_prejudice="Telling him would allow evidence to be lost.",
                    ),
                ),
                sender={**SCHOOL, "apd_in_place": False},
                recipient=POLICE,
            ),
        ],
    ),
    "L016": Case(
        triggers=[req(tag(sch1_condition="SCH1_P2_10"), recipient=POLICE)],
        clean=[
            req(
                tag(
                    sch1_condition="SCH1_P2_10",
                    justification=just(
                        unlawful_act_description="Assault occasioning actual bodily harm.",
                        why_consent_would_prejudice="Telling him would allow evidence to be lost.",
                    ),
                ),
                recipient=POLICE,
            )
        ],
    ),
    "L017": Case(
        triggers=[
            req(
                tag(
                    sch1_condition="SCH1_P2_6", justification=just(statutory_function_citation=None)
                )
            ),
            req(
                tag(sch1_condition="SCH1_P2_6", justification=just(substantial_public_interest=""))
            ),
        ],
        clean=[req(tag(sch1_condition="SCH1_P2_6"))],
    ),
    "L018": Case(
        triggers=[req(tag(art9_condition="A9_2_h", sch1_condition="SCH1_P1_2"), sender=NHS)],
        clean=[
            req(
                tag(
                    art9_condition="A9_2_h",
                    sch1_condition="SCH1_P1_2",
                    professional_secrecy_basis="health_professional",
                ),
                sender=NHS,
            )
        ],
    ),
    "L019": Case(
        triggers=[req(tag(art6=["A6_1_c"]))],
        clean=[
            req(tag(art6=["A6_1_c"], justification=just(legal_obligation_citation="CA 2004 s.16H")))
        ],
    ),
    "L020": Case(
        triggers=[
            req(tag(justification=just(statutory_function_citation=None))),
            req(tag(justification=just(statutory_function_citation="   "))),
        ],
        clean=[req(), req(tag(justification=just(statutory_function_citation="EA s.175")))],
    ),
    "L021": Case(
        triggers=[
            req(tag(gateways=["CA2004_S16H"], s16h_purpose="16E"), kind="REQUEST_FOR_INFORMATION"),
            req(
                tag(gateways=["CA2004_S16H"]),
                kind="REQUEST_FOR_INFORMATION",
                sender=CSC,
                recipient=SCHOOL,
            ),
        ],
        clean=[
            req(
                tag(gateways=["CA2004_S16H"], s16h_purpose="16F"),
                kind="REQUEST_FOR_INFORMATION",
                sender=CSC,
                recipient=SCHOOL,
            ),
            req(tag(gateways=["CA2004_S16H"])),  # a referral, not a request
        ],
    ),
    "L022": Case(
        triggers=[req(tag(gateways=["CDA1998_S115"]), recipient=SCHOOL)],
        clean=[req(tag(gateways=["CDA1998_S115"]), recipient=POLICE)],
    ),
    "L025": Case(
        triggers=[
            req(tag(regime="DPA_PART3", sch8_condition="SCH8_4")),
            req(tag(regime="DPA_PART3"), sender=POLICE),
        ],
        clean=[
            req(tag(regime="DPA_PART3", sch8_condition="SCH8_4"), sender=POLICE),
            req(sender=POLICE),
        ],
    ),
    "P001": Case(
        triggers=[
            req(tag(justification=just(necessity=None))),
            req(tag(justification=just(necessity="needed"))),
        ],
        clean=[req(), req(tag(justification=just(necessity=None)), kind="ACKNOWLEDGEMENT")],
    ),
    "P002": Case(
        triggers=[req(tag(justification=just(proportionality=None)))],
        clean=[
            req(),
            req(
                {
                    **CHARITY_TAG,
                    "justification": {**CHARITY_TAG["justification"], "proportionality": None},
                },
                sender=CHARITY,
            ),
        ],
    ),
    "P003": Case(
        triggers=[
            req(tag(transparency={"informed": "no", "decision_authorised_by": "DSL"})),
            req(tag(transparency={"informed": "deferred", "reason_not_informed": "cannot_locate"})),
        ],
        clean=[req(), req(tag(transparency={"informed": "yes"}))],
    ),
    "P004": Case(
        triggers=[req(tag(justification=just(public_interest=None)))],
        clean=[
            req(),
            req(
                tag(
                    confidentiality_basis="statutory_power",
                    justification=just(public_interest=None),
                )
            ),
        ],
    ),
    "P005": Case(
        triggers=[
            req(tag(consent=[REFUSED_C, BASE_TAG["consent"][1]])),
            req(
                tag(
                    consent=[{**REFUSED_C, "p18_consent_reason": "p18_2_a"}],
                    justification=just(override_justification="Risk of further injury to Maya."),
                )
            ),
            req(
                tag(
                    consent=[{**REFUSED_C, "p18_consent_reason": None}],
                    justification=just(override_justification="Risk of further injury to Maya."),
                )
            ),
        ],
        clean=[
            req(
                tag(
                    consent=[REFUSED_C],
                    justification=just(override_justification="Risk of further injury to Maya."),
                )
            ),
            req(CHARITY_TAG, sender=CHARITY),
        ],
    ),
    "P006": Case(
        triggers=[req(tag(consent=[{"data_subject_role": "child", "state": "not_sought"}]))],
        clean=[req()],
    ),
    "P007": Case(
        triggers=[req(forwarding={"onward_disclosure": "prohibited"})],
        clean=[req(forwarding={"onward_disclosure": "permitted"}), req()],
    ),
    "P008": Case(
        triggers=[req(forwarding={"onward_disclosure": "originator_consent_required"})],
        clean=[
            req(
                forwarding={
                    "onward_disclosure": "originator_consent_required",
                    "originator_consent_ref": "POLICE-OK-2211",
                }
            )
        ],
    ),
    "P009": Case(
        triggers=[
            req(
                tag(gateways=["CA2004_S16LA"]),
                kind="RESPONSE_TO_RFI",
                deployment={"s16la_in_force": True},
                facts={"information_withheld": True, "withholding_reason": "other"},
            )
        ],
        clean=[
            req(
                tag(
                    gateways=["CA2004_S16LA"],
                    justification=just(
                        withholding_reasoning="Disclosure would reveal the child's refuge address."
                    ),
                ),
                kind="RESPONSE_TO_RFI",
                deployment={"s16la_in_force": True},
                facts={
                    "information_withheld": True,
                    "withholding_reason": "more_detrimental_to_child",
                },
            ),
            req(
                tag(gateways=["CA2004_S16LA"]),
                kind="RESPONSE_TO_RFI",
                facts={"information_withheld": True, "withholding_reason": "other"},
            ),  # not in force: nothing to judge against
        ],
    ),
    "P010": Case(
        triggers=[req(kind="REQUEST_FOR_INFORMATION", sender=CSC, recipient=CHARITY)],
        clean=[
            req(
                tag(
                    justification=just(
                        annex1_p1_statement="We need this for our enquiries under Children Act "
                        "1989 s.47."
                    )
                ),
                kind="REQUEST_FOR_INFORMATION",
                sender=CSC,
                recipient=CHARITY,
            ),
            req(kind="REQUEST_FOR_INFORMATION", sender=CSC, recipient=SCHOOL),
        ],
    ),
    "P011": Case(
        triggers=[
            req(tag(retention_class=DELETE)),
            req(deployment={"retention_classes": ["CSC_CIN_CP"]}),
        ],
        clean=[req(), req(deployment={"retention_classes": ["SCHOOL_CP_DOB_PLUS_25"]})],
    ),
    "A001": Case(
        triggers=[req(tag(art6=["A6_1_e", "A6_1_a"], consent=[COMPLETE_GIVEN]))],
        clean=[req(), req({**CHARITY_TAG, "art6": ["A6_1_a"]}, sender=CHARITY)],
    ),
    "A002": Case(
        triggers=[req(tag(art9_condition="A9_2_h", sch1_condition="SCH1_P1_2"), sender=ACADEMY)],
        clean=[req(tag(art9_condition="A9_2_h", sch1_condition="SCH1_P1_2"), sender=NHS)],
    ),
    "A003": Case(
        triggers=[req(kind="INFORMATION_ONLY"), req(kind="CP_FILE_TRANSFER", recipient=SCHOOL)],
        clean=[req(tag(dsa_ref="DSA-MASH-2026"), kind="INFORMATION_ONLY"), req()],
    ),
    "A004": Case(
        triggers=[
            req(
                facts={
                    "facts_vs_opinion_marked": True,
                    "sensitive_identities": [{"role": "witness", "do_not_disclose_to": ["family"]}],
                }
            )
        ],
        clean=[req(facts={"facts_vs_opinion_marked": True}), req()],
    ),
    "A005": Case(
        triggers=[req(facts={"facts_vs_opinion_marked": False}), req(facts={})],
        clean=[
            req(facts={"facts_vs_opinion_marked": True}),
            req(),  # the relay cannot see the content
            req(kind="ACKNOWLEDGEMENT", facts={}),
        ],
    ),
    "A006": Case(triggers=[req(tag(emergency=True))], clean=[req()]),
    "A007": Case(
        triggers=[
            req(
                deployment={"consistent_identifier_regs_in_force": True},
                facts={"facts_vs_opinion_marked": True},
            )
        ],
        clean=[
            req(
                deployment={"consistent_identifier_regs_in_force": True},
                facts={"facts_vs_opinion_marked": True, "consistent_identifier_included": True},
            ),
            req(
                deployment={"consistent_identifier_regs_in_force": True},
                facts={
                    "facts_vs_opinion_marked": True,
                    "consistent_identifier_exception": "more_detrimental_to_child",
                },
            ),
            req(facts={"facts_vs_opinion_marked": True}),
        ],
    ),
    "G006": Case(
        triggers=[
            req(kind="CP_FILE_TRANSFER", recipient=SCHOOL, facts={"facts_vs_opinion_marked": True}),
            req(
                kind="CP_FILE_TRANSFER",
                recipient=SCHOOL,
                facts={
                    "receipt_confirmation_requested": True,
                    "sent_separately_from_pupil_file": False,
                },
            ),
        ],
        clean=[
            req(
                kind="CP_FILE_TRANSFER",
                recipient=SCHOOL,
                facts={
                    "receipt_confirmation_requested": True,
                    "sent_separately_from_pupil_file": True,
                },
            )
        ],
    ),
    "G007": Case(
        triggers=[
            req(
                kind="DECISION_FEEDBACK",
                sender=CSC,
                recipient=SCHOOL,
                facts={"contains_assessment_narrative": True},
            ),
            req(
                kind="DECISION_FEEDBACK",
                sender=CSC,
                recipient=SCHOOL,
                facts={"contains_unneeded_third_party_details": True},
            ),
        ],
        clean=[
            req(
                kind="DECISION_FEEDBACK",
                sender=CSC,
                recipient=SCHOOL,
                facts={"contains_assessment_narrative": False},
            ),
            req(kind="REFERRAL", facts={"contains_assessment_narrative": True}),
        ],
    ),
    "X004": Case(
        triggers=[
            req(tag(data_categories=DELETE, special_categories=DELETE)),
            req(tag(data_categories=["personel"])),
        ],
        clean=[req(), req(tag(data_categories=DELETE), kind="ACKNOWLEDGEMENT")],
    ),
    "X005": Case(
        triggers=[
            req(tag(special_categories=[])),
            req(tag(data_categories=["personal", "criminal_offence"])),
        ],
        clean=[req()],
    ),
    "X006": Case(
        triggers=[
            req(tag(transparency=DELETE)),
            req(tag(transparency={"decision_authorised_by": "DSL"})),
        ],
        clean=[req(), req(tag(transparency=DELETE), kind="ACKNOWLEDGEMENT")],
    ),
    "X007": Case(
        triggers=[req(tag(confidentiality_basis=DELETE))],
        clean=[req(), req(tag(confidentiality_basis=DELETE), kind="ACKNOWLEDGEMENT")],
    ),
    "X008": Case(
        triggers=[
            req(tag(consent=[*BASE_TAG["consent"], {**COMPLETE_GIVEN, "scope": None}])),
            req(tag(consent=[{"data_subject_role": "parent_or_pr_holder", "state": "refused"}])),
            req(tag(consent=[{"state": "not_applicable"}])),
            req(tag(consent=[{"data_subject_role": "child"}])),
        ],
        clean=[req(), req(tag(consent=[*BASE_TAG["consent"], REFUSED_C]))],
    ),
    "X009": Case(
        triggers=[req({**CHARITY_F_TAG, "lia_reference": None}, sender=CHARITY)],
        clean=[req(CHARITY_F_TAG, sender=CHARITY)],
    ),
    "X010": Case(
        triggers=[req(tag(art6=["A6_1_d"]))],
        clean=[
            req(
                tag(
                    art6=["A6_1_d"],
                    justification=just(
                        vital_interest_justification="Maya is at risk of serious injury tonight."
                    ),
                )
            )
        ],
    ),
    "X011": Case(triggers=[req(tag(art6=["A6_1_e", "A6_1_b"]))], clean=[req()]),
    "X012": Case(
        triggers=[req(tag(gateways=["EA2002_S175", "CA2004_S16LA"]))],
        clean=[
            req(tag(gateways=["EA2002_S175", "CA2004_S16LA"]), deployment={"s16la_in_force": True}),
            req(),
        ],
    ),
}


def _params(which: Callable[[Case], list[dict[str, Any]]]) -> list[Any]:
    return [
        pytest.param(rule_id, request, id=f"{rule_id}-{index}")
        for rule_id, case in CASES.items()
        for index, request in enumerate(which(case))
    ]


def test_every_registered_rule_has_cases() -> None:
    """A rule added to the registry without cases fails here."""
    assert set(CASES) == set(RULES_BY_ID)
    for rule_id, case in CASES.items():
        assert case.triggers, f"{rule_id} has no triggering case"
        assert case.clean, f"{rule_id} has no non-triggering case"


@pytest.mark.parametrize(("rule_id", "request_dict"), _params(lambda c: c.triggers))
def test_rule_triggers(rule_id: str, request_dict: dict[str, Any]) -> None:
    verdict = run(request_dict)
    found = verdict.findings_for(rule_id)
    assert found, f"{rule_id} did not trigger: {verdict.rule_ids}"
    rule = RULES_BY_ID[rule_id]
    for finding in found:
        assert finding.level is rule.level
        assert finding.cite == list(rule.cite)
        assert finding.message
    if rule.level in (Level.REJECT_LAW, Level.REJECT_POLICY):
        assert verdict.decision == "reject"
    else:
        assert verdict.decision in ("warn", "reject")


@pytest.mark.parametrize(("rule_id", "request_dict"), _params(lambda c: c.clean))
def test_rule_does_not_trigger(rule_id: str, request_dict: dict[str, Any]) -> None:
    assert rule_id not in ids(request_dict)


# == the registry ================================================================================

MODEL_SINGLE_MESSAGE_RULES = (
    {f"L{n:03d}" for n in range(1, 23)}
    | {"L025"}
    | {f"P{n:03d}" for n in range(1, 12)}
    | {f"A{n:03d}" for n in range(1, 8)}
    | {"G006", "G007"}
)


def test_registry_covers_the_model_rules_that_concern_one_message() -> None:
    implemented = set(RULES_BY_ID)
    assert implemented >= MODEL_SINGLE_MESSAGE_RULES
    assert set(SKIPPED_MODEL_RULES) == {"L023", "L024", "G001", "G002", "G003", "G004", "G005"}
    assert not implemented & set(SKIPPED_MODEL_RULES)
    assert {r for r in implemented if r.startswith("X")} == {f"X{n:03d}" for n in range(1, 13)}


def test_rules_are_well_formed() -> None:
    assert len(RULES) == len(RULES_BY_ID)  # ids are unique
    for rule in RULES:
        assert isinstance(rule, Rule)
        assert re.fullmatch(r"[LPAGX]\d{3}", rule.rule)
        assert isinstance(rule.level, Level)
        assert rule.message.endswith((".", ")"))
        assert rule.cite
        assert all(rule.cite)
        assert rule.summary


@pytest.mark.parametrize(
    ("rule_id", "level"),
    [
        ("L002", Level.REJECT_LAW),
        ("P001", Level.REJECT_POLICY),
        ("A003", Level.WARN_ADVICE),
        ("G006", Level.WARN_GUIDANCE),
        ("X001", Level.REJECT_LAW),
        ("X002", Level.REJECT_LAW),
        ("X003", Level.REJECT_POLICY),
    ],
)
def test_levels_follow_the_model_and_the_documented_choices(rule_id: str, level: Level) -> None:
    assert RULES_BY_ID[rule_id].level is level


# == the scenarios (shared/scenarios/README.md) ==================================================


def test_readme_example_request_is_accepted() -> None:
    data = json.loads((CASES_DIR / "readme_example.json").read_text())
    verdict = check_request_json(data)
    assert verdict.decision == "accept", verdict.to_json_dict()


def test_readme_example_header_codes_only_is_accepted_at_the_relay() -> None:
    data = json.loads((CASES_DIR / "readme_example.json").read_text())
    data["basis"] = BasisTag.model_validate(data["basis"]).header_codes()
    data["justification_available"] = False
    assert check_request_json(data).decision == "accept"


def test_scenario_1_maintained_school_referral_is_accepted() -> None:
    verdict = run(req(facts={"facts_vs_opinion_marked": True}))
    assert verdict.decision == "accept", verdict.rule_ids


def test_scenario_3_sexual_health_clinic_public_interest_override_is_accepted() -> None:
    clinic = tag(
        gateways=["CA2004_S11"],
        consent=[
            {
                "data_subject_role": "child",
                "state": "not_sought",
                "not_sought_reason": "would_increase_risk_to_child",
            },
            {
                "data_subject_role": "alleged_perpetrator",
                "state": "not_sought",
                "not_sought_reason": "data_subject_is_alleged_perpetrator",
            },
        ],
        transparency={
            "informed": "no",
            "reason_not_informed": "would_increase_risk_to_child",
            "decision_authorised_by": "named_nurse_safeguarding",
            "review_date": "2026-12-01",
        },
        retention_class="NHS_CHILD_RECORD",
        justification=just(
            statutory_function_citation="Children Act 2004 s.11",
            public_interest="Chloe is 14; a 22-year-old partner indicates sexual exploitation. "
            "Protecting her outweighs the duty of confidence.",
        ),
    )
    verdict = run(req(clinic, sender=NHS))
    assert verdict.decision in ("accept", "warn"), verdict.to_json_dict()
    assert verdict.decision == "accept"


@pytest.mark.parametrize("basis", [CHARITY_TAG, CHARITY_F_TAG], ids=["A6_1_ea", "A6_1_f"])
def test_scenario_5_charity_consent_refused_sharing_still_lawful(basis: dict[str, Any]) -> None:
    verdict = run(req(basis, sender=CHARITY))
    assert verdict.decision in ("accept", "warn"), verdict.to_json_dict()
    assert not [f for f in verdict.findings if f.level.value.startswith("REJECT")]


def test_scenario_5_without_the_override_is_refused() -> None:
    basis = {
        **CHARITY_TAG,
        "justification": {**CHARITY_TAG["justification"], "override_justification": None},
    }
    assert "P005" in ids(req(basis, sender=CHARITY))


def test_scenario_6_academy_legitimate_interests_is_refused_with_an_explanation() -> None:
    basis = tag(art6=["A6_1_f"], lia_reference="TEMPLATE-LIA", gateways=["ISSR2014_P7"])
    verdict = run(req(basis, sender={"org_type": "academy_or_free_school", "apd_in_place": True}))
    assert verdict.decision == "reject"
    [finding] = verdict.findings_for("L002")
    assert finding.level is Level.REJECT_LAW
    assert "An academy or free school is a public authority" in finding.message
    assert "'public task' (Art 6(1)(e))" in finding.message
    assert "Independent School Standards" in finding.message
    assert finding.cite[0].startswith("UK GDPR Art 6(1) final sentence")


def test_l002_for_an_organisation_recorded_as_public() -> None:
    verdict = run(req(CHARITY_F_TAG, sender={**CHARITY, "public_authority": True}))
    [finding] = verdict.findings_for("L002")
    assert finding.message.startswith("Your organisation is recorded as a public authority.")


def test_public_authority_explicit_false_overrides_the_org_type() -> None:
    sender = {"org_type": "academy_or_free_school", "public_authority": False, "apd_in_place": True}
    assert "L002" not in ids(req(CHARITY_F_TAG, sender=sender))


# == justification availability, statement length, deployment switches ========================

TEXT_RULES = sorted(r.rule for r in RULES if r.reads_justification)


def test_text_rules_are_skipped_without_justification() -> None:
    bare = tag(
        justification=DELETE, art6=["A6_1_e", "A6_1_c", "A6_1_d"], sch1_condition="SCH1_P2_6"
    )
    relay = run(req(bare, justification_available=False))
    assert relay.decision == "accept", relay.rule_ids
    client = run(req(bare))
    assert {"P001", "P002", "P004", "L017", "L019", "L020", "X010"} <= set(client.rule_ids)
    para18 = tag(justification=DELETE)
    assert run(req(para18, justification_available=False)).decision == "accept"
    assert "L013" in ids(req(para18))


def test_header_parts_of_text_rules_still_apply_at_the_relay() -> None:
    basis = tag(justification=DELETE, data_subject_category="adult_not_at_risk")
    assert "L013" in ids(req(basis, justification_available=False))


def test_min_statement_length_is_configurable() -> None:
    short = tag(justification=just(necessity="Risk now"))
    assert "P001" in ids(req(short))
    assert "P001" not in ids(req(short, deployment={"min_statement_length": 5}))
    [finding] = run(req(short)).findings_for("P001")
    assert "at least 10 characters" in finding.message


def test_citations_need_only_be_non_empty() -> None:
    basis = tag(justification=just(statutory_function_citation="s.175"))
    assert "L020" not in ids(req(basis))


def test_reject_policy_as_warn_downgrades_policy_rules_only() -> None:
    basis = tag(justification=just(necessity=None))
    strict = run(req(basis))
    assert strict.decision == "reject"
    lenient = run(req(basis, deployment={"reject_policy_as_warn": True}))
    assert lenient.decision == "warn"
    [finding] = lenient.findings_for("P001")
    assert finding.level is Level.WARN_ADVICE
    law = run(req(tag(art6=["A6_1_f"]), deployment={"reject_policy_as_warn": True}))
    assert law.decision == "reject"
    assert law.findings_for("L002")[0].level is Level.REJECT_LAW


def test_unknown_codes_do_not_satisfy_rules() -> None:
    verdict = run(req(tag(art9_condition="A9_2_gg")))
    assert {"X001", "L007"} <= set(verdict.rule_ids)


def test_messages_never_echo_submitted_values() -> None:
    secret = "Maya Pemberton"
    basis = tag(art6=[secret], regime=secret, **{secret: 1})
    basis["consent"] = [{**COMPLETE_GIVEN, "given_by": secret, "date": secret}]
    verdict = run(req(basis))
    text = json.dumps(verdict.to_json_dict())
    assert "Pemberton" not in text
    assert {"X001", "X002", "X003"} <= set(verdict.rule_ids)


# == verdict shape and errors ===================================================================


def test_verdict_json_has_exactly_the_readme_shape() -> None:
    verdict = run(req(tag(emergency=True)))
    data = verdict.to_json_dict()
    assert list(data) == ["decision", "policy_version", "findings"]
    assert data["decision"] == "warn"
    assert data["policy_version"] == POLICY_VERSION
    assert data["findings"] == [
        {
            "rule": "A006",
            "level": "WARN_ADVICE",
            "message": RULES_BY_ID["A006"].message,
            "cite": list(RULES_BY_ID["A006"].cite),
        }
    ]
    json.dumps(data)


def test_evaluation_is_deterministic() -> None:
    messy = req(tag(art6=["A6_1_f", "zz"], consent=[{"state": "given"}], foo=1))
    assert run(messy).to_json_dict() == run(messy).to_json_dict()


def test_raise_for_verdict() -> None:
    ok = run(req())
    assert raise_for_verdict(ok) is ok
    bad = run(req(tag(art6=["A6_1_f"]), sender=ACADEMY))
    with pytest.raises(LawfulBasisRejected) as info:
        raise_for_verdict(bad)
    error = info.value
    assert error.extensions["policy_version"] == POLICY_VERSION
    assert {f["rule"] for f in error.findings} >= {"L002"}
    assert "L002" in (error.detail or "")
    assert "Art 6" not in (error.detail or "")  # the detail names rules only


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "JSON object"),
        ("REFERRAL", "JSON object"),
        (None, "JSON object"),
        ({"sender": SCHOOL, "recipient": CSC, "basis": {}}, "'kind'"),
        ({"kind": 3, "sender": SCHOOL, "recipient": CSC, "basis": {}}, "'kind'"),
        ({"kind": "REFERRAL", "recipient": CSC, "basis": {}}, "'sender'"),
        ({"kind": "REFERRAL", "sender": "school", "recipient": CSC, "basis": {}}, "'sender'"),
        ({"kind": "REFERRAL", "sender": SCHOOL, "recipient": CSC}, "'basis'"),
        ({"kind": "REFERRAL", "sender": SCHOOL, "recipient": CSC, "basis": []}, "'basis'"),
        (
            {"kind": "REFERRAL", "sender": SCHOOL, "recipient": {}, "basis": {}},
            "recipient.org_type",
        ),
        (
            {
                "kind": "REFERRAL",
                "sender": {**SCHOOL, "public_authority": "yes"},
                "recipient": CSC,
                "basis": {},
            },
            "sender.public_authority",
        ),
        (
            {
                "kind": "REFERRAL",
                "sent_at": "24/11/2026",
                "sender": SCHOOL,
                "recipient": CSC,
                "basis": {},
            },
            "sent_at",
        ),
        (
            {"kind": "REFERRAL", "sent_at": 5, "sender": SCHOOL, "recipient": CSC, "basis": {}},
            "sent_at",
        ),
        (
            {"kind": "REFERRAL", "sender": SCHOOL, "recipient": CSC, "basis": {}, "extra": 1},
            "extra",
        ),
        (
            {"kind": "REFERRAL", "sender": SCHOOL, "recipient": CSC, "basis": {}, "forwarding": {}},
            "forwarding",
        ),
        (
            {"kind": "REFERRAL", "sender": SCHOOL, "recipient": CSC, "basis": {}, "facts": []},
            "facts",
        ),
        (
            {"kind": "REFERRAL", "sender": SCHOOL, "recipient": CSC, "basis": {}, "deployment": {}},
            "deployment",
        ),
    ],
)
def test_unreadable_requests_raise_invalid_request(data: Any, reason: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_request_json(data)
    detail = info.value.detail or ""
    assert reason in detail
    assert "\n" not in detail


def test_a_request_with_an_empty_basis_is_read_and_rejected() -> None:
    verdict = check_request_json(
        {"kind": "REFERRAL", "sender": SCHOOL, "recipient": CSC, "basis": {}}
    )
    assert verdict.decision == "reject"
    assert {"L001", "X004", "X006", "X007", "P011"} <= set(verdict.rule_ids)


def test_basis_tag_object_is_accepted_in_a_policy_request() -> None:
    request = PolicyRequest(
        kind="REFERRAL",
        sender=SCHOOL,  # type: ignore[arg-type]
        recipient=CSC,  # type: ignore[arg-type]
        basis=BasisTag.model_validate(BASE_TAG),  # type: ignore[arg-type]
    )
    assert evaluate(request).decision == "accept"


# == never anything but a Verdict or InvalidRequest ============================================

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
TAG_KEYS = [*BasisTag.model_fields, "unknown_key"]
CONSENT_KEYS = [
    "data_subject_role",
    "state",
    "not_sought_reason",
    "p18_consent_reason",
    "given_by",
    "date",
    "scope",
    "record_ref",
    "x",
]
codes_or_json = (
    st.sampled_from(
        [
            "A6_1_e",
            "A6_1_ea",
            "A6_1_f",
            "AX1_6",
            "A9_2_g",
            "SCH1_P2_18",
            "SCH1_P3_36(SCH1_P2_18)",
            "special_category",
            "criminal_offence",
            "given",
            "refused",
            "not_sought",
            "p18_2_c",
            "2026-11-24",
            "CA2004_S16H",
            "DPA_PART3",
            "public_interest",
            "no",
        ]
    )
    | json_values
)
consent_entries = st.lists(
    st.dictionaries(st.sampled_from(CONSENT_KEYS), codes_or_json, max_size=6) | json_values,
    max_size=3,
)
tags = st.fixed_dictionaries(
    {},
    optional={
        **{key: codes_or_json | st.lists(codes_or_json, max_size=3) for key in TAG_KEYS},
        "consent": consent_entries,
        "justification": st.dictionaries(
            st.sampled_from([*BASE_TAG["justification"], "other"]), codes_or_json, max_size=5
        )
        | json_values,
        "transparency": st.dictionaries(
            st.sampled_from(
                ["informed", "reason_not_informed", "decision_authorised_by", "review_date", "z"]
            ),
            codes_or_json,
        )
        | json_values,
    },
)
parties = (
    st.fixed_dictionaries(
        {"org_type": st.sampled_from(sorted(ORG_LABELS)) | json_values},
        optional={
            "public_authority": st.booleans() | json_values,
            "apd_in_place": st.booleans() | json_values,
        },
    )
    | json_values
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from([k.value for k in codes.MessageKind]) | json_values,
        "sent_at": st.sampled_from(["2026-11-24T09:30:00Z", "2026-01-01T00:00:00Z", "bad"])
        | json_values,
        "sender": parties,
        "recipient": parties,
        "forwarding": st.none()
        | st.fixed_dictionaries(
            {"onward_disclosure": codes_or_json}, optional={"originator_consent_ref": codes_or_json}
        )
        | json_values,
        "basis": tags | json_values,
        "justification_available": st.booleans() | json_values,
        "facts": st.none()
        | st.dictionaries(
            st.sampled_from(
                [
                    "facts_vs_opinion_marked",
                    "sensitive_identities",
                    "information_withheld",
                    "withholding_reason",
                ]
            ),
            codes_or_json | st.booleans(),
        )
        | json_values,
    },
)


def _check_only_verdict_or_invalid(data: Any) -> None:
    detail: str | None = None
    try:
        verdict = check_request_json(data)
    except InvalidRequest as error:
        detail = error.detail
    if detail is not None:
        assert detail
        assert "\n" not in detail
        return
    assert isinstance(verdict, Verdict)
    out = verdict.to_json_dict()
    json.dumps(out)
    rejects = [f for f in verdict.findings if f.level.value.startswith("REJECT_")]
    assert (verdict.decision == "reject") == bool(rejects)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_gives_a_verdict_or_invalid_request(data: Any) -> None:
    _check_only_verdict_or_invalid(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_any_request_shaped_value_gives_a_verdict_or_invalid_request(data: Any) -> None:
    _check_only_verdict_or_invalid(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tags)
def test_any_basis_is_evaluated_without_error(basis: dict[str, Any]) -> None:
    verdict = check_request_json(req(basis))
    assert verdict.decision in ("accept", "warn", "reject")


# == composition ==================================================================================


def test_allow_anything_accepts_even_a_bad_request() -> None:
    bad = PolicyRequest.model_validate(req(tag(art6=["A6_1_f"]), sender=ACADEMY))
    assert evaluate(bad, AllowAnything).decision == "accept"
    assert evaluate(bad).decision == "reject"


def test_combinators() -> None:
    l001, l002, a006 = RULES_BY_ID["L001"], RULES_BY_ID["L002"], RULES_BY_ID["A006"]
    academy_f = PolicyRequest.model_validate(req(tag(art6=["A6_1_f"]), sender=ACADEMY))
    ctx = RuleContext.from_request(academy_f)
    assert [f.rule for f in AllOf(l001, l002).check(ctx)] == ["L002"]
    assert list(AnyOf(l002, l001).check(ctx)) == []  # L001 is satisfied
    assert list(AnyOf(l002, a006).check(ctx)) == []  # A006 has nothing to say
    x009 = RULES_BY_ID["X009"]  # no LIA reference either
    assert [f.rule for f in AnyOf(l002, x009).check(ctx)] == ["L002", "X009"]
    assert list(When(lambda c: c.kind == "ACKNOWLEDGEMENT", l002).check(ctx)) == []
    assert [f.rule for f in When(lambda c: c.kind == "REFERRAL", l002).check(ctx)] == ["L002"]
    only_l002 = evaluate(academy_f, AllOf(l002))
    assert only_l002.rule_ids == ["L002"]
    assert only_l002.decision == "reject"


# == guidance =====================================================================================


def _completed(suggestion: dict[str, Any]) -> dict[str, Any]:
    basis = copy.deepcopy(suggestion["basis"])
    text = "Maya disclosed an injury caused by an adult at home; the council must assess it now."
    fields = {item["field"] for item in suggestion["to_complete"]}
    j = basis.setdefault("justification", {})
    for name in fields:
        if name.startswith("justification."):
            j[name.split(".", 1)[1]] = text
    if "special_categories" in fields:
        basis["special_categories"] = ["health"]
    if "consent" in fields:
        basis["consent"] = [
            {
                "data_subject_role": "child",
                "state": "not_sought",
                "not_sought_reason": "would_increase_risk_to_child",
            }
        ]
    if "transparency" in fields:
        basis["transparency"] = {"informed": "yes"}
    if "retention_class" in fields:
        basis["retention_class"] = "LOCAL_POLICY_7Y"
    if "request_ref" in fields:
        basis["request_ref"] = "RFI-1"
    return basis


SENDERS = sorted(ORG_LABELS)
KINDS = ["REFERRAL", "INFORMATION_ONLY", "RESPONSE_TO_RFI", "LADO_REFERRAL"]


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("kind", KINDS)
def test_completed_suggestions_pass_the_engine(sender: str, kind: str) -> None:
    categories = ["personal", "special_category", "criminal_offence"]
    suggestion = suggest_basis(sender, "local_authority_childrens_services", kind, categories)
    basis = _completed(suggestion)
    verdict = run(
        req(
            basis,
            kind=kind,
            sender={"org_type": sender, "apd_in_place": True},
            recipient={"org_type": "local_authority_childrens_services"},
        )
    )
    assert not [f for f in verdict.findings if f.level.value.startswith("REJECT")], (
        verdict.to_json_dict()
    )
    assert suggestion["explanation"]


def test_guidance_defaults_per_organisation_type() -> None:
    school = suggest_basis(
        "maintained_school", "local_authority_childrens_services", "REFERRAL", ["personal"]
    )
    assert school["basis"]["art6"] == ["A6_1_e"]
    assert "EA2002_S175" in school["basis"]["gateways"]
    assert school["basis"]["justification"]["statutory_function_citation"].startswith(
        "Education Act 2002 s.175"
    )
    assert "public task" in school["explanation"]
    for org in ("independent_school", "charity_vcs"):
        other = suggest_basis(org, "local_authority_childrens_services", "REFERRAL", ["personal"])
        assert other["basis"]["art6"] == ["A6_1_ea"]
        assert other["basis"]["annex1_condition"] == "AX1_6"
    csc = suggest_basis(
        "local_authority_childrens_services", "maintained_school", "DECISION_FEEDBACK", ["personal"]
    )
    assert csc["basis"]["art6"] == ["A6_1_e"]
    assert set(csc["basis"]["gateways"]) == {"CA1989_S17", "CA1989_S47"}
    assert "Children Act 1989 s.17" in csc["basis"]["justification"]["statutory_function_citation"]
    special = suggest_basis(
        "maintained_school", "local_authority_childrens_services", "REFERRAL", ["special_category"]
    )
    assert (special["basis"]["art9_condition"], special["basis"]["sch1_condition"]) == (
        "A9_2_g",
        "SCH1_P2_18",
    )
    rfi = suggest_basis("charity_vcs", "local_authority_childrens_services", "RESPONSE_TO_RFI", [])
    assert rfi["basis"]["annex1_condition"] == "AX1_1"


@pytest.mark.parametrize(
    ("sender", "recipient", "kind", "categories"),
    [
        ("exchange_relay", "police", "REFERRAL", []),
        ("school", "police", "REFERRAL", []),
        ("maintained_school", "nobody", "REFERRAL", []),
        ("maintained_school", "police", "LETTER", []),
        ("maintained_school", "police", "REFERRAL", ["gossip"]),
    ],
)
def test_guidance_refuses_unknown_inputs(
    sender: str, recipient: str, kind: str, categories: list[str]
) -> None:
    with pytest.raises(InvalidRequest):
        suggest_basis(sender, recipient, kind, categories)


def test_deployment_policy_bounds() -> None:
    with pytest.raises(ValueError, match="min_statement_length"):
        DeploymentPolicy(min_statement_length=0)


def test_deeply_nested_values_do_not_exhaust_the_stack() -> None:
    deep_list: Any = []
    deep_dict: Any = {}
    for _ in range(3000):
        deep_list = [deep_list]
        deep_dict = {"a": deep_dict}
    basis = tag(
        x=deep_list,
        art6=deep_list,
        consent=[deep_dict, {"state": deep_list}],
        transparency=deep_dict,
        justification={"necessity": deep_list, "q": deep_dict},
    )
    verdict = check_request_json(req(basis))
    assert verdict.decision == "reject"
    assert {"X002", "X003"} <= set(verdict.rule_ids)
