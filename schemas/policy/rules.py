"""The partnership's lawful-basis rules, one small object each.

Ids follow ``shared/policy/policy_model.json`` (0.1.0-draft) where a model rule
applies; ``X...`` ids are this engine's own. Messages are written for the
practitioner who will read them (a teacher, a nurse), not for a lawyer; the
citations say where each rule comes from.

What is here and what is not
----------------------------
* Every model rule that can be decided from one message: L001-L022, L025,
  P001-P011, A001-A007, G006 and G007 (the last two heuristically, from content
  facts the sender's client supplies).
* Not here: **L023** (the Art 30 record of processing) and **L024** (DPIA,
  Art 28/26 arrangements) are duties on the system and the partnership, not
  properties of a message; the relay's audit log and the deployment checklist
  carry them. **G001-G005** are about threads over time (acknowledgement,
  decision, feedback, 45-day assessment, 15-day conference): the relay's
  deadlines code tracks them; one message cannot show that something did *not*
  happen in time.
* Model ``requires_fields`` with no model rule behind them are enforced where a
  missing item would make the basis unlawful or unshowable (X009 LIA for
  Art 6(1)(f), X010 vital interests justification); those for Sch 1 paras 11 and
  17 and Art 9(2)(f) are not (low relevance to this exchange; see open questions).

Levels for this engine's own rules
----------------------------------
* ``X001`` (unknown code) and ``X002`` (malformed field) are ``REJECT_LAW``: a
  basis the engine cannot read is not a basis anyone can show was met (UK GDPR
  Art 5(2), Art 6(1)), and these findings must not be downgradable by
  ``reject_policy_as_warn``. Rules elsewhere treat unknown codes as absent, so a
  misspelt condition also fails the rule that needed it.
* The rest are ``REJECT_POLICY`` (record-keeping derived from Art 5(2) and DPA
  Sch 1 para 41) or ``WARN_ADVICE``.

Decisions on scope (documented here so they can be challenged)
---------------------------------------------------------------
* Every message in this exchange concerns an identifiable child, so "message
  contains personal data" is always true.
* ACKNOWLEDGEMENT carries no new personal data beyond matching identifiers
  (model ``message_kinds``): P001, P002, X004, X006 and X007 do not apply to it.
* A003 "routine flow" means INFORMATION_ONLY and CP_FILE_TRANSFER: the kinds
  that are regular by nature (notifications, file transfers between schools),
  unlike referrals and requests that respond to a specific concern.
* Under DPA 2018 Part 3 (``regime: DPA_PART3``) Articles 6 and 9 do not apply:
  L001 and L007 are replaced by L025.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from schemas import codes
from schemas.policy.base import AllOf, FunctionRule, rule
from schemas.policy.context import RuleContext, TextState, sch1_part
from schemas.policy.findings import Level
from schemas.policy.guidance import ORG_LABELS, STATUTORY_FUNCTIONS

__all__ = ["DEFAULT_POLICY", "RULES", "RULES_BY_ID", "SKIPPED_MODEL_RULES"]

A6 = codes.Art6Basis
A9 = codes.Art9Condition
S1 = codes.Sch1Condition
K = codes.MessageKind
CS = codes.ConsentState

#: Art 6(1)(ea) and Annex 1 commenced on this instant (DUAA 2025 s.70; SI 2026/82 reg 2(c)).
RLI_COMMENCEMENT = datetime(2026, 2, 5, tzinfo=UTC)

#: Model rules deliberately not implemented here, with the reason.
SKIPPED_MODEL_RULES = MappingProxyType(
    {
        "L023": "system-level: the Art 30 record is kept by the relay's audit log",
        "L024": "deployment-level: DPIA and Art 26/28 arrangements are partnership documents",
        "G001": "thread timing: acknowledgement deadline (relay deadlines code)",
        "G002": "thread timing: decision deadline (relay deadlines code)",
        "G003": "thread timing: feedback deadline (relay deadlines code)",
        "G004": "thread timing: 45 working day assessment (relay deadlines code)",
        "G005": "thread timing: 15 working day conference (relay deadlines code)",
    }
)

# Organisation-type groups -------------------------------------------------------------------

SCHOOLS = frozenset({"maintained_school", "academy_or_free_school", "independent_school"})
S16H_REQUESTERS = frozenset({"local_authority_childrens_services", "icb", "police"})
#: CDA 1998 s.115(2) "relevant authorities" (medium confidence on the current list).
S115_RECIPIENTS = frozenset(
    {
        "police",
        "local_authority_childrens_services",
        "local_authority_other",
        "probation",
        "nhs_trust",
        "icb",
    }
)
#: DPA 2018 s.30 and Sch 7 competent authorities among our organisation types (s.30(1)(b)
#: covers bodies with statutory law-enforcement functions; medium confidence for YOTs).
COMPETENT_AUTHORITIES = frozenset({"police", "probation", "youth_offending_team"})
ROUTINE_KINDS = frozenset({K.INFORMATION_ONLY, K.CP_FILE_TRANSFER})

#: Sch 1 conditions that need an appropriate policy document (paras 1(1)(b), 5; para 36
#: assumed, policy.md open point 5).
APD_CONDITIONS = frozenset(
    {
        S1.SCH1_P1_1,
        S1.SCH1_P2_6,
        S1.SCH1_P2_10,
        S1.SCH1_P2_11,
        S1.SCH1_P2_17,
        S1.SCH1_P2_18,
        S1.SCH1_P3_36,
    }
)
#: Art 9(2) conditions that need a particular Sch 1 Part 1 condition (DPA 2018 s.10(2)).
ART9_PART1: Mapping[str, str] = MappingProxyType(
    {
        A9.A9_2_B: S1.SCH1_P1_1,
        A9.A9_2_H: S1.SCH1_P1_2,
        A9.A9_2_I: S1.SCH1_P1_3,
        A9.A9_2_J: S1.SCH1_P1_4,
    }
)
_ART6_NAMES = MappingProxyType(
    {
        A6.A6_1_EA: "'recognised legitimate interests' (Art 6(1)(ea))",
        A6.A6_1_F: "'legitimate interests' (Art 6(1)(f))",
    }
)

# Citations ------------------------------------------------------------------------------------

UKGDPR = "UK GDPR"
DFE = "DfE Information sharing advice for safeguarding practitioners (2024)"
ICO_DSC = "ICO Data sharing code of practice (2021)"


def _short(ctx: RuleContext, name: str, message: str, *, statement: bool = True) -> Iterator[str]:
    """Yield ``message`` if the named justification text is missing or too short."""
    state = ctx.text(name, statement=statement)
    if state is TextState.MISSING:
        yield message
    elif state is TextState.TOO_SHORT:
        n = ctx.deployment.min_statement_length
        yield f"{message} What is written is too short to explain it (at least {n} characters)."


def _lower(label: str) -> str:
    return label[:1].lower() + label[1:]


def _complete_given(ctx: RuleContext) -> bool:
    return any(
        e.state == CS.GIVEN and e.given_by and e.date and e.scope and e.record_ref
        for e in ctx.consent
    )


def _incapacity_shown(ctx: RuleContext) -> bool:
    return any(
        e.not_sought_reason == codes.NotSoughtReason.CANNOT_BE_GIVEN_AGE_OR_CAPACITY
        or e.p18_consent_reason == codes.P18ConsentReason.P18_2_A
        for e in ctx.consent
    )


# == REJECT_LAW ===============================================================================


@rule(
    "L001",
    Level.REJECT_LAW,
    "Choose a lawful basis under Article 6 of the UK GDPR. Every message that carries "
    "personal information needs one; for schools, councils, the NHS and the police this is "
    "usually 'public task' (Art 6(1)(e)).",
    ["UK GDPR Art 6(1)"],
)
def requires_article6_basis(ctx: RuleContext) -> Iterator[str]:
    """At least one known Art 6 basis (UK GDPR regime)."""
    if not ctx.is_part3 and not ctx.art6:
        yield ""


@rule(
    "L002",
    Level.REJECT_LAW,
    "A public authority cannot rely on legitimate interests (Art 6(1)(f)) or recognised "
    "legitimate interests (Art 6(1)(ea)) when doing its work; use public task (Art 6(1)(e)).",
    ["UK GDPR Art 6(1) final sentence (as amended by DUAA 2025 s.70(2)(c))", "DPA 2018 s.7"],
)
def public_authority_cannot_use_legitimate_interests(ctx: RuleContext) -> Iterator[str]:
    """No (ea) or (f) for a public-authority sender."""
    barred = [code for code in (A6.A6_1_EA, A6.A6_1_F) if code in ctx.art6]
    if not barred or not ctx.sender.is_public_authority:
        return
    org = ctx.sender.org_type
    if org in codes.PUBLIC_AUTHORITY_ORG_TYPES and org in ORG_LABELS:
        who = f"{ORG_LABELS[org]} is a public authority."
    else:
        who = "Your organisation is recorded as a public authority."
    names = " or ".join(_ART6_NAMES[code] for code in barred)
    function = STATUTORY_FUNCTIONS.get(org)
    if function is not None and org in ORG_LABELS:
        example = f": for {_lower(ORG_LABELS[org])} that is {function.citation}."
    else:
        example = ", for example Children Act 2004 s.11 or Education Act 2002 s.175."
    yield (
        f"{who} When it does its safeguarding work it cannot rely on {names}. "
        "Use 'public task' (Art 6(1)(e)) instead, and cite the law that gives you your "
        f"safeguarding function{example}"
    )


@rule(
    "L003",
    Level.REJECT_LAW,
    "'Recognised legitimate interests' (Art 6(1)(ea)) needs one of the conditions in Annex 1 "
    "of the UK GDPR, and only exists from 5 February 2026.",
    ["UK GDPR Art 6(1)(ea), Art 6(5) and Annex 1", "DUAA 2025 s.70", "SI 2026/82 reg 2(c)"],
)
def recognised_legitimate_interest_needs_annex1(ctx: RuleContext) -> Iterator[str]:
    """(ea) needs a known Annex 1 condition and a send date on or after 5 Feb 2026."""
    if A6.A6_1_EA not in ctx.art6:
        return
    if not ctx.known("Annex 1 condition", ctx.tag.annex1_condition):
        yield (
            "'Recognised legitimate interests' (Art 6(1)(ea)) only works with one of the "
            "conditions listed in Annex 1 of the UK GDPR. Say which one: for safeguarding a "
            "child it is usually paragraph 6 (AX1_6)."
        )
    if ctx.sent_at is not None and ctx.sent_at < RLI_COMMENCEMENT:
        yield (
            "'Recognised legitimate interests' (Art 6(1)(ea)) came into force on 5 February "
            "2026, so it cannot be the basis for a message sent before then."
        )


@rule(
    "L004",
    Level.REJECT_LAW,
    "The Annex 1 safeguarding condition only covers a child or an adult at risk, and only for "
    "a safeguarding purpose.",
    ["UK GDPR Annex 1 para 6"],
)
def annex1_safeguarding_scope(ctx: RuleContext) -> Iterator[str]:
    """AX1_6 needs a child or at-risk adult and a safeguarding purpose."""
    if ctx.tag.annex1_condition != codes.Annex1Condition.AX1_6:
        return
    if ctx.tag.data_subject_category not in {
        codes.DataSubjectCategory.UNDER_18,
        codes.DataSubjectCategory.ADULT_AT_RISK,
    }:
        yield (
            "The Annex 1 safeguarding condition only covers a child (under 18) or an adult at "
            "risk. Say which (data_subject_category)."
        )
    if not ctx.known("para 18 purpose", ctx.tag.p18_purpose):
        yield (
            "The Annex 1 safeguarding condition needs a safeguarding purpose: protecting someone "
            "from harm or neglect, or protecting their well-being (p18_purpose)."
        )


@rule(
    "L005",
    Level.REJECT_LAW,
    "Answering under Annex 1 paragraph 1 needs a request from a public body saying it needs "
    "the information for its public task.",
    ["UK GDPR Annex 1 para 1", "ICO recognised legitimate interest guidance (23 Mar 2026)"],
    reads_justification=True,
)
def annex1_public_task_request(ctx: RuleContext) -> Iterator[str]:
    """AX1_1 needs the request reference and the requester's public-task statement."""
    if ctx.tag.annex1_condition != codes.Annex1Condition.AX1_1:
        return
    if not (ctx.tag.request_ref or "").strip():
        yield (
            "You are answering a public body's request under Annex 1 paragraph 1. Give the "
            "reference of that request (request_ref)."
        )
    yield from _short(
        ctx,
        "request_statement_public_task",
        "Copy the requester's statement that they need the information for their public task "
        "(request_statement_public_task).",
    )


