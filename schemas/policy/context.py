"""The read-only view of one request that every rule receives (:class:`RuleContext`).

It parses the raw basis once (leniently, see :func:`schemas.lawful_basis.parse_basis`)
and offers the small questions rules keep asking: which *known* Art 6 bases are
declared, does the message declare special category data, which Sch 1 conditions
are in use and by which route, is a written statement present and long enough.
Unknown codes never count as satisfying anything: a rule that needs "an Art 9
condition" is not satisfied by a code the engine does not recognise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Literal

from schemas import codes
from schemas.lawful_basis import PARA36, BasisIssue, BasisTag, ConsentEntry, parse_basis
from schemas.policy.request import (
    DeploymentPolicy,
    Forwarding,
    MessageFacts,
    PartyContext,
    PolicyRequest,
)

__all__ = [
    "VOCABULARIES",
    "CodeField",
    "ConditionUse",
    "RuleContext",
    "TextState",
    "sch1_part",
]


def _values(enum: type[StrEnum]) -> frozenset[str]:
    return frozenset(member.value for member in enum)


#: The code lists the engine knows, by vocabulary name.
VOCABULARIES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "message kind": _values(codes.MessageKind),
        "organisation type": _values(codes.OrgType),
        "regime": _values(codes.Regime),
        "Article 6 basis": _values(codes.Art6Basis),
        "Annex 1 condition": _values(codes.Annex1Condition),
        "data category": _values(codes.DataCategory),
        "special category": _values(codes.SpecialCategory),
        "Article 9 condition": _values(codes.Art9Condition),
        "Schedule 1 condition": _values(codes.Sch1Condition),
        "Schedule 8 condition": _values(codes.Sch8Condition),
        "statutory gateway": _values(codes.Gateway),
        "para 18 purpose": _values(codes.P18Purpose),
        "para 18 consent reason": _values(codes.P18ConsentReason),
        "data subject category": _values(codes.DataSubjectCategory),
        "service agreement": _values(codes.ServiceAgreement),
        "confidentiality basis": _values(codes.ConfidentialityBasis),
        "onward disclosure marking": _values(codes.OnwardDisclosure),
        "professional secrecy basis": _values(codes.ProfessionalSecrecyBasis),
        "s.16H purpose": _values(codes.S16HPurpose),
        "data subject role": _values(codes.DataSubjectRole),
        "consent state": _values(codes.ConsentState),
        "reason consent was not sought": _values(codes.NotSoughtReason),
        "consent giver": _values(codes.ConsentGiver),
        "'family informed' value": _values(codes.TransparencyInformed),
        "reason the family was not told": _values(codes.ReasonNotInformed),
        "sensitive identity role": _values(codes.SensitiveIdentityRole),
        "withholding reason": _values(codes.WithholdingReason),
        "consistent identifier exception": _values(codes.ConsistentIdentifierException),
    }
)


def sch1_part(code: str | None) -> str | None:
    """``"P1"``, ``"P2"`` or ``"P3"`` for a known Schedule 1 code, else ``None``."""
    if code is None or code not in VOCABULARIES["Schedule 1 condition"]:
        return None
    return code.split("_")[1]


class TextState(Enum):
    """The state of a written statement the rules ask for."""

    SKIPPED = "skipped"
    """Justification text is not available to this evaluator (the relay): not checked."""
    PRESENT = "present"
    MISSING = "missing"
    TOO_SHORT = "too_short"


@dataclass(frozen=True, slots=True)
class CodeField:
    """One code-valued field of a request, for the unknown-code check."""

    path: str
    vocabulary: str
    value: str


@dataclass(frozen=True, slots=True)
class ConditionUse:
    """A Schedule 1 condition relied on, and how.

    ``route`` is ``"art9"`` (``sch1_condition``), ``"art10"`` (``art10_sch1_condition``
    used directly) or ``"para36"`` (the Part 2 condition para 36 builds on, which
    applies without its substantial-public-interest element: ``spi_required`` False).
    """

    code: str
    route: Literal["art9", "art10", "para36"]

    @property
    def spi_required(self) -> bool:
        """Whether the condition's substantial-public-interest element applies."""
        return self.route != "para36"


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may look at for one request. Build with :meth:`from_request`."""

    request: PolicyRequest
    tag: BasisTag
    issues: tuple[BasisIssue, ...]

    @classmethod
    def from_request(cls, request: PolicyRequest) -> RuleContext:
        """Parse the request's basis leniently and wrap both."""
        parsed = parse_basis(request.basis)
        return cls(request=request, tag=parsed.tag, issues=parsed.issues)

    # -- the request -------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The message kind as written."""
        return self.request.kind

    @property
    def sender(self) -> PartyContext:
        """The sending organisation."""
        return self.request.sender

    @property
    def recipient(self) -> PartyContext:
        """The receiving organisation."""
        return self.request.recipient

    @property
    def forwarding(self) -> Forwarding | None:
        """Present when the message re-shares content received from someone else."""
        return self.request.forwarding

    @property
    def deployment(self) -> DeploymentPolicy:
        """The partnership's switches."""
        return self.request.deployment

    @property
    def facts(self) -> MessageFacts | None:
        """Content facts, or ``None`` when the evaluator cannot see the content."""
        return self.request.facts

    @property
    def sent_at(self) -> datetime | None:
        """When the message is sent (``None`` for a draft)."""
        return self.request.sent_at

    @property
    def justification_available(self) -> bool:
        """Whether the justification texts are present to check."""
        return self.request.justification_available

    # -- codes -------------------------------------------------------------------------------

    @staticmethod
    def known(vocabulary: str, value: str | None) -> bool:
        """Whether ``value`` is a code of the named vocabulary (see :data:`VOCABULARIES`)."""
        return value is not None and value in VOCABULARIES[vocabulary]

    @cached_property
    def art6(self) -> frozenset[str]:
        """The known Article 6 bases declared."""
        return frozenset(self.tag.art6 or ()) & VOCABULARIES["Article 6 basis"]

    @cached_property
    def is_part3(self) -> bool:
        """Whether the sender declares DPA 2018 Part 3 (law-enforcement) processing.

        A missing or unknown regime counts as the UK GDPR, which applies more rules.
        """
        return self.tag.regime == codes.Regime.DPA_PART3

    @cached_property
    def data_categories(self) -> frozenset[str]:
        """The known data categories declared."""
        return frozenset(self.tag.data_categories or ()) & VOCABULARIES["data category"]

    @cached_property
    def declares_special(self) -> bool:
        """Special category data, by the flag *or* by listing any special category."""
        return codes.DataCategory.SPECIAL_CATEGORY in self.data_categories or bool(
            self.tag.special_categories
        )

    @cached_property
    def declares_criminal(self) -> bool:
        """Criminal offence data (including allegations, DPA 2018 s.11(2))."""
        return codes.DataCategory.CRIMINAL_OFFENCE in self.data_categories

    @cached_property
    def gateways(self) -> frozenset[str]:
        """The gateways claimed (as written)."""
        return frozenset(self.tag.gateways or ())

    @property
    def consent(self) -> tuple[ConsentEntry, ...]:
        """The consent entries."""
        return self.tag.consent_entries()

    @cached_property
    def p18_reasons(self) -> frozenset[str]:
        """The known para 18(2) reasons the tag gives (explicit or derived)."""
        return frozenset(self.tag.p18_consent_reasons()) & VOCABULARIES["para 18 consent reason"]

    @cached_property
    def condition_uses(self) -> tuple[ConditionUse, ...]:
        """The known Schedule 1 conditions declared, with their route.

        A declared condition counts as relied on whether or not the data categories
        call for it (the policy model's rules trigger on the declaration).
        """
        uses: list[ConditionUse] = []
        sch1 = self.tag.sch1_condition
        if sch1 is not None and self.known("Schedule 1 condition", sch1):
            uses.append(ConditionUse(sch1, "art9"))
        art10 = self.tag.art10_condition
        if art10 is not None and self.known("Schedule 1 condition", art10):
            uses.append(ConditionUse(art10, "art10"))
            underlying = self.tag.art10_underlying
            if art10 == PARA36 and underlying is not None and sch1_part(underlying) == "P2":
                uses.append(ConditionUse(underlying, "para36"))
        return tuple(uses)

    def uses(self, code: str) -> tuple[ConditionUse, ...]:
        """How the given Schedule 1 condition is relied on (empty if it is not)."""
        return tuple(use for use in self.condition_uses if use.code == code)

    @property
    def is_acknowledgement(self) -> bool:
        """Acknowledgements carry no new personal data (policy model ``message_kinds``)."""
        return self.kind == codes.MessageKind.ACKNOWLEDGEMENT

    def code_fields(self) -> Iterator[CodeField]:
        """Every code-valued field of the request, for the unknown-code check."""
        tag = self.tag

        def one(path: str, vocabulary: str, value: str | None) -> Iterator[CodeField]:
            if value is not None:
                yield CodeField(path, vocabulary, value)

        def many(path: str, vocabulary: str, values: list[str] | None) -> Iterator[CodeField]:
            for index, value in enumerate(values or ()):
                yield CodeField(f"{path}[{index}]", vocabulary, value)

        yield from one("kind", "message kind", self.kind)
        yield from one("sender.org_type", "organisation type", self.sender.org_type)
        yield from one("recipient.org_type", "organisation type", self.recipient.org_type)
        if self.forwarding is not None:
            yield from one(
                "forwarding.onward_disclosure",
                "onward disclosure marking",
                self.forwarding.onward_disclosure,
            )
        yield from one("regime", "regime", tag.regime)
        yield from many("art6", "Article 6 basis", tag.art6)
        yield from one("annex1_condition", "Annex 1 condition", tag.annex1_condition)
        yield from many("data_categories", "data category", tag.data_categories)
        yield from many("special_categories", "special category", tag.special_categories)
        yield from one("art9_condition", "Article 9 condition", tag.art9_condition)
        yield from one("sch1_condition", "Schedule 1 condition", tag.sch1_condition)
        art10, embedded = tag.art10_condition, None
        if tag.art10_sch1_condition is not None and art10 != tag.art10_sch1_condition:
            embedded = tag.art10_sch1_condition[len(PARA36) + 1 : -1]
        yield from one("art10_sch1_condition", "Schedule 1 condition", art10)
        yield from one("art10_sch1_condition", "Schedule 1 condition", embedded)
        yield from one(
            "art10_underlying_condition", "Schedule 1 condition", tag.art10_underlying_condition
        )
        yield from one("sch8_condition", "Schedule 8 condition", tag.sch8_condition)
        yield from many("gateways", "statutory gateway", tag.gateways)
        yield from one("p18_purpose", "para 18 purpose", tag.p18_purpose)
        yield from one("p18_consent_reason", "para 18 consent reason", tag.p18_consent_reason)
        yield from one("data_subject_category", "data subject category", tag.data_subject_category)
        yield from one("service_agreement", "service agreement", tag.service_agreement)
        yield from one("confidentiality_basis", "confidentiality basis", tag.confidentiality_basis)
        yield from one("onward_disclosure", "onward disclosure marking", tag.onward_disclosure)
        yield from one(
            "professional_secrecy_basis",
            "professional secrecy basis",
            tag.professional_secrecy_basis,
        )
        yield from one("s16h_purpose", "s.16H purpose", tag.s16h_purpose)
        for index, entry in enumerate(self.consent):
            at = f"consent[{index}]"
            yield from one(f"{at}.data_subject_role", "data subject role", entry.data_subject_role)
            yield from one(f"{at}.state", "consent state", entry.state)
            yield from one(
                f"{at}.not_sought_reason", "reason consent was not sought", entry.not_sought_reason
            )
            yield from one(
                f"{at}.p18_consent_reason", "para 18 consent reason", entry.p18_consent_reason
            )
            yield from one(f"{at}.given_by", "consent giver", entry.given_by)
            yield from one(f"{at}.refused_by", "consent giver", entry.refused_by)
        if tag.transparency is not None:
            yield from one(
                "transparency.informed", "'family informed' value", tag.transparency.informed
            )
            yield from one(
                "transparency.reason_not_informed",
                "reason the family was not told",
                tag.transparency.reason_not_informed,
            )
        if self.facts is not None:
            for index, person in enumerate(self.facts.sensitive_identities):
                yield from one(
                    f"facts.sensitive_identities[{index}].role",
                    "sensitive identity role",
                    person.role,
                )
            yield from one(
                "facts.withholding_reason", "withholding reason", self.facts.withholding_reason
            )
            yield from one(
                "facts.consistent_identifier_exception",
                "consistent identifier exception",
                self.facts.consistent_identifier_exception,
            )

    # -- text --------------------------------------------------------------------------------

    def text(self, name: str, *, statement: bool = True) -> TextState:
        """The state of a justification text.

        ``SKIPPED`` when justification text is not available. A ``statement`` must be at
        least ``deployment.min_statement_length`` characters; a citation need only be
        non-empty.
        """
        if not self.justification_available:
            return TextState.SKIPPED
        value = self.tag.justification.text(name)
        if not value:
            return TextState.MISSING
        if statement and len(value) < self.deployment.min_statement_length:
            return TextState.TOO_SHORT
        return TextState.PRESENT
