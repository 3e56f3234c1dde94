"""Codes shared by every part of the exchange.

Transcribed from the partnership's lawful-basis model (``policy_model.json``,
version 0.1.0-draft) so that no component loads the research draft at run time.
Unknown codes are not errors here: fields that carry codes are plain strings
and the policy engine reports codes it does not know as findings.
"""

from __future__ import annotations

from enum import StrEnum


class OrgType(StrEnum):
    """Organisation types (policy model ``org_types``, ``public_authority_bar``), auditor, relay."""

    LOCAL_AUTHORITY_CHILDRENS_SERVICES = "local_authority_childrens_services"
    MAINTAINED_SCHOOL = "maintained_school"
    ACADEMY_OR_FREE_SCHOOL = "academy_or_free_school"
    INDEPENDENT_SCHOOL = "independent_school"
    PRIVATE_OR_VOLUNTARY_NURSERY = "private_or_voluntary_nursery"
    CHARITY_VCS = "charity_vcs"
    NHS_TRUST = "nhs_trust"
    GP_PRACTICE_NHS_CONTRACT = "gp_practice_nhs_contract"
    POLICE = "police"
    LOCAL_AUTHORITY_OTHER = "local_authority_other"
    FE_COLLEGE = "fe_college"
    ICB = "icb"
    PROBATION = "probation"
    YOUTH_OFFENDING_TEAM = "youth_offending_team"
    CHILDMINDER = "childminder"
    HOUSING_ASSOCIATION = "housing_association"
    SPORTS_CLUB = "sports_club"
    FAITH_ORGANISATION = "faith_organisation"
    PARTNERSHIP_OVERSIGHT = "partnership_oversight"
    EXCHANGE_RELAY = "exchange_relay"


class MessageKind(StrEnum):
    """Message kinds (policy model ``message_kinds``)."""

    REFERRAL = "REFERRAL"
    ACKNOWLEDGEMENT = "ACKNOWLEDGEMENT"
    DECISION_FEEDBACK = "DECISION_FEEDBACK"
    REQUEST_FOR_INFORMATION = "REQUEST_FOR_INFORMATION"
    RESPONSE_TO_RFI = "RESPONSE_TO_RFI"
    INFORMATION_ONLY = "INFORMATION_ONLY"
    POLICE_NOTIFICATION = "POLICE_NOTIFICATION"
    STRATEGY_DISCUSSION_RECORD = "STRATEGY_DISCUSSION_RECORD"
    CP_CONFERENCE = "CP_CONFERENCE"
    CP_FILE_TRANSFER = "CP_FILE_TRANSFER"
    LADO_REFERRAL = "LADO_REFERRAL"
    ESCALATION = "ESCALATION"


class OutcomeCode(StrEnum):
    """Outcome codes for decision feedback (policy model ``outcome_codes``)."""

    NFA = "NFA"
    INFO_ADVICE = "INFO_ADVICE"
    EARLY_HELP = "EARLY_HELP"
    FAMILY_HELP = "FAMILY_HELP"
    OTHER_AGENCY = "OTHER_AGENCY"
    S17_ASSESSMENT = "S17_ASSESSMENT"
    STRATEGY_S47 = "STRATEGY_S47"
    IMMEDIATE_PROTECTION = "IMMEDIATE_PROTECTION"
    POLICE = "POLICE"
    LADO = "LADO"
    ALREADY_OPEN = "ALREADY_OPEN"
    TRANSFER_LA = "TRANSFER_LA"
    MORE_INFO_NEEDED = "MORE_INFO_NEEDED"
    ASSESSMENT_NFA = "ASSESSMENT_NFA"
    ASSESSMENT_EARLY_HELP = "ASSESSMENT_EARLY_HELP"
    CIN_PLAN = "CIN_PLAN"
    S47_NOT_SUBSTANTIATED = "S47_NOT_SUBSTANTIATED"
    S47_SUBSTANTIATED_ICPC = "S47_SUBSTANTIATED_ICPC"
    CP_PLAN = "CP_PLAN"
    LEGAL_PROCEEDINGS = "LEGAL_PROCEEDINGS"