@rule(
    "L006",
    Level.REJECT_LAW,
    "Consent as the lawful basis (Art 6(1)(a)) needs a record of consent that was actually "
    "given: by whom, when, for what, and where the record is kept.",
    ["UK GDPR Art 6(1)(a)", "UK GDPR Art 7(1) and 7(3)"],
)
def consent_basis_needs_evidence(ctx: RuleContext) -> Iterator[str]:
    """(a) needs a complete 'given' consent entry."""
    if A6.A6_1_A in ctx.art6 and not _complete_given(ctx):
        yield ""


@rule(
    "L007",
    Level.REJECT_LAW,
    "Sensitive ('special category') information such as health needs an Article 9(2) "
    "condition as well as the Article 6 basis. For safeguarding this is usually Art 9(2)(g) "
    "with DPA 2018 Schedule 1 paragraph 18.",
    ["UK GDPR Art 9(1) and 9(2)"],
)
def special_category_needs_article9(ctx: RuleContext) -> Iterator[str]:
    """Special category data needs a known Art 9 condition (UK GDPR regime)."""
    if (
        ctx.declares_special
        and not ctx.is_part3
        and not ctx.known("Article 9 condition", ctx.tag.art9_condition)
    ):
        yield ""


@rule(
    "L008",
    Level.REJECT_LAW,
    "Art 9(2)(b), (h), (i) and (j) each need their matching condition in DPA 2018 Schedule 1 "
    "Part 1.",
    ["DPA 2018 s.10(2)", "DPA 2018 Sch 1 Part 1"],
)
def article9_part1_condition(ctx: RuleContext) -> Iterator[str]:
    """9(2)(b)/(h)/(i)/(j) need Sch 1 Part 1 paras 1/2/3/4 respectively."""
    art9 = ctx.tag.art9_condition
    if art9 is None or art9 not in ART9_PART1:
        return
    needed = ART9_PART1[art9]
    if ctx.tag.sch1_condition != needed:
        para = needed.rsplit("_", 1)[1]
        yield (
            f"Art 9(2)({art9.rsplit('_', 1)[1]}) needs DPA 2018 Schedule 1 Part 1 paragraph "
            f"{para} ({needed}) as its supporting condition (sch1_condition)."
        )


