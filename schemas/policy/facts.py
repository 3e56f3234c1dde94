"""Facts for the content rules, read from a decrypted body by whoever holds it.

Only the sender (before sealing) and the recipient (after opening) can see a
body, so only they can feed the content rules (A004, A005, A007, P009). The
relay and the auditor evaluate without facts and those rules stay silent.
"""

from __future__ import annotations

from schemas.messages import (
    InformationOnly,
    MessageBody,
    Referral,
    ResponseToRfi,
)
from schemas.policy.request import MessageFacts, SensitiveIdentity

__all__ = ["facts_from_body"]


def facts_from_body(body: MessageBody) -> MessageFacts | None:
    """The :class:`MessageFacts` a body establishes, or ``None`` for kinds with no content facts."""
    if isinstance(body, Referral | InformationOnly):
        # Information-only notices mark every observation fact or opinion by construction.
        marked = body.facts_vs_opinion_marked if isinstance(body, Referral) else True
        identities = [
            SensitiveIdentity(role=s.role, do_not_disclose_to=list(s.do_not_disclose_to))
            for s in getattr(body, "sensitive_identities", ())
        ]
        child = body.child
        return MessageFacts(
            facts_vs_opinion_marked=marked,
            sensitive_identities=identities,
            consistent_identifier_included=(
                child is not None and child.identifiers.consistent_identifier is not None
            ),
        )
    if isinstance(body, ResponseToRfi):
        return MessageFacts(
            information_withheld=body.information_provided_or_withheld != "provided",
        )
    return None