class Art6Basis(StrEnum):
    """UK GDPR Article 6(1) lawful bases."""

    A6_1_A = "A6_1_a"
    A6_1_B = "A6_1_b"
    A6_1_C = "A6_1_c"
    A6_1_D = "A6_1_d"
    A6_1_E = "A6_1_e"
    A6_1_EA = "A6_1_ea"
    A6_1_F = "A6_1_f"


class Annex1Condition(StrEnum):
    """UK GDPR Annex 1 recognised legitimate interest conditions."""

    AX1_1 = "AX1_1"
    AX1_2 = "AX1_2"
    AX1_4 = "AX1_4"
    AX1_5 = "AX1_5"
    AX1_6 = "AX1_6"


class Art9Condition(StrEnum):
    """UK GDPR Article 9(2) conditions."""

    A9_2_A = "A9_2_a"
    A9_2_B = "A9_2_b"
    A9_2_C = "A9_2_c"
    A9_2_F = "A9_2_f"
    A9_2_G = "A9_2_g"
    A9_2_H = "A9_2_h"
    A9_2_I = "A9_2_i"
    A9_2_J = "A9_2_j"


class Sch1Condition(StrEnum):
    """DPA 2018 Schedule 1 conditions."""

    SCH1_P1_1 = "SCH1_P1_1"
    SCH1_P1_2 = "SCH1_P1_2"
    SCH1_P1_3 = "SCH1_P1_3"  # public health (supports Art 9(2)(i); DPA 2018 s.10(2))
    SCH1_P1_4 = "SCH1_P1_4"  # archiving, research, statistics (supports Art 9(2)(j))
    SCH1_P2_6 = "SCH1_P2_6"
    SCH1_P2_10 = "SCH1_P2_10"
    SCH1_P2_11 = "SCH1_P2_11"
    SCH1_P2_17 = "SCH1_P2_17"
    SCH1_P2_18 = "SCH1_P2_18"
    SCH1_P3_29 = "SCH1_P3_29"
    SCH1_P3_30 = "SCH1_P3_30"
    SCH1_P3_36 = "SCH1_P3_36"


class Sch8Condition(StrEnum):
    """DPA 2018 Schedule 8 conditions (Part 3 law-enforcement processing)."""

    SCH8_1 = "SCH8_1"
    SCH8_3 = "SCH8_3"
    SCH8_4 = "SCH8_4"


class Gateway(StrEnum):
    """Statutory gateways and guidance commonly cited."""

    CA1989_S17 = "CA1989_S17"
    CA1989_S47 = "CA1989_S47"
    CA1989_S47_9 = "CA1989_S47_9"
    CA1989_S27 = "CA1989_S27"
    CA2004_S10 = "CA2004_S10"
    CA2004_S11 = "CA2004_S11"
    CA2004_S16E = "CA2004_S16E"
    CA2004_S16H = "CA2004_S16H"
    CA2004_S16LA = "CA2004_S16LA"
    CA2004_S16LC = "CA2004_S16LC"
    EA2002_S175 = "EA2002_S175"
    ISSR2014_P7 = "ISSR2014_P7"
    CDA1998_S115 = "CDA1998_S115"
    PCSCA2022_S16 = "PCSCA2022_S16"
    VPA2024_OP_ENCOMPASS = "VPA2024_OP_ENCOMPASS"
    WT2023 = "WT2023"
    KCSIE = "KCSIE"


class SpecialCategory(StrEnum):
    """Special categories of personal data (UK GDPR Art 9(1))."""

    RACIAL_OR_ETHNIC_ORIGIN = "racial_or_ethnic_origin"
    POLITICAL_OPINIONS = "political_opinions"
    RELIGIOUS_OR_PHILOSOPHICAL_BELIEFS = "religious_or_philosophical_beliefs"
    TRADE_UNION_MEMBERSHIP = "trade_union_membership"
    GENETIC = "genetic"
    BIOMETRIC_FOR_IDENTIFICATION = "biometric_for_identification"
    HEALTH = "health"
    SEX_LIFE = "sex_life"
    SEXUAL_ORIENTATION = "sexual_orientation"