@rule(
    "L009",
    Level.REJECT_LAW,
    "Art 9(2)(g) (substantial public interest) needs a condition from DPA 2018 Schedule 1 "
    "Part 2, usually paragraph 18 (safeguarding of children).",
    ["DPA 2018 s.10(3)", "DPA 2018 Sch 1 Part 2"],
)
def article9g_part2_condition(ctx: RuleContext) -> Iterator[str]:
    """9(2)(g) needs a known Sch 1 Part 2 condition."""
    if ctx.tag.art9_condition == A9.A9_2_G and sch1_part(ctx.tag.sch1_condition) != "P2":
        yield ""


@rule(
    "L010",
    Level.REJECT_LAW,
    "Art 9(2)(c) (vital interests) can only be used when the person cannot give consent, "
    "physically or legally. If they can consent, even if they refuse, use another condition.",
    ["UK GDPR Art 9(2)(c)"],
    reads_justification=True,
)
def vital_interests_needs_incapacity(ctx: RuleContext) -> Iterator[str]:
    """9(2)(c) needs a consent entry showing consent cannot be given, and a statement."""
    if ctx.tag.art9_condition != A9.A9_2_C:
        return
    if not _incapacity_shown(ctx):
        yield (
            "Art 9(2)(c) (vital interests) is only available when the person cannot give "
            "consent. Record that in the consent entry (not_sought_reason "
            "'cannot_be_given_age_or_capacity'), or use another condition."
        )
    yield from _short(
        ctx,
        "incapacity_statement",
        "Explain why the person cannot give consent (incapacity_statement).",
    )


@rule(
    "L011",
    Level.REJECT_LAW,
    "Explicit consent (Art 9(2)(a)) must be evidenced: record who gave it, when, for what, and "
    "where the record is kept.",
    ["UK GDPR Art 9(2)(a)", "UK GDPR Art 7(1)"],
)
def explicit_consent_needs_record(ctx: RuleContext) -> Iterator[str]:
    """9(2)(a) needs a 'given' consent entry with a record reference."""
    if ctx.tag.art9_condition == A9.A9_2_A and not any(
        e.state == CS.GIVEN and (e.record_ref or "").strip() for e in ctx.consent
    ):
        yield ""


@rule(
    "L012",
    Level.REJECT_LAW,
    "Information about a crime or an allegation of one (criminal offence data) needs a "
    "condition from DPA 2018 Schedule 1 (art10_sch1_condition). For an allegation in a "
    "safeguarding referral this is usually paragraph 36 built on paragraph 18.",
    ["UK GDPR Art 10", "DPA 2018 s.10(5)", "DPA 2018 s.11(2)"],
)
def criminal_offence_data_needs_condition(ctx: RuleContext) -> Iterator[str]:
    """Criminal data needs a known Sch 1 condition (or DPA Part 3); para 36 needs its base."""
    if not ctx.declares_criminal or ctx.is_part3:
        return
    condition = ctx.tag.art10_condition
    if not ctx.known("Schedule 1 condition", condition):
        yield ""
        return
    if condition == S1.SCH1_P3_36:
        if ctx.tag.art10_underlying_conflict:
            yield (
                "The Schedule 1 paragraph 36 condition names two different Part 2 conditions "
                "(in art10_sch1_condition and art10_underlying_condition). Name one."
            )
        elif sch1_part(ctx.tag.art10_underlying) != "P2":
            yield (
                "Schedule 1 paragraph 36 works by applying a Part 2 condition such as paragraph "
                "18 or 6. Say which one (art10_underlying_condition, or sch1_condition)."
            )
    if condition == S1.SCH1_P3_29 and not _complete_given(ctx):
        yield (
            "Schedule 1 paragraph 29 (consent) needs a record of consent that was given: by "
            "whom, when, for what, and where the record is kept."
        )
    if condition == S1.SCH1_P3_30 and not _incapacity_shown(ctx):
        yield (
            "Schedule 1 paragraph 30 (vital interests) only applies when the person cannot give "
            "consent. Record that in the consent entry, or use another condition."
        )


@rule(
    "L013",
    Level.REJECT_LAW,
    "Schedule 1 paragraph 18 needs all of: a safeguarding purpose, a child or an adult at "
    "risk, a listed reason for not having consent, and a substantial public interest.",
    ["DPA 2018 Sch 1 para 18(1)-(3)"],
    reads_justification=True,
)
def para18_elements(ctx: RuleContext) -> Iterator[str]:
    """Para 18: purpose, person, consent reason, and SPI (unless via para 36)."""
    uses = ctx.uses(S1.SCH1_P2_18)
    if not uses:
        return
    if not ctx.known("para 18 purpose", ctx.tag.p18_purpose):
        yield (
            "Paragraph 18 needs a safeguarding purpose: protecting someone from neglect or harm "
            "(protect_from_harm) or protecting their well-being (protect_wellbeing)."
        )
    if ctx.tag.data_subject_category not in {
        codes.DataSubjectCategory.UNDER_18,
        codes.DataSubjectCategory.ADULT_AT_RISK,
    }:
        yield (
            "Paragraph 18 only covers a child (under 18) or an adult at risk. Say which "
            "(data_subject_category)."
        )
    if not ctx.p18_reasons:
        yield (
            "Paragraph 18 only applies when consent is not being relied on for a listed reason: "
            "it cannot be given, you cannot reasonably be expected to get it, or asking would "
            "put the child at risk. Record, for each person, why consent was not sought."
        )
    if any(use.spi_required for use in uses):
        yield from _short(
            ctx,
            "substantial_public_interest",
            "Paragraph 18 needs a substantial public interest: explain why protecting this "
            "child is a substantial public interest here (substantial_public_interest).",
        )


