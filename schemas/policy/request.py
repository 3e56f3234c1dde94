"""What the policy engine is asked: one message's kind, parties, basis tag and context."""

from __future__ import annotations

from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from schemas.codes import PUBLIC_AUTHORITY_ORG_TYPES
from schemas.lawful_basis import BasisTag

__all__ = [
    "DeploymentPolicy",
    "Forwarding",
    "MessageFacts",
    "PartyContext",
    "PolicyRequest",
    "SensitiveIdentity",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class PartyContext(BaseModel):
    """The sender or a recipient, as far as the rules need to know it.

    ``public_authority`` may be left out: it then follows ``org_type``
    (:data:`schemas.codes.PUBLIC_AUTHORITY_ORG_TYPES`, DPA 2018 s.7).
    """

    model_config = _STRICT

    org_type: StrictStr
    public_authority: StrictBool | None = None
    apd_in_place: StrictBool | None = None

    @property
    def is_public_authority(self) -> bool:
        """The declared status, or the organisation type's default when not declared."""
        if self.public_authority is not None:
            return self.public_authority
        return self.org_type in PUBLIC_AUTHORITY_ORG_TYPES


class Forwarding(BaseModel):
    """Present when the message re-shares content received from another agency.

    ``onward_disclosure`` is the marking the originator put on that content.
    """

    model_config = _STRICT

    onward_disclosure: StrictStr
    originator_consent_ref: StrictStr | None = None


class DeploymentPolicy(BaseModel):
    """Switches a deployment (the partnership) sets; never set by the sender."""

    model_config = _STRICT

    s16la_in_force: StrictBool = False
    """Children Act 2004 s.16LA (duty to share) has been commenced (rules P009, X012)."""
    consistent_identifier_regs_in_force: StrictBool = False
    """Regulations under CA 2004 s.16LC specify the child's identifier (rule A007)."""
    reject_policy_as_warn: StrictBool = False
    """Report ``REJECT_POLICY`` findings as ``WARN_ADVICE`` (never affects ``REJECT_LAW``)."""
    min_statement_length: StrictInt = Field(default=10, ge=1, le=10_000)
    """Shortest acceptable written statement (necessity, proportionality, ...), in characters."""
    retention_classes: frozenset[str] | None = None
    """When set, ``retention_class`` must be one of these (rule P011)."""


class SensitiveIdentity(BaseModel):
    """Someone who could be harmed if their details became known (DfE golden rule 5)."""

    model_config = _STRICT

    role: StrictStr
    do_not_disclose_to: list[StrictStr] = Field(default_factory=list)


class MessageFacts(BaseModel):
    """Facts about the message content that only the sender's or recipient's client can see.

    The relay never has these (it cannot read the body), so it passes ``facts=None``
    and the content rules (A004, A005, A007, G006, G007, P009) are not evaluated.
    When facts are given, a flag that is left out counts as "no".
    """

    model_config = _STRICT

    facts_vs_opinion_marked: StrictBool | None = None
    sensitive_identities: list[SensitiveIdentity] = Field(default_factory=list)
    receipt_confirmation_requested: StrictBool | None = None
    sent_separately_from_pupil_file: StrictBool | None = None
    contains_assessment_narrative: StrictBool | None = None
    contains_unneeded_third_party_details: StrictBool | None = None
    information_withheld: StrictBool | None = None
    withholding_reason: StrictStr | None = None
    consistent_identifier_included: StrictBool | None = None
    consistent_identifier_exception: StrictStr | None = None


class PolicyRequest(BaseModel):
    """One message to evaluate (the README ``policy check`` request, plus engine options).

    ``basis`` is the raw tag (a dict, or a :class:`~schemas.lawful_basis.BasisTag`
    which is converted); the engine reads it leniently and reports what it cannot
    read. ``sent_at`` may be left out for a draft: date-dependent checks are then
    skipped. ``justification_available=False`` means only header codes are present
    (the relay): rules that need justification text are skipped, not failed.
    """

    model_config = _STRICT

    kind: StrictStr
    sent_at: AwareDatetime | None = None
    sender: PartyContext
    recipient: PartyContext
    forwarding: Forwarding | None = None
    basis: dict[str, Any]
    justification_available: StrictBool = True
    deployment: DeploymentPolicy = Field(default_factory=DeploymentPolicy)
    facts: MessageFacts | None = None

    @field_validator("basis", mode="before")
    @classmethod
    def _basis_from_tag(cls, value: object) -> object:
        if isinstance(value, BasisTag):
            return value.to_dict()
        return value