class DataCategory(StrEnum):
    """Categories of personal data in a message."""

    PERSONAL = "personal"
    SPECIAL_CATEGORY = "special_category"
    CRIMINAL_OFFENCE = "criminal_offence"


class ConsentState(StrEnum):
    """Data-protection consent states (the lawful-basis meaning of consent)."""

    NOT_APPLICABLE = "not_applicable"
    NOT_SOUGHT = "not_sought"
    SOUGHT_PENDING = "sought_pending"
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class NotSoughtReason(StrEnum):
    """Reasons consent was not sought."""

    WOULD_INCREASE_RISK_TO_CHILD = "would_increase_risk_to_child"
    WOULD_PREJUDICE_ENQUIRY_OR_INVESTIGATION = "would_prejudice_enquiry_or_investigation"
    URGENCY_DELAY_WOULD_CAUSE_HARM = "urgency_delay_would_cause_harm"
    CANNOT_BE_GIVEN_AGE_OR_CAPACITY = "cannot_be_given_age_or_capacity"
    CANNOT_REASONABLY_OBTAIN_UNREACHABLE = "cannot_reasonably_obtain_unreachable"
    DATA_SUBJECT_IS_ALLEGED_PERPETRATOR = "data_subject_is_alleged_perpetrator"
    RISK_TO_ANOTHER_PERSON = "risk_to_another_person"
    OTHER = "other"


class DataSubjectRole(StrEnum):
    """Roles of data subjects in a message."""

    CHILD = "child"
    SIBLING = "sibling"
    PARENT_OR_PR_HOLDER = "parent_or_pr_holder"
    OTHER_HOUSEHOLD_MEMBER = "other_household_member"
    ALLEGED_PERPETRATOR = "alleged_perpetrator"
    REFERRER = "referrer"
    WITNESS = "witness"
    OTHER = "other"


class ConsentGiver(StrEnum):
    """Who gave or refused consent (policy model ``consent_model.consent_giver``).

    Codes, not names: the consent entries travel in the readable message header.
    """

    CHILD_COMPETENT = "child_competent"
    PARENT_OR_PR_HOLDER = "parent_or_pr_holder"
    ADULT_DATA_SUBJECT = "adult_data_subject"
    ATTORNEY_OR_DEPUTY = "attorney_or_deputy"
    NOT_APPLICABLE = "not_applicable"


class ServiceAgreement(StrEnum):
    """Agreement to receive a service (not data-protection consent)."""

    AGREED = "agreed"
    DECLINED = "declined"
    NOT_SOUGHT = "not_sought"
    NOT_APPLICABLE = "not_applicable"


class TransparencyInformed(StrEnum):
    """Whether the family was told about the sharing."""

    YES = "yes"
    NO = "no"
    DEFERRED = "deferred"


class ReasonNotInformed(StrEnum):
    """Why the family was not told."""

    WOULD_INCREASE_RISK_TO_CHILD = "would_increase_risk_to_child"
    WOULD_PREJUDICE_CRIME_PREVENTION_OR_POLICE_INVESTIGATION = (
        "would_prejudice_crime_prevention_or_police_investigation"
    )
    RISK_TO_ANOTHER_PERSON = "risk_to_another_person"
    POLICE_OR_ORIGINATOR_REQUEST = "police_or_originator_request"
    CANNOT_LOCATE = "cannot_locate"
    OTHER = "other"


class ConfidentialityBasis(StrEnum):
    """Common-law confidentiality basis."""

    NOT_CONFIDENTIAL = "not_confidential"
    CONSENT = "consent"
    LEGAL_REQUIREMENT = "legal_requirement"
    STATUTORY_POWER = "statutory_power"
    COURT_ORDER = "court_order"
    PUBLIC_INTEREST = "public_interest"


class OnwardDisclosure(StrEnum):
    """Onward-disclosure marking set by the originator."""

    PERMITTED = "permitted"
    ORIGINATOR_CONSENT_REQUIRED = "originator_consent_required"
    PROHIBITED = "prohibited"


class P18Purpose(StrEnum):
    """DPA 2018 Sch 1 para 18(1)(a) purposes."""

    PROTECT_FROM_HARM = "protect_from_harm"
    PROTECT_WELLBEING = "protect_wellbeing"