@rule(
    "L014",
    Level.REJECT_LAW,
    "Schedule 1 paragraph 18 only covers sharing without consent. Where consent was given, "
    "use explicit consent (Art 9(2)(a)) or another condition.",
    ["DPA 2018 Sch 1 para 18(1)(c)"],
)
def para18_not_with_consent_given(ctx: RuleContext) -> Iterator[str]:
    """Para 18 cannot be combined with a 'given' consent state."""
    if ctx.uses(S1.SCH1_P2_18) and any(e.state == CS.GIVEN for e in ctx.consent):
        yield ""


@rule(
    "L015",
    Level.REJECT_LAW,
    "Your organisation must have an appropriate policy document (APD) in place to use this "
    "condition. Ask your data protection officer.",
    [
        "DPA 2018 Sch 1 paras 1(1)(b), 5 and 38-39",
        "DPA 2018 s.35(5) and s.42 (Part 3 sensitive processing)",
    ],
)
def appropriate_policy_document(ctx: RuleContext) -> Iterator[str]:
    """Conditions needing an APD require ``sender.apd_in_place``; para 10 to police is exempt."""
    if ctx.sender.apd_in_place is True:
        return
    to_competent = ctx.recipient.org_type in COMPETENT_AUTHORITIES
    needing = sorted(
        {
            use.code
            for use in ctx.condition_uses
            if use.route != "para36"
            and use.code in APD_CONDITIONS
            and not (use.code == S1.SCH1_P2_10 and to_competent)
        }
    )
    part3 = ctx.is_part3 and ctx.known("Schedule 8 condition", ctx.tag.sch8_condition)
    if needing or part3:
        named = ", ".join(needing + ([ctx.tag.sch8_condition or ""] if part3 else []))
        yield (
            f"The condition(s) you chose ({named}) need your organisation to have an appropriate "
            "policy document (APD) in place, and your organisation is not recorded as having "
            "one. Ask your data protection officer."
        )


@rule(
    "L016",
    Level.REJECT_LAW,
    "Schedule 1 paragraph 10 (preventing or detecting an unlawful act) needs a description of "
    "the unlawful act and an explanation of why asking for consent would prejudice that.",
    ["DPA 2018 Sch 1 para 10(1)"],
    reads_justification=True,
)
def para10_elements(ctx: RuleContext) -> Iterator[str]:
    """Para 10: unlawful act, why consent would prejudice, and SPI (unless via para 36)."""
    uses = ctx.uses(S1.SCH1_P2_10)
    if not uses:
        return
    yield from _short(
        ctx,
        "unlawful_act_description",
        "Paragraph 10 needs a description of the unlawful act you are trying to prevent or "
        "detect (unlawful_act_description).",
    )
    yield from _short(
        ctx,
        "why_consent_would_prejudice",
        "Paragraph 10 needs an explanation of why asking for consent would get in the way of "
        "preventing or detecting it (why_consent_would_prejudice).",
    )
    if any(use.spi_required for use in uses):
        yield from _short(
            ctx,
            "substantial_public_interest",
            "Paragraph 10 needs a substantial public interest: explain it "
            "(substantial_public_interest).",
        )


@rule(
    "L017",
    Level.REJECT_LAW,
    "Schedule 1 paragraph 6 needs the law that gives you the function and a substantial public "
    "interest.",
    ["DPA 2018 Sch 1 para 6"],
    reads_justification=True,
)
def para6_elements(ctx: RuleContext) -> Iterator[str]:
    """Para 6: statutory function citation, and SPI (unless via para 36)."""
    uses = ctx.uses(S1.SCH1_P2_6)
    if not uses:
        return
    yield from _short(
        ctx,
        "statutory_function_citation",
        "Paragraph 6 needs the law that gives you this function, for example 'Children Act "
        "1989 s.47' (statutory_function_citation).",
        statement=False,
    )
    if any(use.spi_required for use in uses):
        yield from _short(
            ctx,
            "substantial_public_interest",
            "Paragraph 6 needs a substantial public interest: explain it "
            "(substantial_public_interest).",
        )


@rule(
    "L018",
    Level.REJECT_LAW,
    "The health and social care condition (Schedule 1 paragraph 2) needs the work to be done "
    "by, or under the responsibility of, a health or social work professional or someone else "
    "bound by confidentiality (professional_secrecy_basis).",
    ["UK GDPR Art 9(3)", "DPA 2018 s.11(1)"],
)
def health_care_secrecy(ctx: RuleContext) -> Iterator[str]:
    """Sch 1 para 2 needs a known professional secrecy basis."""
    if ctx.uses(S1.SCH1_P1_2) and not ctx.known(
        "professional secrecy basis", ctx.tag.professional_secrecy_basis
    ):
        yield ""


@rule(
    "L019",
    Level.REJECT_LAW,
    "'Legal obligation' (Art 6(1)(c)) must name the law that obliges you to share, for "
    "example 'Children Act 2004 s.16H' (legal_obligation_citation).",
    ["UK GDPR Art 6(1)(c) and 6(3)"],
    reads_justification=True,
)
def legal_obligation_citation(ctx: RuleContext) -> Iterator[str]:
    """(c) needs the legal obligation citation."""
    if A6.A6_1_C in ctx.art6:
        yield from _short(
            ctx, "legal_obligation_citation", legal_obligation_citation.message, statement=False
        )


@rule(
    "L020",
    Level.REJECT_LAW,
    "'Public task' (Art 6(1)(e)) must have a basis in law: cite the function, for example "
    "'Education Act 2002 s.175' or 'Children Act 1989 s.47' (statutory_function_citation).",
    ["UK GDPR Art 6(3)", "DPA 2018 s.8"],
    reads_justification=True,
)
def public_task_citation(ctx: RuleContext) -> Iterator[str]:
    """(e) needs the statutory function citation."""
    if A6.A6_1_E not in ctx.art6:
        return
    function = STATUTORY_FUNCTIONS.get(ctx.sender.org_type)
    message = (
        "'Public task' (Art 6(1)(e)) must have a basis in law: cite the law that gives you the "
        "function"
        + (
            f", for {_lower(ORG_LABELS[ctx.sender.org_type])} usually '{function.citation}'"
            if function is not None
            else ", for example 'Children Act 2004 s.11'"
        )
        + " (statutory_function_citation)."
    )
    yield from _short(ctx, "statutory_function_citation", message, statement=False)


@rule(
    "L021",
    Level.REJECT_LAW,
    "Only a safeguarding partner (the council, the integrated care board or the police) may "
    "make a s.16H request, and only for the safeguarding arrangements (s.16E) or a local "
    "child safeguarding practice review (s.16F).",
    ["Children Act 2004 s.16H"],
)
def s16h_request_scope(ctx: RuleContext) -> Iterator[str]:
    """s.16H requests: safeguarding-partner sender and a 16E/16F purpose."""
    if codes.Gateway.CA2004_S16H not in ctx.gateways or ctx.kind != K.REQUEST_FOR_INFORMATION:
        return
    if ctx.sender.org_type not in S16H_REQUESTERS:
        yield (
            "Only a safeguarding partner (the council's children's services, the integrated "
            "care board or the police) may make a request under Children Act 2004 s.16H."
        )
    if ctx.tag.s16h_purpose not in {codes.S16HPurpose.S16E, codes.S16HPurpose.S16F}:
        yield (
            "A s.16H request must be for the safeguarding arrangements (s.16E) or a local child "
            "safeguarding practice review (s.16F). Say which (s16h_purpose)."
        )


@rule(
    "L022",
    Level.REJECT_LAW,
    "Crime and Disorder Act 1998 s.115 only allows disclosure to a 'relevant authority' (the "
    "police, a council, probation or a health body), for the purposes of that Act.",
    ["Crime and Disorder Act 1998 s.115"],
)
def s115_recipient_scope(ctx: RuleContext) -> Iterator[str]:
    """s.115 recipient must be a relevant authority (purpose is not machine-checkable)."""
    if codes.Gateway.CDA1998_S115 in ctx.gateways and ctx.recipient.org_type not in S115_RECIPIENTS:
        yield ""


@rule(
    "L025",
    Level.REJECT_LAW,
    "Law-enforcement processing (DPA 2018 Part 3) is only for competent authorities such as "
    "the police, and sensitive information needs consent or a Schedule 8 condition.",
    ["DPA 2018 s.30 and Sch 7", "DPA 2018 s.35", "DPA 2018 Sch 8"],
)
def part3_sensitive_processing(ctx: RuleContext) -> Iterator[str]:
    """DPA Part 3: competent-authority sender; sensitive data needs Sch 8 or consent."""
    if not ctx.is_part3:
        return
    if ctx.sender.org_type not in COMPETENT_AUTHORITIES:
        yield (
            "Only a competent authority, such as the police, can share under the "
            "law-enforcement rules (DPA 2018 Part 3). Use the UK GDPR regime instead."
        )
    if ctx.declares_special and not (
        ctx.known("Schedule 8 condition", ctx.tag.sch8_condition) or _complete_given(ctx)
    ):
        yield (
            "Sensitive information shared for law enforcement needs a Schedule 8 condition "
            "(for a child, usually paragraph 4, SCH8_4) or recorded consent."
        )


# == REJECT_POLICY ============================================================================


@rule(
    "P001",
    Level.REJECT_POLICY,
    "Write down why sharing this information is necessary for protecting the child "
    "(justification.necessity).",
    ["UK GDPR Art 5(1)(c) and 5(2)", f"{DFE}, golden rule 6"],
    reads_justification=True,
)
def necessity_statement(ctx: RuleContext) -> Iterator[str]:
    """A necessity statement (not for acknowledgements)."""
    if not ctx.is_acknowledgement:
        yield from _short(ctx, "necessity", necessity_statement.message)


@rule(
    "P002",
    Level.REJECT_POLICY,
    "As a public authority you must be able to show the sharing is proportionate: why this "
    "much information, to this recipient, now (justification.proportionality).",
    ["Human Rights Act 1998 s.6", "ECHR Art 8(2)"],
    reads_justification=True,
)
def proportionality_statement(ctx: RuleContext) -> Iterator[str]:
    """A proportionality statement from public-authority senders (not for acknowledgements)."""
    if ctx.sender.is_public_authority and not ctx.is_acknowledgement:
        yield from _short(ctx, "proportionality", proportionality_statement.message)


@rule(
    "P003",
    Level.REJECT_POLICY,
    "If the family has not been told, record why not and who agreed that decision.",
    [f"{DFE}, golden rule 2", "DPA 2018 Sch 2 Part 1 para 2"],
)
def not_informed_needs_reason(ctx: RuleContext) -> Iterator[str]:
    """transparency.informed no/deferred needs a reason and an authoriser."""
    t = ctx.tag.transparency
    if t is None or t.informed not in {
        codes.TransparencyInformed.NO,
        codes.TransparencyInformed.DEFERRED,
    }:
        return
    if not t.reason_not_informed:
        yield (
            "The family has not been told about this sharing: record why not "
            "(transparency.reason_not_informed)."
        )
    if not (t.decision_authorised_by or "").strip():
        yield (
            "The family has not been told about this sharing: record who agreed that decision, "
            "for example the DSL (transparency.decision_authorised_by)."
        )


@rule(
    "P004",
    Level.REJECT_POLICY,
    "You are passing on confidential information because the public interest outweighs the "
    "duty of confidence: write down why (justification.public_interest).",
    ["W v Egdell [1989] EWCA Civ 13"],
    reads_justification=True,
)
def public_interest_justification(ctx: RuleContext) -> Iterator[str]:
    """confidentiality_basis public_interest needs a justification."""
    if ctx.tag.confidentiality_basis == codes.ConfidentialityBasis.PUBLIC_INTEREST:
        yield from _short(ctx, "public_interest", public_interest_justification.message)


@rule(
    "P005",
    Level.REJECT_POLICY,
    "Someone refused consent. Sharing anyway needs a basis that does not depend on consent and "
    "a written reason for overriding the refusal (justification.override_justification).",
    ["DPA 2018 Sch 1 para 18(2)", f"{DFE}, golden rule 3"],
    reads_justification=True,
)
def refusal_override(ctx: RuleContext) -> Iterator[str]:
    """A refusal needs an override justification and (for special data) a fitting condition."""
    refused = [e for e in ctx.consent if e.state == CS.REFUSED]
    if not refused:
        return
    yield from _short(
        ctx,
        "override_justification",
        "Someone refused consent: write down why you are sharing anyway "
        "(justification.override_justification).",
    )
    if not ctx.declares_special:
        return
    sch1 = ctx.tag.sch1_condition
    if sch1 in {S1.SCH1_P2_6, S1.SCH1_P2_10}:
        return
    if sch1 == S1.SCH1_P2_18:
        ok = {codes.P18ConsentReason.P18_2_B, codes.P18ConsentReason.P18_2_C}
        default = ctx.tag.p18_consent_reason
        if all((e.p18_consent_reason or default) in ok for e in refused):
            return
        yield (
            "Consent was refused, so paragraph 18 can only be used if you could not reasonably "
            "be expected to get consent (p18_2_b) or asking would put the child at risk "
            "(p18_2_c). Give that reason on the refused consent entry (p18_consent_reason)."
        )
        return
    yield (
        "Consent was refused, so the sensitive information needs a condition that does not "
        "depend on consent: Schedule 1 paragraph 18 (with reason b or c), 6 or 10."
    )