class P18ConsentReason(StrEnum):
    """DPA 2018 Sch 1 para 18(2) reasons for processing without consent."""

    P18_2_A = "p18_2_a"
    P18_2_B = "p18_2_b"
    P18_2_C = "p18_2_c"


class DataSubjectCategory(StrEnum):
    """Who the data subject is for para 18 / Annex 1 para 6."""

    UNDER_18 = "under_18"
    ADULT_AT_RISK = "adult_at_risk"
    ADULT_NOT_AT_RISK = "adult_not_at_risk"


class ProfessionalSecrecyBasis(StrEnum):
    """Art 9(3) / DPA s.11(1) secrecy safeguard."""

    HEALTH_PROFESSIONAL = "health_professional"
    SOCIAL_WORK_PROFESSIONAL = "social_work_professional"
    DUTY_OF_CONFIDENTIALITY = "duty_of_confidentiality"


class Regime(StrEnum):
    """Data protection regime."""

    UK_GDPR = "UK_GDPR"
    DPA_PART3 = "DPA_PART3"


class ConcernCategory(StrEnum):
    """Categories of concern a referral can raise."""

    PHYSICAL_ABUSE = "physical_abuse"
    EMOTIONAL_ABUSE = "emotional_abuse"
    SEXUAL_ABUSE = "sexual_abuse"
    NEGLECT = "neglect"
    CHILD_SEXUAL_EXPLOITATION = "child_sexual_exploitation"
    CHILD_CRIMINAL_EXPLOITATION = "child_criminal_exploitation"
    DOMESTIC_ABUSE = "domestic_abuse"
    FEMALE_GENITAL_MUTILATION = "female_genital_mutilation"
    RADICALISATION = "radicalisation"
    ONLINE_HARM = "online_harm"
    SELF_HARM = "self_harm"
    MISSING_FROM_HOME_OR_EDUCATION = "missing_from_home_or_education"
    PEER_ON_PEER_ABUSE = "peer_on_peer_abuse"
    HONOUR_BASED_ABUSE = "honour_based_abuse"
    TRAFFICKING_OR_MODERN_SLAVERY = "trafficking_or_modern_slavery"
    PARENTAL_SUBSTANCE_MISUSE = "parental_substance_misuse"
    PARENTAL_MENTAL_HEALTH = "parental_mental_health"
    OTHER = "other"


#: Organisation types that are public authorities (DPA 2018 s.7) when performing their tasks.
PUBLIC_AUTHORITY_ORG_TYPES: frozenset[str] = frozenset(
    {
        "local_authority_childrens_services",
        "local_authority_other",
        "maintained_school",
        "academy_or_free_school",
        "fe_college",
        "nhs_trust",
        "icb",
        "gp_practice_nhs_contract",
        "police",
        "probation",
        "youth_offending_team",
    }
)

#: Organisation types the children's-social-care front door belongs to.
FRONT_DOOR_ORG_TYPES: frozenset[str] = frozenset({"local_authority_childrens_services"})


class S16HPurpose(StrEnum):
    """The Children Act 2004 function a s.16H request serves (arrangements or reviews)."""

    S16E = "16E"
    S16F = "16F"


class SensitiveIdentityRole(StrEnum):
    """People whose identity must be protected (policy model ``sensitive_identity_model``)."""

    REFERRER_NON_PROFESSIONAL = "referrer_non_professional"
    REFERRER_PROFESSIONAL = "referrer_professional"
    WITNESS = "witness"
    VICTIM_ADDRESS = "victim_address"
    OTHER = "other"


class WithholdingReason(StrEnum):
    """Why information asked for was withheld (CA 2004 s.16LA(3) once in force)."""

    MORE_DETRIMENTAL_TO_CHILD = "more_detrimental_to_child"
    OTHER = "other"


class ConsistentIdentifierException(StrEnum):
    """Why a child's consistent identifier was left out (CA 2004 s.16LC exceptions)."""

    MORE_DETRIMENTAL_TO_CHILD = "more_detrimental_to_child"
    UNKNOWN_AND_FINDING_WOULD_CAUSE_UNREASONABLE_DELAY = (
        "unknown_and_finding_would_cause_unreasonable_delay"
    )