@rule(
    "P006",
    Level.REJECT_POLICY,
    "Record why consent was not sought (consent[].not_sought_reason).",
    [DFE, ICO_DSC],
)
def not_sought_needs_reason(ctx: RuleContext) -> Iterator[str]:
    """Every 'not_sought' entry has a reason."""
    for index, entry in enumerate(ctx.consent):
        if entry.state == CS.NOT_SOUGHT and not entry.not_sought_reason:
            role = (entry.data_subject_role or "person").replace("_", " ")
            yield (
                f"Consent was not sought from the {role} (consent entry {index + 1}): record "
                "why (not_sought_reason)."
            )


@rule(
    "P007",
    Level.REJECT_POLICY,
    "The organisation that supplied this information has said it must not be passed on. Do "
    "not forward it; ask them to share it directly if it is needed.",
    ["Government Security Classifications handling rules", "MASH and police protocols"],
)
def no_forwarding_when_prohibited(ctx: RuleContext) -> Iterator[str]:
    """Re-sharing content marked 'prohibited'."""
    if (
        ctx.forwarding is not None
        and ctx.forwarding.onward_disclosure == codes.OnwardDisclosure.PROHIBITED
    ):
        yield ""


@rule(
    "P008",
    Level.REJECT_POLICY,
    "The organisation that supplied this information must agree before it is passed on. "
    "Record their agreement (forwarding.originator_consent_ref).",
    ["MASH and police protocols"],
)
def forwarding_needs_originator_consent(ctx: RuleContext) -> Iterator[str]:
    """Re-sharing 'originator_consent_required' content needs the consent reference."""
    f = ctx.forwarding
    if (
        f is not None
        and f.onward_disclosure == codes.OnwardDisclosure.ORIGINATOR_CONSENT_REQUIRED
        and not (f.originator_consent_ref or "").strip()
    ):
        yield ""


@rule(
    "P009",
    Level.REJECT_POLICY,
    "Declining to share under Children Act 2004 s.16LA is only allowed if sharing would be "
    "more harmful to the child than not sharing; record that judgement and the reasons.",
    ["Children Act 2004 s.16LA(3)"],
    reads_justification=True,
    reads_facts=True,
)
def s16la_withholding(ctx: RuleContext) -> Iterator[str]:
    """Withholding under s.16LA (when in force) needs the 'more detrimental' reason."""
    facts = ctx.facts
    if (
        facts is None
        or not ctx.deployment.s16la_in_force
        or codes.Gateway.CA2004_S16LA not in ctx.gateways
        or ctx.kind != K.RESPONSE_TO_RFI
        or facts.information_withheld is not True
    ):
        return
    if facts.withholding_reason != codes.WithholdingReason.MORE_DETRIMENTAL_TO_CHILD:
        yield (
            "Under s.16LA you may only withhold information if sharing it would be more harmful "
            "to the child than not sharing (withholding_reason 'more_detrimental_to_child')."
        )
    yield from _short(
        ctx,
        "withholding_reasoning",
        "Write down why sharing would be more harmful to the child than not sharing "
        "(justification.withholding_reasoning).",
    )


@rule(
    "P010",
    Level.REJECT_POLICY,
    "When you ask an organisation that is not a public authority for information, say that "
    "you need it for your public task and which law sets that out, so they can lawfully answer "
    "(justification.annex1_p1_statement).",
    ["UK GDPR Annex 1 para 1", "ICO recognised legitimate interest guidance (23 Mar 2026)"],
    reads_justification=True,
)
def annex1_request_statement(ctx: RuleContext) -> Iterator[str]:
    """Requests to non-public bodies carry the Annex 1 para 1 statement."""
    if ctx.kind == K.REQUEST_FOR_INFORMATION and not ctx.recipient.is_public_authority:
        yield from _short(ctx, "annex1_p1_statement", annex1_request_statement.message)


@rule(
    "P011",
    Level.REJECT_POLICY,
    "Give the retention class from your organisation's retention policy, so everyone knows how "
    "long this may be kept (retention_class).",
    ["UK GDPR Art 5(1)(e)", "DPA 2018 Sch 1 para 39(b)"],
)
def retention_class(ctx: RuleContext) -> Iterator[str]:
    """A retention class, from the deployment's list when it has one."""
    value = (ctx.tag.retention_class or "").strip()
    if not value:
        yield ""
    elif ctx.deployment.retention_classes is not None and (
        value not in ctx.deployment.retention_classes
    ):
        yield (
            "The retention class is not one of those in the partnership's retention schedule. "
            "Choose one from your retention policy (retention_class)."
        )


# == WARN =====================================================================================


@rule(
    "A001",
    Level.WARN_ADVICE,
    "Consent is usually not the right lawful basis when a public body shares to safeguard a "
    "child: if the person withdraws it you must stop. Consider 'public task' (Art 6(1)(e)) or "
    "'legal obligation' (Art 6(1)(c)).",
    [DFE, "ICO 10 step guide to sharing information to safeguard children, step 8"],
)
def consent_basis_for_public_body(ctx: RuleContext) -> Iterator[str]:
    """Public body using Art 6(1)(a)."""
    if ctx.sender.is_public_authority and A6.A6_1_A in ctx.art6:
        yield ""


@rule(
    "A002",
    Level.WARN_ADVICE,
    "The health and social care condition (Art 9(2)(h)) is unlikely to fit a school. "
    "Consider Art 9(2)(g) with Schedule 1 paragraph 18 or 6.",
    ["DPA 2018 s.11(1)", "UK GDPR Art 9(3)"],
)
def health_condition_for_school(ctx: RuleContext) -> Iterator[str]:
    """A school using Art 9(2)(h)."""
    if ctx.tag.art9_condition == A9.A9_2_H and ctx.sender.org_type in SCHOOLS:
        yield ""


@rule(
    "A003",
    Level.WARN_ADVICE,
    "Regular sharing like this should be covered by a data sharing agreement (and a DPIA). "
    "Give its reference (dsa_ref).",
    [ICO_DSC],
)
def routine_sharing_needs_agreement(ctx: RuleContext) -> Iterator[str]:
    """Routine kinds without a data sharing agreement reference."""
    if ctx.kind in ROUTINE_KINDS and not (ctx.tag.dsa_ref or "").strip():
        yield ""


@rule(
    "A004",
    Level.WARN_ADVICE,
    "This message includes people who could be harmed if their details became known. Protect "
    "their identities and do not pass their details on to those listed.",
    [f"{DFE}, golden rule 5"],
    reads_facts=True,
)
def sensitive_identities(ctx: RuleContext) -> Iterator[str]:
    """Sensitive identities flagged in the content."""
    if ctx.facts is not None and ctx.facts.sensitive_identities:
        roles = ", ".join(
            dict.fromkeys(p.role.replace("_", " ") for p in ctx.facts.sensitive_identities)
        )
        yield (
            f"This message includes people who could be harmed if their details became known "
            f"({roles}). Protect their identities and do not pass their details on to those "
            "listed."
        )


@rule(
    "A005",
    Level.WARN_ADVICE,
    "Mark which parts are facts and which are opinions, and say where information from other "
    "people came from.",
    ["DfE Information sharing advice (2018), principles: accurate", "local procedures"],
    reads_facts=True,
)
def facts_and_opinion(ctx: RuleContext) -> Iterator[str]:
    """Facts and opinion not marked (content kinds only)."""
    if (
        ctx.facts is not None
        and ctx.kind not in {K.ACKNOWLEDGEMENT, K.REQUEST_FOR_INFORMATION}
        and ctx.facts.facts_vs_opinion_marked is not True
    ):
        yield ""


@rule(
    "A006",
    Level.WARN_ADVICE,
    "Sharing in an emergency is allowed. Afterwards, record what was shared, with whom and "
    "why, within one working day.",
    [f"{ICO_DSC}, emergency section"],
)
def emergency_sharing(ctx: RuleContext) -> Iterator[str]:
    """Emergency flag set."""
    if ctx.tag.emergency is True:
        yield ""


@rule(
    "A007",
    Level.WARN_ADVICE,
    "Include the child's consistent identifier (Children Act 2004 s.16LC), or record why it is "
    "left out.",
    ["Children Act 2004 s.16LC"],
    reads_facts=True,
)
def consistent_identifier(ctx: RuleContext) -> Iterator[str]:
    """When the s.16LC regulations are in force: identifier included or exception recorded."""
    facts = ctx.facts
    if (
        facts is not None
        and ctx.deployment.consistent_identifier_regs_in_force
        and facts.consistent_identifier_included is not True
        and not facts.consistent_identifier_exception
    ):
        yield ""


@rule(
    "G006",
    Level.WARN_GUIDANCE,
    "A child protection file should go to the new school within 5 school days, separately from "
    "the main pupil file, and the new school should confirm it has received it.",
    ["Keeping Children Safe in Education, Part two and Annex C"],
    reads_facts=True,
)
def cp_file_transfer(ctx: RuleContext) -> Iterator[str]:
    """CP file transfer: receipt confirmation requested and sent separately."""
    facts = ctx.facts
    if facts is None or ctx.kind != K.CP_FILE_TRANSFER:
        return
    if facts.receipt_confirmation_requested is not True:
        yield (
            "Ask the new school to confirm it has received the child protection file "
            "(Keeping Children Safe in Education)."
        )
    if facts.sent_separately_from_pupil_file is False:
        yield "Send the child protection file separately from the main pupil file."


@rule(
    "G007",
    Level.WARN_GUIDANCE,
    "Feedback to the referrer should say what was decided and what they need to do, not pass "
    "on the assessment or details about other people they do not need.",
    ["Working Together to Safeguard Children 2023, chapter 3", "UK GDPR Art 5(1)(c)"],
    reads_facts=True,
)
def feedback_minimisation(ctx: RuleContext) -> Iterator[str]:
    """Decision feedback carrying assessment narrative or unneeded third-party details."""
    facts = ctx.facts
    if (
        facts is not None
        and ctx.kind == K.DECISION_FEEDBACK
        and (
            facts.contains_assessment_narrative is True
            or facts.contains_unneeded_third_party_details is True
        )
    ):
        yield ""


# == this engine's own rules =====================================================================


@rule(
    "X001",
    Level.REJECT_LAW,
    "A code in this message is not one we recognise, so we cannot tell whether the sharing is "
    "lawful. Check the spelling against the list of codes.",
    ["UK GDPR Art 5(2) and Art 6(1)", "shared/policy/README.md: unknown codes are rejected"],
)
def unknown_codes(ctx: RuleContext) -> Iterator[str]:
    """Every code-valued field must hold a known code."""
    for field in ctx.code_fields():
        if not ctx.known(field.vocabulary, field.value):
            yield (
                f"We do not recognise the code in '{field.path}' ({field.vocabulary}), so we "
                "cannot tell whether the sharing is lawful. Check it against the list of codes."
            )


@rule(
    "X002",
    Level.REJECT_LAW,
    "Part of the lawful-basis information is not in the expected form, so it could not be read.",
    ["UK GDPR Art 5(2) and Art 6(1)", "shared/policy/README.md (interchange format v1)"],
)
def malformed_fields(ctx: RuleContext) -> Iterator[str]:
    """Fields the parser had to drop because of their shape."""
    for issue in ctx.issues:
        if issue.kind == "malformed":
            yield (
                f"'{issue.path}' could not be read ({issue.problem}), so it was ignored. "
                "Correct it and check again."
            )


@rule(
    "X003",
    Level.REJECT_POLICY,
    "The lawful-basis information contains a field this version does not know. The codes travel "
    "in a header the relay can read, so unexpected fields are refused in case they carry "
    "personal information.",
    ["UK GDPR Art 5(1)(c)", "shared/policy/README.md (interchange format v1)"],
)
def unknown_fields(ctx: RuleContext) -> Iterator[str]:
    """Keys that are not part of the interchange format."""
    for issue in ctx.issues:
        if issue.kind == "unknown_field":
            yield (
                f"'{issue.path}' is not a field of the lawful-basis format. Remove it, or check "
                "its spelling; the codes travel in a header the relay can read."
            )


@rule(
    "X004",
    Level.REJECT_POLICY,
    "Say what kinds of information the message carries: personal, special category (such as "
    "health), criminal offence (including allegations) (data_categories).",
    ["UK GDPR Art 5(2)", "UK GDPR Art 30(1)(c)"],
)
def data_categories_declared(ctx: RuleContext) -> Iterator[str]:
    """At least one known data category (not for acknowledgements)."""
    if not ctx.is_acknowledgement and not ctx.data_categories:
        yield ""


@rule(
    "X005",
    Level.REJECT_POLICY,
    "The special category flag and the list of special categories must agree.",
    ["UK GDPR Art 9(1)", "UK GDPR Art 5(2)"],
)
def special_categories_consistent(ctx: RuleContext) -> Iterator[str]:
    """'special_category' in data_categories iff special_categories is non-empty."""
    flagged = codes.DataCategory.SPECIAL_CATEGORY in ctx.data_categories
    listed = bool(ctx.tag.special_categories)
    if flagged and not listed:
        yield (
            "You said the message carries special category information: list which kinds, for "
            "example health (special_categories)."
        )
    if listed and not flagged and ctx.data_categories:
        yield (
            "You listed special categories of information, so add 'special_category' to "
            "data_categories."
        )


@rule(
    "X006",
    Level.REJECT_POLICY,
    "Record whether the family has been told about this sharing (transparency.informed).",
    [f"{DFE}, golden rules 2 and 7", "UK GDPR Art 5(2)"],
)
def transparency_recorded(ctx: RuleContext) -> Iterator[str]:
    """A transparency record with 'informed' (not for acknowledgements)."""
    t = ctx.tag.transparency
    if not ctx.is_acknowledgement and (t is None or t.informed is None):
        yield ""


@rule(
    "X007",
    Level.REJECT_POLICY,
    "Record on what basis confidential information is passed on (confidentiality_basis), for "
    "example 'public_interest' or 'legal_requirement'.",
    ["W v Egdell [1989] EWCA Civ 13", "policy.md section 1.7"],
)
def confidentiality_recorded(ctx: RuleContext) -> Iterator[str]:
    """A confidentiality basis (not for acknowledgements)."""
    if not ctx.is_acknowledgement and ctx.tag.confidentiality_basis is None:
        yield ""


_STATE_NEEDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        CS.GIVEN: ("given_by", "date", "scope", "record_ref"),
        CS.REFUSED: ("refused_by", "date"),
        CS.WITHDRAWN: ("date",),
    }
)


_CONSENT_FIELD_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "given_by": "who gave it (given_by)",
        "refused_by": "who refused it (refused_by)",
        "date": "the date (date)",
        "scope": "what it covers (scope)",
        "record_ref": "where the record is kept (record_ref)",
    }
)


@rule(
    "X008",
    Level.REJECT_POLICY,
    "Each consent record must say whose consent it is, what happened, and the details that go "
    "with it (who, when, scope, record reference).",
    ["UK GDPR Art 7(1)", "UK GDPR Art 5(2)"],
)
def consent_entries_complete(ctx: RuleContext) -> Iterator[str]:
    """Consent entries carry a role, a state and the fields their state requires."""
    for index, entry in enumerate(ctx.consent):
        number = index + 1
        if not entry.data_subject_role:
            yield f"Consent entry {number} does not say whose consent it is (data_subject_role)."
        if not entry.state:
            yield f"Consent entry {number} does not say what happened (state)."
            continue
        missing = [
            _CONSENT_FIELD_WORDS[name]
            for name in _STATE_NEEDS.get(entry.state, ())
            if not (getattr(entry, name) or "").strip()
        ]
        if missing:
            yield (
                f"Consent entry {number} says consent was {entry.state} but does not record "
                f"{', '.join(missing)}."
            )


@rule(
    "X009",
    Level.REJECT_POLICY,
    "'Legitimate interests' (Art 6(1)(f)) needs a written legitimate interests assessment; "
    "give its reference (lia_reference).",
    ["UK GDPR Art 6(1)(f)", "UK GDPR Art 5(2)", "ICO guidance on legitimate interests"],
)
def legitimate_interests_assessment(ctx: RuleContext) -> Iterator[str]:
    """(f) needs an LIA reference (policy model ``requires_fields``)."""
    if A6.A6_1_F in ctx.art6 and not (ctx.tag.lia_reference or "").strip():
        yield ""


@rule(
    "X010",
    Level.REJECT_POLICY,
    "'Vital interests' (Art 6(1)(d)) is for life-or-death situations: explain why "
    "(justification.vital_interest_justification).",
    ["UK GDPR Art 6(1)(d)", "UK GDPR Art 5(2)"],
    reads_justification=True,
)
def vital_interests_justification(ctx: RuleContext) -> Iterator[str]:
    """(d) needs a vital interests justification (policy model ``requires_fields``)."""
    if A6.A6_1_D in ctx.art6:
        yield from _short(
            ctx, "vital_interest_justification", vital_interests_justification.message
        )


@rule(
    "X011",
    Level.WARN_ADVICE,
    "'Contract' (Art 6(1)(b)) is not expected for safeguarding sharing; check the basis.",
    ["UK GDPR Art 6(1)(b)", "policy_model.json article6_bases A6_1_b notes"],
)
def contract_basis(ctx: RuleContext) -> Iterator[str]:
    """Art 6(1)(b) declared."""
    if A6.A6_1_B in ctx.art6:
        yield ""


@rule(
    "X012",
    Level.WARN_ADVICE,
    "The duty to share in Children Act 2004 s.16LA is not yet in force in this partnership. "
    "Cite the law you are relying on today.",
    ["Children's Wellbeing and Schools Act 2026 s.4 and s.78(5)"],
)
def s16la_not_in_force(ctx: RuleContext) -> Iterator[str]:
    """s.16LA cited while the deployment says it has not been commenced."""
    if codes.Gateway.CA2004_S16LA in ctx.gateways and not ctx.deployment.s16la_in_force:
        yield ""


#: Every rule, in evaluation (and reporting) order.
RULES: tuple[FunctionRule, ...] = (
    unknown_codes,
    malformed_fields,
    unknown_fields,
    requires_article6_basis,
    public_authority_cannot_use_legitimate_interests,
    recognised_legitimate_interest_needs_annex1,
    annex1_safeguarding_scope,
    annex1_public_task_request,
    consent_basis_needs_evidence,
    special_category_needs_article9,
    article9_part1_condition,
    article9g_part2_condition,
    vital_interests_needs_incapacity,
    explicit_consent_needs_record,
    criminal_offence_data_needs_condition,
    para18_elements,
    para18_not_with_consent_given,
    appropriate_policy_document,
    para10_elements,
    para6_elements,
    health_care_secrecy,
    legal_obligation_citation,
    public_task_citation,
    s16h_request_scope,
    s115_recipient_scope,
    part3_sensitive_processing,
    necessity_statement,
    proportionality_statement,
    not_informed_needs_reason,
    public_interest_justification,
    refusal_override,
    not_sought_needs_reason,
    no_forwarding_when_prohibited,
    forwarding_needs_originator_consent,
    s16la_withholding,
    annex1_request_statement,
    retention_class,
    data_categories_declared,
    special_categories_consistent,
    transparency_recorded,
    confidentiality_recorded,
    consent_entries_complete,
    legitimate_interests_assessment,
    vital_interests_justification,
    contract_basis,
    consent_basis_for_public_body,
    health_condition_for_school,
    routine_sharing_needs_agreement,
    sensitive_identities,
    facts_and_opinion,
    emergency_sharing,
    consistent_identifier,
    cp_file_transfer,
    feedback_minimisation,
    s16la_not_in_force,
)

#: Rules by id.
RULES_BY_ID = MappingProxyType({r.rule: r for r in RULES})

#: The policy :func:`schemas.policy.engine.evaluate` applies by default: every rule.
DEFAULT_POLICY = AllOf(*RULES)
